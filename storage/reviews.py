"""Reviews of submitted reports (``ReviewRepo``): the coordinators' accept/return decision,
one conditional UPDATE per revision, and what /review lists. Portable SQL (SQLite and PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import tables as t
from storage.db import as_utc


class ReviewError(StrEnum):
    """Why a review could not be recorded (message macro ``coordinator.review_error_<value>``)."""

    NOT_FOUND = "not_found"
    NOT_SUBMITTED = "not_submitted"
    CHANGED = "changed"  # a newer revision arrived since the coordinator saw the report
    ALREADY = "already"  # someone reviewed this revision already


@dataclass(frozen=True)
class ReviewResult:
    report: t.Report | None
    error: ReviewError | None = None
    reviewed_by: str | None = None  # ALREADY: who reviewed the revision (when it was recorded)
    reviewed_at: dt.datetime | None = None


REVIEW_FIELD = "review"  # the entry a review appends to its revision's report_revision.changes


class ReviewRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---------------------------------------------------------------- review

    async def pending_reviews(self, *, offset: int = 0, limit: int = 5) -> tuple[int, list[int]]:
        """(how many submitted reports wait for review, the ids of one page, oldest first)."""
        where = (t.Report.status == t.ReportStatus.SUBMITTED, t.Report.review_state == t.ReviewState.PENDING)
        total = (await self.session.exec(select(func.count()).select_from(t.Report).where(*where))).one()
        stmt = (
            select(t.Report.id)
            .where(*where)
            .order_by(col(t.Report.submitted_at), col(t.Report.id))
            .offset(offset)
            .limit(limit)
        )
        return total, [rid for rid in (await self.session.exec(stmt)).all() if rid is not None]

    async def review(
        self,
        report_id: int,
        *,
        state: str,
        comment: str | None = None,
        revision: int | None = None,
        reviewer_id: int | None = None,
        reviewer: str | None = None,
        now: dt.datetime | None = None,
    ) -> ReviewResult:
        """Accept or return the revision the coordinator saw (``revision``).

        One conditional UPDATE (``… WHERE review_state = 'pending' AND revision = :rev``), so of
        two coordinators deciding at once exactly one succeeds; the other gets ALREADY (and who
        reviewed) or CHANGED. Who reviewed and when goes into the revision's audit trail: an
        entry ``{"field": "review", "old": "pending", "new": state, "by", "by_name", "at",
        "comment"}`` appended to ``report_revision.changes``. A correction later resets the state
        to pending (``ReportRepo.submit``)."""
        if state not in (t.ReviewState.ACCEPTED, t.ReviewState.RETURNED):
            raise ValueError(f"not a review decision: {state!r}")
        conditions = [
            col(t.Report.id) == report_id,
            col(t.Report.status) == t.ReportStatus.SUBMITTED,
            col(t.Report.review_state) == t.ReviewState.PENDING,
        ]
        if revision is not None:
            conditions.append(col(t.Report.revision) == revision)
        stmt = (
            update(t.Report)
            .where(*conditions)
            .values(review_state=state, review_comment=comment if state == t.ReviewState.RETURNED else None)
            .execution_options(synchronize_session=False)
        )
        decided = (await self.session.exec(stmt)).rowcount == 1  # type: ignore[call-overload]
        report = await self.session.get(t.Report, report_id, populate_existing=True)
        if not decided:
            return await self._refused(report, revision)
        assert report is not None
        entry = {
            "field": REVIEW_FIELD,
            "old": str(t.ReviewState.PENDING),
            "new": str(state),
            "by": reviewer_id,
            "by_name": reviewer,
            "at": as_utc(now or t.utcnow()).isoformat(),
            "comment": comment if state == t.ReviewState.RETURNED else None,
        }
        audit = await self._revision(report_id, report.revision)
        if audit is not None:  # only the UPDATE's winner gets here: no concurrent append
            audit.changes = [*audit.changes, entry]
        await self.session.flush()
        return ReviewResult(report)

    async def check_pending(self, report_id: int, revision: int) -> ReviewResult:
        """Whether revision ``revision`` of a report still waits for review (no write): the
        reason it does not (``error``, with who reviewed it), or a result without error."""
        report = await self.session.get(t.Report, report_id, populate_existing=True)
        if (
            report is not None
            and report.status == t.ReportStatus.SUBMITTED
            and report.revision == revision
            and report.review_state == t.ReviewState.PENDING
        ):
            return ReviewResult(report)
        return await self._refused(report, revision)

    async def decision(self, report_id: int) -> tuple[int, str] | None:
        """(revision, review state) of a report as this session sees it; None when it is gone."""
        stmt = select(t.Report.revision, t.Report.review_state).where(t.Report.id == report_id)
        found = (await self.session.exec(stmt)).first()
        return None if found is None else (found[0], found[1])

    async def _refused(self, report: t.Report | None, revision: int | None) -> ReviewResult:
        if report is None:
            return ReviewResult(None, ReviewError.NOT_FOUND)
        if report.status != t.ReportStatus.SUBMITTED:
            return ReviewResult(report, ReviewError.NOT_SUBMITTED)
        if revision is not None and report.revision != revision:
            return ReviewResult(report, ReviewError.CHANGED)
        by, at = await self.reviewed_by(report.id, report.revision) if report.id is not None else (None, None)
        return ReviewResult(report, ReviewError.ALREADY, by, at)

    async def _revision(self, report_id: int, revision: int) -> t.ReportRevision | None:
        stmt = select(t.ReportRevision).where(
            t.ReportRevision.report_id == report_id, t.ReportRevision.revision == revision
        )
        return (await self.session.exec(stmt)).first()

    async def reviewed_by(self, report_id: int, revision: int) -> tuple[str | None, dt.datetime | None]:
        """(reviewer's name, when) of a revision's latest review in its audit trail."""
        audit = await self._revision(report_id, revision)
        entries = [c for c in (audit.changes if audit else []) if c.get("field") == REVIEW_FIELD]
        if not entries:
            return None, None
        last = entries[-1]
        at = last.get("at")
        return last.get("by_name"), dt.datetime.fromisoformat(at) if at else None

    async def review_counts(self) -> dict[str, int]:
        """Submitted reports per review state."""
        stmt = (
            select(t.Report.review_state, func.count())
            .where(t.Report.status == t.ReportStatus.SUBMITTED)
            .group_by(t.Report.review_state)
        )
        return {state: n for state, n in (await self.session.exec(stmt)).all()}
