"""Which rows add up over the years is one fact of the status rules (``latest_value_kinds`` in
status_rules.yaml, ``StatusRules.accumulates``): the compilation and the chat's "reported earlier
(total …)" both read it (issue 12, item 3)."""

from __future__ import annotations

import pytest

from bot import render
from reporting_forms.catalog import MetricKind, load_catalog
from reporting_forms.compilation import StatusRules, default_status_rules
from reporting_forms.forms import Ask, form_for


def test_numeric_kinds_that_are_not_levels_accumulate() -> None:
    rules = default_status_rules()
    assert [k for k in MetricKind if rules.accumulates(k)] == [
        k for k in MetricKind if k.is_numeric and k not in rules.latest_value_kinds
    ]
    assert rules.accumulates(MetricKind.PEOPLE_TRAINED)
    assert not rules.accumulates(MetricKind.PERCENT)  # a level: the latest value counts
    assert not rules.accumulates(MetricKind.MILESTONE)
    counts_as_level = rules.model_copy(update={"latest_value_kinds": (MetricKind.PERCENT, MetricKind.COUNT)})
    assert not counts_as_level.accumulates(MetricKind.COUNT)


def _question(kind: MetricKind) -> str:
    catalog = load_catalog()
    measure, indicator = next(
        (m, i) for p in catalog.plans for m in p.measures() for i in m.indicators if i.kind is kind
    )
    field = next(
        f for f in form_for(measure).fields if f.indicator_id == indicator.id and f.depends_on is None
    )
    ask = Ask(field=field, current_value=None, position=1, total=1)
    return render.question_text("en", measure, 2027, ask, {indicator.id: {2025: "30", 2026: "12"}})


def test_the_question_shows_a_total_where_the_rules_say_rows_accumulate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert "(total 42" in _question(MetricKind.PEOPLE_TRAINED)
    levels = default_status_rules().model_copy(
        update={"latest_value_kinds": (MetricKind.PERCENT, MetricKind.PEOPLE_TRAINED)}
    )

    def rules() -> StatusRules:
        return levels

    monkeypatch.setattr(render, "default_status_rules", rules)
    text = _question(MetricKind.PEOPLE_TRAINED)
    assert "Reported earlier" in text and "(total" not in text
