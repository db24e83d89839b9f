"""Property tests: whatever a user types or presses, the engine never crashes or stores garbage."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting_forms.answers import (
    InvalidAnswer,
    parse_comment,
    parse_count,
    parse_milestone_status,
    parse_percent,
)
from reporting_forms.catalog import Indicator, Measure, MetricKind
from reporting_forms.forms import (
    Ask,
    Draft,
    FormSpec,
    Rejected,
    Summary,
    answer,
    back,
    edit,
    form_for,
    skip,
    start,
    validate_answers,
)

YEAR = 2026
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SPEC: FormSpec = form_for(
    Measure(
        id="9.9.9",
        name="Every kind",
        responsible=("VPD",),
        indicators=(
            Indicator(id="9.9.9.1", text="Apmācīti", kind=MetricKind.PEOPLE_TRAINED),
            Indicator(id="9.9.9.2", text="Procenti", kind=MetricKind.PERCENT),
            Indicator(id="9.9.9.3", text="Posms", kind=MetricKind.MILESTONE),
            Indicator(id="9.9.9.4", text="Apraksts", kind=MetricKind.TEXT),
        ),
    )
)

# Text a person might plausibly send, valid or nearly so, so walks also get past the questions.
PLAUSIBLE = st.sampled_from(
    [
        "0",
        "1 200",
        "1\u00a0200",
        "12,5",
        "12.5 %",
        "100",
        "101",
        "-3",
        "1,5",
        "izpildīts",
        "procesā",
        "nav uzsākts",
        "risks",
        "done",
        "31.12.2026",
        "31.12.2026.",
        "2026-12-31",
        "31.12.26",
        "01.01.2020",
        "Labi",
        "  ",
        "\x00",
        "שלום",
        "👩\u200d💻",
        "<b>&</b>",
        "nan",
        "1e2",
    ]
)
RAW = st.one_of(
    st.text(max_size=5000),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=50),  # incl. lone surrogates
    st.text(alphabet="0123456789 ,.-%\u00a0\u202f\u2009", max_size=12),
    PLAUSIBLE,
    st.integers(min_value=-(10**9), max_value=10**9).map(str),
)
MOVE = st.one_of(
    RAW.map(lambda raw: ("answer", raw)),
    st.just(("skip", None)),
    st.just(("back", None)),
    st.sampled_from([f.key for f in SPEC.fields] + ["nope"]).map(lambda key: ("edit", key)),
)


def check_invariants(draft: Draft) -> None:
    validate_answers(SPEC, draft.answers, year=YEAR)  # nothing invalid was stored
    assert Draft.from_dict(json.loads(json.dumps(draft.to_dict()))) == draft


def apply(draft: Draft, move: tuple[str, Any]) -> tuple[Draft, Any]:
    action, arg = move
    if action == "answer":
        return answer(SPEC, draft, arg)
    if action == "skip":
        return skip(SPEC, draft)
    if action == "back":
        return back(SPEC, draft)
    return edit(SPEC, draft, arg)


@SETTINGS
@given(index=st.integers(min_value=0, max_value=len(SPEC.fields) - 1), raw=RAW)
def test_any_text_at_any_field_is_rejected_or_stored(index: int, raw: str) -> None:
    # the milestone is answered, so its date field applies too
    draft = Draft(SPEC.measure_id, YEAR, answers={"9.9.9.3": "done"}, cursor=index)
    new, step = answer(SPEC, draft, raw)
    if isinstance(step, Rejected):
        assert new == draft and step.field == SPEC.fields[index]
    else:
        assert isinstance(step, Ask | Summary)
        assert SPEC.fields[index].key in new.answers
    check_invariants(new)


@SETTINGS
@given(moves=st.lists(MOVE, max_size=25))
def test_random_conversations_keep_the_draft_valid(moves: list[tuple[str, Any]]) -> None:
    draft, step = start(SPEC, YEAR)
    for move in moves:
        new, step = apply(draft, move)
        assert isinstance(step, Ask | Summary | Rejected)
        if isinstance(step, Rejected):
            assert new == draft  # cursor and answers unchanged
        elif isinstance(step, Ask):
            assert new.cursor == SPEC.index(step.field.key)
        else:
            assert new.cursor == "summary"
        check_invariants(new)
        draft = new


@SETTINGS
@given(raw=st.text(max_size=5000))
def test_parsers_only_raise_invalid_answer(raw: str) -> None:
    for parse in (parse_count, parse_percent, parse_comment, parse_milestone_status):
        try:
            parse(raw)
        except InvalidAnswer as exc:
            assert exc.code


def test_skipping_a_milestone_edited_from_the_summary_does_not_ask_its_date() -> None:
    # found by test_random_conversations_keep_the_draft_valid: the date of a skipped milestone
    # was asked, and the next answer jumped to another field while being rejected
    draft, _ = start(SPEC, YEAR)
    for move in [("skip", None), ("answer", "0"), ("skip", None), ("answer", "0"), ("skip", None)]:
        draft, _ = apply(draft, move)
    assert draft.cursor == "summary"
    draft, step = apply(draft, ("edit", "9.9.9.3"))
    assert isinstance(step, Ask) and step.field.key == "9.9.9.3"
    draft, step = apply(draft, ("skip", None))
    assert isinstance(step, Summary) and draft.cursor == "summary"
    assert "9.9.9.3.date" not in {row.field.key for row in step.rows}
