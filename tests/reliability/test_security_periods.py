"""Issue 11, defect 7: the first confirms of a new year, at the same time, both create the
year's reporting period — one must not fail on the unique year (both backends)."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlmodel import select

from reporting_forms.catalog import Catalog
from storage import tables as t
from storage.db import Database
from storage.repositories import Repos

NOW = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)


async def _submit(db: Database, measure_code: str, institution_id: int, year: int) -> int:
    async with db.unit() as unit:  # the bot's unit of work (hot-path statements)
        repos = Repos(unit)
        measure_id = await repos.catalog.measure_id(measure_code)
        indicators = await repos.catalog.indicators(measure_id)
        answers = {i.code: ("done" if i.kind == "milestone" else "1") for i in indicators}
        report = await repos.reports.submit(
            measure_id=measure_id,
            institution_id=institution_id,
            year=year,
            answers=answers,
            contact_id=None,
            now=NOW,
        )
        return report.period_id


async def test_concurrent_first_confirms_of_a_year(db: Database, catalog: Catalog) -> None:
    async with db.session() as s:
        repos = Repos(s)
        await repos.catalog.sync(catalog)
        vpd = (await repos.people.institution("VPD")).id
    codes = ["1.1.1", "1.1.2", "1.1.3", "1.1.4", "1.1.5"]
    periods = await asyncio.gather(*(_submit(db, code, vpd, 2031) for code in codes))
    async with db.session() as s:
        rows = (await s.exec(select(t.ReportingPeriod).where(t.ReportingPeriod.year == 2031))).all()
        reports = (await s.exec(select(t.Report))).all()
    assert len(rows) == 1 and set(periods) == {rows[0].id}
    assert len(reports) == len(codes)


async def test_period_lookup_is_idempotent(db: Database) -> None:
    async with db.session() as s:
        first = await Repos(s).reports.period(2032)
    async with db.session() as s:
        again = await Repos(s).reports.period(2032)
    assert first.id == again.id and (again.starts, again.ends) == (dt.date(2032, 1, 1), dt.date(2032, 12, 31))
