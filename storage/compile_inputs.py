"""What the compilation and the exports read of the submitted reports, and the policy
actuals the coordinators enter (``CompileInputsRepo``).

``Report`` / ``ReportValue`` always hold the latest submitted revision of a (measure,
institution, year) report, so the compilation reads them directly; ``ReportRevision`` keeps
every revision for the audit export. Portable SQL (SQLite and PostgreSQL). Reviews of
submitted reports: storage/reviews.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Float, Integer, String, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from reporting_forms import compilation as comp
from reporting_forms.catalog import natural_key
from reporting_forms.exports.revisions import SUPERSEDED, RevisionRow  # the /export table's row
from storage import tables as t
from storage.db import Sql, Unit, as_utc


def field_order(field: str) -> tuple[Any, ...]:
    """Answer keys in plan order: 1.1.10.2 after 1.1.2.1, ``x.date`` after ``x``, the comment last."""
    return (field == "comment", natural_key(field))


class CompileInputsRepo:
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
