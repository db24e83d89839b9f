"""One set of figures: the progress chart, the XLSX/HTML/DOCX summary tables and the chat /summary
show the same compiled figure per task (``Summary.mean_percent``) — none computes its own."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import io
import re

import pytest
from docx import Document
from openpyxl import load_workbook

from reporting_forms.catalog import Catalog
from reporting_forms.compilation import CompiledPlan, ReportedValue
from reporting_forms.exports import export_docx, export_html, export_xlsx
from reporting_forms.exports.charts import progress_figure, progress_series
from reporting_forms.exports.common import percent_text, task_heading
from reporting_forms.summaries import CompileInputs, Scope, compile_inputs, summary_message
from tests.test_compilation import PLAN, build_catalog, compile_all, seeded_values

AS_OF = dt.date(2028, 1, 10)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog()


@pytest.fixture(scope="module")
def values() -> list[ReportedValue]:
    # without 1.1.2's reports, task 1.1 has numeric rows with a target and no value: a chart that
    # counted them as 0 % would show half of what the tables show
    return [v for v in seeded_values() if v.measure_id != "1.1.2"]


@pytest.fixture(scope="module")
def compiled(catalog: Catalog, values: list[ReportedValue]) -> CompiledPlan:
    return compile_all(catalog, values)


def _chart_bars(compiled: CompiledPlan, lang: str) -> dict[str, tuple[float, str]]:
    """task number → (plotted bar width, the label written next to it) on the progress figure."""
    fig = progress_figure(compiled, lang)
    status, target = fig.axes[:2]
    ticks = {round(t.get_position()[1]): t.get_text() for t in status.get_yticklabels()}
    bars = {ticks[round(p.get_y() + p.get_height() / 2)]: p.get_width() for p in target.patches}
    labels = {ticks[round(t.get_position()[1])]: t.get_text() for t in target.texts if "%" in t.get_text()}
    return {number: (width, labels[number]) for number, width in bars.items()}


def _xlsx_means(compiled: CompiledPlan) -> dict[str, float | None]:
    ws = load_workbook(io.BytesIO(export_xlsx(compiled)))["Kopsavilkums"]
    heading = {task_heading("lv", t): t.number for _, t in compiled.tasks()}
    found = {}
    for row in ws.iter_rows(min_row=1):
        title = row[0].value
        if title in heading:
            mean = [c for c in row if c.value is not None or c.column > 1][-1].value
            found[heading[title]] = None if mean is None else mean * 100
    return found


def _table_means(compiled: CompiledPlan, rows: list[list[str]]) -> dict[str, str]:
    heading = {task_heading("lv", t): t.number for _, t in compiled.tasks()}
    return {heading[r[0]]: r[-1] for r in rows if r and r[0] in heading}


def _html_rows(page: str) -> list[list[str]]:
    def cell_text(cell: str) -> str:
        return html_lib.unescape(re.sub(r"<[^>]+>", "", cell)).strip()

    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S)
    return [[cell_text(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", tr, re.S)] for tr in rows]


def _docx_rows(data: bytes) -> list[list[str]]:
    return [[c.text.strip() for c in row.cells] for t in Document(io.BytesIO(data)).tables for row in t.rows]


def _chat_mean(catalog: Catalog, values: list[ReportedValue], task: str) -> str | None:
    compiled = compile_inputs(
        catalog, CompileInputs(values, {}), plan_id=PLAN, year=None, as_of=AS_OF, scope=Scope(task=task)
    )
    found = re.search(r"Vidēji (\S+) % no mērķa", html_lib.unescape(summary_message("lv", compiled)))
    return None if found is None else f"{found[1]} %"


def test_chart_tables_and_chat_show_one_figure_per_task(
    catalog: Catalog, values: list[ReportedValue], compiled: CompiledPlan
) -> None:
    series = {t.number: t for t in progress_series(compiled)}
    tasks = {t.number: t for _, t in compiled.tasks()}
    assert set(series) == set(tasks) == {"1.1", "1.2", "2.1"}
    # the figure is the compiled summary's, over the reported rows only (1.1.1.2 100 %, 1.1.1.3 70 %)
    assert tasks["1.1"].summary.mean_percent == pytest.approx(85.0)
    assert tasks["1.1"].summary.targeted_rows == 4 and tasks["1.1"].summary.numeric_rows == 2

    bars = _chart_bars(compiled, "lv")
    xlsx = _xlsx_means(compiled)
    page = _table_means(compiled, _html_rows(export_html(compiled).decode()))
    docx = _table_means(compiled, _docx_rows(export_docx(compiled)))
    for number, task in tasks.items():
        mean = task.summary.mean_percent
        assert series[number].percent == mean
        assert series[number].expected == task.summary.mean_expected
        assert xlsx[number] == (None if mean is None else pytest.approx(mean))
        text = percent_text("lv", mean)
        assert page[number] == docx[number] == text
        assert _chat_mean(catalog, values, number) == (text or None)
        if mean is None:
            assert number not in bars
        else:
            width, written = bars[number]
            assert width == pytest.approx(mean)
            assert written == text  # the chart writes the figure as the tables do: "85 %"
    assert bars["1.1"][1] == "85 %"
