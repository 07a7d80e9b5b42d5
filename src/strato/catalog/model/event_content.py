"""What an event may carry: the shape of a STAC item and of a patch, checked with the JSON
path of what is wrong but never rewritten (the models are thrown away after the check).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError

from strato.catalog.model import rfc3339
from strato.catalog.model.geometry import GeometryError, check_bbox, geometry_envelope
from strato.catalog.model.json_patch import POINTER

NonEmpty = Annotated[str, StringConstraints(min_length=1)]


class _Checked(BaseModel):
    # Items and patches are checked but kept as sent, so nothing may be coerced on the
    # way: "1.5" is not a number here. The checking models are thrown away, so members
    # they do not name are not copied into them.
    model_config = ConfigDict(extra="ignore", strict=True)


# --- what a STAC item must look like to be carried ----------------------------------------


def _parse_rfc3339(value: str) -> datetime:
    parsed = rfc3339.parse(value)
    if parsed is None:
        raise ValueError(value)
    return parsed


def _check_rfc3339(value: str) -> str:
    try:
        _parse_rfc3339(value)
    except ValueError:
        raise PydanticCustomError(
            "rfc3339", "'{value}' is not an RFC 3339 date-time with a time zone", {"value": value}
        ) from None
    return value


Rfc3339 = Annotated[str, AfterValidator(_check_rfc3339)]


def _check_bbox(value: list[float]) -> list[float]:
    try:
        check_bbox(value)
    except GeometryError as exc:
        # The reason as a context value: it may quote the sender's text, braces and all.
        raise PydanticCustomError("bbox", "{reason}", {"reason": str(exc)}) from None
    return value


def _check_geometry(value: dict[str, Any]) -> dict[str, Any]:
    try:
        geometry_envelope(value)
    except GeometryError as exc:
        raise PydanticCustomError("geometry", "{reason}", {"reason": str(exc)}) from None
    return value


class _Properties(_Checked):
    # start and end come first so the check of ``datetime`` can see them.
    start_datetime: Rfc3339 | None = None
    end_datetime: Rfc3339 | None = None
    datetime: Rfc3339 | None

    @field_validator("end_datetime")
    @classmethod
    def _not_before_start(cls, value: str | None, info: ValidationInfo) -> str | None:
        start = info.data.get("start_datetime")
        if (
            value is not None
            and start is not None
            and _parse_rfc3339(value) < _parse_rfc3339(start)
        ):
            raise PydanticCustomError("datetime_range", "end_datetime is before start_datetime")
        return value

    @field_validator("datetime")
    @classmethod
    def _null_needs_range(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and (
            info.data.get("start_datetime") is None or info.data.get("end_datetime") is None
        ):
            raise PydanticCustomError(
                "datetime_null",
                "null is allowed only when start_datetime and end_datetime are both given",
            )
        return value


class _Link(_Checked):
    href: str
    rel: str


class _Asset(_Checked):
    href: str


class _Item(_Checked):
    type: Literal["Feature"]
    stac_version: NonEmpty
    stac_extensions: list[str] = Field(default_factory=list)
    id: NonEmpty
    geometry: Annotated[dict[str, Any], AfterValidator(_check_geometry)] | None
    bbox: Annotated[list[float], AfterValidator(_check_bbox)] | None = Field(
        default=None, validate_default=True
    )
    properties: _Properties
    links: list[_Link]
    assets: dict[str, _Asset]
    collection: str | None = None

    @field_validator("bbox")
    @classmethod
    def _bbox_with_geometry(cls, value: list[float] | None, info: ValidationInfo) -> Any:
        if value is None and info.data.get("geometry") is not None:
            raise PydanticCustomError("bbox", "required when geometry is not null")
        return value


def _check_item(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    checked = handler(value)
    _Item.model_validate(checked)
    return checked


StacItem = Annotated[dict[str, Any], WrapValidator(_check_item)]


# --- patches ------------------------------------------------------------------------------


def _check_pointer(value: str) -> str:
    if not POINTER.match(value):
        raise PydanticCustomError(
            "json_pointer", "'{value}' is not a JSON Pointer", {"value": value}
        )
    return value


Pointer = Annotated[str, AfterValidator(_check_pointer)]


class _Add(_Checked):
    op: Literal["add"]
    path: Pointer
    value: Any


class _Remove(_Checked):
    op: Literal["remove"]
    path: Pointer


class _Replace(_Checked):
    op: Literal["replace"]
    path: Pointer
    value: Any


class _Move(_Checked):
    op: Literal["move"]
    path: Pointer
    from_: Pointer = Field(alias="from")


class _Copy(_Checked):
    op: Literal["copy"]
    path: Pointer
    from_: Pointer = Field(alias="from")


class _Test(_Checked):
    op: Literal["test"]
    path: Pointer
    value: Any


_OPERATIONS: TypeAdapter[list[Any]] = TypeAdapter(
    list[Annotated[_Add | _Remove | _Replace | _Move | _Copy | _Test, Field(discriminator="op")]]
)
OP_NAMES = ("add", "remove", "replace", "move", "copy", "test")


def _check_patch(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        _OPERATIONS.validate_python(value)
        return list(value)
    raise PydanticCustomError(
        "patch_type", "a patch is a JSON merge patch (object) or a list of JSON Patch operations"
    )


Patch = Annotated[dict[str, Any] | list[dict[str, Any]], WrapValidator(_check_patch)]
