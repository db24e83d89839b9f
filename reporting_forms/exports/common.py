"""What every export shares: labels from ``templates/<lang>/reports.j2`` and the plan-layout lines.

Labels come through ``texts.text(lang, "reports.<macro>")``; it escapes for Telegram HTML, so
file formats other than HTML get the text unescaped here. No Latvian words live in Python.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from reporting_forms.compilation import (
    CompiledPlan,
    CompiledWarning,
    Completeness,
    CompletenessRow,
    DirectionBlock,
    IndicatorRow,
    InstitutionShare,
    MeasureRow,
    PolicyRow,
    PolicyTable,
    ProgressNote,
    Status,
    TaskBlock,
    row_progress,
    share_progress,
)
from reporting_forms.texts import coded_plain, format_day, format_number, normalise_language, plain

# Cell fills (and font colours) per status: the usual traffic-light pastel pairs.
STATUS_FILLS: dict[str, str] = {
    Status.DONE: "C6EFCE",
    Status.IN_PROGRESS: "FFEB9C",
    Status.RISK: "FFC7CE",
    Status.NOT_STARTED: "D9D9D9",
    Status.NOT_REPORTED: "F2F2F2",
    Status.NO_DATA: "FFFFFF",
}
STATUS_FONTS: dict[str, str] = {
    Status.DONE: "006100",
    Status.IN_PROGRESS: "9C5700",
    Status.RISK: "9C0006",
    Status.NOT_STARTED: "3A3A3A",
    Status.NOT_REPORTED: "595959",
    Status.NO_DATA: "7F7F7F",
}
STATUS_ORDER: tuple[Status, ...] = (
    Status.DONE,
    Status.IN_PROGRESS,
    Status.RISK,
    Status.NOT_STARTED,
    Status.NOT_REPORTED,
    Status.NO_DATA,
)
PLAN_COLUMNS = 7  # Nr.p.k. … Izpildes termiņš


# ---------------------------------------------------------------- labels


@cache
def label(lang: str, name: str, /) -> str:
    """A parameterless label, e.g. ``label("lv", "col_total")`` → "Kopā"."""
    return plain(lang, f"reports.{name}")


def label_with(lang: str, name: str, /, **params: Any) -> str:
    return plain(lang, f"reports.{name}", **params)


@cache
def _cached_with(lang: str, name: str, params: tuple[tuple[str, Any], ...]) -> str:
    return label_with(lang, name, **dict(params))


def label_cached(lang: str, name: str, /, **params: Any) -> str:
    """A label whose hashable parameters repeat (years, percents)."""
    return _cached_with(lang, name, tuple(sorted(params.items())))


def status_label(lang: str, status: str | None) -> str:
    return label(lang, f"status_{status}") if status else ""


def review_label(lang: str, state: str | None) -> str:
    return label(lang, f"review_{state}") if state else ""


def percent_text(lang: str, value: float | None, digits: int = 1) -> str:
    if value is None:
        return ""
    return label_cached(lang, "percent", value=round(value, digits))


def number_text(lang: str, value: float | None) -> str:
    return "" if value is None else format_number(round(value, 2), lang)


def local_date(moment: dt.datetime | None, timezone: str) -> dt.date | None:
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(timezone)).date() if moment.tzinfo else moment.date()


def day_text(lang: str, day: dt.date | None) -> str:
    return "" if day is None else format_day(day, lang, style="short")


def period_text(lang: str, compiled: CompiledPlan) -> str:
    if compiled.year is not None:
        return label_cached(lang, "period_year", year=compiled.year)
    years = compiled.plan_years
    return label_cached(lang, "period_all", first=years[0], last=years[-1])


def subtitle(lang: str, compiled: CompiledPlan) -> str:
    return label_with(lang, "report_subtitle", period=period_text(lang, compiled), as_of=compiled.as_of)


def direction_heading(lang: str, block: DirectionBlock) -> str:
    name = "section_heading" if block.is_section else "direction_heading"
    return label_with(lang, name, number=block.number, title=block.direction.title)


def task_heading(lang: str, block: TaskBlock) -> str:
    return label_with(lang, "task_heading", number=block.number, title=block.task.title)


def sheet_title(lang: str, block: DirectionBlock, taken: set[str]) -> str:
    """Excel sheet names: at most 31 characters, none of []:*?/\\, unique."""
    name = "sheet_section" if block.is_section else "sheet_direction"
    title = re.sub(r"[\[\]:*?/\\]", "-", label_cached(lang, name, number=block.number))[:31]
    candidate, n = title, 2
    while candidate.casefold() in taken:
        suffix = f" ({n})"
        candidate, n = title[: 31 - len(suffix)] + suffix, n + 1
    taken.add(candidate.casefold())
    return candidate


def plan_header(lang: str, plan_years: Sequence[int]) -> list[str]:
    """The plan's own columns, then the progress columns."""
    return [
        label(lang, "col_number"),
        label(lang, "col_measure"),
        label(lang, "col_result"),
        label(lang, "col_indicator"),
        label(lang, "col_responsible"),
        label(lang, "col_co_responsible"),
        label(lang, "col_deadline"),
        *(label_cached(lang, "col_year", year=y) for y in plan_years),
        label(lang, "col_total"),
        label(lang, "col_percent"),
        label(lang, "col_status"),
        label(lang, "col_last_report"),
        label(lang, "col_review"),
        label(lang, "col_progress"),
    ]


def progress_text(lang: str, notes: Sequence[ProgressNote], current_year: int | None = None) -> str:
    """The "Informācija par izpildi" cell: one line per institution — its milestone status in
    words with the date, and its comment; the year is named when it is not ``current_year``."""
    return "\n".join(
        label_with(
            lang,
            "progress_note",
            institution=note.institution,
            status=status_label(lang, note.status) or None,
            date=day_text(lang, note.date) or None,
            comment=note.comment,
            year=note.year if current_year is not None and note.year != current_year else None,
        )
        for note in notes
        if note
    )


def summary_header(lang: str) -> list[str]:
    return [
        label(lang, "col_block"),
        label(lang, "col_rows"),
        *(status_label(lang, s) for s in STATUS_ORDER),
        label(lang, "col_mean_percent"),
    ]


def completeness_header(lang: str) -> list[str]:
    return [
        label(lang, "col_institution"),
        label(lang, "col_year_single"),
        label(lang, "col_expected"),
        label(lang, "col_actual"),
        label(lang, "col_on_time"),
        label(lang, "col_completeness"),
        label(lang, "col_timeliness"),
        label(lang, "col_missing"),
    ]


def warning_text(lang: str, item: CompiledWarning) -> str:
    """One compiled warning as a sentence (macro ``warning_<code>``, else ``warning_generic``),
    naming the institution whose report it is about (none for checks of the row's totals)."""
    message = coded_plain(lang, "reports.warning_", item.warning.code, item.warning.params)
    return label_with(
        lang,
        "warning_line",
        measure=item.measure_id,
        year=item.year,
        message=message,
        institution=item.institution,
    )


def language(lang: str | None) -> str:
    return normalise_language(lang)


def write_bytes(data: bytes, path: Path | str | None) -> bytes:
    if path is not None:
        Path(path).write_bytes(data)
    return data


# ---------------------------------------------------------------- lines of a task table


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a task table: an indicator row or, below a shared row, one institution's part."""

    measure: MeasureRow
    row: IndicatorRow
    share: InstitutionShare | None  # None: the indicator line itself (or an institution without values)
    first: bool  # the measure's first line carries the measure's own columns
    institution: str | None = None  # an institution's line: whose (with or without a share)
    detailed: bool = False  # an indicator line with its institutions' lines below it
    listed: tuple[str, ...] = ()  # detailed: the institutions with a line below it
    row_first: bool = False  # the line belongs to the measure's first indicator row

    @property
    def is_institution(self) -> bool:
        return self.institution is not None

    @property
    def numeric(self) -> bool:
        return self.row.kind.is_numeric

    @property
    def empty(self) -> bool:
        """An institution's line without anything reported (an institution due on the row)."""
        return self.is_institution and self.share is None

    @property
    def status(self) -> Status | None:
        return self.row.status if self.share is None and not self.is_institution else None

    @property
    def total(self) -> float | None:
        if self.empty:
            return None
        return self.row.cumulative if self.share is None else self.share.cumulative

    @property
    def percent(self) -> float | None:
        if self.empty:
            return None
        return self.row.percent if self.share is None else self.share.percent

    @property
    def last_submitted(self) -> dt.datetime | None:
        if self.empty:
            return None
        return self.row.last_submitted if self.share is None else self.share.last_submitted

    @property
    def review_state(self) -> str | None:
        if self.empty:
            return None
        return self.row.review_state if self.share is None else self.share.review_state

    def value(self, year: int) -> float | None:
        if self.empty:
            return None
        values = self.row.values if self.share is None else self.share.values
        return values.get(year)

    def year_status(self, year: int) -> str | None:
        if self.empty:
            return None
        statuses = self.row.statuses if self.share is None else self.share.statuses
        return statuses.get(year)

    def year_date(self, year: int) -> dt.date | None:
        """A milestone's date for the year: the institution's (on a line of one institution)."""
        share = self.share
        if share is None and not self.is_institution and len(self.row.institutions) == 1:
            share = self.row.institutions[0]
        report = share.reports.get(year) if share is not None else None
        return report.date if report is not None and report.status else None

    def year_text(self, year: int) -> str:
        if self.empty:
            return ""
        if self.share is not None:
            return self.share.texts.get(year, "")
        texts = self.row.texts(year)
        if len(texts) == 1:
            return texts[0][2]
        return "; ".join(f"{inst}: {t}" for inst, _, t in texts)

    def plan_cells(self, lang: str) -> list[str]:
        """Nr.p.k., Pasākums, Darbības rezultāts, indicator, responsible, co-responsible, deadline."""
        measure = self.measure.measure
        first = self.first and self.share is None
        if self.share is not None:
            share = None if self.share.share is None else round(self.share.share * 100, 1)
            indicator = label_with(lang, "institution_share", institution=self.share.institution, share=share)
        elif self.institution is not None:
            indicator = label_with(lang, "institution_share", institution=self.institution, share=None)
        else:
            indicator = self.row.indicator.text
        return [
            label_cached(lang, "number_mark", number=self.measure.number) if first else "",
            measure.name if first else "",
            (measure.result or "") if first else "",
            indicator,
            ", ".join(measure.responsible) if first else "",
            ", ".join(measure.co_responsible) if first else "",
            self.deadline(lang) if not self.is_institution and self.share is None else "",
        ]

    def deadline(self, lang: str) -> str:
        """The measure's deadline on its first line; a row's own deadline where it differs."""
        measure, ind = self.measure.measure, self.row.indicator
        own = ind.deadline_text or (format_day(ind.deadline, lang) if ind.deadline else None)
        mine = measure.deadline_text or (format_day(measure.deadline, lang) if measure.deadline else None)
        if self.first:
            return own or mine or ""
        return own if own and own != mine else ""

    def year_text_cell(self, lang: str, year: int, no_data: Container[int] = ()) -> str:
        """A year cell as text: number, milestone status or the reported text; "nav datu" on an
        indicator's line for a year nobody was asked for (``no_data``) where nothing was reported
        — never on an institution's line, whose empty cells are there to be filled in (import)."""
        shown = self._year_text(lang, year)
        if not shown and year in no_data and not self.is_institution and self.share is None:
            return status_label(lang, Status.NO_DATA)
        return shown

    def _year_text(self, lang: str, year: int) -> str:
        if self.numeric:
            return number_text(lang, self.value(year))
        status = status_label(lang, self.year_status(year))
        day = self.year_date(year)
        if status and day is not None:
            status = label_with(lang, "status_on", status=status, date=day_text(lang, day))
        parts = (status, self.year_text(year))
        return "\n".join(p for p in parts if p)

    def status_text(self, lang: str) -> str:
        if self.is_institution:
            return status_label(lang, self.share.status) if self.share is not None else ""
        if self.share is None:
            return status_label(lang, self.row.status)
        return status_label(lang, self.share.status)

    def progress_notes(self) -> tuple[ProgressNote, ...]:
        """What the "Informācija par izpildi" cell says: an indicator line with its institutions'
        lines below speaks only for the others (a comment on the measure from an institution
        without a line); the measure's comments go with its first row."""
        if self.share is None and not self.is_institution:
            notes = row_progress(self.measure, self.row, with_comments=self.row_first)
            return tuple(n for n in notes if n.institution not in self.listed) if self.detailed else notes
        inst = self.share.institution if self.share is not None else self.institution
        assert inst is not None
        comment = self.measure.latest_comment(inst) if self.row_first else None
        note = share_progress(self.share, inst, comment)
        return (note,) if note else ()

    def progress_cell(self, lang: str, current_year: int | None = None) -> str:
        return progress_text(lang, self.progress_notes(), current_year)

    def text_cells(
        self,
        lang: str,
        plan_years: Sequence[int],
        timezone: str,
        current_year: int | None = None,
        no_data: Container[int] = (),
    ) -> list[str]:
        """The whole line as text, for DOCX and HTML."""
        return [
            *self.plan_cells(lang),
            *(self.year_text_cell(lang, y, no_data) for y in plan_years),
            number_text(lang, self.total) if self.numeric else "",
            percent_text(lang, self.percent),
            self.status_text(lang),
            day_text(lang, local_date(self.last_submitted, timezone)),
            review_label(lang, self.review_state),
            self.progress_cell(lang, current_year),
        ]


def row_institutions(compiled: CompiledPlan, measure: MeasureRow, row: IndicatorRow) -> list[str]:
    """Who a row's values belong to: the institutions that reported on it, then the measure's
    designated reporters that have not (yet)."""
    reported = [s.institution for s in row.institutions]
    return reported + [i for i in measure.measure.reporters if i not in reported]


def task_lines(block: TaskBlock, compiled: CompiledPlan | None = None) -> Iterator[Line]:
    """The lines of a task table: each indicator row, and below a row several institutions
    reported on, one line per institution. With ``compiled`` (the XLSX, which the import reads
    back) every row gets a line per institution — those that reported and those due — so each
    value is identifiable and an institution's empty year cells can be filled in."""
    for measure in block.measures:
        for i, row in enumerate(measure.rows):
            if compiled is None:
                detailed = len(row.institutions) > 1
                listed = tuple(share.institution for share in row.institutions) if detailed else ()
                yield Line(measure, row, None, i == 0, detailed=detailed, listed=listed, row_first=i == 0)
                if detailed:
                    for share in row.institutions:
                        yield Line(measure, row, share, False, share.institution, row_first=i == 0)
                continue
            names = row_institutions(compiled, measure, row)
            first = i == 0
            yield Line(measure, row, None, first, detailed=bool(names), listed=tuple(names), row_first=first)
            shares = {share.institution: share for share in row.institutions}
            for name in names:
                yield Line(measure, row, shares.get(name), False, name, row_first=i == 0)


def summary_blocks(compiled: CompiledPlan, lang: str) -> Iterator[tuple[int, str, Any]]:
    """(level, title, summary) for the whole plan, each direction and each task."""
    yield 0, label(lang, "plan_total"), compiled.summary
    for direction in compiled.directions:
        yield 1, direction_heading(lang, direction), direction.summary
        if direction.is_section:
            continue
        for task in direction.tasks:
            yield 2, task_heading(lang, task), task.summary


# ---------------------------------------------------------------- completeness and policy tables


@dataclass(frozen=True, slots=True)
class CompletenessLine:
    institution: str
    year: str
    row: CompletenessRow
    total: bool  # a subtotal or the grand total

    def text_cells(self, lang: str) -> list[str]:
        row = self.row
        return [
            self.institution,
            self.year,
            number_text(lang, row.expected),
            number_text(lang, row.actual),
            number_text(lang, row.on_time),
            percent_text(lang, row.completeness),
            percent_text(lang, row.timeliness),
            ", ".join(row.missing),
        ]


def completeness_lines(completeness: Completeness, lang: str) -> list[CompletenessLine]:
    """Per institution its years (and all years), then all institutions per year, then the total."""
    all_years, all_institutions = label(lang, "all_years"), label(lang, "all_institutions")
    several_years = len(completeness.years) > 1
    lines: list[CompletenessLine] = []
    for total in completeness.by_institution:
        inst = total.institution or ""
        lines.extend(
            CompletenessLine(inst, str(row.year), row, False)
            for row in completeness.rows
            if row.institution == total.institution
        )
        if several_years:
            lines.append(CompletenessLine(inst, all_years, total, True))
    lines.extend(CompletenessLine(all_institutions, str(row.year), row, True) for row in completeness.by_year)
    if several_years:
        lines.append(CompletenessLine(all_institutions, all_years, completeness.total, True))
    return lines


def policy_header(lang: str, table: PolicyTable) -> list[str]:
    return [
        label(lang, "col_policy_result"),
        label(lang, "col_policy_indicator"),
        *(label_cached(lang, "col_history", year=y) for y in table.history_years),
        *(
            cell
            for y in table.years
            for cell in (
                label_cached(lang, "col_target", year=y),
                label_cached(lang, "col_actual_year", year=y),
                label_cached(lang, "col_met", year=y),
            )
        ),
        label(lang, "col_source"),
    ]


def met_label(lang: str, met: bool | None) -> str:
    if met is None:
        return ""
    return label(lang, "policy_met" if met else "policy_not_met")


def history_note(lang: str, row: PolicyRow, year: int) -> str | None:
    """Where an entered history value comes from, with the passport's value it replaces."""
    actual = row.entered.get(year)
    if actual is None:
        return None
    passport = row.history.get(year)
    return label_with(
        lang,
        "history_entered",
        source=actual.source,
        passport=None if passport is None else number_text(lang, passport),
    )


def history_text(lang: str, row: PolicyRow, year: int) -> str:
    """A history cell as text: the value, and for an entered one its source and the passport's."""
    value = number_text(lang, row.history_value(year))
    note = history_note(lang, row, year)
    return f"{value} ({note})" if note else value


def policy_text_cells(lang: str, row: PolicyRow) -> list[str]:
    return [
        row.result_id,
        f"{row.indicator_id} {row.text}",
        *(history_text(lang, row, y) for y in row.history),
        *(
            cell
            for year in row.years
            for cell in (
                year.target.text if year.target else "",
                number_text(lang, year.value),
                met_label(lang, year.met),
            )
        ),
        row.data_source or "",
    ]
