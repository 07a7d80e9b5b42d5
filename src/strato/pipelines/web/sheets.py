"""Sample sheets uploaded on the submission page: an Excel workbook (as Centro's users
kept theirs) read into rows of ``{header: value}``, which the page puts into the
config's ``dataFiles``. CSV is read in the browser; a workbook is a zip of XML, read here
with openpyxl (the ``xlsx`` extra).

Bounded before anything is parsed: the upload's size, the sizes its zip declares once
inflated (a zip bomb is refused without inflating it), rows and columns. Cells are read
as their stored values: formulas are not evaluated and nothing in the file is run.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, time
from typing import Any

from strato.errors import InvalidInput, Unavailable

MAX_UPLOAD = 4 << 20
MAX_INFLATED = 64 << 20
MAX_ROWS = 10_000
MAX_COLUMNS = 200


def read_xlsx(data: bytes) -> dict[str, Any]:
    """``{"columns": [...], "rows": [{column: value}]}`` of the workbook's first sheet:
    its first row names the columns; empty cells and empty rows are left out."""
    try:
        from openpyxl import load_workbook  # type: ignore[import-untyped]
    except ImportError:
        raise Unavailable(
            "reading Excel sample sheets needs strato's xlsx extra on the server; "
            "upload the sheet as CSV instead"
        ) from None
    _check_zip(data)
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is no workbook
        raise InvalidInput(f"sheet: not an Excel workbook (.xlsx): {str(exc)[:200]}") from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise InvalidInput("sheet: the workbook has no worksheet")
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise InvalidInput("sheet: the first worksheet is empty (its first row names columns)")
        columns = _columns(header)
        found: list[dict[str, Any]] = []
        for number, values in enumerate(rows, start=2):
            record = {
                columns[i]: _value(v)
                for i, v in enumerate(values[: len(columns)])
                if columns[i] and v is not None and v != ""
            }
            if not record:
                continue
            if len(found) == MAX_ROWS:
                raise InvalidInput(f"sheet: more than {MAX_ROWS} rows (row {number})")
            found.append(record)
    finally:
        book.close()
    return {"columns": [c for c in columns if c], "rows": found}


def _check_zip(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise InvalidInput("sheet: not an Excel workbook (.xlsx is a zip; this is not)") from None
    if inflated > MAX_INFLATED:
        raise InvalidInput(f"sheet: the workbook inflates past {MAX_INFLATED >> 20} MiB")


def _columns(header: tuple[Any, ...]) -> list[str]:
    if len(header) > MAX_COLUMNS:
        raise InvalidInput(f"sheet: more than {MAX_COLUMNS} columns")
    columns = ["" if v is None else str(v).strip() for v in header]
    named = [c for c in columns if c]
    if not named:
        raise InvalidInput("sheet: the first row names no column")
    twice = sorted({c for c in named if named.count(c) > 1})
    if twice:
        raise InvalidInput(f"sheet: columns named twice: {', '.join(twice)}")
    return columns


def _value(value: Any) -> Any:
    # JSON has no dates: they are given as ISO 8601 text.
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
