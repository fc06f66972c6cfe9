"""Streaming exports to Excel (.xlsx) and CSV: rows come from a server-side cursor in batches and go straight to a
temporary file, so memory stays flat whether the file holds a thousand rows or a million; the file is then streamed
back and deleted."""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import xlsxwriter
from fastapi.responses import FileResponse
from sqlalchemy import Executable
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from accountdesk.core.i18n import DEFAULT_LANGUAGE, gettext, negotiate, speaking, translate

Format = Literal["xlsx", "csv"]
Kind = Literal["text", "integer", "money", "datetime", "bool"]
BATCH = 2000
MEDIA_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "csv": "text/csv; charset=utf-8"}
# A spreadsheet runs a CSV cell that starts like a formula; such cells get a leading apostrophe (CSV injection).
_FORMULA_START = ("=", "@", "\t", "\r")
_NUMBER_LIKE = re.compile(r"[+-][0-9 .()-]*")  # a phone number such as +12175550142 stays as it is


@dataclass(frozen=True)
class Column:
    title: Any  # a lazy string (`_l`), shown in the export's language
    kind: Kind = "text"
    width: int = 18


def stream_rows(session: Session, stmt: Executable, batch: int = BATCH) -> Iterator[Sequence[Any]]:
    """Rows of a Core select read through a server-side cursor (PostgreSQL) in batches of `batch`."""
    result = session.execute(stmt.execution_options(stream_results=True, yield_per=batch))
    for partition in result.partitions():
        yield from partition


def _xlsx_writers(workbook: Any, sheet: Any, columns: Sequence[Column]) -> list[Callable[[int, int, Any], Any]]:
    money = workbook.add_format({"num_format": "#,##0.00"})
    when = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    by_kind: dict[str, Callable[[int, int, Any], Any]] = {
        "text": lambda r, c, v: sheet.write_string(r, c, str(v)),
        "integer": lambda r, c, v: sheet.write_number(r, c, v),
        "money": lambda r, c, v: sheet.write_number(r, c, v, money),
        "datetime": lambda r, c, v: sheet.write_datetime(r, c, v, when),
        "bool": lambda r, c, v: sheet.write_string(r, c, _yes_no(v)),
    }
    return [by_kind[column.kind] for column in columns]


def write_xlsx(path: Path, sheet_name: str, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> int:
    """Write a one-sheet workbook row by row (XlsxWriter constant_memory); returns the number of data rows."""
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True, "remove_timezone": True,
                                               "tmpdir": str(path.parent)})
    sheet = workbook.add_worksheet(sheet_name)
    bold = workbook.add_format({"bold": True})
    for c, column in enumerate(columns):
        sheet.set_column(c, c, column.width)
        sheet.write_string(0, c, translate(column.title), bold)
    writers = _xlsx_writers(workbook, sheet, columns)
    count = 0
    for count, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if value is not None:
                writers[c](count, c, value)
    sheet.freeze_panes(1, 0)
    workbook.close()
    return count


def _yes_no(value: Any) -> str:
    return gettext("Yes") if value else gettext("No")


def _csv_cell(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "bool":
        return _yes_no(value)
    if kind == "datetime" and isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if kind == "money" and isinstance(value, Decimal):
        return f"{value:.2f}"
    text = str(value)
    if text.startswith(_FORMULA_START) or (text[:1] in ("+", "-") and not _NUMBER_LIKE.fullmatch(text)):
        return "'" + text
    return text


def write_csv(path: Path, columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> int:
    """Write a CSV file (UTF-8 with a byte-order mark so that Excel reads accents right)."""
    kinds = [column.kind for column in columns]
    count = 0
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow([translate(column.title) for column in columns])
        for row in rows:
            writer.writerow([_csv_cell(kind, value) for kind, value in zip(kinds, row, strict=True)])
            count += 1
    return count


def export_response(name: str, fmt: Format, columns: Sequence[Column], rows: Iterable[Sequence[Any]],
                    language: str = "en") -> FileResponse:
    """Write `rows` to a temporary `name`.xlsx or `name`.csv and stream it as a download; the file goes afterwards.
    Column titles and yes/no cells are in `language` (the staff user's); numbers, dates and codes stay as data."""
    folder = Path(tempfile.mkdtemp(prefix="accountdesk-export-"))
    path = folder / f"{name}.{fmt}"
    try:
        with speaking(language):
            if fmt == "xlsx":
                write_xlsx(path, name, columns, rows)
            else:
                write_csv(path, columns, rows)
    except BaseException:
        _remove(folder)
        raise
    return FileResponse(path, media_type=MEDIA_TYPES[fmt], filename=path.name,
                        background=BackgroundTask(_remove, folder))


def _remove(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink(missing_ok=True)
    os.rmdir(folder)


def api_language(request: Any, staff_language: str | None) -> str:
    """The language of an export downloaded through the API: the request's Accept-Language among ours, else the
    staff user's (as the console's Excel button)."""
    return negotiate(request.headers.get("accept-language")) or staff_language or DEFAULT_LANGUAGE
