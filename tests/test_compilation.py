"""Compilation: golden cases on a small seeded catalog and dataset (statuses per rule, sums and
shares over institutions and years, completeness/timeliness, validation warnings, policy table)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reporting_forms.catalog import Catalog, CatalogError, MetricKind, load_catalog
from reporting_forms.compilation import (
    CompiledPlan,
    PolicyActual,
    ReportedValue,
    RowFacts,
    Status,
    ValidationRules,
    check_rules,
    combine_review_states,
    combine_statuses,
    compile_completeness,
    compile_plan,
    compile_policy_results,
    default_status_rules,
    expected_share,
    load_status_rules,
    pace_shortfall,
    row_status,
)

RIGA = ZoneInfo("Europe/Riga")
UTC = dt.UTC
PLAN = "TEST-2025-2027"

# ---------------------------------------------------------------- seeded catalog


def _ind(id_: str, kind: str, text: str, target: float | None = None, **extra: object) -> dict[str, object]:
    return {"id": id_, "kind": kind, "text": text, "target": target, **extra}


def build_catalog() -> Catalog:
    """Two directions of a plan shaped like the resocialisation plan, and an NH-2024 with sections."""
    plan = {
        "id": PLAN,
        "title": (
            "Resocializācijas politikas pamatnostādņu 2022.–2027. gadam īstenošanas plāns 2025.–2027. gadam"
        ),
        "short_title": "Īstenošanas plāns 2025.–2027. gadam",
        "source": "test",
        "policy_results": [
            {
                "id": "PR1",
                "title": "Notiesāto īpatsvars, kas iesaistās nodarbināmībā",
                "indicators": [
                    {
                        "id": "PR1.RR1",
                        "text": "Nodarbināto bijušo ieslodzīto skaits",
                        "kind": "count",
                        "targets": {y: {"text": "Pieaug"} for y in (2025, 2026, 2027)},
                        "passport": {
                            "methodology": "VID dati",
                            "data_source": "Valsts ieņēmumu dienests",
                            "frequency": "1 x gadā",
                            "forecast": "Palielinās",
                            "history": {2022: 100, 2023: 110, 2024: 120},
                        },
                    },
                    {
                        "id": "PR1.RR2",
                        "text": "Legālajā nodarbinātībā iesaistīto probācijas klientu īpatsvara pieaugums",
                        "kind": "percent",
                        "unit": "%",
                        "targets": {
                            2025: {"text": "15%", "value": 15},
                            2026: {"text": "16 %", "value": 16},
                            2027: {"text": "17 %", "value": 17},
                        },
                        "passport": {
                            "methodology": "S2 / S1 * 100",
                            "frequency": "1 x gadā",
                            "forecast": "17 %",
                            "history": {2022: 12, 2023: 13, 2024: 14},
                        },
                    },
                ],
            }
        ],
        "directions": [
            {
                "id": "1",
                "title": "Turpināt pilnveidot resocializācijas darbu",
                "tasks": [
                    {
                        "id": "1.1",
                        "title": "Resocializācijas instrumentu pilnveidošana",
                        "measures": [
                            {
                                "id": "1.1.1",
                                "name": "Riska novērtēšanas instrumenta ieviešana",
                                "result": "Precīzāks darbs pie risku noteikšanas",
                                "responsible": ["TM"],
                                "co_responsible": ["VPD"],
                                "reporters": ["TM", "VPD"],
                                "deadline": "2027-12-31",
                                "indicators": [
                                    _ind("1.1.1.1", "milestone", "Izstrādāts un ieviests instruments"),
                                    _ind("1.1.1.2", "people_trained", "Apmācīti līdz 120 darbinieki", 120),
                                    _ind("1.1.1.3", "participants", "Mācībās piedalās 100 dalībnieki", 100),
                                ],
                            },
                            {
                                "id": "1.1.2",
                                "name": "Atbalsta pasākumi ģimenēm",
                                "result": "Stiprinātas ģimenes saites",
                                "responsible": ["VPD"],
                                "co_responsible": ["IeVP", "NVO"],
                                "reporters": ["VPD", "IeVP"],
                                "deadline": "2027-12-31",
                                "indicators": [
                                    _ind("1.1.2.1", "events_held", "Noorganizēti 10 pasākumi", 10),
                                    _ind("1.1.2.2", "percent", "Iesaistīti 50 % klientu", 50, unit="%"),
                                ],
                            },
                        ],
                    },
                    {
                        "id": "1.2",
                        "title": "Modeļa pārskatīšana",
                        "measures": [
                            {
                                "id": "1.2.1",
                                "name": "Normatīvā regulējuma grozījumi",
                                "responsible": ["IeVP"],
                                "deadline": "2025-06-30",
                                "deadline_text": "2025.gada 30.jūnijs",
                                "indicators": [
                                    _ind(
                                        "1.2.1.1",
                                        "milestone",
                                        "Grozījumi stājušies spēkā",
                                        deadline="2025-06-30",
                                    ),
                                    _ind("1.2.1.2", "text", "Apraksts par ieviešanu", deadline="2027-12-31"),
                                ],
                            }
                        ],
                    },
                ],
            },
            {
                "id": "2",
                "title": "Nodrošināt personāla pieejamību",
                "tasks": [
                    {
                        "id": "2.1",
                        "title": "Darbinieku apmācības",
                        "measures": [
                            {
                                "id": "2.1.1",
                                "name": "Supervīzijas un konsultācijas",
                                "responsible": ["VPD"],
                                "co_responsible": ["TM"],
                                "reporters": ["VPD", "TM"],
                                "deadline": "2027-12-31",
                                "indicators": [
                                    _ind("2.1.1.1", "count", "30 jauni kursi", 30),
                                    _ind("2.1.1.2", "consultations", "40 konsultācijas", 40),
                                    _ind("2.1.1.3", "count", "Kursu skaits gadā"),
                                ],
                            },
                            {
                                "id": "2.1.2",
                                "name": "E-mācību platforma",
                                "responsible": ["VPD"],
                                "deadline": "2027-12-31",
                                "indicators": [
                                    _ind("2.1.2.1", "milestone", "Platformas izstrāde"),
                                    _ind("2.1.2.2", "milestone", "Platformas ieviešana"),
                                    _ind("2.1.2.3", "milestone", "Platformas koncepcija"),
                                ],
                            },
                        ],
                    }
                ],
            },
        ],
    }
    nh = {
        "id": "NH-2024",
        "title": "Rīcības plāns ieslodzīto neformālās hierarhijas mazināšanai",
        "short_title": "Neformālās hierarhijas mazināšanas plāns",
        "source": "test",
        "directions": [
            {
                "id": f"NH.{n}",
                "title": title,
                "tasks": [
                    {
                        "id": f"NH.{n}",
                        "title": title,
                        "measures": [
                            {
                                "id": f"NH.{n}.1",
                                "name": f"Pasākums {n}",
                                "responsible": ["IeVP"],
                                "deadline": deadline,
                                "indicators": [
                                    _ind(f"NH.{n}.1.1", kind, f"Rādītājs {n}", target, deadline=deadline)
                                ],
                            }
                        ],
                    }
                ],
            }
            for n, title, kind, target, deadline in (
                (1, "Pārvaldes personāla kapacitātes pilnveidošanas pasākumi", "count", 4, "2025-07-01"),
                (2, "Citi pasākumi", "milestone", None, "2026-04-30"),
            )
        ],
    }
    return Catalog.model_validate(
        {
            "institutions": [
                {
                    "abbr": "TM",
                    "name": "Tieslietu ministrija",
                    "name_en": "Ministry of Justice",
                    "reports": True,
                },
                {
                    "abbr": "VPD",
                    "name": "Valsts probācijas dienests",
                    "name_en": "Probation",
                    "reports": True,
                },
                {
                    "abbr": "IeVP",
                    "name": "Ieslodzījuma vietu pārvalde",
                    "name_en": "Prisons",
                    "reports": True,
                },
                {"abbr": "NVO", "name": "nevalstiskās organizācijas", "name_en": "NGOs"},
            ],
            "plans": [plan, nh],
        }
    )


# ---------------------------------------------------------------- seeded reports

_IDS = iter(range(1, 10_000))


def report(
    measure: str,
    institution: str,
    year: int,
    submitted: dt.datetime,
    answers: dict[str, float | str | None],
    *,
    revision: int = 1,
    review: str = "accepted",
    risk: bool = False,
    texts: dict[str, str] | None = None,
) -> list[ReportedValue]:
    """One submitted report: numbers are values, strings are milestone statuses."""
    report_id = next(_IDS)
    out = []
    for ind, answer in answers.items():
        value = answer if isinstance(answer, int | float) else None
        status = answer if isinstance(answer, str) else None
        text = (texts or {}).get(ind)
        out.append(
            ReportedValue(
                report_id,
                measure,
                ind,
                institution,
                year,
                value,
                status,
                text,
                revision,
                submitted,
                review,
                risk,
            )
        )
    return out


def seeded_values() -> list[ReportedValue]:
    d = dt.datetime
    return [
        # 1.1.1 — TM responsible, VPD co-responsible
        *report("1.1.1", "TM", 2025, d(2025, 12, 20, 10, tzinfo=RIGA),
                {"1.1.1.1": "in_progress", "1.1.1.2": 9}, texts={"1.1.1.1": "Izstrāde sākta"}),
        *report("1.1.1", "VPD", 2025, d(2026, 1, 10, 9, tzinfo=RIGA),
                {"1.1.1.1": "in_progress", "1.1.1.2": 20, "1.1.1.3": 60}, revision=2, review="pending"),
        *report("1.1.1", "VPD", 2026, d(2026, 12, 15, 9, tzinfo=RIGA),
                {"1.1.1.1": "done", "1.1.1.2": 80, "1.1.1.3": 10}),
        *report("1.1.1", "TM", 2026, d(2026, 12, 30, 9, tzinfo=RIGA), {"1.1.1.1": "done"}),
        *report("1.1.1", "VPD", 2027, d(2027, 12, 20, 9, tzinfo=RIGA), {"1.1.1.2": 15}, review="returned"),
        # 1.1.2 — VPD responsible, IeVP (and NVO, which does not report) co-responsible
        *report("1.1.2", "VPD", 2025, d(2025, 12, 31, 23, 30, tzinfo=RIGA), {"1.1.2.1": 5, "1.1.2.2": 40}),
        *report("1.1.2", "IeVP", 2025, d(2025, 12, 10, 9, tzinfo=RIGA), {"1.1.2.1": 0, "1.1.2.2": 20}),
        *report("1.1.2", "VPD", 2026, d(2026, 12, 1, 9, tzinfo=RIGA), {"1.1.2.1": 6, "1.1.2.2": 45}),
        *report("1.1.2", "IeVP", 2026, d(2026, 12, 2, 9, tzinfo=RIGA),
                {"1.1.2.1": 30, "1.1.2.2": None}, risk=True),
        # 1.2.1 — IeVP, deadline 30 June 2025
        *report("1.2.1", "IeVP", 2025, d(2025, 12, 15, 9, tzinfo=RIGA),
                {"1.2.1.1": "not_started", "1.2.1.2": None}, texts={"1.2.1.2": "Notiek konsultācijas"}),
        # 2.1.1 — VPD; 00:30 on 1 January in Rīga is late although it is still 31 December in UTC
        *report("2.1.1", "VPD", 2025, d(2025, 12, 31, 22, 30, tzinfo=UTC), {"2.1.1.2": 0, "2.1.1.3": 0}),
        # 2.1.2 — milestones with each reported status
        *report("2.1.2", "VPD", 2025, d(2025, 12, 1, 9, tzinfo=RIGA),
                {"2.1.2.1": "not_started", "2.1.2.2": "risk", "2.1.2.3": "done"}),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return build_catalog()


@pytest.fixture(scope="module")
def values() -> list[ReportedValue]:
    return seeded_values()


def compile_2025(catalog: Catalog, values: list[ReportedValue], **kw: object) -> CompiledPlan:
    return compile_plan(catalog, PLAN, values, year=2025, as_of=dt.date(2026, 1, 15), **kw)  # type: ignore[arg-type]


def compile_all(catalog: Catalog, values: list[ReportedValue], **kw: object) -> CompiledPlan:
    return compile_plan(catalog, PLAN, values, year=None, as_of=dt.date(2028, 1, 10), **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def y2025(catalog: Catalog, values: list[ReportedValue]) -> CompiledPlan:
    return compile_2025(catalog, values)


@pytest.fixture(scope="module")
def whole(catalog: Catalog, values: list[ReportedValue]) -> CompiledPlan:
    return compile_all(catalog, values)


# ---------------------------------------------------------------- statuses

STATUS_2025 = {
    "1.1.1.1": Status.IN_PROGRESS,  # milestone: both institutions "in_progress"
    "1.1.1.2": Status.RISK,  # 29 of 120 at 33,3 % of the period: 27 % behind the linear pace
    "1.1.1.3": Status.IN_PROGRESS,  # 60 of 100: ahead of pace
    "1.1.2.1": Status.IN_PROGRESS,  # 5 of 10
    "1.1.2.2": Status.IN_PROGRESS,  # percent (mean of 40 and 20 = 30) below 50; no pace for levels
    "1.2.1.1": Status.RISK,  # milestone not started and its deadline (30.06.2025) passed
    "1.2.1.2": Status.IN_PROGRESS,  # free text reported
    "2.1.1.1": Status.NOT_REPORTED,
    "2.1.1.2": Status.RISK,  # 0 of 40: behind pace
    "2.1.1.3": Status.NOT_STARTED,  # 0, no target
    "2.1.2.1": Status.NOT_STARTED,  # milestone status not_started
    "2.1.2.2": Status.RISK,  # milestone status risk
    "2.1.2.3": Status.DONE,  # milestone done
}

STATUS_ALL = {
    **STATUS_2025,
    "1.1.1.1": Status.DONE,  # both said "done" in 2026
    "1.1.1.2": Status.DONE,  # 9 + 20 + 80 + 15 = 124 ≥ 120
    "1.1.1.3": Status.RISK,  # 70 of 100 at the deadline: 30 % behind
    "1.1.2.1": Status.DONE,  # 41 ≥ 10
    "1.1.2.2": Status.RISK,  # IeVP flagged a risk in 2026
}


def test_statuses_2025_golden(y2025: CompiledPlan) -> None:
    assert {row.id: row.status for *_, row in y2025.rows()} == STATUS_2025
    assert y2025.years == (2025,)
    assert y2025.evaluated_on == dt.date(2025, 12, 31)


def test_statuses_whole_period_golden(whole: CompiledPlan) -> None:
    assert {row.id: row.status for *_, row in whole.rows()} == STATUS_ALL
    assert whole.years == (2025, 2026, 2027)
    assert whole.evaluated_on == dt.date(2027, 12, 31)


def test_pace_rule_at_25_percent(catalog: Catalog) -> None:
    # expected share on 31.12.2025 for a 31.12.2027 deadline: 364 / 1094 days
    share = expected_share(dt.date(2025, 12, 31), dt.date(2027, 12, 31), dt.date(2025, 1, 1))
    assert share == pytest.approx(364 / 1094)
    assert pace_shortfall(29, 120, share) == pytest.approx(0.2737, abs=1e-4)
    assert pace_shortfall(31, 120, share) == pytest.approx(0.2236, abs=1e-4)

    def status_with(trained: float) -> Status:
        vals = report("1.1.1", "VPD", 2025, dt.datetime(2025, 12, 1), {"1.1.1.2": trained})
        return compile_2025(catalog, vals).row("1.1.1.2").status

    assert status_with(29) is Status.RISK
    assert status_with(31) is Status.IN_PROGRESS
    # the same 29 judged mid-2025 (as_of before the year ends) is ahead of pace
    vals = report("1.1.1", "VPD", 2025, dt.datetime(2025, 3, 1), {"1.1.1.2": 29})
    early = compile_plan(catalog, PLAN, vals, year=2025, as_of=dt.date(2025, 6, 1))
    assert early.evaluated_on == dt.date(2025, 6, 1)
    assert early.row("1.1.1.2").status is Status.IN_PROGRESS


def test_pace_threshold_is_configurable(
    catalog: Catalog, values: list[ReportedValue], tmp_path: Path
) -> None:
    source = Path(__file__).resolve().parents[1] / "reporting_forms" / "status_rules.yaml"
    text = source.read_text(encoding="utf-8").replace(
        "behind_pace_more_than: 0.25", "behind_pace_more_than: 0.3"
    )
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    rules = load_status_rules(tmp_path / "rules.yaml")
    assert compile_2025(catalog, values, status_rules=rules).row("1.1.1.2").status is Status.IN_PROGRESS


def test_a_risk_flag_clears_with_a_later_report(catalog: Catalog) -> None:
    """VPD flags a risk in 2025, then reports in progress and on pace in 2026: 2026 shows no risk."""
    d = dt.datetime
    vals = [
        *report("1.1.1", "VPD", 2025, d(2025, 12, 1), {"1.1.1.1": "risk", "1.1.1.2": 20}, risk=True),
        *report("1.1.1", "VPD", 2026, d(2026, 12, 1), {"1.1.1.1": "in_progress", "1.1.1.2": 60}),
    ]
    y2026 = compile_plan(catalog, PLAN, vals, year=2026, as_of=dt.date(2027, 1, 15))
    row = y2026.row("1.1.1.2")  # 80 of 120 at 729/1094 of the period: on the linear pace
    assert row.percent is not None and row.expected_share is not None
    assert row.percent / 100 >= row.expected_share
    assert (row.status, row.risk_flag) == (Status.IN_PROGRESS, False)
    assert [s.risk_flag for s in row.institutions] == [False]
    assert y2026.row("1.1.1.1").status is Status.IN_PROGRESS
    # 2025 alone still shows the risk it flagged
    y2025 = compile_plan(catalog, PLAN, vals, year=2025, as_of=dt.date(2027, 1, 15))
    assert y2025.row("1.1.1.2").status is Status.RISK and y2025.row("1.1.1.2").risk_flag
    # the risk of one institution's latest report is not cleared by another's
    tm = report("1.1.1", "TM", 2025, d(2025, 12, 2), {"1.1.1.2": 30}, risk=True)
    both = compile_plan(catalog, PLAN, vals + tm, year=2026, as_of=dt.date(2027, 1, 15))
    assert both.row("1.1.1.2").status is Status.RISK
    assert {s.institution: s.risk_flag for s in both.row("1.1.1.2").institutions} == {
        "TM": True,
        "VPD": False,
    }


def test_not_reported_means_no_report_for_the_period(catalog: Catalog) -> None:
    """Reports for 2025 only: compiled for 2026, rows without a 2026 report are "nav ziņots",
    except rows the earlier years already finished; over the whole period they are reported."""
    d = dt.datetime
    vals = [
        *report("1.1.1", "VPD", 2025, d(2025, 12, 1), {"1.1.1.1": "done", "1.1.1.2": 20, "1.1.1.3": 100}),
        *report("2.1.2", "VPD", 2025, d(2025, 12, 1), {"2.1.2.1": "in_progress", "2.1.2.2": "done"}),
        *report("1.1.2", "VPD", 2026, d(2026, 12, 1), {"1.1.2.1": 7}),
    ]
    y2026 = compile_plan(catalog, PLAN, vals, year=2026, as_of=dt.date(2027, 1, 15))
    status = {row.id: row.status for *_, row in y2026.rows()}
    assert status["1.1.1.2"] is Status.NOT_REPORTED  # 20 of 120 in 2025, nothing for 2026
    assert y2026.row("1.1.1.2").cumulative == 20  # the earlier value still counts in the total
    assert status["2.1.2.1"] is Status.NOT_REPORTED  # in progress in 2025, nothing for 2026
    assert status["1.1.1.3"] is Status.DONE  # 100 of 100 reached in 2025 stays izpildīts
    assert status["1.1.1.1"] is Status.DONE  # a one-off milestone done in 2025 stays izpildīts
    assert status["2.1.2.2"] is Status.DONE
    assert status["1.1.2.1"] is Status.IN_PROGRESS  # reported for 2026, 7 of 10: on pace
    assert y2026.summary.counts[Status.NOT_REPORTED] == 13 - 4

    whole = compile_plan(catalog, PLAN, vals, year=None, as_of=dt.date(2027, 1, 15))
    status = {row.id: row.status for *_, row in whole.rows()}
    assert status["1.1.1.2"] is Status.RISK  # reported (in 2025), far behind the pace
    assert status["2.1.2.1"] is Status.IN_PROGRESS
    assert status["2.1.1.1"] is Status.NOT_REPORTED  # never reported
    assert whole.summary.counts[Status.NOT_REPORTED] == 13 - 6


def test_row_status_rules_table() -> None:
    cases = [
        (RowFacts(MetricKind.COUNT, reported=False), Status.NOT_REPORTED),
        (RowFacts(MetricKind.COUNT, reported=True, target_reached=True, risk_flag=True), Status.DONE),
        (RowFacts(MetricKind.MILESTONE, reported=True, reported_status="done"), Status.DONE),
        # a numeric row is not "done" by the institution's word alone
        (RowFacts(MetricKind.COUNT, reported=True, reported_status="done"), Status.IN_PROGRESS),
        (RowFacts(MetricKind.COUNT, reported=True, risk_flag=True), Status.RISK),
        (RowFacts(MetricKind.MILESTONE, reported=True, reported_status="risk"), Status.RISK),
        (RowFacts(MetricKind.COUNT, reported=True, pace_shortfall=0.26), Status.RISK),
        (RowFacts(MetricKind.COUNT, reported=True, pace_shortfall=0.25), Status.IN_PROGRESS),
        (RowFacts(MetricKind.PERCENT, reported=True, pace_shortfall=0.9), Status.IN_PROGRESS),
        (
            RowFacts(MetricKind.MILESTONE, reported=True, reported_status="in_progress", overdue=True),
            Status.RISK,
        ),
        (RowFacts(MetricKind.MILESTONE, reported=True, reported_status="not_started"), Status.NOT_STARTED),
        (RowFacts(MetricKind.SESSIONS, reported=True, nothing_achieved=True), Status.NOT_STARTED),
        (RowFacts(MetricKind.TEXT, reported=True), Status.IN_PROGRESS),
    ]
    for facts, expected in cases:
        assert row_status(facts) is expected, facts


def test_combining_institutions() -> None:
    assert combine_statuses(["done", "done"]) == "done"
    assert combine_statuses(["done", "not_started"]) == "in_progress"
    assert combine_statuses(["done", "risk"]) == "risk"
    assert combine_statuses([None, "not_started"]) == "not_started"
    assert combine_statuses([]) is None
    assert combine_review_states(["accepted", "pending"]) == "pending"
    assert combine_review_states(["accepted", "returned", "pending"]) == "returned"
    assert combine_review_states(["accepted"]) == "accepted"


# ---------------------------------------------------------------- values, sums, shares


def test_multi_institution_sum_and_shares(y2025: CompiledPlan, whole: CompiledPlan) -> None:
    row = y2025.row("1.1.1.2")
    assert row.values == {2025: 29}
    assert row.cumulative == 29
    assert row.percent == pytest.approx(29 / 120 * 100)
    assert row.expected_share == pytest.approx(364 / 1094)
    parts = {s.institution: s for s in row.institutions}
    assert list(parts) == ["TM", "VPD"]  # the measure's order: responsible, then co-responsible
    assert parts["TM"].share == pytest.approx(9 / 29)
    assert parts["VPD"].share == pytest.approx(20 / 29)
    assert parts["VPD"].review_state == "pending"
    assert row.review_state == "pending"  # accepted + pending
    assert row.last_submitted == dt.datetime(2026, 1, 10, 9, tzinfo=RIGA)

    row = whole.row("1.1.1.2")
    assert row.values == {2025: 29, 2026: 80, 2027: 15}
    assert row.cumulative == 124
    assert row.percent == pytest.approx(124 / 120 * 100)
    parts = {s.institution: s for s in row.institutions}
    assert parts["VPD"].values == {2025: 20, 2026: 80, 2027: 15}
    assert parts["VPD"].cumulative == 115
    assert parts["VPD"].share == pytest.approx(115 / 124)
    assert parts["TM"].share == pytest.approx(9 / 124)
    assert row.review_state == "returned"  # VPD's 2027 report was returned


def test_year_filter_excludes_later_years(y2025: CompiledPlan) -> None:
    assert y2025.row("1.1.2.1").cumulative == 5  # IeVP's 30 of 2026 not counted
    assert y2025.row("1.1.2.1").values == {2025: 5}


def test_levels_average_over_institutions_and_take_the_latest_year(
    y2025: CompiledPlan, whole: CompiledPlan
) -> None:
    assert y2025.row("1.1.2.2").values == {2025: 30}  # mean of VPD 40 and IeVP 20
    assert y2025.row("1.1.2.2").cumulative == 30
    assert y2025.row("1.1.2.2").institutions[0].share is None  # no shares of a percentage
    row = whole.row("1.1.2.2")
    assert row.values == {2025: 30, 2026: 45, 2027: None}
    assert row.cumulative == 45  # the latest year, not a sum
    assert row.percent == pytest.approx(90)
    assert row.risk_flag is True


def test_milestone_and_text_rows(y2025: CompiledPlan, whole: CompiledPlan) -> None:
    row = y2025.row("1.1.1.1")
    assert row.reported_status == "in_progress"
    assert row.statuses == {2025: "in_progress"}
    assert row.texts() == [("TM", 2025, "Izstrāde sākta")]
    assert row.cumulative is None and row.percent is None
    assert whole.row("1.1.1.1").statuses == {2025: "in_progress", 2026: "done"}
    assert y2025.row("1.2.1.2").texts(2025) == [("IeVP", 2025, "Notiek konsultācijas")]


def test_only_the_latest_revision_counts(catalog: Catalog) -> None:
    first = report("1.1.1", "VPD", 2025, dt.datetime(2025, 12, 1), {"1.1.1.2": 100}, revision=1)
    second = report("1.1.1", "VPD", 2025, dt.datetime(2025, 12, 5), {"1.1.1.2": 40}, revision=2)
    row = compile_2025(catalog, second + first).row("1.1.1.2")
    assert row.cumulative == 40


def test_aggregates_per_task_and_direction(y2025: CompiledPlan, whole: CompiledPlan) -> None:
    counts = {s: n for s, n in y2025.summary.counts.items() if n}
    assert counts == {
        Status.DONE: 1,
        Status.IN_PROGRESS: 5,
        Status.RISK: 4,
        Status.NOT_STARTED: 2,
        Status.NOT_REPORTED: 1,
    }
    assert y2025.summary.rows == 13
    (d1, d2) = y2025.directions
    t11 = d1.tasks[0]
    assert (d1.number, t11.number, d2.tasks[0].number) == ("1", "1.1", "2.1")
    assert t11.summary.rows == 5
    assert t11.summary.numeric_rows == 4
    assert t11.summary.mean_percent == pytest.approx((29 / 120 * 100 + 60 + 50 + 60) / 4)
    assert d1.summary.rows == 7
    assert d2.summary.counts[Status.RISK] == 2
    # whole period: rows above target count as 100 % in the mean
    t11 = whole.directions[0].tasks[0]
    assert t11.summary.mean_percent == pytest.approx((100 + 70 + 100 + 90) / 4)
    assert whole.summary.counts[Status.DONE] == 4
    assert [m.number for m in whole.directions[0].tasks[0].measures] == ["1", "2"]


def test_informal_hierarchy_plan_compiles_with_sections(catalog: Catalog) -> None:
    vals = report("NH.1.1", "IeVP", 2025, dt.datetime(2025, 8, 1), {"NH.1.1.1": 4})
    nh = compile_plan(catalog, "NH-2024", vals, year=2025, as_of=dt.date(2026, 1, 5))
    assert [d.is_section for d in nh.directions] == [True, True]
    assert [d.number for d in nh.directions] == ["1", "2"]
    assert nh.row("NH.1.1.1").status is Status.DONE
    assert nh.row("NH.2.1.1").status is Status.NOT_REPORTED
    assert nh.completeness.total.expected == 2


def test_unknown_plan_and_year(catalog: Catalog) -> None:
    with pytest.raises(KeyError):
        compile_plan(catalog, "nope", [], year=None, as_of=dt.date(2026, 1, 1))
    with pytest.raises(ValueError, match="outside the plan period"):
        compile_plan(catalog, PLAN, [], year=2024, as_of=dt.date(2026, 1, 1))


# ---------------------------------------------------------------- completeness and timeliness


def test_completeness_and_timeliness_2025(y2025: CompiledPlan) -> None:
    c = y2025.completeness
    got = {(r.institution, r.year): (r.expected, r.actual, r.on_time) for r in c.rows}
    assert got == {
        ("TM", 2025): (2, 1, 1),  # 1.1.1 on time; 2.1.1 missing
        ("VPD", 2025): (4, 4, 2),  # 1.1.1 (10 Jan) and 2.1.1 (00:30 Rīga time, 1 Jan) late
        ("IeVP", 2025): (2, 2, 2),  # 1.1.2 and 1.2.1; NVO does not report
    }
    tm = next(r for r in c.rows if r.institution == "TM")
    assert tm.missing == ("2.1.1",)
    assert tm.completeness == pytest.approx(50.0)
    assert (c.total.expected, c.total.actual, c.total.on_time) == (8, 7, 5)
    assert c.total.completeness == pytest.approx(87.5)
    assert c.total.timeliness == pytest.approx(62.5)
    assert c.grace_days == 0


def test_grace_period(catalog: Catalog, values: list[ReportedValue]) -> None:
    assert compile_2025(catalog, values, grace_days=1).completeness.total.on_time == 6
    assert compile_2025(catalog, values, grace_days=10).completeness.total.on_time == 7


def test_first_submission_time_can_be_given(catalog: Catalog, values: list[ReportedValue]) -> None:
    first = {("1.1.1", "VPD", 2025): dt.datetime(2025, 12, 28, tzinfo=RIGA)}
    assert compile_2025(catalog, values, first_submitted=first).completeness.total.on_time == 6


def test_completeness_whole_period(
    whole: CompiledPlan, catalog: Catalog, values: list[ReportedValue]
) -> None:
    c = whole.completeness
    assert c.years == (2025, 2026, 2027)
    per_year = {r.year: (r.expected, r.actual) for r in c.by_year}
    # 1.2.1 (deadline 30.06.2025) is not due after 2025
    assert per_year == {2025: (8, 7), 2026: (7, 4), 2027: (7, 1)}
    standalone = compile_completeness(catalog, PLAN, values, year=None, as_of=dt.date(2028, 1, 10))
    assert standalone == c
    # years that have not started are not expected yet
    early = compile_completeness(catalog, PLAN, values, year=None, as_of=dt.date(2026, 3, 1))
    assert early.years == (2025, 2026)


# ---------------------------------------------------------------- validation warnings


def test_check_rules_at_submit_time(catalog: Catalog) -> None:
    warnings = check_rules(catalog, "1.1.1", {"1.1.1.2": 50, "1.1.1.3": 40}, {})
    assert [(w.code, dict(w.params), w.indicator_ids) for w in warnings] == [
        ("trained_above_participants", {"left": 50, "right": 40}, ("1.1.1.2", "1.1.1.3")),
    ]
    assert check_rules(catalog, "1.1.1", {"1.1.1.2": 40, "1.1.1.3": 40}, {}) == []
    # only one of the pair answered: nothing to compare
    assert check_rules(catalog, "1.1.1", {"1.1.1.2": 50}, {}) == []

    (w,) = check_rules(catalog, "1.1.1", {"1.1.1.2": 70}, {"1.1.1.2": 300})
    assert (w.code, w.params["cumulative"], w.params["target"], w.params["multiple"]) == (
        "cumulative_above_target",
        370,
        120,
        3.0,
    )
    assert check_rules(catalog, "1.1.1", {"1.1.1.2": 60}, {"1.1.1.2": 300}) == []  # exactly 3×

    (w,) = check_rules(catalog, catalog.measure("1.1.2"), {"1.1.2.2": 120}, {})
    assert w.code == "percent_out_of_range"
    (w,) = check_rules(catalog, "2.1.1", {"2.1.1.3": -1}, {})
    assert w.code == "negative_value"


def test_validation_multiple_is_configurable(catalog: Catalog) -> None:
    rules = ValidationRules.model_validate(
        {"rules": [{"code": "cumulative_above_target", "type": "cumulative_multiple_of_target",
                    "multiple": 2, "kinds": ["people_trained"]}]}
    )  # fmt: skip
    assert [w.code for w in check_rules(catalog, "1.1.1", {"1.1.1.2": 250}, {}, rules=rules)] == [
        "cumulative_above_target"
    ]


def test_warnings_in_compilation(whole: CompiledPlan, y2025: CompiledPlan) -> None:
    found = [(w.measure_id, w.year, w.institution, w.warning.code) for w in whole.warnings]
    assert found == [
        ("1.1.1", 2026, "VPD", "trained_above_participants"),  # VPD: 80 trained, 10 participants
        ("1.1.2", 2026, None, "cumulative_above_target"),  # the row: 5 + 36 = 41 > 3 × 10
    ]
    assert whole.warnings[1].warning.params["cumulative"] == 41
    assert y2025.warnings == ()


def test_compiled_warnings_check_each_institutions_own_answers(catalog: Catalog) -> None:
    """TM reports 50 trained of 10 participants, VPD 0 of 100: added up (50 of 110) the
    violation would hide; each institution's report is checked as when it was submitted."""
    d = dt.datetime
    vals = [
        *report("1.1.1", "TM", 2025, d(2025, 12, 1), {"1.1.1.2": 50, "1.1.1.3": 10}),
        *report("1.1.1", "VPD", 2025, d(2025, 12, 1), {"1.1.1.2": 0, "1.1.1.3": 100}),
        *report("1.1.2", "IeVP", 2025, d(2025, 12, 1), {"1.1.2.2": 120}),
        *report("1.1.2", "VPD", 2025, d(2025, 12, 1), {"1.1.2.2": 40}),
    ]
    compiled = compile_2025(catalog, vals)
    found = [
        (w.measure_id, w.year, w.institution, w.warning.code, dict(w.warning.params))
        for w in compiled.warnings
    ]
    assert found == [
        ("1.1.1", 2025, "TM", "trained_above_participants", {"left": 50, "right": 10}),
        # IeVP's 120 % is out of range although the row's mean (80 %) is not
        ("1.1.2", 2025, "IeVP", "percent_out_of_range", {"value": 120, "min": 0, "max": 100}),
    ]
    # the cumulative check stays on the row's totals across institutions
    many = [
        *report("1.1.1", "TM", 2025, d(2025, 12, 1), {"1.1.1.2": 200}),
        *report("1.1.1", "VPD", 2025, d(2025, 12, 1), {"1.1.1.2": 200}),
    ]
    (w,) = compile_2025(catalog, many).warnings
    assert (w.institution, w.warning.code, w.warning.params["cumulative"]) == (
        None,
        "cumulative_above_target",
        400,
    )


# ---------------------------------------------------------------- policy results


def test_policy_results_table(catalog: Catalog) -> None:
    actuals = [
        PolicyActual("PR1.RR1", 2025, 130, "VID", "koordinators", dt.datetime(2026, 3, 1)),
        PolicyActual("PR1.RR1", 2026, 125, "VID", "koordinators", dt.datetime(2027, 3, 1)),
        PolicyActual("PR1.RR2", 2025, 14.5, "IS PLUS", "koordinators", dt.datetime(2026, 2, 1)),
        PolicyActual(
            "PR1.RR2", 2025, 15.2, "IS PLUS", "koordinators", dt.datetime(2026, 2, 20)
        ),  # correction
    ]
    table = compile_policy_results(catalog, PLAN, actuals)
    assert table.history_years == (2022, 2023, 2024)
    assert table.years == (2025, 2026, 2027)
    rr1, rr2 = table.rows
    assert rr1.history == {2022: 100, 2023: 110, 2024: 120}
    assert rr1.data_source == "Valsts ieņēmumu dienests"
    assert [(y.year, y.target.text if y.target else None, y.value, y.met) for y in rr1.years] == [
        (2025, "Pieaug", 130, True),  # grows on 120 (2024)
        (2026, "Pieaug", 125, False),  # below 130
        (2027, "Pieaug", None, None),
    ]
    assert [(y.value, y.met) for y in rr2.years] == [(15.2, True), (None, None), (None, None)]
    assert rr2.years[0].actual is not None and rr2.years[0].actual.entered_at == dt.datetime(2026, 2, 20)


def test_policy_history_years_show_entered_values(catalog: Catalog) -> None:
    """A value entered for 2022–2024 shows over the passport's (with its source) and is the
    "year before" of a "Pieaug" target."""
    at = dt.datetime(2026, 3, 1)
    actuals = [
        PolicyActual("PR1.RR1", 2024, 125, "VID 2025", "koordinators", at),
        PolicyActual("PR1.RR1", 2025, 124, "VID", "koordinators", at),
        PolicyActual("PR1.RR2", 2022, 11.5, None, None, at),
    ]
    rr1, rr2 = compile_policy_results(catalog, PLAN, actuals).rows
    assert rr1.history == {2022: 100, 2023: 110, 2024: 120}  # the passport, as it is
    assert [rr1.history_value(y) for y in (2022, 2023, 2024)] == [100, 110, 125]
    assert rr1.entered[2024].source == "VID 2025"
    assert (rr1.years[0].value, rr1.years[0].met) == (124, False)  # 124 does not grow on 125
    assert [rr2.history_value(y) for y in (2022, 2023, 2024)] == [11.5, 13, 14]
    assert set(rr2.entered) == {2022}


def test_default_rules_load() -> None:
    rules = default_status_rules()
    assert rules.period.years == (2025, 2026, 2027)
    assert rules.rules[-1].status is Status.IN_PROGRESS


# ---------------------------------------------------------------- the real catalog


def _real_catalog() -> Catalog:
    try:
        return load_catalog()
    except (CatalogError, OSError) as exc:
        pytest.skip(f"the real catalog does not load yet: {exc}")


def _on_pace(catalog: Catalog) -> dict[str, dict[int, float]]:
    """Per numeric indicator row with a target: the yearly values that keep it exactly on the
    linear pace to its own deadline (cumulative at 31 December = target × expected share)."""
    rules = default_status_rules()
    out: dict[str, dict[int, float]] = {}
    for _, _, _, measure in catalog.measures():
        for ind in measure.indicators:
            if not ind.kind.is_numeric or not ind.target:
                continue
            deadline = ind.deadline or measure.deadline or rules.period.end
            done_before = 0.0
            for year in rules.period.years:
                share = expected_share(dt.date(year, 12, 31), deadline, rules.period.start)
                level = ind.kind is MetricKind.PERCENT
                cumulative = ind.target * share
                out.setdefault(ind.id, {})[year] = cumulative if level else cumulative - done_before
                done_before = cumulative
    return out


def test_answers_on_the_plans_pace_give_no_warning_on_the_real_plan() -> None:
    real = _real_catalog()
    pace = _on_pace(real)
    for _, _, _, measure in real.measures():
        before: dict[str, float] = {}
        for year in default_status_rules().period.years:
            answers = {i.id: pace[i.id][year] for i in measure.indicators if i.id in pace}
            assert check_rules(real, measure, answers, before) == [], (measure.id, year)
            for ind_id, value in answers.items():
                before[ind_id] = before.get(ind_id, 0.0) + value
    # compiled: the responsible institution reports on pace every year
    for plan in real.plans:
        vals = [
            ReportedValue(f"{m.id}/{year}", m.id, ind.id, m.responsible[0], year, pace[ind.id][year],
                          None, None, 1, dt.datetime(year, 12, 1, tzinfo=UTC), "accepted")
            for m in plan.measures()
            for ind in m.indicators
            if ind.id in pace
            for year in (2025, 2026, 2027)
        ]  # fmt: skip
        compiled = compile_plan(real, plan.id, vals, year=None, as_of=dt.date(2028, 1, 10))
        assert compiled.warnings == (), plan.id


def test_pair_rule_compares_only_rows_counting_the_same_people() -> None:
    real = _real_catalog()
    units = {i.id: i.unit for i in real.measure("2.1.2").indicators}
    assert units["2.1.2.1"] == "probācijas klienti" and units["2.1.2.3"] == "darbinieki"
    # 350 staff trained, 200 probation clients worked with: different people, no warning
    assert check_rules(real, "2.1.2", {"2.1.2.1": 200, "2.1.2.3": 350}, {}) == []
    # rows of the same unit are still compared (the seeded catalog's rows have none)
    (w,) = check_rules(build_catalog(), "1.1.1", {"1.1.1.2": 50, "1.1.1.3": 40}, {})
    assert w.code == "trained_above_participants"


def test_real_catalog_compiles() -> None:
    try:
        real = load_catalog()
    except (CatalogError, OSError) as exc:
        pytest.skip(f"the real catalog does not load yet: {exc}")
    plan = next((p for p in real.plans if p.id != "NH-2024" and p.policy_results), None)
    if plan is None:
        pytest.skip("the resocialisation plan is not in the catalog yet")
    first = next(plan.measures())
    inst = first.reporters[0]
    vals = [
        ReportedValue(1, first.id, ind.id, inst, 2025, 1 if ind.kind.is_numeric else None,
                      None if ind.kind.is_numeric else "in_progress", None, 1,
                      dt.datetime(2025, 12, 1), "accepted")
        for ind in first.indicators
    ]  # fmt: skip
    compiled = compile_plan(real, plan.id, vals, year=2025, as_of=dt.date(2026, 1, 15))
    rows = list(compiled.rows())
    assert len(rows) == sum(len(m.indicators) for m in plan.measures())
    assert compiled.summary.rows == len(rows)
    assert compiled.summary.counts[Status.NOT_REPORTED] == len(rows) - len(first.indicators)
    assert compiled.completeness.total.actual == 1
    table = compile_policy_results(real, plan.id, [])
    assert len(table.rows) == sum(len(pr.indicators) for pr in plan.policy_results)
    if any(p.id == "NH-2024" for p in real.plans):
        nh = compile_plan(real, "NH-2024", [], year=None, as_of=dt.date(2026, 1, 15))
        assert all(d.is_section for d in nh.directions)


def test_compilation_leaves_the_garbage_collector_as_it_was(
    catalog: Catalog, values: list[ReportedValue]
) -> None:
    import gc

    assert gc.isenabled()
    compile_2025(catalog, values)
    assert gc.isenabled()
    gc.disable()
    try:
        compile_2025(catalog, values)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _random_values(catalog: Catalog, rng: random.Random) -> list[ReportedValue]:
    """Reports of random institutions, years and answers (some rows left out, some corrected)."""
    out: list[ReportedValue] = []
    for _, _, _, measure in catalog.measures():
        for inst in dict.fromkeys((*measure.institutions, "TM")):  # TM: also one not responsible
            for year in (2025, 2026, 2027):
                if rng.random() < 0.3:
                    continue
                at = dt.datetime(year, 12, rng.randint(1, 31), tzinfo=UTC)
                answers = {
                    ind.id: (
                        float(rng.choice((0, 5, 40, 90, 130, 400, -1)))
                        if ind.kind.is_numeric
                        else rng.choice(("done", "in_progress", "not_started", "risk"))
                    )
                    for ind in measure.indicators
                    if rng.random() < 0.8
                }
                review = rng.choice(("accepted", "pending", "returned"))
                out += report(measure.id, inst, year, at, answers, review=review, risk=rng.random() < 0.2)
    return out


def test_compiled_shares_and_warnings_match_a_plain_reading(catalog: Catalog) -> None:
    """The compilation's shortcuts (report facts shared by a measure's rows, pre-filtered checks)
    give what reading each share's reports and running the rules per report give."""
    for seed in range(25):
        values = _random_values(catalog, random.Random(seed))
        compiled = compile_all(catalog, values)
        expected_warnings = set()
        for *_, row in compiled.rows():
            for share in row.institutions:
                reports = share.reports
                assert share.last_submitted == max(v.submitted_at for v in reports.values())
                assert share.review_state == combine_review_states(v.review_state for v in reports.values())
                assert share.risk_flag == reports[max(reports)].risk_flag
                present = [v.value for _, v in sorted(reports.items()) if v.value is not None]
                if row.level:
                    assert share.cumulative == (present[-1] if present else None)
                else:
                    assert share.cumulative == (sum(present) if present else None)
        for _, _, _, measure in catalog.measures():
            if measure.id.startswith("NH"):
                continue
            rows = [compiled.row(ind.id) for ind in measure.indicators]
            before: dict[str, float] = {}
            for year in compiled.years:
                for share_inst in dict.fromkeys((*measure.institutions, "TM")):
                    answers = {
                        r.id: v.value
                        for r in rows
                        if (v := r.reports.get(share_inst, {}).get(year)) is not None and v.value is not None
                    }
                    report_scope = check_rules(catalog, measure, answers, {}, row_answers={})
                    expected_warnings |= {
                        (measure.id, year, share_inst, w.code, tuple(sorted(w.params.items())))
                        for w in report_scope
                    }
                totals = {r.id: r.values[year] for r in rows if r.values[year] is not None}
                whole = check_rules(catalog, measure, {}, before, row_answers=totals)
                expected_warnings |= {
                    (measure.id, year, None, w.code, tuple(sorted(w.params.items()))) for w in whole
                }
                for r in rows:
                    if totals.get(r.id) is not None and not r.level:
                        before[r.id] = before.get(r.id, 0.0) + totals[r.id]
        found = {
            (w.measure_id, w.year, w.institution, w.warning.code, tuple(sorted(w.warning.params.items())))
            for w in compiled.warnings
        }
        assert found == expected_warnings, seed


def test_breakdown_is_built_on_demand_and_consistent(y2025: CompiledPlan) -> None:
    row = y2025.row("1.1.1.2")
    assert set(row.reports) == {"TM", "VPD"}
    assert row.reports["VPD"][2025].revision == 2
    assert row.institutions is row.institutions  # built once
    assert sum(s.cumulative or 0 for s in row.institutions) == row.cumulative
