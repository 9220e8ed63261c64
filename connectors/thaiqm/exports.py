"""Thai QM export files (CSV or Excel) -> the same records the API serves, with file and line.

Columns are the API's field names (``openapi.yaml``), one record per row; a households export has
a ``members`` column of citizen IDs separated by ``|`` or ``,``, the head first. Which feed a
sheet holds follows from its header: ``problem_id`` means problems, ``members`` households. An
Excel workbook may hold both, one per sheet.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl

from connectors.thaiqm.intake import Intake, Location
from connectors.thaiqm.records import Feed

EXCEL_SUFFIXES = (".xlsx", ".xlsm")


class ExportError(ValueError):
    """The file as a whole cannot be read as a Thai QM export."""


def _feed(header: list[str], where: str) -> Feed:
    if "problem_id" in header:
        return "problems"
    if "members" in header:
        return "households"
    raise ExportError(f"{where}: a Thai QM export has a problem_id column (problems) or a members column "
                      f"(households); found {', '.join(h for h in header if h) or 'no header'}")


def _cell(value: Any) -> Any:
    # Excel stores digit strings typed without a leading apostrophe as numbers.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


def _record(feed: Feed, row: dict[str, Any]) -> dict[str, Any]:
    if feed == "households" and isinstance(row.get("members"), str):
        ids = [p.strip() for p in row["members"].replace(",", "|").split("|") if p.strip()]
        row["members"] = [{"citizen_id": cid, "role": "HEAD" if i == 0 else "MEMBER"} for i, cid in enumerate(ids)]
    return row


def _csv_rows(path: Path) -> Iterator[tuple[Feed, str, int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        feed = _feed([h.strip() for h in reader.fieldnames or []], path.name)
        for raw in reader:
            row = {k.strip(): v for k, v in raw.items() if k}
            yield feed, path.name, reader.line_num, _record(feed, row)


def _excel_rows(path: Path) -> Iterator[tuple[Feed, str, int, dict[str, Any]]]:
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        for sheet in book.worksheets:
            rows = sheet.iter_rows(values_only=True)
            header = [str(h).strip() if h is not None else "" for h in next(rows, ())]
            where = f"{path.name}[{sheet.title}]"
            feed = _feed(header, where)
            for line, values in enumerate(rows, start=2):
                if all(v is None for v in values):
                    continue
                row = {h: _cell(v) for h, v in zip(header, values) if h}
                yield feed, where, line, _record(feed, row)
    finally:
        book.close()


def read_export(path: Path) -> Iterator[tuple[Feed, str, int, dict[str, Any]]]:
    """Yield (feed, file name, line, raw record) for every data row of an export."""
    path = Path(path)
    return _excel_rows(path) if path.suffix.lower() in EXCEL_SUFFIXES else _csv_rows(path)


def import_export(path: Path, intake: Intake) -> None:
    """Publish every row of an export; bad rows go to the DLQ with file and line. PublishError if Kafka fails."""
    for feed, where, line, raw in read_export(path):
        intake.accept(feed, raw, Location(file=where, line=line))
    intake.flush()
