"""The catalog capability's settings section: ``[catalog]`` in strato.toml,
``STRATO_CATALOG_*``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from strato.settings import Section


class CatalogSettings(Section):
    key: ClassVar[str] = "catalog"

    topic_strategy: Literal["single", "drs"] = Field(
        "single",
        description="Where events are published: one topic esgf.events keyed by item id "
        "(ESGF production) or topics <mip_era>.<experiment_id>.<source_id> (playground).",
    )
    topics: str | None = Field(
        None,
        description="Regular expression of the topics this node consumes; default every "
        "event topic of the strategy (never the error topic).",
    )
    error_topic: str = Field("esgf.errors", description="Topic of events that failed.")
    group: str | None = Field(
        None, description="Consumer group of this node; default the node name."
    )
    consume: bool = Field(
        True, description="Run this node's consumer inside `strato up` (else `strato consumer`)."
    )
    batch_size: int = Field(500, ge=1, le=10_000, description="Most events written per batch.")
    retries: int = Field(
        3, ge=0, le=20, description="Attempts after the first before an event goes to errors."
    )
    retry_backoff: float = Field(
        0.2, ge=0, le=60, description="Seconds before the first retry; doubles each time."
    )
    peers: dict[str, str] = Field(
        default_factory=dict,
        description="Other nodes of the federation, name -> base URL, asked for publications.",
    )
    peer_token: SecretStr | None = Field(
        None,
        description="Bearer token (read scope on the peers) this node shows its peers when "
        "it asks them about publications; needed when they are private.",
    )
    max_limit: int = Field(10_000, ge=1, description="Largest page a search may ask for.")
    # Filter limits: CQL2 text nested deeper than a few hundred levels crashes the native
    # parser's process, and filters of thousands of arguments make SQL that takes
    # minutes; beyond these a filter answers 400 naming the limit.
    filter_max_length: int = Field(
        65_536, ge=1, description="Most characters of a filter (CQL2 text or JSON text)."
    )
    filter_max_depth: int = Field(
        64,
        ge=2,
        le=128,
        description="Most nesting levels of a filter: JSON objects and arrays; in CQL2 text "
        "parentheses and operators.",
    )
    filter_max_nodes: int = Field(
        1_000,
        ge=10,
        le=4_000,
        description="Most operators and values in a filter (JSON values; in text operators).",
    )
    filter_max_args: int = Field(
        500, ge=2, description="Most arguments of one filter operator or values of one list."
    )
    filter_max_literal: int = Field(
        1_024, ge=1, description="Most characters of one string in a filter (a LIKE pattern)."
    )
    max_item_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="Largest item (its JSON) a transaction or an event may carry, 1 MiB; "
        "larger ones answer 413 or go to the error topic.",
    )
    max_page_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="Bytes of items a STAC search page holds at most, 8 MiB: a page stops "
        "short of its limit there and links the next (at least one item per page).",
    )
    dataset_sync_interval: float = Field(
        5.0,
        ge=0,
        description="Seconds between publishing changes of served datasets to the catalog; "
        "0 turns the link off.",
    )
    stac_fast_path: bool = Field(
        True,
        description="Read the STAC API's GET queries without FastAPI's per-parameter "
        "validation when that reads them the same (strato.catalog.api.stac_fast); off: "
        "FastAPI reads every query. Same answers either way, the fast path is quicker.",
    )

    compiled_statements: bool = Field(
        True,
        description="Run facet searches from SQL compiled once per shape of search "
        "(strato.catalog.search.fast_statements); off: SQLAlchemy builds each statement.",
    )

    def consumer_group(self, node_name: str) -> str:
        """The consumer group of a node named ``node_name``: the setting, else that name."""
        return self.group or node_name
