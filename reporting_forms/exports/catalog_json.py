"""The catalog as plain JSON-ready data (``resobot plan export``)."""

from __future__ import annotations

from typing import Any

from reporting_forms.catalog import Catalog, Indicator, Measure, Plan, PolicyIndicator


def plain_number(value: float | None) -> int | float | None:
    """``75.0`` → ``75``, ``1804.0`` → ``1804``; real decimals (``37.25``) and None unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _indicator(ind: Indicator) -> dict[str, Any]:
    return {
        "id": ind.id,
        "text": ind.text,
        "target": plain_number(ind.target),
        "kind": ind.kind.value,
        "unit": ind.unit,
        "deadline": ind.deadline.isoformat() if ind.deadline else None,
        "deadline_text": ind.deadline_text,
        "note": ind.note,
        "untargeted": ind.untargeted,
    }


def _measure(m: Measure) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "result": m.result,
        "responsible": list(m.responsible),
        "co_responsible": list(m.co_responsible),
        "deadline": m.deadline.isoformat() if m.deadline else None,
        "deadline_text": m.deadline_text,
        "funding": m.funding,
        "achieved_note": m.achieved_note,
        "indicators": [_indicator(i) for i in m.indicators],
    }


def _policy_indicator(pi: PolicyIndicator) -> dict[str, Any]:
    passport = pi.passport.model_dump(mode="json") if pi.passport else None
    if passport is not None:
        passport["history"] = {year: plain_number(v) for year, v in passport["history"].items()}
    return {
        "id": pi.id,
        "text": pi.text,
        "kind": pi.kind.value,
        "unit": pi.unit,
        "targets": {
            str(y): {"text": v.text, "value": plain_number(v.value)} for y, v in sorted(pi.targets.items())
        },
        "passport": passport,
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return {
        "id": plan.id,
        "title": plan.title,
        "short_title": plan.short_title,
        "source": plan.source,
        "directions": [
            {
                "id": d.id,
                "title": d.title,
                "tasks": [
                    {"id": t.id, "title": t.title, "measures": [_measure(m) for m in t.measures]}
                    for t in d.tasks
                ],
            }
            for d in plan.directions
        ],
        "policy_results": [
            {"id": pr.id, "title": pr.title, "indicators": [_policy_indicator(i) for i in pr.indicators]}
            for pr in plan.policy_results
        ],
    }


def catalog_to_dict(catalog: Catalog) -> dict[str, Any]:
    """Main plan first, then the others (the informal-hierarchy plan)."""
    plans = sorted(catalog.plans, key=lambda p: (not p.policy_results, p.id))
    return {
        "plans": [plan_to_dict(p) for p in plans],
        "institutions": [i.model_dump() for i in catalog.institutions],
    }
