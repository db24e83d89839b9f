"""Form specs from measures and the pure step engine: walks, skip, back, edit, summary, drafts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from reporting_forms.answers import InvalidAnswer, MilestoneStatus
from reporting_forms.catalog import Indicator, Measure, MetricKind
from reporting_forms.forms import (
    COMMENT_KEY,
    ENGINE_ERROR_CODES,
    FIELD_TYPES,
    FORM_VERSION,
    METRIC_RECIPES,
    SUMMARY,
    Ask,
    Draft,
    DraftError,
    FieldKind,
    FormField,
    FormSpec,
    Rejected,
    Summary,
    answer,
    back,
    confirm_errors,
    date_window,
    edit,
    form_for,
    load_answer,
    migrate_draft,
    resume,
    skip,
    start,
    validate_answers,
)
from reporting_forms.texts import LANGUAGES, text

YEAR = 2026
COUNT, PERCENT, STATUS, DATE, TEXT = "9.9.9.1", "9.9.9.2", "9.9.9.3", "9.9.9.3.date", "9.9.9.4"


def make_measure(*kinds: MetricKind, measure_id: str = "9.9.9") -> Measure:
    return Measure(
        id=measure_id,
        name="Test measure",
        responsible=("VPD",),
        indicators=tuple(
            Indicator(id=f"{measure_id}.{n}", text=f"Row {n}", kind=kind) for n, kind in enumerate(kinds, 1)
        ),
    )


ALL_KINDS = make_measure(MetricKind.PEOPLE_TRAINED, MetricKind.PERCENT, MetricKind.MILESTONE, MetricKind.TEXT)


@pytest.fixture
def spec() -> FormSpec:
    return form_for(ALL_KINDS)


def roundtrip(draft: Draft) -> Draft:
    return Draft.from_dict(json.loads(json.dumps(draft.to_dict())))


def walk(spec: FormSpec, *moves: str) -> tuple[Draft, Any]:
    """Apply moves: "!skip", "!back", "!edit:<key>", anything else is typed text."""
    draft, step = start(spec, YEAR)
    for move in moves:
        if move == "!skip":
            draft, step = skip(spec, draft)
        elif move == "!back":
            draft, step = back(spec, draft)
        elif move.startswith("!edit:"):
            draft, step = edit(spec, draft, move.removeprefix("!edit:"))
        else:
            draft, step = answer(spec, draft, move)
        assert roundtrip(draft) == draft
    return draft, step


def asked(step: Any) -> str:
    assert isinstance(step, Ask), step
    return step.field.key


# ---------------------------------------------------------------- specs


def test_form_for_every_kind(spec: FormSpec) -> None:
    assert spec.measure_id == "9.9.9" and spec.version == FORM_VERSION
    assert [(f.key, f.kind) for f in spec.fields] == [
        (COUNT, FieldKind.COUNT),
        (PERCENT, FieldKind.PERCENT),
        (STATUS, FieldKind.MILESTONE_STATUS),
        (DATE, FieldKind.DATE),
        (TEXT, FieldKind.TEXT),
        (COMMENT_KEY, FieldKind.COMMENT),
    ]
    assert all(f.optional for f in spec.fields)
    assert spec.field(STATUS).buttons == ("done", "in_progress", "not_started", "risk")
    assert spec.field(DATE).depends_on == STATUS and spec.field(DATE).indicator_id == STATUS
    assert spec.field(TEXT).max_length == 1000 and spec.field(COMMENT_KEY).max_length == 1000
    assert spec.field(COMMENT_KEY).indicator_id is None and spec.field(COMMENT_KEY).metric_kind is None
    assert spec.field(COUNT).metric_kind is MetricKind.PEOPLE_TRAINED


@pytest.mark.parametrize(
    "kind",
    [
        MetricKind.PEOPLE_TRAINED,
        MetricKind.PARTICIPANTS,
        MetricKind.EVENTS_HELD,
        MetricKind.CONSULTATIONS,
        MetricKind.SESSIONS,
        MetricKind.COUNT,
    ],
)
def test_numeric_kinds_become_count_fields(kind: MetricKind) -> None:
    (field, comment) = form_for(make_measure(kind)).fields
    assert field.kind is FieldKind.COUNT and field.buttons == ()
    assert comment.key == COMMENT_KEY


def test_tables_cover_every_kind() -> None:
    assert set(METRIC_RECIPES) == set(MetricKind)
    assert set(FIELD_TYPES) == set(FieldKind)


def test_form_for_real_catalog_measures() -> None:
    try:
        from reporting_forms.catalog import default_catalog

        catalog = default_catalog()
    except Exception as exc:  # colleagues' YAML may be mid-edit
        pytest.skip(f"catalog does not load: {exc}")
    measures = [m for *_, m in catalog.measures()]
    if not measures:
        pytest.skip("catalog has no measures")
    for measure in measures:
        spec = form_for(measure)
        indicator_keys = [f.key for f in spec.fields if f.depends_on is None and f.indicator_id]
        assert indicator_keys == [i.id for i in measure.indicators]
        assert spec.fields[-1].key == COMMENT_KEY


# ---------------------------------------------------------------- a full walk


def test_full_walk_through_every_kind(spec: FormSpec) -> None:
    draft, step = start(spec, YEAR)
    assert step == Ask(spec.field(COUNT), None, 1, 6)
    draft, step = answer(spec, draft, "1 200")
    assert asked(step) == PERCENT and step.position == 2
    draft, step = answer(spec, draft, "12,5 %")
    assert asked(step) == STATUS
    draft, step = answer(spec, draft, "procesā")
    assert asked(step) == DATE
    draft, step = answer(spec, draft, "31.12.2026.")
    assert asked(step) == TEXT
    draft, step = answer(spec, draft, "  Notiek <darbs> & plānošana  ")
    assert asked(step) == COMMENT_KEY and step.position == step.total == 6
    draft, step = answer(spec, draft, "Viss kārtībā 👍")
    assert isinstance(step, Summary)
    assert draft.cursor == SUMMARY and not draft.return_to_summary
    assert draft.answers == {
        COUNT: 1200,
        PERCENT: "12.5",
        STATUS: "in_progress",
        DATE: "2026-12-31",
        TEXT: "Notiek <darbs> & plānošana",
        COMMENT_KEY: "Viss kārtībā 👍",
    }
    assert [(row.field.key, row.value) for row in step.rows] == [
        (COUNT, 1200),
        (PERCENT, Decimal("12.5")),
        (STATUS, MilestoneStatus.IN_PROGRESS),
        (DATE, dt.date(2026, 12, 31)),
        (TEXT, "Notiek <darbs> & plānošana"),
        (COMMENT_KEY, "Viss kārtībā 👍"),
    ]
    assert confirm_errors(spec, draft) == []
    assert validate_answers(spec, draft.answers, year=YEAR)[STATUS] is MilestoneStatus.IN_PROGRESS


def test_rejected_keeps_the_draft_and_asks_again(spec: FormSpec) -> None:
    draft, _ = walk(spec, "5")
    new, step = answer(spec, draft, "150")
    assert new == draft
    assert step == Rejected(spec.field(PERCENT), "out_of_range", {"min": 0, "max": 100})
    new, step = answer(spec, draft, "abc")
    assert step == Rejected(spec.field(PERCENT), "not_a_number", {"kind": "percent"})


@pytest.mark.parametrize(
    ("moves", "code", "params"),
    [
        ((), "decimal_not_allowed", {}),
        (("1",), "too_many_decimals", {"max_decimals": 2}),
        (("1", "1"), "choose_button", {}),
        (
            ("1", "1", "done"),
            "date_out_of_range",
            {"earliest": dt.date(2025, 1, 1), "latest": dt.date(2029, 12, 31)},
        ),
        (("1", "1", "done", "!skip"), "too_long", {"max_length": 1000, "length": 1001}),
        (("1", "1", "done", "!skip", "!skip"), "empty", {}),
    ],
)
def test_rejections_per_kind(
    spec: FormSpec, moves: tuple[str, ...], code: str, params: dict[str, Any]
) -> None:
    bad = {
        "decimal_not_allowed": "1,5",
        "too_many_decimals": "1,555",
        "choose_button": "varbūt",
        "date_out_of_range": "01.01.2020",
        "too_long": "x" * 1001,
        "empty": " \x00 ",
    }[code]
    draft, before = walk(spec, *moves)
    new, step = answer(spec, draft, bad)
    assert isinstance(step, Rejected) and (step.code, dict(step.params)) == (code, params)
    assert step.field == before.field and new == draft


def test_date_window_follows_the_report_year() -> None:
    assert date_window(2026) == (dt.date(2025, 1, 1), dt.date(2029, 12, 31))


# ---------------------------------------------------------------- skip and back


def test_skipping_a_milestone_skips_its_date(spec: FormSpec) -> None:
    draft, step = walk(spec, "10", "!skip", "!skip")
    assert asked(step) == TEXT
    assert draft.answers == {COUNT: 10}
    draft, step = back(spec, draft)
    assert asked(step) == STATUS  # the date was never asked, so back passes over it


def test_back_over_an_answered_date(spec: FormSpec) -> None:
    draft, step = walk(spec, "10", "!skip", "done", "01.03.2026", "!back")
    assert asked(step) == DATE and step.current_value == dt.date(2026, 3, 1)
    draft, step = back(spec, draft)
    assert asked(step) == STATUS and step.current_value is MilestoneStatus.DONE


def test_back_at_the_first_field_stays(spec: FormSpec) -> None:
    draft, _ = start(spec, YEAR)
    new, step = back(spec, draft)
    assert new == draft and asked(step) == COUNT


def test_back_from_the_summary_goes_to_the_last_question(spec: FormSpec) -> None:
    _, step = walk(spec, "1", *["!skip"] * 4)
    assert isinstance(step, Summary)
    draft, step = walk(spec, "1", *["!skip"] * 4, "!back")
    assert asked(step) == COMMENT_KEY and draft.cursor == 5


def test_back_then_answer_again_replaces_the_value(spec: FormSpec) -> None:
    draft, step = walk(spec, "10", "!back")
    assert step.current_value == 10
    draft, _ = answer(spec, draft, "11")
    assert draft.answers == {COUNT: 11}


def test_skip_clears_an_earlier_answer_and_its_date(spec: FormSpec) -> None:
    draft, step = walk(spec, "10", "20", "done", "01.03.2026", "!back", "!back", "!skip")
    assert asked(step) == TEXT
    assert draft.answers == {COUNT: 10, PERCENT: "20"}


def test_skip_of_a_required_field_is_rejected() -> None:
    base = form_for(make_measure(MetricKind.COUNT))
    required = dataclasses.replace(base.fields[0], optional=False)
    spec = dataclasses.replace(base, fields=(required, *base.fields[1:]))
    draft, _ = start(spec, YEAR)
    new, step = skip(spec, draft)
    assert step == Rejected(required, "required") and new == draft
    with pytest.raises(InvalidAnswer) as info:
        validate_answers(spec, {})
    assert (info.value.code, info.value.key) == ("required", required.key)


# ---------------------------------------------------------------- summary and edit


def test_edit_from_summary_returns_to_summary(spec: FormSpec) -> None:
    draft, step = walk(spec, "10", "20", "done", "01.03.2026", "a", "b", f"!edit:{PERCENT}")
    assert asked(step) == PERCENT and step.current_value == Decimal("20")
    assert draft.return_to_summary
    draft, step = answer(spec, draft, "30")
    assert isinstance(step, Summary) and not draft.return_to_summary
    assert draft.answers[PERCENT] == "30"


def test_edit_a_skipped_milestone_asks_its_date_then_summary(spec: FormSpec) -> None:
    draft, step = walk(spec, "10", "!skip", "!skip", "!skip", "!skip", f"!edit:{STATUS}", "risks")
    assert asked(step) == DATE and draft.return_to_summary
    draft, step = answer(spec, draft, "2027-06-30")
    assert isinstance(step, Summary)
    assert draft.answers == {COUNT: 10, STATUS: "risk", DATE: "2027-06-30"}


def test_edit_then_back_cancels_to_summary(spec: FormSpec) -> None:
    draft, step = walk(spec, "10", *["!skip"] * 4, f"!edit:{COUNT}", "!back")
    assert isinstance(step, Summary) and draft.answers == {COUNT: 10}


def test_edit_then_skip_clears_and_returns(spec: FormSpec) -> None:
    draft, step = walk(spec, "10", "20", *["!skip"] * 3, f"!edit:{COUNT}", "!skip")
    assert isinstance(step, Summary) and draft.answers == {PERCENT: "20"}


def test_summary_lists_only_applicable_fields(spec: FormSpec) -> None:
    _, step = walk(spec, "10", *["!skip"] * 4)
    assert [(r.field.key, r.value) for r in step.rows] == [
        (COUNT, 10),
        (PERCENT, None),
        (STATUS, None),
        (TEXT, None),
        (COMMENT_KEY, None),
    ]


@pytest.mark.parametrize("key", ["nope", DATE])
def test_edit_of_a_stale_key_shows_the_summary(spec: FormSpec, key: str) -> None:
    draft, _ = walk(spec, "10", *["!skip"] * 4)
    new, step = edit(spec, draft, key)
    assert new == draft and isinstance(step, Summary)


def test_edit_in_the_middle_of_the_form_does_not_jump_to_summary(spec: FormSpec) -> None:
    draft, step = walk(spec, "10", "20", f"!edit:{COUNT}", "11")
    assert asked(step) == PERCENT and not draft.return_to_summary


def test_answer_and_skip_at_the_summary_are_rejected(spec: FormSpec) -> None:
    draft, _ = walk(spec, "10", *["!skip"] * 4)
    for new, step in (answer(spec, draft, "5"), skip(spec, draft)):
        assert new == draft and step == Rejected(None, "use_buttons")


# ---------------------------------------------------------------- confirm


def test_nothing_reported(spec: FormSpec) -> None:
    draft, _ = walk(spec, *["!skip"] * 4, "tikai komentārs")
    assert confirm_errors(spec, draft) == [("nothing_reported", {})]


def test_not_finished(spec: FormSpec) -> None:
    draft, _ = walk(spec, "10")
    assert confirm_errors(spec, draft) == [("not_finished", {})]


def test_one_indicator_is_enough(spec: FormSpec) -> None:
    draft, _ = walk(spec, "!skip", "!skip", "izpildīts", "!skip", "!skip", "!skip")
    assert confirm_errors(spec, draft) == []


def test_confirm_reports_invalid_stored_answers(spec: FormSpec) -> None:
    draft = Draft("9.9.9", YEAR, answers={COUNT: "12"}, cursor=SUMMARY)
    assert confirm_errors(spec, draft) == [("invalid_value", {"key": COUNT})]


# ---------------------------------------------------------------- validate_answers


@pytest.mark.parametrize(
    ("answers", "code", "key"),
    [
        ({"9.9.9.9": 1}, "unknown_field", "9.9.9.9"),
        ({DATE: "2026-01-01"}, "missing_dependency", DATE),
        ({COUNT: "12"}, "invalid_value", COUNT),
        ({COUNT: True}, "invalid_value", COUNT),
        ({COUNT: 12.0}, "invalid_value", COUNT),
        ({COUNT: -1}, "negative", COUNT),
        ({COUNT: 10**7}, "too_many_digits", COUNT),
        ({PERCENT: "12.50"}, "invalid_value", PERCENT),
        ({PERCENT: 12}, "invalid_value", PERCENT),
        ({PERCENT: "120"}, "out_of_range", PERCENT),
        ({STATUS: "Izpildīts"}, "invalid_value", STATUS),
        ({STATUS: "finished"}, "choose_button", STATUS),
        ({STATUS: "done", DATE: "31.12.2026"}, "invalid_value", DATE),
        ({STATUS: "done", DATE: "2020-01-01"}, "date_out_of_range", DATE),
        ({TEXT: " padded "}, "invalid_value", TEXT),
        ({TEXT: ""}, "empty", TEXT),
        ({COMMENT_KEY: "x" * 1001}, "too_long", COMMENT_KEY),
    ],
)
def test_validate_answers_refuses(spec: FormSpec, answers: dict[str, Any], code: str, key: str) -> None:
    with pytest.raises(InvalidAnswer) as info:
        validate_answers(spec, answers, year=YEAR)
    assert (info.value.code, info.value.key) == (code, key)


def test_validate_answers_returns_typed_values_in_form_order(spec: FormSpec) -> None:
    stored = {COMMENT_KEY: "c", STATUS: "not_started", COUNT: 0, PERCENT: "0.05", DATE: "2026-05-01"}
    assert validate_answers(spec, stored, year=YEAR) == {
        COUNT: 0,
        PERCENT: Decimal("0.05"),
        STATUS: MilestoneStatus.NOT_STARTED,
        DATE: dt.date(2026, 5, 1),
        COMMENT_KEY: "c",
    }
    assert list(validate_answers(spec, stored)) == [COUNT, PERCENT, STATUS, DATE, COMMENT_KEY]


# ---------------------------------------------------------------- drafts


def test_draft_roundtrip_through_json(spec: FormSpec) -> None:
    draft, _ = walk(spec, "10", "20", "done", "01.03.2026", f"!edit:{COUNT}")
    data = json.loads(json.dumps(draft.to_dict()))
    assert data == {
        "version": FORM_VERSION,
        "measure_id": "9.9.9",
        "year": YEAR,
        "answers": {COUNT: 10, PERCENT: "20", STATUS: "done", DATE: "2026-03-01"},
        "cursor": 0,
        "return_to_summary": False,
    }
    assert Draft.from_dict(data) == draft


def test_old_version_draft_is_migrated(spec: FormSpec) -> None:
    v0 = {"measure_id": "9.9.9", "year": YEAR, "answers": {COUNT: 5}, "cursor": 1}
    assert migrate_draft(v0)["version"] == FORM_VERSION
    draft = Draft.from_dict(v0)
    assert draft == Draft("9.9.9", YEAR, {COUNT: 5}, cursor=1, return_to_summary=False)
    draft, step = answer(spec, draft, "50")
    assert asked(step) == STATUS and draft.answers == {COUNT: 5, PERCENT: "50"}


@pytest.mark.parametrize(
    "data",
    [
        {
            "version": FORM_VERSION + 1,
            "measure_id": "9.9.9",
            "year": YEAR,
            "answers": {},
            "cursor": 0,
            "return_to_summary": False,
        },
        {"version": "1", "measure_id": "9.9.9"},
        {"version": 1, "measure_id": "9.9.9"},
        {
            "version": 1,
            "measure_id": "9.9.9",
            "year": "2026",
            "answers": {},
            "cursor": 0,
            "return_to_summary": False,
        },
        {
            "version": 1,
            "measure_id": "9.9.9",
            "year": YEAR,
            "answers": {"a": [1]},
            "cursor": 0,
            "return_to_summary": False,
        },
        {
            "version": 1,
            "measure_id": "9.9.9",
            "year": YEAR,
            "answers": {},
            "cursor": "end",
            "return_to_summary": False,
        },
        {
            "version": 1,
            "measure_id": "9.9.9",
            "year": YEAR,
            "answers": [],
            "cursor": 0,
            "return_to_summary": False,
        },
    ],
)
def test_malformed_drafts_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(DraftError):
        Draft.from_dict(data)


def test_resume_fits_a_draft_to_a_changed_form() -> None:
    old_spec = form_for(ALL_KINDS)
    draft, _ = walk(old_spec, "10", "20", "done", "01.03.2026", "a", "b")
    new_spec = form_for(make_measure(MetricKind.PEOPLE_TRAINED, MetricKind.PERCENT))
    draft = dataclasses.replace(draft, cursor=4)
    resumed, step = resume(new_spec, draft)
    assert resumed.answers == {COUNT: 10, PERCENT: "20", COMMENT_KEY: "b"}
    assert resumed.cursor == SUMMARY and isinstance(step, Summary)  # cursor 4 is past the 3 new fields
    assert [r.field.key for r in step.rows] == [COUNT, PERCENT, COMMENT_KEY]


def test_resume_of_a_cursor_past_the_end_shows_the_summary(spec: FormSpec) -> None:
    draft = Draft("9.9.9", YEAR, {COUNT: 1}, cursor=99)
    resumed, step = resume(spec, draft)
    assert resumed.cursor == SUMMARY and isinstance(step, Summary)


def test_a_draft_for_another_measure_is_a_programming_error(spec: FormSpec) -> None:
    with pytest.raises(ValueError):
        answer(spec, Draft("1.1.1", YEAR), "1")


# ---------------------------------------------------------------- messages for the engine's codes


def _engine_errors(spec: FormSpec) -> list[tuple[str, dict[str, Any]]]:
    """Every engine code with the params it is produced with."""
    found: list[tuple[str, dict[str, Any]]] = []
    required = dataclasses.replace(spec, fields=(dataclasses.replace(spec.fields[0], optional=False),))
    _, step = skip(required, start(required, YEAR)[0])
    found.append((step.code, dict(step.params)))
    summary_draft, _ = walk(spec, "1", *["!skip"] * 4)
    _, step = answer(spec, summary_draft, "x")
    found.append((step.code, dict(step.params)))
    found += confirm_errors(spec, walk(spec)[0])
    found += confirm_errors(spec, walk(spec, *["!skip"] * 5)[0])
    for bad in ({"x": 1}, {DATE: "2026-01-01"}, {COUNT: "1"}):
        with pytest.raises(InvalidAnswer) as info:
            validate_answers(spec, bad)
        found.append((info.value.code, info.value.params))
    return found


def test_engine_codes_are_all_produced(spec: FormSpec) -> None:
    assert {code for code, _ in _engine_errors(spec)} == set(ENGINE_ERROR_CODES)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_engine_error_renders(spec: FormSpec, lang: str) -> None:
    for code, params in _engine_errors(spec):
        message = text(lang, f"answers.error_{code}", **params)
        assert message and "None" not in message, code


def test_a_stored_answer_loads_the_same_every_time_and_a_refusal_is_raised_every_time() -> None:
    """load_answer keeps each valid stored answer's parse (a draft's answers are loaded at every
    step): the value is the parser's, the JSON type still decides, and a refused answer raises
    each time with its key — never a kept value of another field, year or type."""
    count = FormField("1.1.1.1", FieldKind.COUNT)
    comment = FormField("comment", FieldKind.COMMENT, max_length=20)
    date = FormField("1.1.1.2.date", FieldKind.DATE)
    for _ in range(2):
        assert load_answer(count, 12, 2026) == 12
        assert load_answer(comment, "Darbs turpinās.", 2026) == "Darbs turpinās."
        assert load_answer(date, "2026-03-31", 2026) == dt.date(2026, 3, 31)
        for field, stored, year in (
            (count, "12", 2026),  # a count is stored as a number
            (count, True, 2026),
            (comment, "x" * 21, 2026),  # longer than this field takes
            (comment, "a\u202eb", 2026),  # not what the engine stores (it drops the override)
            (date, "2026-03-31", 2040),  # outside the window of that year's report
        ):
            with pytest.raises(InvalidAnswer) as refused:
                load_answer(field, stored, year)
            assert refused.value.key == field.key
    assert load_answer(FormField("other", FieldKind.TEXT, max_length=40), "x" * 21, 2026) == "x" * 21
