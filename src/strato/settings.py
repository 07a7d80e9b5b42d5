"""One Settings object for the whole platform.

Sources, strongest first: arguments given in code, ``STRATO_*`` environment
variables, a ``strato.toml`` file, the defaults below. Nested sections are
reached from the environment with one underscore after the section name
(``STRATO_AUTH_ANONYMOUS_READ``, ``STRATO_LOG_FORMAT``).
Nothing here runs at import time: callers build Settings and pass them down.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from strato.redact import mask_tree, mask_url

CONFIG_ENV = "STRATO_CONFIG"
DEFAULT_CONFIG_FILE = "strato.toml"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "strato"


class Section(BaseModel):
    # Sections ignore unknown keys because ``STRATO_DATA_DIR`` is also offered to a
    # section named ``data`` by the nested-variable splitter; the top level forbids them.
    model_config = ConfigDict(extra="ignore")


class AuthSettings(Section):
    anonymous_read: bool = Field(
        True, description="Allow requests without credentials on read-only routes."
    )
    admin_user: str = Field("admin", description="Name of the administrator created by `up`.")
    token_default_expiry: str = Field(
        "never", description="Lifetime of new tokens when none is given: 30d, 12h, 90m or never."
    )
    # Each password check costs argon2 work on purpose; past these limits a caller hears
    # 429 with Retry-After before any check runs. Tokens are not limited: they cost a hash.
    failures_per_user: int = Field(
        10, ge=1, description="Wrong passwords for one user name per window, from anywhere."
    )
    failures_per_address: int = Field(
        30, ge=1, description="Wrong passwords from one client address per window, any user."
    )
    failure_window: int = Field(
        60, ge=1, le=86_400, description="Seconds over which wrong passwords are counted."
    )
    failure_tracking: int = Field(
        10_000,
        ge=1,
        description="Most user names, and most addresses, counted at once; the least "
        "recently failed are forgotten first.",
    )


class LogSettings(Section):
    format: Literal["text", "json"] = Field("text", description="Log line format.")
    level: str = Field("INFO", description="Python logging level name.")
    access: bool = Field(True, description="Log one line per HTTP request.")


class DataSettings(Section):
    allowed_roots: list[Path] = Field(
        default_factory=list,
        description="Directories datasets may be registered from; the data directory always is.",
    )
    byte_budget: int = Field(
        1 << 30,
        gt=0,
        description="Most bytes one plot or diagnostic may read; larger requests answer 413.",
    )
    # blosc-lz4 with byte shuffle: on model output it both compresses better than zstd-1
    # and decodes about three times faster, which is what a reading client waits on.
    compression: Literal["blosc-lz4", "zstd", "none"] = Field(
        "blosc-lz4", description="Codec of chunks served at /zarr."
    )
    compression_level: int | None = Field(
        None, ge=0, le=22, description="Level of that codec; default 5 for blosc-lz4, 1 for zstd."
    )
    bitround_keepbits: int | None = Field(
        None, ge=1, le=52, description="Keep this many mantissa bits of floats (lossy)."
    )
    cache_control: str = Field(
        "public, max-age=300", description="Cache-Control header of dataset responses."
    )
    open_datasets: int = Field(64, ge=1, description="How many opened datasets to keep cached.")
    broken_retry_seconds: float = Field(
        10.0,
        ge=0,
        description="A dataset that failed to open is tried again after this many seconds "
        "even if its files did not change (the failure may have been passing).",
    )
    demo: bool = Field(True, description="Generate and register demo data on first `strato up`.")

    @model_validator(mode="after")
    def _level_fits_codec(self) -> DataSettings:
        # zstd knows levels up to 22, blosc only up to 9.
        if (
            self.compression == "blosc-lz4"
            and self.compression_level is not None
            and self.compression_level > 9
        ):
            raise ValueError("compression_level must be 0-9 for blosc-lz4")
        return self

    @property
    def effective_level(self) -> int:
        if self.compression_level is not None:
            return self.compression_level
        return 5 if self.compression == "blosc-lz4" else 1

    demo_scale: Literal["full", "small"] = Field(
        "full", description="Demo collection size: full (decades, 1-degree) or small (quick)."
    )


class BusSettings(Section):
    url: str | None = Field(
        None,
        description="Event bus: nats://host:4222 (JetStream), kafka://host:9092, or "
        "sqlite:///path; default an embedded SQLite log bus.db in the data directory.",
    )


class CatalogSettings(Section):
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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STRATO_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where strato keeps its database, tokens and generated data.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL; default: SQLite file strato.db in the data directory. "
        "postgresql://... and mysql://... (MariaDB) are supported.",
    )
    host: str = Field("127.0.0.1", description="Address the web server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port the web server binds to.")
    node_name: str = Field("local", description="Name of this node in a federation.")
    public_url: str | None = Field(
        None, description="Base URL users reach this node at; default http://host:port."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; empty disables CORS."
    )
    max_body_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="Largest request body the web server reads (16 MiB); larger ones "
        "answer 413, chunked ones as soon as they cross it.",
    )
    dask_scheduler: str | None = Field(
        None, description="Address of a Dask distributed scheduler; default: threads in-process."
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)

    @property
    def database_url_value(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'strato.db'}"

    @property
    def consumer_group(self) -> str:
        return self.catalog.group or self.node_name

    @property
    def data_roots(self) -> list[Path]:
        return [self.data_dir.resolve(), *(p.resolve() for p in self.data.allowed_roots)]

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    def public_dump(self) -> dict[str, Any]:
        """The effective configuration with secrets masked, for display."""
        data = self.model_dump(mode="json")
        data["database_url"] = mask_url(self.database_url_value)
        # Every other URL (bus, peers, scheduler) may carry credentials as well.
        masked: dict[str, Any] = mask_tree(data)
        return masked


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from a TOML file (explicit, ``$STRATO_CONFIG`` or ./strato.toml)."""
    path = config_file or _config_from_env()
    if path is not None and not path.is_file():
        from strato.errors import InvalidInput

        raise InvalidInput(f"configuration file {path} does not exist")
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = Path(DEFAULT_CONFIG_FILE)
    if path is None:
        return Settings(**overrides)
    return _with_toml(path)(**overrides)


def _config_from_env() -> Path | None:
    value = os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


def _with_toml(path: Path) -> type[Settings]:
    class FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    FileSettings.__name__ = "Settings"
    return FileSettings
