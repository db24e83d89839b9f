"""Which days a scheduled job has done (``job_run``): the reminder planner and the compilations
read it after a restart to catch up the days they missed, and never do a day twice."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import tables as t


class JobRunRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def done(self, job: str, day: dt.date) -> bool:
        return await self.session.get(t.JobRun, (job, day)) is not None

    async def last_day(self, job: str, before: dt.date | None = None) -> dt.date | None:
        """The latest day ``job`` has done (strictly before ``before`` when given)."""
        stmt = select(func.max(t.JobRun.day)).where(t.JobRun.job == job)
        if before is not None:
            stmt = stmt.where(t.JobRun.day < before)
        last = (await self.session.exec(stmt)).one()
        if isinstance(last, str):  # SQLite hands back the stored text for an aggregate
            last = dt.date.fromisoformat(last)
        return last

    async def mark(self, job: str, day: dt.date, detail: str | None = None) -> None:
        """Record the day as done (again: the detail is refreshed). Commit with the work it covers."""
        row = await self.session.get(t.JobRun, (job, day))
        if row is None:
            self.session.add(t.JobRun(job=job, day=day, detail=(detail or None) and detail[:500]))
        else:
            row.at, row.detail = t.utcnow(), (detail or None) and detail[:500]
            self.session.add(row)
        await self.session.flush()
