"""Words (issue 10, item 6): no internal keys in what people read, Latvian agreement, one spelling
of tasks, periods and percents, English units, and every question's noun agreeing with its unit."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import html
import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from bot.cli import app
from reporting_forms.catalog import Catalog, MetricKind, load_catalog
from reporting_forms.compilation import compile_plan
from reporting_forms.exports import export_csv, export_docx, export_html, export_xlsx, progress_chart
from reporting_forms.exports.charts import progress_figure
from reporting_forms.exports.revisions import revisions_csv, revisions_xlsx
from reporting_forms.forms import COMMENT_KEY
from reporting_forms.labels import answer_text, field_label, kind_label
from reporting_forms.texts import _messages, environment, text, unit_counts, unit_for, units
from storage.compile_inputs import RevisionRow
from storage.db import Database
from storage.repositories import Repos
from tests.test_compilation import build_catalog, compile_all, seeded_values

runner = CliRunner()

# what the data stores and no reader should see as it is
KIND_KEYS = {k.value for k in MetricKind}
ENGLISH_WORDS = {"count", "participants"}  # keys that are also the right English words
STATE_KEYS = {"draft", "submitted", "done", "in_progress", "not_started", "not_reported", "risk_flag"}
MESSAGE_KEYS = {"deadline", "request", "reminder", "overdue", "digest", "snooze", "summary", "document"}
FIELD_KEY = re.compile(r"\b\d+(?:\.\d+)+\.date\b|\bcomment\b")


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "220")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    _run("init")
    return url


async def _a_report(url: str) -> None:
    db = Database(url)
    async with db.session() as s:
        repos = Repos(s)
        vpd = await repos.people.institution("VPD")
        contact = await repos.people.add_contact(display_name="Anna", institution_id=vpd.id)
        measure = await repos.catalog.measure("1.1.1")
        await repos.reports.submit(
            measure_id=measure.id,
            institution_id=vpd.id,
            year=2026,
            answers={
                "1.1.1.1": "done",
                "1.1.1.1.date": "2026-05-04",
                "1.1.1.2": 40,
                COMMENT_KEY: "Labi",
            },
            contact_id=contact.id,
        )
    await db.dispose()


def _words(output: str) -> set[str]:
    return set(re.findall(r"[\w.]+", output))


# ---------------------------------------------------------------- internal keys


def test_csv_names_kinds_and_units_in_words() -> None:
    compiled = compile_all(build_catalog(), seeded_values())
    for lang in ("lv", "en"):
        rows = list(csv.reader(io.StringIO(export_csv(compiled, lang=lang).decode("utf-8-sig"))))
        kinds = {r[6] for r in rows[1:]}
        assert not kinds & (KIND_KEYS - (ENGLISH_WORDS if lang == "en" else set())), kinds
        assert kind_label(lang, "people_trained") in kinds
    lv = export_csv(compiled).decode("utf-8-sig")
    assert not _words(lv) & (KIND_KEYS | STATE_KEYS) and not FIELD_KEY.search(lv)


def test_csv_units_are_english_in_english() -> None:
    catalog = load_catalog()
    compiled = compile_plan(catalog, "RPP-2025-2027", [], year=2026, as_of=dt.date(2026, 12, 1))
    rows = list(csv.DictReader(io.StringIO(export_csv(compiled, lang="en").decode("utf-8-sig"))))
    found = {r["Unit"] for r in rows if r["Unit"]}
    assert "training courses" in found and "mācību kursi" not in found
    assert found <= {u.en[1] for u in units().values()}


def test_revision_export_names_fields_and_milestones() -> None:
    when = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    rows = [
        RevisionRow(1, "1.1.1", "VPD", 2026, 1, "Anna", when, field, value, "accepted")
        for field, value in (("1.1.1.1", "done"), ("1.1.1.1.date", "2026-05-04"), ("comment", "Labi"))
    ]
    sheet = load_workbook(io.BytesIO(revisions_xlsx(rows))).active
    cells = [(r[7].value, r[8].value) for r in sheet.iter_rows(min_row=2)]
    assert cells == [("1.1.1.1", "izpildīts"), ("1.1.1.1 datums", "2026-05-04"), ("Komentārs", "Labi")]
    text_csv = revisions_csv(rows).decode("utf-8-sig")
    assert "1.1.1.1 datums" in text_csv and not FIELD_KEY.search(text_csv) and "done" not in text_csv
    en = revisions_csv(rows, lang="en").decode("utf-8-sig")
    assert "1.1.1.1 date" in en and "Comment" in en and not FIELD_KEY.search(en)


def test_labels_module() -> None:
    assert field_label("lv", "1.1.1.1.date") == "1.1.1.1 datums"
    assert field_label("lv", "comment") == "Komentārs" and field_label("en", "comment") == "Comment"
    assert field_label("lv", "1.1.1.2") == "1.1.1.2"
    assert answer_text("lv", "1.1.1.1", "in_progress") == "procesā"
    assert answer_text("lv", "1.1.1.1.date", "2026-05-04", days=True) == "04.05.2026"
    assert all(kind_label("lv", k) != k.value for k in MetricKind)
    assert all(kind_label("en", k) != k.value for k in MetricKind if k.value not in ENGLISH_WORDS)


def test_plan_show_and_reports_list_use_words(env: str) -> None:
    shown = _run("plan", "show", "1.3.3")
    assert "sniegtās konsultācijas" in shown and not _words(shown) & KIND_KEYS
    assert "apmācītie cilvēki" in _run("plan", "show", "1.1.1")
    asyncio.run(_a_report(env))
    listed = _run("reports", "list")
    assert "1.1.1.1 datums: 04.05.2026" in listed and "Komentārs: Labi" in listed
    assert "1.1.1.1: izpildīts" in listed and "iesniegta" in listed
    assert not _words(listed) & STATE_KEYS and not FIELD_KEY.search(listed)
    contacts = _run("contacts")
    assert "kontaktpersona" in contacts and "contact" not in _words(contacts)


# ---------------------------------------------------------------- Latvian


PLURALS = [  # (feature.macro, params with the count, the words for 1, 2, 11, 21)
    ("coordinator.review_done", "notified", {"report_id": 5, "state": "accepted"},
     "kontaktpersonai", "kontaktpersonām"),
    ("coordinator.export_caption", "revisions", {"rows": 5}, "redakcija", "redakcijas"),
    ("coordinator.export_caption", "rows", {"revisions": 5}, "rinda", "rindas"),
    ("coordinator.review_comment_too_long", "length", {"max_length": 1000}, "rakstzīme", "rakstzīmes"),
    ("reminders.mute_reason_too_long", "length", {}, "rakstzīme", "rakstzīmes"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "count_param", "params", "one", "many"), PLURALS)
def test_latvian_counts_agree(name: str, count_param: str, params: dict, one: str, many: str) -> None:
    for n, word in ((1, one), (2, many), (11, many), (21, one)):
        message = html.unescape(text("lv", name, **params, **{count_param: n}))
        assert re.search(rf"\b{n} {word}(?!\w)", message), message
        assert "(-" not in message


def test_no_hedged_plurals_in_any_template() -> None:
    for path in Path(environment().loader.searchpath[0]).rglob("*.j2"):  # type: ignore[attr-defined]
        body = path.read_text(encoding="utf-8")
        assert not re.search(r"\w\((?:-\w+|s|es)\)", body), path


def test_typed_number_hint_and_the_plan_period() -> None:
    assert text("lv", "console.hint_numbers", first=1, last=3).startswith("Ierakstītais skaitlis")
    catalog = load_catalog()
    main = next(p for p in catalog.plans if p.id == "RPP-2025-2027")
    assert main.short_title.endswith("2025.–2027. gadam")


def test_one_spelling_of_a_task_in_chat_and_documents() -> None:
    compiled = compile_all(build_catalog(), seeded_values())
    page = html.unescape(export_html(compiled).decode())
    assert "1.1. uzdevums. Resocializācijas instrumentu pilnveidošana" in page
    from docx import Document

    paragraphs = [p.text for p in Document(io.BytesIO(export_docx(compiled))).paragraphs]
    assert "1.1. uzdevums. Resocializācijas instrumentu pilnveidošana" in paragraphs
    chat = text("lv", "report.choose_measure", institution="VPD", groups=[
        {"task_id": "1.1", "task_title": "X", "measures": []}
    ])  # fmt: skip
    for output in (page, chat):
        assert not re.search(r"\d\.uzdevums|[Uu]zdevums \d|\d\.\d+ uzdevums", output)


PERCENT_SPACE = re.compile(r"\d%")


def test_one_percent_style_everywhere(tmp_path: Path) -> None:
    compiled = compile_all(build_catalog(), seeded_values())
    for lang in ("lv", "en"):
        assert text(lang, "reports.percent", value=15) == "15 %"
        page = html.unescape(
            re.sub(r"<style.*?</style>", "", export_html(compiled, lang=lang).decode(), flags=re.S)
        )
        assert not PERCENT_SPACE.search(page)
        csv_text = export_csv(compiled, lang=lang).decode("utf-8-sig")
        assert not PERCENT_SPACE.search(csv_text)
        fig = progress_figure(compiled, lang)
        written = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert any(w.endswith(" %") for w in written) and not any(PERCENT_SPACE.search(w) for w in written)
        wb = load_workbook(io.BytesIO(export_xlsx(compiled, lang=lang)))
        formats = {
            c.number_format for ws in wb for row in ws.iter_rows() for c in row if "%" in c.number_format
        }
        assert formats == {"0.0 %"}
    assert progress_chart(compiled)


# ---------------------------------------------------------------- English names


def test_every_catalog_unit_has_an_english_name_and_a_count() -> None:
    catalog = load_catalog()
    found = {i.unit for p in catalog.plans for m in p.measures() for i in m.indicators if i.unit}
    found |= {pi.unit for p in catalog.plans for pr in p.policy_results for pi in pr.indicators if pi.unit}
    assert found <= set(units()), found - set(units())
    assert unit_for("mācību kursi", 2, "en") == "training courses"
    assert unit_for("mācību kursi", 1, "en") == "training course"


def test_english_question_shows_the_unit_in_english() -> None:
    question = text(
        "en", "report.kind_question", kind="count", metric_kind="count", year=2026, unit="mācību kursi"
    )
    assert "(training courses)" in question and "mācību" not in question
    target = text("en", "report.question", position=1, total=2, measure_id="2.1.1", year=2026, kind="count",
                  metric_kind="count", indicator_text="x", target=1, unit="mācību kursi", deadline=None,
                  earlier=[], cumulative=None, current=None, optional=True)  # fmt: skip
    assert "1</b> training course" in target


def test_court_administration_agency() -> None:
    tna = next(i for i in load_catalog().institutions if i.abbr == "TNA")
    assert tna.name_en == "Court Administration Agency"


# ---------------------------------------------------------------- the question's noun and the unit

# the noun each question asks about → what the unit may count (units.yaml `counts`)
NOUNS = {
    "lv": {
        "Cik cilvēku ir apmācīts": {"people"},
        "Cik dalībnieku piedalījās": {"people"},
        "Cik aktivitāšu notika": {"events"},
        "Cik konsultāciju ir sniegts": {"consultations"},
        "Cik cilvēkiem ir sniegtas konsultācijas": {"people"},
        "Cik sesiju notika": {"sessions"},
        "Kāda ir vērtība": {"people", "events", "consultations", "sessions", "things"},
        "Kāds ir sasniegtais rādītājs": {"percent"},
    },
    "en": {
        "How many people were trained": {"people"},
        "How many participants took part": {"people"},
        "How many events were held": {"events"},
        "How many consultations were given": {"consultations"},
        "How many people received consultations": {"people"},
        "How many sessions took place": {"sessions"},
        "What is the value": {"people", "events", "consultations", "sessions", "things"},
        "What is the achieved value": {"percent"},
    },
}


@pytest.mark.parametrize("lang", ["lv", "en"])
def test_every_question_asks_for_what_its_unit_counts(lang: str) -> None:
    catalog: Catalog = load_catalog()
    checked = 0
    for plan in catalog.plans:
        for measure in plan.measures():
            for ind in measure.indicators:
                if not ind.kind.is_numeric:
                    continue
                kind = "percent" if ind.kind is MetricKind.PERCENT else "count"
                question = html.unescape(
                    text(
                        lang,
                        "report.kind_question",
                        kind=kind,
                        metric_kind=ind.kind.value,
                        year=2026,
                        unit=ind.unit,
                    )
                )
                nouns = [n for n in NOUNS[lang] if question.startswith(n)]
                assert len(nouns) == 1, (ind.id, question)
                counts = unit_counts(ind.unit)
                assert counts in NOUNS[lang][nouns[0]], (ind.id, ind.unit, counts, question)
                checked += 1
    assert checked > 60


def test_1_3_3_asks_for_the_clients_who_received_consultations() -> None:
    question = text("lv", "report.kind_question", kind="count", metric_kind="consultations", year=2026,
                    unit="probācijas klienti")  # fmt: skip
    assert question.startswith("Cik cilvēkiem ir sniegtas konsultācijas 2026. gadā? (probācijas klienti)")
    counted = text("lv", "report.kind_question", kind="count", metric_kind="consultations", year=2026,
                   unit="konsultācijas")  # 1.3.9: 390 consultations  # fmt: skip
    assert counted.startswith("Cik konsultāciju ir sniegts")


def test_labels_have_the_same_macros_in_both_languages() -> None:
    def macros(module: object) -> dict[str, tuple[str, ...]]:
        return {
            n: tuple(getattr(module, n).arguments)
            for n in dir(module)
            if hasattr(getattr(module, n), "arguments")
        }

    assert macros(_messages("lv", "labels")) == macros(_messages("en", "labels"))


def test_answer_errors_name_fields_in_words() -> None:
    from bot.render import error_text

    message = error_text("lv", "missing_dependency", {"key": "1.1.1.1.date", "depends_on": "1.1.1.1"})
    assert "„1.1.1.1 datums”" in message and not FIELD_KEY.search(message)
    assert "Comment" in error_text("en", "unknown_field", {"key": "comment"})
