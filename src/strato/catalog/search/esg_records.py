"""STAC items as the Dataset, File and Aggregation records of ESGF's Solr index.

Clients of the legacy search read these records field by field, with the types ESGF's
index nodes gave them: a facet is a list of strings (``"source_id": ["CESM2"]``), the
record's own fields are scalars (``data_node``, ``version``, ``size``, ``latest``),
``url`` is a list of ``"url|mime type|service"`` triples. intake-esgf keys datasets by
CMIP6's DRS facets (``activity_drs`` among them) and places files where
``directory_format_template_`` says; esgf-pyclient reads ``checksum``, ``size``,
``tracking_id`` and the services of ``url``.

Items do not carry the DRS fields that ESGF's publisher added: they are read back from
the item's id, whose parts are the project's DRS facets in order (:data:`DRS`).

A data asset is a File record, unless it is a Zarr store of the whole dataset (what
``strato.data`` publishes): that is an Aggregation record, ESGF's name for one access
point to all of a dataset's data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

PLAIN_FACETS = ("project",)

# Each project's dataset id, part by part, without the version; ESGF's directory
# structure is the same parts under a root, then the version.
DRS: dict[str, tuple[str, ...]] = {
    "CMIP6": (
        "mip_era",
        "activity_drs",
        "institution_id",
        "source_id",
        "experiment_id",
        "member_id",
        "table_id",
        "variable_id",
        "grid_label",
    ),
    "CORDEX": (
        "project_id",
        "activity_id",
        "domain_id",
        "institution_id",
        "driving_source_id",
        "driving_experiment_id",
        "driving_variant_label",
        "source_id",
        "version_realization",
        "frequency",
        "variable_id",
    ),
}
_VERSION = re.compile(r"v\d+")
# Media types of Zarr stores (STAC's and the older spellings).
ZARR_TYPES = ("application/vnd+zarr", "application/vnd.zarr", "application/x-zarr")
ZARR_SERVICE = "Zarr"


def bare_name(prop: str) -> str:
    """``cmip6:source_id`` -> ``source_id``; a plain property keeps its name."""
    return prop.split(":", 1)[1] if ":" in prop else prop


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _facet_fields(props: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, list[Any]] = {}
    for prop, value in props.items():
        if prop in PLAIN_FACETS or ":" in prop:
            bare = bare_name(prop)
            out.setdefault(bare, []).extend(v for v in as_list(value) if v is not None)
    # The names ESGF's Solr schema had beside the CMIP6 ones.
    for solr, facet in (
        ("cf_standard_name", "variable_cf_standard_name"),
        ("experiment_title", "experiment"),
        ("variable", "variable_id"),
    ):
        if facet in out:
            out[solr] = out[facet]
    return out


def _drs_fields(instance_id: str, project: Any) -> dict[str, Any]:
    """The DRS facets and templates of a record whose id follows its project's DRS."""
    names = DRS.get(str(project))
    parts = instance_id.split(".")
    if names is None or len(parts) != len(names) + 1 or not _VERSION.fullmatch(parts[-1]):
        return {}
    fields: dict[str, Any] = {name: [value] for name, value in zip(names, parts, strict=False)}
    fields["dataset_id_template_"] = [".".join(f"%({n})s" for n in names)]
    directory = ("root", *names, "version")
    fields["directory_format_template_"] = ["/".join(f"%({n})s" for n in directory)]
    return fields


def _is_zarr(asset: Mapping[str, Any]) -> bool:
    roles = asset.get("roles")
    return (isinstance(roles, list) and "zarr" in roles) or asset.get("type") in ZARR_TYPES


def data_assets(item: Mapping[str, Any]) -> tuple[list[tuple[str, dict[str, Any]]], ...]:
    """``(files, zarr stores)``: the item's data assets, as File and Aggregation records."""
    assets = item.get("assets")
    files: list[tuple[str, dict[str, Any]]] = []
    stores: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(assets, dict):
        return files, stores
    for key, asset in assets.items():
        if not isinstance(asset, dict):
            continue
        roles = asset.get("roles")
        if isinstance(roles, list) and roles and "data" not in roles:
            continue
        (stores if _is_zarr(asset) else files).append((str(key), asset))
    return files, stores


@dataclass(frozen=True)
class DocContext:
    """Where this node is: for ids, index_node and links."""

    node_name: str
    base_url: str


def item_url(base_url: str, collection_id: str, item_id: str) -> str:
    return f"{base_url}/stac/collections/{collection_id}/items/{item_id}"


def solr_version(indexed: datetime) -> int:
    """Solr's ``_version_``: milliseconds of the last write, shifted left 20 bits, as Solr
    makes it; later writes have larger versions."""
    return int(indexed.timestamp() * 1000) << 20


def dataset_doc(
    item: Mapping[str, Any], ctx: DocContext, indexed: datetime | None = None
) -> dict[str, Any]:
    """An item as ESGF's Solr index held a Dataset record; ``indexed`` is when this node
    last wrote it (``_timestamp``, what from/to search)."""
    props = item.get("properties")
    props = props if isinstance(props, dict) else {}
    instance_id = str(item.get("id"))
    collection = str(item.get("collection", ""))
    data_node = str(props.get("data_node") or ctx.node_name)
    files, stores = data_assets(item)
    size = props.get("size")
    if not isinstance(size, int):
        size = sum(int(a.get("file:size") or 0) for _, a in files)
    access = [str(a) for a in as_list(props.get("access") or ["HTTPServer"])]
    if stores and ZARR_SERVICE not in access:
        access.append(ZARR_SERVICE)
    doc: dict[str, Any] = {
        "id": f"{instance_id}|{data_node}",
        "type": "Dataset",
        "instance_id": instance_id,
        "master_id": props.get("base_id") or instance_id.rsplit(".v", 1)[0],
        "title": props.get("title") or instance_id,
        "version": props.get("version"),
        "latest": props.get("latest") is not False,
        "retracted": props.get("retracted") is True,
        "replica": props.get("replica") is True,
        "data_node": data_node,
        "index_node": ctx.node_name,
        "number_of_files": len(files),
        "number_of_aggregations": len(stores),
        "size": size,
        "access": access,
        "url": [f"{item_url(ctx.base_url, collection, instance_id)}|application/geo+json|STAC"],
        "stac_collection": collection,
    }
    doc.update(_drs_fields(instance_id, props.get("project")))
    doc.update(_facet_fields(props))
    for key, prop in (("datetime_start", "start_datetime"), ("datetime_stop", "end_datetime")):
        if props.get(prop):
            doc[key] = props[prop]
    if props.get("updated"):
        doc["timestamp"] = props["updated"]
    if indexed is not None:
        doc["_timestamp"] = indexed.isoformat().replace("+00:00", "Z")
        doc["_version_"] = solr_version(indexed)
    bbox = item.get("bbox")
    if isinstance(bbox, list) and len(bbox) in (4, 6):
        half = len(bbox) // 2
        doc["west_degrees"], doc["south_degrees"] = bbox[0], bbox[1]
        doc["east_degrees"], doc["north_degrees"] = bbox[half], bbox[half + 1]
    doc["score"] = 1.0
    return doc


def checksum_of(value: Any) -> tuple[str, str] | None:
    """``(hex digest, type)`` of a file:checksum, a multihash, or a bare hex digest."""
    if not isinstance(value, str):
        return None
    text = value.lower()
    if len(text) == 68 and text.startswith("1220"):
        return text[4:], "SHA256"
    if len(text) == 132 and text.startswith("1340"):
        return text[4:], "SHA512"
    if len(text) == 34 and text.startswith("d501"):
        return text[4:], "MD5"
    if len(text) == 64:
        return text, "SHA256"
    if len(text) == 32:
        return text, "MD5"
    return text, "multihash"


# Fields of a Dataset record that are about the dataset as a whole.
_DATASET_ONLY = frozenset({"number_of_files", "number_of_aggregations", "url", "access"})


def _part_doc(
    dataset: Mapping[str, Any], kind: str, suffix: str, title: str, urls: list[str]
) -> dict[str, Any]:
    """A File or Aggregation record: the dataset's fields, its own id, title and urls."""
    doc = {k: v for k, v in dataset.items() if k not in _DATASET_ONLY}
    doc.update(
        {
            "id": f"{dataset['instance_id']}.{suffix}|{dataset['data_node']}",
            "type": kind,
            "dataset_id": dataset["id"],
            "instance_id": f"{dataset['instance_id']}.{suffix}",
            "master_id": f"{dataset['master_id']}.{suffix}",
            "title": title,
            "url": urls,
        }
    )
    return doc


def file_docs(
    item: Mapping[str, Any], ctx: DocContext, indexed: datetime | None = None
) -> list[dict[str, Any]]:
    """Each file of an item as ESGF's File record; replicas add download URLs."""
    dataset = dataset_doc(item, ctx, indexed)
    docs = []
    for key, asset in data_assets(item)[0]:
        mime = str(asset.get("type") or "application/netcdf")
        urls = [f"{asset.get('href')}|{mime}|HTTPServer"]
        alternates = asset.get("alternate")
        if isinstance(alternates, dict):
            for alternate in alternates.values():
                if isinstance(alternate, dict) and alternate.get("href"):
                    urls.append(f"{alternate['href']}|{mime}|HTTPServer")
        doc = _part_doc(dataset, "File", key, key, urls)
        doc["size"] = int(asset.get("file:size") or 0)
        checksum = checksum_of(asset.get("file:checksum"))
        if checksum:
            doc["checksum"], doc["checksum_type"] = [checksum[0]], [checksum[1]]
        tracking = [v for k, v in asset.items() if k.endswith(":tracking_id")]
        if tracking:
            doc["tracking_id"] = tracking
        docs.append(doc)
    return docs


def aggregation_docs(
    item: Mapping[str, Any], ctx: DocContext, indexed: datetime | None = None
) -> list[dict[str, Any]]:
    """Each Zarr store of an item as ESGF's Aggregation record, its ``url`` a Zarr link."""
    dataset = dataset_doc(item, ctx, indexed)
    docs = []
    for key, asset in data_assets(item)[1]:
        mime = str(asset.get("type") or ZARR_TYPES[0])
        url = f"{asset.get('href')}|{mime}|{ZARR_SERVICE}"
        title = str(asset.get("title") or key)
        docs.append(_part_doc(dataset, "Aggregation", f"{key}.aggregation", title, [url]))
    return docs
