"""The reads feeding the compilation and the coordinators' writes, on SQLite and PostgreSQL:
latest revisions as ReportedValue, first submission times, review, policy actuals, the audit
rows of /export — and a compilation from stored reports with golden values."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from reporting_forms.calendar import default_calendar
from reporting_forms.catalog import Catalog
from reporting_forms.compilation import Status
from reporting_forms.summaries import CompileInputs, Scope, compile_inputs, missing_reports
from services.compilation import load_inputs
from storage import tables as t
from storage.compile_inputs import SUPERSEDED, CompileInputsRepo, field_order
from storage.db import Database
from storage.repositories import Repos
from storage.reviews import ReviewError, ReviewRepo

UTC = dt.UTC
T0 = dt.datetime(2025, 12, 10, 9, 0, tzinfo=UTC)

MAIN_PLAN = default_calendar().main_plan


async def _setup(db: Database, catalog: Catalog) -> dict[str, int]:
    """Catalog loaded; contacts Anna (VPD), Jānis (IeVP), Koordinators (TM)."""
    async with db.session() as s:
        repos = Repos(s)
        await repos.catalog.sync(catalog)
        ids: dict[str, int] = {}
        for abbr, name, role in (
            ("VPD", "Anna", "contact"),
            ("IeVP", "Jānis", "contact"),
            ("TM", "Koordinators", "coordinator"),
        ):
            inst = await repos.people.institution(abbr)
            contact = await repos.people.add_contact(display_name=name, institution_id=inst.id, role=role)
            ids[abbr] = inst.id
            ids[name] = contact.id
        return ids


async def _submit(
    db: Database,
    measure: str,
    institution: str,
    year: int,
    answers: dict[str, Any],
    contact: int,
    now: dt.datetime,
) -> int:
    async with db.session() as s:
        repos = Repos(s)
        m = await repos.catalog.measure(measure)
        inst = await repos.people.institution(institution)
        report = await repos.reports.submit(
            measure_id=m.id, institution_id=inst.id, year=year, answers=answers, contact_id=contact, now=now
        )
        return report.id


async def _seed(db: Database, catalog: Catalog) -> dict[str, int]:
    """1.1.1 by VPD for 2025 (two revisions), 1.1.1 by TM for 2025, 1.3.9 by IeVP for 2026 (a risk)."""
    ids = await _setup(db, catalog)
    ids["r1"] = await _submit(
        db, "1.1.1", "VPD", 2025, {"1.1.1.1": "in_progress", "1.1.1.2": 30}, ids["Anna"], T0
    )
    await _submit(
        db,
        "1.1.1",
        "VPD",
        2025,
        {"1.1.1.1": "in_progress", "1.1.1.1.date": "2026-06-30", "1.1.1.2": 45, "comment": "Labots"},
        ids["Anna"],
        T0 + dt.timedelta(days=40),
    )
    ids["r2"] = await _submit(
        db, "1.1.1", "TM", 2025, {"1.1.1.2": 15}, ids["Koordinators"], T0 + dt.timedelta(days=1)
    )
    ids["r3"] = await _submit(
        db, "1.3.9", "IeVP", 2026, {"1.3.9.1": 100}, ids["Jānis"], dt.datetime(2026, 5, 4, 8, tzinfo=UTC)
    )
    return ids


async def test_reported_values_are_the_latest_revision(db: Database, catalog: Catalog) -> None:
    ids = await _seed(db, catalog)
    async with db.session() as s:
        values = await CompileInputsRepo(s).reported_values(plan_id=MAIN_PLAN)
    by_key = {(v.measure_id, v.institution, v.year, v.indicator_id): v for v in values}
    assert set(by_key) == {
        ("1.1.1", "VPD", 2025, "1.1.1.1"),
        ("1.1.1", "VPD", 2025, "1.1.1.2"),
        ("1.1.1", "TM", 2025, "1.1.1.2"),
        ("1.3.9", "IeVP", 2026, "1.3.9.1"),
    }
    vpd = by_key[("1.1.1", "VPD", 2025, "1.1.1.2")]
    assert (vpd.value, vpd.revision, vpd.review_state, vpd.report_id) == (45.0, 2, "pending", ids["r1"])
    assert vpd.submitted_at == T0 + dt.timedelta(days=40)
    assert vpd.submitted_at.tzinfo is not None
    milestone = by_key[("1.1.1", "VPD", 2025, "1.1.1.1")]
    assert (milestone.value, milestone.status, milestone.text) == (None, "in_progress", None)


async def test_reported_values_filters(db: Database, catalog: Catalog) -> None:
    await _seed(db, catalog)
    async with db.session() as s:
        repo = CompileInputsRepo(s)
        assert {v.institution for v in await repo.reported_values(institution="vpd")} == {"VPD"}
        assert {v.year for v in await repo.reported_values(years=[2026])} == {2026}
        assert await repo.reported_values(plan_id="NH-2024") == []


async def test_first_submission_time_survives_corrections(db: Database, catalog: Catalog) -> None:
    await _seed(db, catalog)
    async with db.session() as s:
        first = await CompileInputsRepo(s).first_submitted(plan_id=MAIN_PLAN)
    assert first == {
        ("1.1.1", "VPD", 2025): T0,
        ("1.1.1", "TM", 2025): T0 + dt.timedelta(days=1),
        ("1.3.9", "IeVP", 2026): dt.datetime(2026, 5, 4, 8, tzinfo=UTC),
    }


async def test_row_values_besides_a_report(db: Database, catalog: Catalog) -> None:
    """What the row-scope checks of a draft add it to: all institutions, all years up to the
    draft's, everything but the draft's own (institution, year) report."""
    ids = await _seed(db, catalog)  # 1.1.1 for 2025: VPD 45 (revision 2), TM 15
    await _submit(db, "1.1.1", "TM", 2026, {"1.1.1.2": 7}, ids["Koordinators"], T0 + dt.timedelta(days=400))
    await _submit(db, "1.1.1", "TM", 2027, {"1.1.1.2": 99}, ids["Koordinators"], T0 + dt.timedelta(days=700))
    async with db.session() as s:
        repo = CompileInputsRepo(s)
        m = await Repos(s).catalog.measure("1.1.1")
        assert await repo.row_values_besides(m.id, ids["VPD"], 2026) == {"1.1.1.2": {2025: 60.0, 2026: 7.0}}
        assert await repo.row_values_besides(m.id, ids["VPD"], 2025) == {"1.1.1.2": {2025: 15.0}}
        assert await repo.row_values_besides(m.id, ids["TM"], 2026) == {"1.1.1.2": {2025: 60.0}}


async def test_review_accept_return_and_stale_requests(db: Database, catalog: Catalog) -> None:
    ids = await _seed(db, catalog)
    async with db.session() as s:
        repo = ReviewRepo(s)
        total, page = await repo.pending_reviews(limit=2)
        assert total == 3 and page == [ids["r2"], ids["r1"]]  # oldest submission first
        assert (await repo.pending_reviews(offset=2, limit=2))[1] == [ids["r3"]]
        assert (await repo.review(ids["r1"], state="accepted", revision=1)).error is ReviewError.CHANGED
        assert (await repo.review(9999, state="accepted")).error is ReviewError.NOT_FOUND
        done = await repo.review(ids["r1"], state="returned", comment="Precizējiet 1.1.1.2", revision=2)
        assert done.error is None and done.report.review_comment == "Precizējiet 1.1.1.2"
        assert (await repo.review(ids["r1"], state="accepted", revision=2)).error is ReviewError.ALREADY
        assert (await repo.review(ids["r2"], state="accepted", revision=1)).error is None
        assert await repo.review_counts() == {"pending": 1, "returned": 1, "accepted": 1}
        with pytest.raises(ValueError):
            await repo.review(ids["r3"], state="pending")
    # a correction is a new revision and waits for review again
    await _submit(db, "1.1.1", "VPD", 2025, {"1.1.1.2": 50}, ids["Anna"], T0 + dt.timedelta(days=50))
    async with db.session() as s:
        values = await CompileInputsRepo(s).reported_values(institution="VPD")
        assert {(v.revision, v.review_state) for v in values} == {(3, "pending")}
        assert (await ReviewRepo(s).pending_reviews())[0] == 2


async def test_review_is_one_conditional_update(db: Database, catalog: Catalog) -> None:
    """A coordinator's session still holds the report as pending (read earlier) while another
    coordinator's decision commits: the late decision must not overwrite it."""
    ids = await _seed(db, catalog)
    async with db.session() as s:
        repo = ReviewRepo(s)
        seen = await s.get(t.Report, ids["r2"])  # the first coordinator's view: pending
        assert seen is not None and seen.review_state == "pending"
        await s.commit()  # its read transaction ends; the object stays in the session
        async with db.engine.begin() as other:  # the second coordinator accepts meanwhile
            await other.execute(
                update(t.Report).where(col(t.Report.id) == ids["r2"]).values(review_state="accepted")
            )
        late = await repo.review(ids["r2"], state="returned", comment="Precizējiet", revision=1)
        assert late.error is ReviewError.ALREADY
        assert late.report is not None and late.report.review_state == "accepted"
    async with db.session() as s:
        report = await s.get(t.Report, ids["r2"])
        assert report is not None and (report.review_state, report.review_comment) == ("accepted", None)


async def test_review_is_recorded_in_the_audit_trail(db: Database, catalog: Catalog) -> None:
    ids = await _seed(db, catalog)
    at = dt.datetime(2026, 1, 20, 10, 0, tzinfo=UTC)
    async with db.session() as s:
        done = await ReviewRepo(s).review(
            ids["r1"],
            state="accepted",
            revision=2,
            reviewer_id=ids["Koordinators"],
            reviewer="Koordinators",
            now=at,
        )
        assert done.error is None
    async with db.session() as s:
        repo = ReviewRepo(s)
        second = await repo.review(ids["r1"], state="returned", comment="x", revision=2, reviewer="Otrs")
        assert (second.error, second.reviewed_by, second.reviewed_at) == (
            ReviewError.ALREADY,
            "Koordinators",
            at,
        )
        assert (await repo.check_pending(ids["r1"], 2)).reviewed_by == "Koordinators"
        assert (await repo.check_pending(ids["r1"], 1)).error is ReviewError.CHANGED
        assert (await repo.check_pending(ids["r2"], 1)).error is None
        revisions = (
            await s.exec(select(t.ReportRevision).where(t.ReportRevision.report_id == ids["r1"]))
        ).all()
    changes = {rev.revision: rev.changes for rev in revisions}
    assert changes[2][-1] == {
        "field": "review",
        "old": "pending",
        "new": "accepted",
        "by": ids["Koordinators"],
        "by_name": "Koordinators",
        "at": "2026-01-20T10:00:00+00:00",
        "comment": None,
    }
    assert all(c.get("field") != "review" for c in changes[1])  # the superseded revision untouched


async def test_policy_actuals_upsert_and_unknown_indicator(db: Database, catalog: Catalog) -> None:
    ids = await _setup(db, catalog)
    async with db.session() as s:
        repo = CompileInputsRepo(s)
        await repo.set_policy_actual("PR1.RR2", 2025, 15.0, source="VID", contact_id=ids["Koordinators"])
        await repo.set_policy_actual("PR1.RR2", 2025, 15.4, source="VID 2026", contact_id=ids["Koordinators"])
        await repo.set_policy_actual("PR3.RR4", 2026, 300, source=None, contact_id=None)
        with pytest.raises(KeyError):
            await repo.set_policy_actual("PR9.RR1", 2025, 1, source=None, contact_id=None)
    async with db.session() as s:
        actuals = await CompileInputsRepo(s).policy_actuals(plan_id=MAIN_PLAN)
    assert [(a.indicator_id, a.year, a.value, a.source, a.entered_by) for a in actuals] == [
        ("PR1.RR2", 2025, 15.4, "VID 2026", "Koordinators"),
        ("PR3.RR4", 2026, 300.0, None, None),
    ]
    assert actuals[0].entered_at.tzinfo is not None


async def test_revision_rows_for_the_audit_export(db: Database, catalog: Catalog) -> None:
    ids = await _seed(db, catalog)
    async with db.session() as s:
        await ReviewRepo(s).review(ids["r2"], state="accepted", revision=1)
    async with db.session() as s:
        rows = await CompileInputsRepo(s).revision_rows()
    r1 = [(r.revision, r.field, r.value, r.review_state, r.author) for r in rows if r.report_id == ids["r1"]]
    assert r1 == [
        (1, "1.1.1.1", "in_progress", SUPERSEDED, "Anna"),
        (1, "1.1.1.2", 30, SUPERSEDED, "Anna"),
        (2, "1.1.1.1", "in_progress", "pending", "Anna"),
        (2, "1.1.1.1.date", "2026-06-30", "pending", "Anna"),
        (2, "1.1.1.2", 45, "pending", "Anna"),
        (2, "comment", "Labots", "pending", "Anna"),
    ]
    r2 = [r for r in rows if r.report_id == ids["r2"]]
    assert [(r.measure, r.institution, r.year, r.review_state) for r in r2] == [
        ("1.1.1", "TM", 2025, "accepted")
    ]
    assert r2[0].submitted_at == T0 + dt.timedelta(days=1)


def test_field_order_is_plan_order() -> None:
    fields = ["comment", "1.1.10.1", "1.1.2.1.date", "1.1.2.1"]
    assert sorted(fields, key=field_order) == ["1.1.2.1", "1.1.2.1.date", "1.1.10.1", "comment"]


async def test_compilation_from_stored_reports(db: Database, catalog: Catalog) -> None:
    """Golden values: the VPD revision 2 (45) and TM (15) add up on 1.1.1.2; 1.3.9 is 100 of 390."""
    await _seed(db, catalog)
    async with db.session() as s:
        inputs = await load_inputs(s, MAIN_PLAN)
        mine = await load_inputs(s, MAIN_PLAN, institution="VPD")
    whole = compile_inputs(catalog, inputs, plan_id=MAIN_PLAN, year=None, as_of=dt.date(2026, 6, 1))
    row = whole.plan.row("1.1.1.2")
    assert (row.values[2025], row.cumulative, row.review_state) == (60.0, 60.0, "pending")
    assert whole.plan.row("1.3.9.1").cumulative == 100.0
    assert whole.plan.row("1.1.1.1").status is Status.IN_PROGRESS
    assert whole.policy is not None and len(whole.policy.rows) == 9
    # timeliness uses the first submission (10 December 2025), not the January correction
    vpd_2025 = next(r for r in whole.plan.completeness.rows if (r.institution, r.year) == ("VPD", 2025))
    assert (vpd_2025.actual, vpd_2025.on_time) == (1, 1)

    # an institution sees only its own values and measures
    scoped = compile_inputs(
        catalog, mine, plan_id=MAIN_PLAN, year=None, as_of=dt.date(2026, 6, 1), scope=Scope("VPD")
    )
    assert scoped.plan.row("1.1.1.2").cumulative == 45.0
    assert {r.institution for r in scoped.plan.completeness.rows} == {"VPD"}
    with pytest.raises(KeyError):
        scoped.plan.row("1.3.9.1")  # an IeVP measure
    assert scoped.policy is None


def test_missing_reports_for_the_previous_and_current_year(catalog: Catalog) -> None:
    inputs = CompileInputs(values=[], first_submitted={})
    missing = missing_reports(catalog, "NH-2024", inputs, today=dt.date(2026, 2, 10))
    ievp_2025 = next(m for m in missing if (m.institution, m.year) == ("IeVP", 2025))
    assert ievp_2025.days_overdue == 41 and ievp_2025.deadline == dt.date(2025, 12, 31)
    assert "NH.1.1" in ievp_2025.measures
    ievp_2026 = next(m for m in missing if (m.institution, m.year) == ("IeVP", 2026))
    assert ievp_2026.days_overdue < 0
