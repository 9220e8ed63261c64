"""Reads TPMAP export files (CSV, XLSX, JSON lines) into rows keyed by canonical column names.

Every value becomes text the way a CSV cell would hold it, and a blank cell None, so the same
export in any of the three formats validates into the same rows and the same events.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from connectors.tpmap.columns import ExportError, column_mapping, normal_header

CSV_SUFFIXES = (".csv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class BadRecord:
    """A record that is not a row at all (e.g. a JSON line that does not parse)."""

    reason: str
    detail: str
    text: str


Row = dict[str, str | None]
Rows = Generator[tuple[int, Row | BadRecord], None, None]


def cell_text(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v if v and not v.isspace() else None
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # spreadsheets store codes and counts as floats: 2567.0 is 2567
    if isinstance(v, list):
        return "|".join(cell_text(x) or "" for x in v)
    return str(v)


def _csv_rows(path: Path) -> Rows:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        cols = list(column_mapping().positions(next(reader, [])).items())
        width = max(i for _, i in cols) + 1
        for cells in reader:
            if not cells:
                continue
            if len(cells) < width:
                cells += [""] * (width - len(cells))
            # inline, not cell_text(): this line runs for every cell of the file
            yield reader.line_num, {c: v if (v := cells[i]) and not v.isspace() else None for c, i in cols}


def _xlsx_rows(path: Path) -> Rows:
    import openpyxl  # only XLSX imports pay for loading it

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises zipfile, KeyError and XML errors for a non-XLSX file
        raise ExportError(f"not a readable XLSX workbook: {e}") from e
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        cols = list(column_mapping().positions(next(rows, ())).items())
        for line, cells in enumerate(rows, start=2):
            if all(v is None for v in cells):
                continue
            n = len(cells)
            yield line, {c: cell_text(cells[i]) if i < n else None for c, i in cols}
    finally:
        book.close()


def _jsonl_rows(path: Path) -> Rows:
    mapping = column_mapping()
    keys: dict[str, str | None] = {}  # the export's key -> canonical name (None: a column we do not take)
    checked = False
    with path.open(encoding="utf-8-sig") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except ValueError as e:
                yield line, BadRecord("bad-json", f"line is not JSON: {e}", text)
                continue
            if not isinstance(obj, dict):
                yield line, BadRecord("bad-json", "line is not a JSON object", text)
                continue
            if not checked:
                # the first object stands for the header: a missing column refuses the whole file
                mapping.positions(list(obj))
                checked = True
            row: Row = {}
            for k, v in obj.items():
                if k not in keys:
                    keys[k] = mapping.canonical_of.get(normal_header(k))
                canonical = keys[k]
                if canonical is not None:
                    row[canonical] = cell_text(v)
            yield line, row


def read_export(path: Path) -> Rows:
    """(line or sheet row number, row) in file order; raises ExportError before the first row if the
    file type or header is wrong."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _csv_rows(path)
    if suffix in XLSX_SUFFIXES:
        return _xlsx_rows(path)
    if suffix in JSONL_SUFFIXES:
        return _jsonl_rows(path)
    raise ExportError(f"unsupported file type {suffix or '(none)'}: TPMAP exports are "
                      f"{', '.join(CSV_SUFFIXES + XLSX_SUFFIXES + JSONL_SUFFIXES)}")


def check_export(path: Path) -> None:
    """Read the header only: raise ExportError for a file that would be refused."""
    rows = read_export(path)
    try:
        # JSON lines have no header row: their first object that parses stands for it
        next((row for _, row in rows if not isinstance(row, BadRecord)), None)
    finally:
        rows.close()


def estimate_rows(path: Path) -> int | None:
    """About how many rows the file holds (for the progress bar's ETA); None when unknown."""
    if path.suffix.lower() in XLSX_SUFFIXES:
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True)
        try:
            max_row = book.worksheets[0].max_row
        finally:
            book.close()
        return max_row - 1 if max_row else None
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines - 1 if path.suffix.lower() in CSV_SUFFIXES else lines
