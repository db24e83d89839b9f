"""Reads that feed the compilation, and the coordinators' writes (review, policy actuals).

``Report`` / ``ReportValue`` always hold the latest submitted revision of a (measure,
institution, year) report, so the compilation reads them directly; ``ReportRevision`` keeps
every revision for the audit export. Portable SQL (SQLite and PostgreSQL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, Integer, String, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from reporting_forms import compilation as comp
from reporting_forms.catalog import natural_key
from reporting_forms.exports.revisions import SUPERSEDED, RevisionRow  # the /export table's row
from storage import tables as t
from storage.db import Sql, Unit, as_utc


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


def field_order(field: str) -> tuple[Any, ...]:
    """Answer keys in plan order: 1.1.10.2 after 1.1.2.1, ``x.date`` after ``x``, the comment last."""
    return (field == "comment", natural_key(field))


class CompiledRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ---------------------------------------------------------------- compilation inputs

    def _reports(self, plan_id: str | None, institution: str | None, years: Iterable[int] | None) -> Any:
        """Submitted reports joined with measure, institution and period (filters optional)."""
        stmt = (
            select(t.Report, t.Measure.code, t.Institution.abbr, t.ReportingPeriod.year)
            .join(t.Measure, col(t.Report.measure_id) == col(t.Measure.id))
            .join(t.Institution, col(t.Report.institution_id) == col(t.Institution.id))
            .join(t.ReportingPeriod, col(t.Report.period_id) == col(t.ReportingPeriod.id))
            .where(t.Report.status == t.ReportStatus.SUBMITTED)
        )
        if plan_id is not None:
            stmt = stmt.where(t.Measure.plan_id == plan_id)
        if institution is not None:
            stmt = stmt.where(func.lower(t.Institution.abbr) == institution.casefold())
        if years is not None:
            stmt = stmt.where(col(t.ReportingPeriod.year).in_(list(years)))
        return stmt

    async def reported_values(
        self,
        *,
        plan_id: str | None = None,
        institution: str | None = None,
        years: Iterable[int] | None = None,
    ) -> list[comp.ReportedValue]:
        """The latest submitted revision of every (measure, institution, year) report, one
        ``ReportedValue`` per answered indicator row."""
        reports = {
            report.id: (report, code, abbr, year)
            for report, code, abbr, year in (
                await self.session.exec(self._reports(plan_id, institution, years))
            ).all()
        }
        if not reports:
            return []
        stmt = (
            select(t.ReportValue, t.Indicator.code)
            .join(t.Indicator, col(t.ReportValue.indicator_id) == col(t.Indicator.id))
            .where(col(t.ReportValue.report_id).in_(list(reports)))
            .order_by(t.ReportValue.report_id, t.Indicator.position)
        )
        out: list[comp.ReportedValue] = []
        for value, indicator_code in (await self.session.exec(stmt)).all():
            report, measure_code, abbr, year = reports[value.report_id]
            out.append(
                comp.ReportedValue(
                    report_id=report.id,
                    measure_id=measure_code,
                    indicator_id=indicator_code,
                    institution=abbr,
                    year=year,
                    value=value.value_num,
                    status=value.status,
                    text=value.value_text,
                    revision=report.revision,
                    submitted_at=as_utc(report.submitted_at),
                    review_state=report.review_state,
                    risk_flag=report.risk_flag,
                    date=value.value_date,
                    comment=report.comment,
                )
            )
        return out

    async def first_submitted(
        self, *, plan_id: str | None = None, institution: str | None = None
    ) -> dict[tuple[str, str, int], dt.datetime]:
        """When each submitted report was first submitted (its revision 1), for timeliness:
        a correction in February does not make a December report late."""
        stmt = (
            select(
                t.Measure.code,
                t.Institution.abbr,
                t.ReportingPeriod.year,
                func.min(t.ReportRevision.submitted_at),
            )
            .join(t.Report, col(t.ReportRevision.report_id) == col(t.Report.id))
            .join(t.Measure, col(t.Report.measure_id) == col(t.Measure.id))
            .join(t.Institution, col(t.Report.institution_id) == col(t.Institution.id))
            .join(t.ReportingPeriod, col(t.Report.period_id) == col(t.ReportingPeriod.id))
            .where(t.Report.status == t.ReportStatus.SUBMITTED)
            .group_by(t.Measure.code, t.Institution.abbr, t.ReportingPeriod.year)
        )
        if plan_id is not None:
            stmt = stmt.where(t.Measure.plan_id == plan_id)
        if institution is not None:
            stmt = stmt.where(func.lower(t.Institution.abbr) == institution.casefold())
        return {
            (code, abbr, year): as_utc(first)
            for code, abbr, year, first in (await self.session.exec(stmt)).all()
        }

    async def row_values_besides(
        self, measure_id: int, institution_id: int, year: int
    ) -> dict[str, dict[int, float]]:
        """See :func:`row_values_besides`."""
        return await row_values_besides(self.session, measure_id, institution_id, year)

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

    # ---------------------------------------------------------------- policy results

    async def policy_actuals(self, *, plan_id: str | None = None) -> list[comp.PolicyActual]:
        stmt = (
            select(t.PolicyActual, t.PolicyIndicator.code, t.Contact.display_name)
            .join(t.PolicyIndicator, col(t.PolicyActual.policy_indicator_id) == col(t.PolicyIndicator.id))
            .join(t.Contact, col(t.PolicyActual.entered_by_contact_id) == col(t.Contact.id), isouter=True)
            .order_by(t.PolicyIndicator.code, t.PolicyActual.year)
        )
        if plan_id is not None:
            stmt = stmt.where(t.PolicyIndicator.plan_id == plan_id)
        return [
            comp.PolicyActual(
                indicator_id=code,
                year=actual.year,
                value=actual.value,
                source=actual.source,
                entered_by=name,
                entered_at=as_utc(actual.entered_at),
            )
            for actual, code, name in (await self.session.exec(stmt)).all()
        ]

    async def set_policy_actual(
        self,
        code: str,
        year: int,
        value: float,
        *,
        source: str | None,
        contact_id: int | None,
        now: dt.datetime | None = None,
    ) -> t.PolicyActual:
        """Insert or replace the actual of a policy-result indicator for a year. KeyError when
        the indicator is not in the database (run ``resobot init``)."""
        indicator = (
            await self.session.exec(
                select(t.PolicyIndicator).where(
                    t.PolicyIndicator.code == code, col(t.PolicyIndicator.active).is_(True)
                )
            )
        ).first()
        if indicator is None:
            raise KeyError(code)
        row = (
            await self.session.exec(
                select(t.PolicyActual).where(
                    t.PolicyActual.policy_indicator_id == indicator.id, t.PolicyActual.year == year
                )
            )
        ).first()
        now = now or t.utcnow()
        if row is None:
            row = t.PolicyActual(policy_indicator_id=indicator.id, year=year, value=value)
            self.session.add(row)
        row.value, row.source, row.entered_by_contact_id, row.entered_at = value, source, contact_id, now
        await self.session.flush()
        return row

    # ---------------------------------------------------------------- audit export

    async def revision_rows(self) -> list[RevisionRow]:
        """Every answer of every submitted revision, reports in id order, fields in plan order."""
        stmt = (
            select(
                t.ReportRevision,
                t.Report,
                t.Measure.code,
                t.Institution.abbr,
                t.ReportingPeriod.year,
                t.Contact.display_name,
            )
            .join(t.Report, col(t.ReportRevision.report_id) == col(t.Report.id))
            .join(t.Measure, col(t.Report.measure_id) == col(t.Measure.id))
            .join(t.Institution, col(t.Report.institution_id) == col(t.Institution.id))
            .join(t.ReportingPeriod, col(t.Report.period_id) == col(t.ReportingPeriod.id))
            .join(t.Contact, col(t.ReportRevision.submitted_by_contact_id) == col(t.Contact.id), isouter=True)
            .order_by(t.ReportRevision.report_id, t.ReportRevision.revision)
        )
        rows: list[RevisionRow] = []
        for rev, report, code, abbr, year, author in (await self.session.exec(stmt)).all():
            state = report.review_state if rev.revision == report.revision else SUPERSEDED
            when = as_utc(rev.submitted_at)
            rows.extend(
                RevisionRow(
                    report.id, code, abbr, year, rev.revision, author, when, key, rev.answers[key], state
                )
                for key in sorted(rev.answers, key=field_order)
            )
        return rows


# The summary card's row-scope warnings ask this on the bot's hot path: a hand-written statement
# (storage.db.Sql: on SQLite it runs on the unit's sqlite3 connection, no ORM session is made).
_ROW_VALUES_BESIDES = Sql(
    """SELECT i.code, p.year, SUM(v.value_num)
       FROM report_value AS v
       JOIN report AS r ON r.id = v.report_id
       JOIN indicator AS i ON i.id = v.indicator_id
       JOIN reporting_period AS p ON p.id = r.period_id
       WHERE r.measure_id = :measure_id AND r.status = :submitted AND p.year <= :year
         AND v.value_num IS NOT NULL
         AND (r.institution_id <> :institution_id OR p.year <> :year)
       GROUP BY i.code, p.year""",
    params={"measure_id": Integer(), "submitted": String(), "year": Integer(), "institution_id": Integer()},
    columns={"code": String(), "year": Integer(), "total": Float()},
)


async def row_values_besides(
    source: AsyncSession | Unit, measure_id: int, institution_id: int, year: int
) -> dict[str, dict[int, float]]:
    """The rest of a measure's indicator rows as far as ``year``: every submitted report's
    numeric values (all institutions) except the (institution, ``year``) report itself,
    summed per indicator code and year — what the row-scope validation rules add a draft to."""
    out: dict[str, dict[int, float]] = {}
    for code, period_year, total in await _ROW_VALUES_BESIDES.rows(
        source,
        measure_id=measure_id,
        submitted=t.ReportStatus.SUBMITTED.value,
        year=year,
        institution_id=institution_id,
    ):
        out.setdefault(code, {})[period_year] = float(total)
    return out
