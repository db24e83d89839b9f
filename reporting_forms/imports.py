"""Backfill from a spreadsheet: the XLSX the bot exports (``resobot compile --format xlsx``) read
back, every cell checked with the chat's own parsers.

Pure: bytes (or a path) and the catalog in, typed values or refusals out — no database, no
Telegram. Storing is ``storage.imports.store_import``; the CLI (``resobot import``) and the
coordinators' chat upload both call the two.

What is read: each sheet whose header row (in Latvian or English, found by the labels of
``templates/<lang>/reports.j2``, not by position) has the columns "Rādītāja Nr." (the indicator
row), "Institūcija" and year columns — the direction sheets of the export. Their lines of one
institution (the italic lines under each indicator row) are imported; the indicator's own line
("Kopā": the sum over institutions) and every other column are not. A year cell that is empty
changes nothing (the import never deletes a value); a filled one is parsed for the row's kind:
a whole number, a percentage (an Excel percent cell 45 % counts as 45), a milestone status with
an optional date ("procesā (15.03.2026)"), or a text. A refused cell is reported with its sheet,
row and reason; the caller stores nothing unless there is no refusal at all.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from reporting_forms.answers import InvalidAnswer
from reporting_forms.catalog import Catalog, Indicator, Measure, MetricKind
from reporting_forms.compilation import default_status_rules
from reporting_forms.forms import DATE_SUFFIX, FormField, dump_answer, form_for, parse_answer
from reporting_forms.texts import LANGUAGES, shorten, text, unescape

HEADER_SCAN_ROWS = 10  # the header is row 2 of an export; a few more rows are looked at
MAX_REFUSALS_SHOWN = 30  # the chat shows this many refusals, then how many more there are

# A milestone cell: the status, then optionally its date, in brackets or not.
_MILESTONE = re.compile(
    r"^(?P<status>.*?)\s*(?:\(\s*(?P<bracketed>[^()]*?)\s*\)"
    r"|(?P<bare>\d{1,2}\.\s?\d{1,2}\.\s?\d{4}\.?|\d{4}-\d{2}-\d{2}))?\s*$",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused cell (or line, or sheet): ``code`` names the reason macro
    ``coordinator.import_error_<code>``, or an answer parser's code (``answers.PARSER_ERROR_CODES``)."""

    sheet: str
    row: int | None
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)
    indicator: str | None = None
    year: int | None = None
    raw: str | None = None


@dataclass(frozen=True, slots=True)
class ImportedValue:
    """One accepted year cell: the answers it gives the (measure, institution, year) report."""

    sheet: str
    row: int
    measure_id: str
    indicator_id: str
    institution: str
    year: int
    answers: Mapping[str, int | str]  # form key → canonical JSON answer (as the chat stores it)
    cleared: tuple[str, ...] = ()  # keys the cell removes (a milestone's date, when none is given)


@dataclass(frozen=True, slots=True)
class ImportedReport:
    """What the file says of one report: answers to lay over the stored ones."""

    measure_id: str
    institution: str
    year: int
    answers: Mapping[str, int | str]
    cleared: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImportResult:
    values: tuple[ImportedValue, ...]
    refusals: tuple[Refusal, ...]
    sheets: tuple[str, ...]  # the sheets read as direction sheets

    @property
    def ok(self) -> bool:
        return not self.refusals

    def reports(self) -> list[ImportedReport]:
        """The accepted values grouped per report (measure × institution × year), file order."""
        grouped: dict[tuple[str, str, int], tuple[dict[str, int | str], list[str]]] = {}
        for v in self.values:
            answers, cleared = grouped.setdefault((v.measure_id, v.institution, v.year), ({}, []))
            answers.update(v.answers)
            cleared.extend(k for k in v.cleared if k not in cleared)
        return [
            ImportedReport(m, i, y, answers, tuple(k for k in cleared if k not in answers))
            for (m, i, y), (answers, cleared) in grouped.items()
        ]


# ---------------------------------------------------------------- labels


def _labels(name: str, **params: Any) -> set[str]:
    """A label in every language, folded for comparison."""
    return {_fold(text(lang, f"reports.{name}", **params)) for lang in LANGUAGES}


def _fold(value: Any) -> str:
    return " ".join(unescape(str(value)).split()).casefold()


@dataclass(frozen=True, slots=True)
class _Columns:
    row_id: int
    institution: int
    years: Mapping[int, int]  # year → column (0-based)


def _columns(header: Iterable[Any], years: Iterable[int]) -> _Columns | None:
    row_id = _labels("col_row_id")
    institution = _labels("col_row_institution")
    year_labels = {label: year for year in years for label in _labels("col_year", year=year)}
    found_id = found_inst = None
    found_years: dict[int, int] = {}
    for col, value in enumerate(header):
        if value is None:
            continue
        folded = _fold(value)
        if folded in row_id and found_id is None:
            found_id = col
        elif folded in institution and found_inst is None:
            found_inst = col
        elif folded in year_labels and year_labels[folded] not in found_years:
            found_years[year_labels[folded]] = col
    if found_id is None or found_inst is None or not found_years:
        return None
    return _Columns(found_id, found_inst, found_years)


# ---------------------------------------------------------------- cells


def _cell_text(value: Any, number_format: str | None, percent: bool) -> str:
    """A cell's value as the text a contact would type: numbers plain (a percent-formatted cell
    as its percentage), text stripped."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value))
        if percent and number_format and "%" in number_format:
            number *= 100
        return format(number.normalize(), "f")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).strip()


def _display(value: Any) -> str:
    if isinstance(value, float):
        value = Decimal(str(value)).normalize()
    shown = format(value, "f") if isinstance(value, Decimal) else str(value).strip()
    return shorten(shown, 60)


def _parse_cell(
    measure: Measure, indicator: Indicator, year: int, value: Any, number_format: str | None
) -> tuple[dict[str, int | str], tuple[str, ...]]:
    """The answers one year cell gives, or InvalidAnswer — through the chat's own parsers."""
    spec = form_for(measure)
    main: FormField = spec.field(indicator.id)
    kind = indicator.kind
    raw = _cell_text(value, number_format, percent=kind is MetricKind.PERCENT)
    if kind is not MetricKind.MILESTONE:
        parsed = parse_answer(main, raw, year)
        return {main.key: dump_answer(main, parsed)}, ()
    found = _MILESTONE.match(raw)
    status_raw = found["status"] if found else raw
    date_raw = (found["bracketed"] or found["bare"]) if found else None
    status = parse_answer(main, status_raw, year)
    answers: dict[str, int | str] = {main.key: dump_answer(main, status)}
    date_key = indicator.id + DATE_SUFFIX
    if not date_raw:
        return answers, (date_key,)
    date_field = spec.field(date_key)
    answers[date_key] = dump_answer(date_field, parse_answer(date_field, date_raw, year))
    return answers, ()


# ---------------------------------------------------------------- the workbook


def _index(catalog: Catalog) -> dict[str, tuple[Measure, Indicator]]:
    return {
        ind.id.casefold(): (measure, ind)
        for plan in catalog.plans
        for measure in plan.measures()
        for ind in measure.indicators
    }


def may_report(measure: Measure, institution: str) -> bool:
    """Whose values a measure takes: its responsible and co-responsible institutions and its
    designated reporters (``Measure.institutions`` names them all)."""
    return institution in measure.institutions


def _open(source: bytes | Path | str) -> Any:
    from openpyxl import load_workbook

    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    return load_workbook(io.BytesIO(data), read_only=True, data_only=True)


def read_workbook(
    source: bytes | Path | str,
    catalog: Catalog,
    *,
    today: dt.date,
    years: Iterable[int] | None = None,
) -> ImportResult:
    """Read an exported plan workbook back: every institution line's filled year cells, checked.

    ``years``: the year columns looked for (default: the plan period of status_rules.yaml);
    a value for a year after ``today``'s is refused."""
    plan_years = tuple(years) if years is not None else default_status_rules().period.years
    try:
        wb = _open(source)
    except Exception as exc:  # zipfile, openpyxl and lxml each raise their own for a foreign file
        return ImportResult((), (Refusal("", None, "not_xlsx", {"detail": type(exc).__name__}),), ())
    index = _index(catalog)
    institutions = {i.abbr.casefold(): i.abbr for i in catalog.institutions}
    totals = _labels("row_total_mark")
    values: list[ImportedValue] = []
    refusals: list[Refusal] = []
    sheets: list[str] = []
    seen: dict[tuple[str, str], tuple[str, int]] = {}
    try:
        for ws in wb.worksheets:
            rows = ws.iter_rows()
            columns = None
            for n, cells in enumerate(rows, start=1):
                columns = _columns((c.value for c in cells), plan_years)
                if columns is not None or n >= HEADER_SCAN_ROWS:
                    break
            if columns is None:
                continue
            sheets.append(ws.title)
            for cells in rows:
                number = next((c.row for c in cells if getattr(c, "row", None)), None)
                if number is None:  # a row without a single stored cell: nothing to read
                    continue
                found, refused = _line(
                    ws.title, number, cells, columns, index, institutions, totals, seen, today
                )
                values.extend(found)
                refusals.extend(refused)
    except Exception as exc:  # a damaged sheet part
        return ImportResult((), (Refusal("", None, "not_xlsx", {"detail": type(exc).__name__}),), ())
    finally:
        wb.close()
    if not sheets:
        refusals.append(Refusal("", None, "no_direction_sheets"))
    return ImportResult(tuple(values), tuple(refusals), tuple(sheets))


def _cell(cells: tuple[Any, ...], col: int) -> Any:
    return cells[col] if col < len(cells) else None


def _value(cell: Any) -> Any:
    if cell is None:
        return None
    value = cell.value
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _line(
    sheet: str,
    row: int,
    cells: tuple[Any, ...],
    columns: _Columns,
    index: Mapping[str, tuple[Measure, Indicator]],
    institutions: Mapping[str, str],
    totals: set[str],
    seen: dict[tuple[str, str], tuple[str, int]],
    today: dt.date,
) -> tuple[list[ImportedValue], list[Refusal]]:
    """(accepted values, refusals) of one line."""
    accepted: list[ImportedValue] = []
    refused: list[Refusal] = []
    ind_raw = _value(_cell(cells, columns.row_id))
    inst_raw = _value(_cell(cells, columns.institution))
    filled = {
        year: cell
        for year, col in columns.years.items()
        if (cell := _cell(cells, col)) is not None and _value(cell) is not None
    }
    if inst_raw is None or _fold(inst_raw) in totals:
        return accepted, refused  # a heading, an indicator's own (summed) line, or empty
    ind_id = str(ind_raw).strip() if ind_raw is not None else ""
    found = index.get(ind_id.casefold())
    if found is None:
        if filled or ind_id:
            code = "no_indicator" if not ind_id else "unknown_indicator"
            refused.append(Refusal(sheet, row, code, {"indicator": ind_id}, ind_id or None))
        return accepted, refused
    measure, indicator = found
    inst = institutions.get(str(inst_raw).strip().casefold())
    if inst is None:
        refused.append(
            Refusal(sheet, row, "unknown_institution", {"institution": str(inst_raw).strip()}, indicator.id)
        )
        return accepted, refused
    if not may_report(measure, inst):
        refused.append(
            Refusal(sheet, row, "not_measure_institution", {"institution": inst, "measure": measure.id},
                    indicator.id)
        )  # fmt: skip
        return accepted, refused
    first = seen.get((indicator.id, inst))
    if first is not None:
        params = {"institution": inst, "sheet": first[0], "row": first[1]}
        refused.append(Refusal(sheet, row, "duplicate_line", params, indicator.id))
        return accepted, refused
    seen[(indicator.id, inst)] = (sheet, row)
    for year, cell in sorted(filled.items()):
        raw = cell.value
        if year > today.year:
            refused.append(
                Refusal(sheet, row, "future_year", {"year": year}, indicator.id, year, _display(raw))
            )
            continue
        try:
            answers, cleared = _parse_cell(
                measure, indicator, year, raw, getattr(cell, "number_format", None)
            )
        except InvalidAnswer as exc:
            refused.append(Refusal(sheet, row, exc.code, dict(exc.params), indicator.id, year, _display(raw)))
            continue
        accepted.append(ImportedValue(sheet, row, measure.id, indicator.id, inst, year, answers, cleared))
    return accepted, refused


__all__ = [
    "MAX_REFUSALS_SHOWN",
    "ImportResult",
    "ImportedReport",
    "ImportedValue",
    "Refusal",
    "may_report",
    "read_workbook",
]
