"""User text stays text in every spreadsheet and CSV file (no formula injection, OWASP "CSV
injection"): a comment ``=HYPERLINK(...)`` must not become a live formula.

- XLSX: openpyxl turns any string starting with ``=`` into a formula cell; :func:`text_cell`
  (and :func:`text_workbook` over a whole workbook before it is saved) keeps such a value a
  string cell (``data_type "s"``), shown exactly as typed.
- CSV: a field starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed
  with ``'`` (:func:`csv_field`, :func:`csv_row`), so spreadsheet programs show it as text. Plain
  numbers (``-5``, ``+1.5``) are not touched: they cannot be formulas.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(cell: Any) -> Any:
    """An openpyxl cell whose string value openpyxl took for a formula becomes a text cell."""
    if cell.data_type == "f" and isinstance(cell.value, str):
        cell.data_type = "s"
    return cell


def write_cell(ws: Any, row: int, column: int, value: Any) -> Any:
    """``ws.cell(row, column, value)`` that never writes a formula."""
    return text_cell(ws.cell(row=row, column=column, value=value))


def text_workbook(wb: Any) -> Any:
    """Every cell of every sheet: formulas (from user text) become text cells."""
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                text_cell(cell)
    return wb


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return value.strip() == value


def csv_field(value: Any) -> Any:
    """A CSV field that a spreadsheet program reads as text, never as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_field(v) for v in values]


class TextWriter:
    """``csv.writer`` whose rows go through :func:`csv_row`."""

    def __init__(self, stream: Any, **kwargs: Any) -> None:
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow(csv_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(stream: Any, **kwargs: Any) -> TextWriter:
    """A drop-in for ``csv.writer(stream, **kwargs)`` that neutralises formula-like fields."""
    return TextWriter(stream, **kwargs)


__all__ = [
    "FORMULA_STARTS",
    "TextWriter",
    "csv_field",
    "csv_row",
    "csv_writer",
    "text_cell",
    "text_workbook",
    "write_cell",
]
