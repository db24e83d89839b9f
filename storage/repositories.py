"""Repositories: the only code that reads and writes tables. Async, portable SQL.

Grouped behind one facade, ``Repos(session)`` for a CLI command or a test, ``Repos(unit)``
for the bot's unit of work per update (bot/middlewares.py), where the ORM session is created
only when a repository method needs it. The facade also hands out the repositories of the
other storage modules (compilation inputs, reviews, outbox, reminders, job runs), each made
on first use and kept for the facade's life.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ARRAY, JSON, BigInteger, Boolean, Date, DateTime, Integer, String, func
from sqlalchemy.types import TypeEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from reporting_forms import catalog as cat
from reporting_forms.calendar import default_calendar
from reporting_forms.periods import ReportingWindow
from storage import tables as t
from storage.compile_inputs import CompileInputsRepo
from storage.db import Sql, Unit, as_utc, detached
from storage.interrupted import InterruptedUpdateRepo
from storage.jobs import JobRunRepo
from storage.outbox import OutboxRepo, ReminderRepo
from storage.reviews import ReviewRepo


class _Repo:
    """A repository over a plain session or a unit of work (its session made on first use)."""

    def __init__(self, source: AsyncSession | Unit) -> None:
        self.source = source

    @property
    def session(self) -> AsyncSession:
        source = self.source
        return source.session if isinstance(source, Unit) else source


# ------------------------------------------------------------------ catalog


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deactivated)


def _apply(row: Any, values: dict[str, Any]) -> bool:
    """Set changed attributes on a row; True when anything differed."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


class CatalogRepo(_Repo):
    """Loads the YAML catalog into tables idempotently; ids stay stable, reports untouched."""

    async def _upsert(
        self, model: type, key: dict[str, Any], values: dict[str, Any], result: SyncResult, label: str
    ) -> Any:
        row = (await self.session.exec(select(model).filter_by(**key))).first()
        if row is None:
            row = model(**key, **values)
            self.session.add(row)
            await self.session.flush()
            result.created += 1
        elif _apply(row, values):
            result.updated += 1
            result.changes.append(label)
        return row

    async def sync(self, catalog: cat.Catalog) -> SyncResult:
        result = SyncResult()
        for inst in catalog.institutions:
            await self._upsert(
                t.Institution,
                {"abbr": inst.abbr},
                {"name": inst.name, "name_en": inst.name_en, "reports": inst.reports},
                result,
                inst.abbr,
            )
        for plan in catalog.plans:
            await self._sync_plan(plan, result)
        await self.session.flush()
        return result

    async def _sync_plan(self, plan: cat.Plan, result: SyncResult) -> None:
        await self._upsert(
            t.Plan,
            {"id": plan.id},
            {"title": plan.title, "short_title": plan.short_title, "source": plan.source},
            result,
            plan.id,
        )
        seen: dict[type, set[int]] = {
            t.Direction: set(),
            t.Task: set(),
            t.Measure: set(),
            t.Indicator: set(),
            t.PolicyIndicator: set(),
        }
        for d_pos, direction in enumerate(plan.directions):
            d_row = await self._upsert(
                t.Direction,
                {"plan_id": plan.id, "code": direction.id},
                {"title": direction.title, "position": d_pos, "active": True},
                result,
                direction.id,
            )
            seen[t.Direction].add(d_row.id)
            for t_pos, task in enumerate(direction.tasks):
                t_row = await self._upsert(
                    t.Task,
                    {"plan_id": plan.id, "code": task.id},
                    {"title": task.title, "direction_id": d_row.id, "position": t_pos, "active": True},
                    result,
                    task.id,
                )
                seen[t.Task].add(t_row.id)
                for m_pos, measure in enumerate(task.measures):
                    m_row = await self._sync_measure(plan.id, t_row.id, m_pos, measure, result, seen)
                    seen[t.Measure].add(m_row.id)
        for pr in plan.policy_results:
            for indicator in pr.indicators:
                targets = {str(y): {"text": v.text, "value": v.value} for y, v in indicator.targets.items()}
                row = await self._upsert(
                    t.PolicyIndicator,
                    {"plan_id": plan.id, "code": indicator.id},
                    {
                        "text": indicator.text,
                        "kind": indicator.kind.value,
                        "unit": indicator.unit,
                        "targets": targets,
                        "active": True,
                    },
                    result,
                    indicator.id,
                )
                seen[t.PolicyIndicator].add(row.id)
        await self._deactivate(plan.id, seen, result)

    async def _sync_measure(
        self,
        plan_id: str,
        task_id: int,
        position: int,
        measure: cat.Measure,
        result: SyncResult,
        seen: dict[type, set[int]],
    ) -> t.Measure:
        m_row = await self._upsert(
            t.Measure,
            {"plan_id": plan_id, "code": measure.id},
            {
                "task_id": task_id,
                "name": measure.name,
                "result": measure.result,
                "responsible": list(measure.responsible),
                "co_responsible": list(measure.co_responsible),
                "reporters": list(measure.reporters),
                "deadline": measure.deadline,
                "deadline_text": measure.deadline_text,
                "funding": measure.funding,
                "achieved_note": measure.achieved_note,
                "position": position,
                "active": True,
            },
            result,
            measure.id,
        )
        for i_pos, ind in enumerate(measure.indicators):
            i_row = await self._upsert(
                t.Indicator,
                {"measure_id": m_row.id, "code": ind.id},
                {
                    "text": ind.text,
                    "kind": ind.kind.value,
                    "target": ind.target,
                    "unit": ind.unit,
                    "deadline": ind.deadline,
                    "deadline_text": ind.deadline_text,
                    "note": ind.note,
                    "position": i_pos,
                    "active": True,
                },
                result,
                ind.id,
            )
            seen[t.Indicator].add(i_row.id)
        return m_row

    async def _deactivate(self, plan_id: str, seen: dict[type, set[int]], result: SyncResult) -> None:
        """Entries no longer in the YAML are kept (reports may point at them) but inactive."""
        for model, ids in seen.items():
            if model is t.Indicator:
                stmt = (
                    select(t.Indicator)
                    .join(t.Measure, col(t.Indicator.measure_id) == col(t.Measure.id))
                    .where(t.Measure.plan_id == plan_id)
                )
            else:
                stmt = select(model).where(model.plan_id == plan_id)
            for row in (await self.session.exec(stmt)).all():
                if row.id not in ids and row.active:
                    row.active = False
                    result.deactivated += 1

    async def measure(self, code: str) -> t.Measure | None:
        if isinstance(self.source, Unit):  # the bot's hot path: no ORM query
            row = await _ACTIVE_MEASURE.one(self.source, code=code, active=True)
            return self.source.adopt(detached(t.Measure, **_named(t.Measure, row))) if row else None
        return (
            await self.session.exec(
                select(t.Measure).where(t.Measure.code == code, col(t.Measure.active).is_(True))
            )
        ).first()

    async def measure_id(self, code: str) -> int | None:
        """The row id of the active measure ``code`` (:meth:`measure`'s row): all the report
        flow needs of it — one column, no ORM instance built and adopted.

        In a unit of work the ids are read once per process and database, every active
        measure's at the first code not known yet (a code still unknown then is read again at
        its next use): a catalog sync upserts measures by code and never deletes one, so an
        active measure's id does not change (a measure the sync deactivates keeps its id until
        the bot restarts with that catalog)."""
        if not isinstance(self.source, Unit):
            row = await _ACTIVE_MEASURE_ID.one(self.source, code=code, active=True)
            return None if row is None else int(row[0])
        known = _MEASURE_IDS.setdefault(self.source.db, {})
        if code not in known:
            rows = await _ACTIVE_MEASURE_IDS.rows(self.source, active=True)
            known.update((found, int(row_id)) for found, row_id in rows)
        return known.get(code)

    async def indicators(self, measure_id: int) -> list[t.Indicator]:
        stmt = (
            select(t.Indicator)
            .where(t.Indicator.measure_id == measure_id, col(t.Indicator.active).is_(True))
            .order_by(t.Indicator.position)
        )
        return list((await self.session.exec(stmt)).all())

    async def reporter_overrides(self) -> dict[str, tuple[str, ...]]:
        """An admin's reporters per measure code (``resobot plan reporters``), active measures."""
        stmt = select(t.Measure.code, t.Measure.reporters_override).where(
            col(t.Measure.reporters_override).is_not(None), col(t.Measure.active).is_(True)
        )
        return {code: tuple(found) for code, found in (await self.session.exec(stmt)).all()}

    async def set_reporters(self, code: str, reporters: list[str] | None) -> t.Measure | None:
        """Replace the reporters of measure ``code``; None goes back to the YAML's list.
        None when there is no such active measure."""
        row = (
            await self.session.exec(
                select(t.Measure).where(t.Measure.code == code, col(t.Measure.active).is_(True))
            )
        ).first()
        if row is None:
            return None
        row.reporters_override = list(reporters) if reporters is not None else None
        self.session.add(row)
        await self.session.flush()
        return row

    async def counts(self) -> dict[str, int]:
        out = {}
        for name, model in (
            ("institutions", t.Institution),
            ("plans", t.Plan),
            ("directions", t.Direction),
            ("tasks", t.Task),
            ("measures", t.Measure),
            ("indicators", t.Indicator),
            ("policy_indicators", t.PolicyIndicator),
        ):
            out[name] = (await self.session.exec(select(func.count()).select_from(model))).one()
        return out


# ------------------------------------------------------------------ people


def hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


class InviteError(Exception):
    """Why an invite code cannot be used: unknown | expired | used."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PeopleRepo(_Repo):
    async def institution(self, abbr: str) -> t.Institution | None:
        stmt = select(t.Institution).where(func.lower(t.Institution.abbr) == abbr.casefold())
        return (await self.session.exec(stmt)).first()

    async def institution_by_id(self, institution_id: int) -> t.Institution | None:
        return await self.session.get(t.Institution, institution_id)

    async def institutions(self) -> list[t.Institution]:
        return list((await self.session.exec(select(t.Institution).order_by(t.Institution.id))).all())

    async def contact_by_telegram(self, telegram_user_id: int) -> t.Contact | None:
        stmt = select(t.Contact).where(t.Contact.telegram_user_id == telegram_user_id)
        return (await self.session.exec(stmt)).first()

    async def contact_with_institution(self, telegram_user_id: int) -> tuple[t.Contact, t.Institution] | None:
        """A Telegram user's contact and institution in one query (every update asks)."""
        stmt = (
            select(t.Contact, t.Institution)
            .join(t.Institution, col(t.Contact.institution_id) == col(t.Institution.id))
            .where(t.Contact.telegram_user_id == telegram_user_id)
        )
        row = (await self.session.exec(stmt)).first()
        return (row[0], row[1]) if row else None

    async def contact(self, contact_id: int) -> t.Contact | None:
        return await self.session.get(t.Contact, contact_id)

    async def contacts(
        self, institution_id: int | None = None, *, active_only: bool = False
    ) -> list[t.Contact]:
        stmt = select(t.Contact).order_by(t.Contact.id)
        if institution_id is not None:
            stmt = stmt.where(t.Contact.institution_id == institution_id)
        if active_only:
            stmt = stmt.where(col(t.Contact.active).is_(True))
        return list((await self.session.exec(stmt)).all())

    async def add_contact(
        self,
        *,
        display_name: str,
        institution_id: int,
        role: str = t.Role.CONTACT,
        telegram_user_id: int | None = None,
        language: str = "lv",
    ) -> t.Contact:
        contact = t.Contact(
            display_name=display_name,
            institution_id=institution_id,
            role=role,
            telegram_user_id=telegram_user_id,
            language=language,
        )
        self.session.add(contact)
        await self.session.flush()
        return contact

    async def create_invite(
        self,
        *,
        institution_id: int,
        role: str,
        expires_in: dt.timedelta,
        display_name: str | None = None,
        now: dt.datetime | None = None,
    ) -> str:
        """Returns the one-time code; only its hash is stored."""
        now = now or t.utcnow()
        code = secrets.token_urlsafe(18)
        self.session.add(
            t.Invite(
                code_hash=hash_code(code),
                institution_id=institution_id,
                role=role,
                display_name=display_name,
                created_at=now,
                expires_at=now + expires_in,
            )
        )
        await self.session.flush()
        return code

    async def redeem_invite(
        self,
        code: str,
        *,
        telegram_user_id: int,
        display_name: str,
        language: str,
        now: dt.datetime | None = None,
    ) -> t.Contact:
        """Bind the Telegram user to the invite's institution and role, or raise InviteError.

        The invite is claimed with one conditional UPDATE (unused, not expired): of two people
        redeeming one code at once, exactly one gets the row; on PostgreSQL the second waits on
        the row lock and then finds it used."""
        now = now or t.utcnow()
        code_hash = hash_code(code)
        claimed = await _CLAIM_INVITE.one(self.session, code_hash=code_hash, now=now)
        if claimed is None:
            invite = (
                await self.session.exec(select(t.Invite).where(t.Invite.code_hash == code_hash))
            ).first()
            if invite is None:
                raise InviteError("unknown")
            if invite.used_at is not None:
                raise InviteError("used")
            raise InviteError("expired")
        invite_id, institution_id, role, invite_name = claimed
        contact = await self.contact_by_telegram(telegram_user_id)
        if contact is None:
            contact = await self.add_contact(
                display_name=invite_name or display_name,
                institution_id=institution_id,
                role=role,
                telegram_user_id=telegram_user_id,
                language=language,
            )
        else:
            contact.institution_id, contact.role, contact.active = institution_id, role, True
            contact.deactivated_at = None
            await self.session.flush()
        await _INVITE_USED_BY.run(self.session, id=invite_id, contact_id=contact.id)
        for obj in list(self.session.identity_map.values()):  # written past the ORM
            if isinstance(obj, t.Invite) and obj.id == invite_id:
                self.session.expire(obj)
        return contact

    async def record_attempt(self, telegram_user_id: int, ok: bool, now: dt.datetime | None = None) -> None:
        self.session.add(
            t.RegistrationAttempt(telegram_user_id=telegram_user_id, ok=ok, at=now or t.utcnow())
        )
        await self.session.flush()

    async def recent_failures(self, telegram_user_id: int, since: dt.datetime) -> list[dt.datetime]:
        stmt = (
            select(t.RegistrationAttempt.at)
            .where(
                t.RegistrationAttempt.telegram_user_id == telegram_user_id,
                col(t.RegistrationAttempt.ok).is_(False),
                t.RegistrationAttempt.at >= since,
            )
            .order_by(col(t.RegistrationAttempt.at).desc())
        )
        return [as_utc(a) for a in (await self.session.exec(stmt)).all()]


# ------------------------------------------------------------------ reports

IMPORT_FIELD = "import"  # the entry an import from a spreadsheet adds to its revision's changes


@dataclass(frozen=True)
class StoredValue:
    indicator_code: str
    kind: str
    value_num: float | None
    value_text: str | None
    status: str | None
    value_date: dt.date | None

    def as_answer(self) -> Any:
        """The form-engine JSON value this row was stored from."""
        if self.status is not None:
            return self.status
        if self.value_text is not None:
            return self.value_text
        if self.value_num is None:
            return None
        if self.kind == "percent":
            return format(self.value_num, "g")
        return int(self.value_num)


@dataclass(frozen=True)
class ReportView:
    id: int
    measure_code: str
    measure_name: str
    institution: str
    year: int
    status: str
    revision: int
    review_state: str
    review_comment: str | None
    comment: str | None
    risk_flag: bool
    submitted_at: dt.datetime | None
    author: str | None
    values: tuple[StoredValue, ...]
    first_submitted_at: dt.datetime | None = None  # revision 1: whether it was filed late

    def answers(self) -> dict[str, Any]:
        """Current values as form answers (indicator code → value, ``code.date``, ``comment``)."""
        out: dict[str, Any] = {}
        for v in self.values:
            answer = v.as_answer()
            if answer is not None:
                out[v.indicator_code] = answer
            if v.value_date is not None:
                out[f"{v.indicator_code}.date"] = v.value_date.isoformat()
        if self.comment:
            out["comment"] = self.comment
        return out


@dataclass(frozen=True)
class FormOpening:
    """The year's report (None: none yet) and the earlier years' submitted values
    (indicator code → {year: answer}) of a form being opened."""

    existing: t.Report | None
    earlier: dict[str, dict[int, Any]]


def _form_keys(measure_id: int, institution_id: int, year: int) -> dict[str, Any]:
    """The parameters of the earlier years' values (_EARLIER) and of a form's opening (_OPENING)."""
    return {
        "measure_id": measure_id,
        "institution_id": institution_id,
        "submitted": t.ReportStatus.SUBMITTED.value,
        "year": year,
    }


def _earlier(rows: list[tuple[Any, ...]]) -> dict[str, dict[int, Any]]:
    out: dict[str, dict[int, Any]] = {}
    for code, kind, num, text_, status, day, period_year in rows:
        stored = StoredValue(code, kind, num, text_, status, day)
        out.setdefault(code, {})[period_year] = stored.as_answer()
    return out


class ReportRepo(_Repo):
    async def period(self, year: int) -> t.ReportingPeriod:
        period = await self.session.get(t.ReportingPeriod, await self._period_id(year))
        assert period is not None
        return period

    async def find(self, measure_id: int, institution_id: int, year: int) -> t.Report | None:
        if isinstance(self.source, Unit):  # the bot's hot path: no ORM query
            row = await _FIND_REPORT.one(
                self.source, measure_id=measure_id, institution_id=institution_id, year=year
            )
            return self.source.adopt(detached(t.Report, **_named(t.Report, row))) if row else None
        stmt = (
            select(t.Report)
            .join(t.ReportingPeriod, col(t.Report.period_id) == col(t.ReportingPeriod.id))
            .where(
                t.Report.measure_id == measure_id,
                t.Report.institution_id == institution_id,
                t.ReportingPeriod.year == year,
            )
        )
        return (await self.session.exec(stmt)).first()

    async def _period_id(self, year: int) -> int:
        """The year's period id; created when missing (an upsert: concurrent creators agree)."""
        row = await _PERIOD_ID.one(self.source, year=year)
        if row is None:
            await _NEW_PERIOD.run(
                self.source, year=year, starts=dt.date(year, 1, 1), ends=dt.date(year, 12, 31)
            )
            row = await _PERIOD_ID.one(self.source, year=year)
        assert row is not None
        return int(row[0])

    async def submit(
        self,
        *,
        measure_id: int,
        institution_id: int,
        year: int,
        answers: dict[str, Any],
        contact_id: int | None,
        now: dt.datetime | None = None,
        note: dict[str, Any] | None = None,
    ) -> t.Report:
        """Store validated answers as a new revision. Nothing is overwritten without a trace:
        the revision row keeps the full snapshot and the old → new changes.

        ``note``: how the revision came (an import from a file: ``{"field": IMPORT_FIELD,
        "new": file name, "by_name": who}``), appended to the revision's changes.

        A few statements (:class:`Sql`), not the ORM: a confirm is the heaviest step of a report
        flow. One reads the period, the report's head and its values by indicator; a first
        submission is then one INSERT of the report, one of its values and one of the revision.
        ORM instances of the report this session holds are refreshed after."""
        src = self.source
        now = now or _now(src)
        keys = {"measure_id": measure_id, "institution_id": institution_id, "year": year}
        rows = await _SUBMIT_READ.rows(src, **keys)
        if not rows:  # the year's first report: its period row is made
            await self._period_id(year)
            rows = await _SUBMIT_READ.rows(src, **keys)
        period_id, report_id, revision, old_comment = rows[0][:4]
        indicators = [(r[4], r[5], r[6]) for r in rows if r[4] is not None]  # (id, code, kind)
        current = {r[4]: (r[7], *r[8:]) for r in rows if r[7] is not None}  # indicator → (value id, columns)
        old_answers: dict[str, Any] = {}
        if revision:
            for indicator_id, code, kind in indicators:
                if indicator_id not in current:
                    continue
                num, text_, status, day = current[indicator_id][1:]
                stored = StoredValue(code, kind, num, text_, status, day)
                if stored.as_answer() is not None:
                    old_answers[code] = stored.as_answer()
                if day is not None:
                    old_answers[f"{code}.date"] = day.isoformat()
            if old_comment:
                old_answers["comment"] = old_comment
        submitted = {
            "comment": answers.get("comment"),
            "risk_flag": any(answers.get(code) == "risk" for _, code, _ in indicators),
            "status": t.ReportStatus.SUBMITTED.value,
            "revision": (revision or 0) + 1,
            "submitted_at": now,
            "review_state": t.ReviewState.PENDING.value,
            "review_comment": None,  # a new revision waits for review: an earlier return comment is history
        }
        changes = [
            {"field": k, "old": old_answers.get(k), "new": answers.get(k)}
            for k in sorted(set(old_answers) | set(answers))
            if old_answers.get(k) != answers.get(k)
        ]
        if note is not None:
            changes.append(note)
        revision_row = {
            "submitted_by_contact_id": contact_id,
            "submitted_at": now,
            "answers": dict(answers),
            "changes": changes,
        }
        new_report = {
            "measure_id": measure_id,
            "institution_id": institution_id,
            "period_id": period_id,
            "created_by_contact_id": contact_id,
            "created_at": now,
            **submitted,
        }
        values_by_indicator = {
            indicator_id: _value_columns(kind, answers.get(code), answers.get(f"{code}.date"))
            for indicator_id, code, kind in indicators
        }
        if report_id is None and isinstance(src, Unit) and src.pg is not None:
            # PostgreSQL: the report, its values and its revision in one statement (one round
            # trip instead of three); the same rows as the three statements below write
            filed = {k: v for k, v in values_by_indicator.items() if v is not None}
            arrays = {f"v_{column}": [v[column] for v in filed.values()] for column in _VALUE_COLUMNS}
            row = await _FIRST_SUBMISSION_PG.one(
                src, **{**new_report, **revision_row}, v_indicator_id=list(filed), **arrays
            )
            assert row is not None
            return await self._fresh(detached(t.Report, **_named(t.Report, row)))
        if report_id is None:
            row = await _NEW_SUBMITTED_REPORT.one(src, **new_report)
        else:
            row = await _RESUBMITTED.one(src, id=report_id, **submitted)
        assert row is not None
        report = detached(t.Report, **_named(t.Report, row))
        inserts = []
        for indicator_id, values in values_by_indicator.items():
            value = current.get(indicator_id)
            if values is None:
                if value is not None:
                    await _DELETE_VALUE.run(src, id=value[0])
            elif value is None:
                inserts.append({"report_id": report.id, "indicator_id": indicator_id, **values})
            elif tuple(value[1:]) != tuple(values.values()):
                await _UPDATE_VALUE.run(src, id=value[0], **values)
        await _INSERT_VALUE.run_many(src, inserts)
        await _NEW_REVISION.run(src, report_id=report.id, revision=report.revision, **revision_row)
        return await self._fresh(report)

    async def _fresh(self, report: t.Report) -> t.Report:
        """``report`` (a detached instance of the row as just written) as this unit's or
        session's instance; instances the ORM session holds of it, its values and revisions are
        expired (they were written past the ORM)."""
        unit = self.source if isinstance(self.source, Unit) else None
        session = self.source if unit is None else unit._session
        if session is not None:
            for obj in list(session.identity_map.values()):
                if (isinstance(obj, t.Report) and obj.id == report.id) or (
                    isinstance(obj, t.ReportValue | t.ReportRevision) and obj.report_id == report.id
                ):
                    session.expire(obj)
        if unit is None:
            fresh = await self.session.get(t.Report, report.id)
            assert fresh is not None
            return fresh
        return unit.adopt(report, refresh=True)

    async def view(self, report_id: int) -> ReportView | None:
        views = await self._views(select(t.Report).where(t.Report.id == report_id))
        return views[0] if views else None

    async def views(
        self, *, institution_id: int | None = None, year: int | None = None, measure_id: int | None = None
    ) -> list[ReportView]:
        stmt = select(t.Report)
        if institution_id is not None:
            stmt = stmt.where(t.Report.institution_id == institution_id)
        if measure_id is not None:
            stmt = stmt.where(t.Report.measure_id == measure_id)
        if year is not None:
            stmt = stmt.join(t.ReportingPeriod, col(t.Report.period_id) == col(t.ReportingPeriod.id)).where(
                t.ReportingPeriod.year == year
            )
        return await self._views(stmt.order_by(t.Report.id))

    async def _views(self, stmt: Any) -> list[ReportView]:
        reports = list((await self.session.exec(stmt)).all())
        if not reports:
            return []
        ids = [r.id for r in reports]
        measures = {
            m.id: m
            for m in (
                await self.session.exec(
                    select(t.Measure).where(col(t.Measure.id).in_({r.measure_id for r in reports}))
                )
            ).all()
        }
        institutions = {i.id: i.abbr for i in (await self.session.exec(select(t.Institution))).all()}
        periods = {p.id: p.year for p in (await self.session.exec(select(t.ReportingPeriod))).all()}
        contacts = {c.id: c.display_name for c in (await self.session.exec(select(t.Contact))).all()}
        authors: dict[int, int | None] = {}
        firsts: dict[int, dt.datetime] = {}
        for rev in (
            await self.session.exec(
                select(t.ReportRevision)
                .where(col(t.ReportRevision.report_id).in_(ids))
                .order_by(t.ReportRevision.revision)
            )
        ).all():
            authors[rev.report_id] = rev.submitted_by_contact_id
            firsts.setdefault(rev.report_id, rev.submitted_at)
        value_rows = (
            await self.session.exec(
                select(t.ReportValue, t.Indicator)
                .join(t.Indicator, col(t.ReportValue.indicator_id) == col(t.Indicator.id))
                .where(col(t.ReportValue.report_id).in_(ids))
                .order_by(t.Indicator.position)
            )
        ).all()
        values: dict[int, list[StoredValue]] = {}
        for rv, ind in value_rows:
            values.setdefault(rv.report_id, []).append(
                StoredValue(ind.code, ind.kind, rv.value_num, rv.value_text, rv.status, rv.value_date)
            )
        return [
            ReportView(
                id=r.id,
                measure_code=measures[r.measure_id].code,
                measure_name=measures[r.measure_id].name,
                institution=institutions[r.institution_id],
                year=periods[r.period_id],
                status=r.status,
                revision=r.revision,
                review_state=r.review_state,
                review_comment=r.review_comment,
                comment=r.comment,
                risk_flag=r.risk_flag,
                submitted_at=as_utc(r.submitted_at),
                author=contacts.get(authors.get(r.id)) if authors.get(r.id) else None,
                values=tuple(values.get(r.id, ())),
                first_submitted_at=as_utc(firsts[r.id]) if r.id in firsts else None,
            )
            for r in reports
        ]

    async def revisions(self, report_id: int) -> list[t.ReportRevision]:
        stmt = (
            select(t.ReportRevision)
            .where(t.ReportRevision.report_id == report_id)
            .order_by(t.ReportRevision.revision)
        )
        return list((await self.session.exec(stmt)).all())

    async def earlier_values(
        self, measure_id: int, institution_id: int, year: int
    ) -> dict[str, dict[int, Any]]:
        """Submitted values of earlier years: indicator code → {year: answer}."""
        return _earlier(await _EARLIER.rows(self.source, **_form_keys(measure_id, institution_id, year)))

    async def opening(self, measure_id: int, institution_id: int, year: int) -> FormOpening:
        """What opening the form of (measure, institution, year) reads: the year's report, if
        any (:meth:`find`), and the earlier years' values (:meth:`earlier_values`). In a unit
        of work on PostgreSQL one statement, one round trip; SQLite has no round trips, and its
        two plain statements cost less than the joined one."""
        if not isinstance(self.source, Unit) or self.source.pg is None:
            return FormOpening(
                await self.find(measure_id, institution_id, year),
                await self.earlier_values(measure_id, institution_id, year),
            )
        rows = await _OPENING.rows(self.source, **_form_keys(measure_id, institution_id, year))
        n = len(t.Report.__table__.columns)  # type: ignore[attr-defined]
        report = rows[0][:n]
        existing = None
        if report[0] is not None:
            existing = self.source.adopt(detached(t.Report, **_named(t.Report, report)))
        return FormOpening(existing, _earlier([row[n:] for row in rows if row[n] is not None]))


def _value_columns(kind: str, answer: Any, date_answer: Any) -> dict[str, Any] | None:
    """Map a validated form answer to report_value columns; None when nothing was reported."""
    if answer is None:
        return None
    if kind == "milestone":
        date = dt.date.fromisoformat(date_answer) if date_answer else None
        return {"value_num": None, "value_text": None, "status": str(answer), "value_date": date}
    if kind == "text":
        return {"value_num": None, "value_text": str(answer), "status": None, "value_date": None}
    return {"value_num": float(answer), "value_text": None, "status": None, "value_date": None}


# ------------------------------------------------------------------ hot-path statements


def _table_columns(model: type, prefix: str = "") -> dict[str, Any]:
    return {f"{prefix}{c.name}": c.type for c in model.__table__.columns}  # type: ignore[attr-defined]


def _now(source: AsyncSession | Unit) -> dt.datetime:
    """A unit's own time (one reading per update, :attr:`Unit.now`), else the clock's."""
    return source.now if isinstance(source, Unit) else t.utcnow()


@functools.cache
def _column_names(model: type) -> tuple[str, ...]:
    return tuple(c.name for c in model.__table__.columns)  # type: ignore[attr-defined]


def _named(model: type, row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(_column_names(model), row, strict=True))


def _select_all(model: type, alias: str | None = None) -> str:
    """The table's columns in order (as :func:`_named` reads them), qualified by ``alias``."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{name}" for name in _column_names(model))


_ACTIVE_MEASURE = Sql(
    f"SELECT {_select_all(t.Measure, 'm')} FROM measure AS m WHERE m.code = :code AND m.active = :active"
    " ORDER BY m.id LIMIT 1",
    params={"code": String(), "active": Boolean()},
    columns=_table_columns(t.Measure),
)
# CatalogRepo.measure_id's ids, by database (each Database of a process: tests start many)
_MEASURE_IDS: weakref.WeakKeyDictionary[Any, dict[str, int]] = weakref.WeakKeyDictionary()
_ACTIVE_MEASURE_IDS = Sql(  # every active measure's id by code, as _ACTIVE_MEASURE_ID reads one
    "SELECT m.code, MIN(m.id) FROM measure AS m WHERE m.active = :active GROUP BY m.code",
    params={"active": Boolean()},
    columns={"code": String(), "id": Integer()},
)
_ACTIVE_MEASURE_ID = Sql(
    "SELECT m.id FROM measure AS m WHERE m.code = :code AND m.active = :active ORDER BY m.id LIMIT 1",
    params={"code": String(), "active": Boolean()},
    columns={"id": Integer()},
)
_FIND_REPORT = Sql(
    f"""SELECT {_select_all(t.Report, "r")} FROM report AS r
        JOIN reporting_period AS p ON p.id = r.period_id
        WHERE r.measure_id = :measure_id AND r.institution_id = :institution_id AND p.year = :year""",
    params={"measure_id": Integer(), "institution_id": Integer(), "year": Integer()},
    columns=_table_columns(t.Report),
)
_PERIOD_ID = Sql(
    "SELECT id FROM reporting_period WHERE year = :year",
    params={"year": Integer()},
    columns={"id": Integer()},
)
# Two first confirms of a year at once: the second insert does nothing, both then read the row.
_NEW_PERIOD = Sql(
    """INSERT INTO reporting_period (year, starts, ends) VALUES (:year, :starts, :ends)
       ON CONFLICT (year) DO NOTHING""",
    params={k: v for k, v in _table_columns(t.ReportingPeriod).items() if k != "id"},
)
_VALUE_COLUMNS = {  # value_num, value_text, status, value_date: what _value_columns() gives
    k: v for k, v in _table_columns(t.ReportValue).items() if k not in {"id", "report_id", "indicator_id"}
}
# The confirm's reads in one statement: a row per indicator of the measure, in form order, with
# (period id, report id, revision, comment) of the year's report (None: no report yet) and the
# indicator's (id, code, kind) and current (value id, value_num, value_text, status, value_date).
# No row: the year has no period row yet.
_SUBMIT_READ = Sql(
    """SELECT p.id, r.id, r.revision, r.comment, i.id, i.code, i.kind,
              v.id, v.value_num, v.value_text, v.status, v.value_date
       FROM reporting_period AS p
       LEFT JOIN report AS r
         ON r.period_id = p.id AND r.measure_id = :measure_id AND r.institution_id = :institution_id
       LEFT JOIN indicator AS i ON i.measure_id = :measure_id
       LEFT JOIN report_value AS v ON v.report_id = r.id AND v.indicator_id = i.id
       WHERE p.year = :year
       ORDER BY i.position""",
    params={"measure_id": Integer(), "institution_id": Integer(), "year": Integer()},
    columns={
        "period_id": Integer(),
        "report_id": Integer(),
        "revision": Integer(),
        "comment": String(),
        "indicator_id": Integer(),
        "code": String(),
        "kind": String(),
        "value_id": Integer(),
        **_VALUE_COLUMNS,
    },
)
# A report inserted already submitted (its first revision): _NEW_SUBMITTED_REPORT and
# _FIRST_SUBMISSION_PG.
_INSERT_SUBMITTED_REPORT = f"""
       INSERT INTO report (measure_id, institution_id, period_id, status, revision, review_state,
                           review_comment, risk_flag, comment, created_by_contact_id, created_at,
                           submitted_at)
       VALUES (:measure_id, :institution_id, :period_id, :status, :revision, :review_state,
               :review_comment, :risk_flag, :comment, :created_by_contact_id, :created_at,
               :submitted_at)
       RETURNING {_select_all(t.Report)}"""
_NEW_SUBMITTED_REPORT = Sql(
    _INSERT_SUBMITTED_REPORT,
    params=_table_columns(t.Report),
    columns=_table_columns(t.Report),
)
_RESUBMITTED = Sql(
    f"""UPDATE report SET comment = :comment, risk_flag = :risk_flag, status = :status,
           revision = :revision, submitted_at = :submitted_at, review_state = :review_state,
           review_comment = :review_comment
       WHERE id = :id
       RETURNING {_select_all(t.Report)}""",
    params=_table_columns(t.Report),
    columns=_table_columns(t.Report),
)
_INSERT_VALUE = Sql(
    """INSERT INTO report_value (report_id, indicator_id, value_num, value_text, status, value_date)
       VALUES (:report_id, :indicator_id, :value_num, :value_text, :status, :value_date)""",
    params=_table_columns(t.ReportValue),
)
_UPDATE_VALUE = Sql(
    """UPDATE report_value SET value_num = :value_num, value_text = :value_text, status = :status,
           value_date = :value_date
       WHERE id = :id""",
    params=_table_columns(t.ReportValue),
)
_DELETE_VALUE = Sql("DELETE FROM report_value WHERE id = :id", params={"id": Integer()})
_NEW_REVISION = Sql(
    """INSERT INTO report_revision (report_id, revision, submitted_by_contact_id, submitted_at, answers,
                                    changes)
       VALUES (:report_id, :revision, :submitted_by_contact_id, :submitted_at, :answers, :changes)""",
    params=_table_columns(t.ReportRevision),
)
# PostgreSQL only (a data-modifying WITH): a first submission's report, values and revision in
# one statement — the rows _NEW_SUBMITTED_REPORT, _INSERT_VALUE and _NEW_REVISION write, the
# values given as one array per column (v_<column>, in the order of v_indicator_id). The report
# is _INSERT_SUBMITTED_REPORT itself; a column added to report_value or report_revision goes into
# both ways; tests/test_unit_of_work.py compares their rows.
_FIRST_SUBMISSION_PG = Sql(
    f"""WITH new_report AS ({_INSERT_SUBMITTED_REPORT}), new_values AS (
            INSERT INTO report_value (report_id, indicator_id, value_num, value_text, status, value_date)
            SELECT new_report.id, v.indicator_id, v.value_num, v.value_text, v.status, v.value_date
            FROM new_report,
                 unnest(:v_indicator_id, :v_value_num, :v_value_text, :v_status, :v_value_date)
                 AS v(indicator_id, value_num, value_text, status, value_date)
        ), new_revision AS (
            INSERT INTO report_revision (report_id, revision, submitted_by_contact_id, submitted_at,
                                         answers, changes)
            SELECT new_report.id, new_report.revision, :submitted_by_contact_id, :submitted_at,
                   :answers, :changes
            FROM new_report
        )
        SELECT {_select_all(t.Report)} FROM new_report""",
    params={
        **_table_columns(t.Report),
        **_table_columns(t.ReportRevision),
        "v_indicator_id": ARRAY(Integer()),
        **{f"v_{name}": ARRAY(ty) for name, ty in _VALUE_COLUMNS.items()},
    },
    columns=_table_columns(t.Report),
)
_EARLIER = Sql(
    """SELECT i.code, i.kind, v.value_num, v.value_text, v.status, v.value_date, p.year
       FROM report_value AS v
       JOIN report AS r ON r.id = v.report_id
       JOIN indicator AS i ON i.id = v.indicator_id
       JOIN reporting_period AS p ON p.id = r.period_id
       WHERE r.measure_id = :measure_id AND r.institution_id = :institution_id
         AND r.status = :submitted AND p.year < :year""",
    params={"measure_id": Integer(), "institution_id": Integer(), "submitted": String(), "year": Integer()},
    columns={"code": String(), "kind": String(), **_VALUE_COLUMNS, "year": Integer()},
)

# The form's opening (ReportRepo.opening): the year's report joined to every earlier value — a
# row per value, the report's columns on each (NULLs: no report); one row of NULLs for neither.
_OPENING = Sql(
    f"""SELECT {_select_all(t.Report, "r")},
               e.code, e.kind, e.value_num, e.value_text, e.status, e.value_date, e.year
        FROM (SELECT 1 AS one) AS one
        LEFT JOIN ({_FIND_REPORT.sql}) AS r ON 1 = 1
        LEFT JOIN ({_EARLIER.sql}) AS e ON 1 = 1""",
    params={**_FIND_REPORT.params, **_EARLIER.params},
    columns={
        **_table_columns(t.Report, "r_"),
        **{f"e_{name}": ty for name, ty in _EARLIER.columns.items()},
    },
)


_CLAIM_INVITE = Sql(
    """UPDATE invite SET used_at = :now
       WHERE code_hash = :code_hash AND used_at IS NULL AND expires_at > :now
       RETURNING id, institution_id, role, display_name""",
    params={"now": DateTime(timezone=True), "code_hash": String()},
    columns={"id": Integer(), "institution_id": Integer(), "role": String(), "display_name": String()},
)
_INVITE_USED_BY = Sql(
    "UPDATE invite SET used_by_contact_id = :contact_id WHERE id = :id",
    params={"contact_id": Integer(), "id": Integer()},
)


# ------------------------------------------------------------------ facade


_CONTACT_COLUMNS = {
    "id": Integer(),
    "telegram_user_id": BigInteger(),
    "display_name": String(),
    "institution_id": Integer(),
    "role": String(),
    "language": String(),
    "active": Boolean(),
    "blocked": Boolean(),
    "created_at": DateTime(timezone=True),
    "deactivated_at": DateTime(timezone=True),
}
_INSTITUTION_COLUMNS = {
    "id": Integer(),
    "abbr": String(),
    "name": String(),
    "name_en": String(),
    "reports": Boolean(),
}

_MARK_UPDATE = Sql(
    """INSERT INTO processed_update (bot_id, update_id, at) VALUES (:bot_id, :update_id, :at)
       ON CONFLICT (bot_id, update_id) DO NOTHING""",
    params={"bot_id": BigInteger(), "update_id": BigInteger(), "at": DateTime(timezone=True)},
)
_FORGET_UPDATES = Sql(
    "DELETE FROM processed_update WHERE at < :before", params={"before": DateTime(timezone=True)}
)
# Who sent the update and their conversation state, in one statement, always one row.
_CONTEXT_SELECT = f"""
    SELECT {", ".join(f"c.{n} AS c_{n}" for n in _CONTACT_COLUMNS)},
           {", ".join(f"i.{n} AS i_{n}" for n in _INSTITUTION_COLUMNS)},
           s.state AS s_state, s.data AS s_data, r.year AS r_year, r.until AS r_until
    FROM (SELECT 1 AS one) AS one
    LEFT JOIN contact AS c ON c.telegram_user_id = :user_id
    LEFT JOIN institution AS i ON i.id = c.institution_id
    LEFT JOIN conversation_state AS s ON s.key = :state_key
    LEFT JOIN period_reopening AS r ON r.institution_id = c.institution_id"""
_CONTEXT_COLUMNS: dict[str, TypeEngine[Any]] = {
    **{f"c_{n}": ty for n, ty in _CONTACT_COLUMNS.items()},
    **{f"i_{n}": ty for n, ty in _INSTITUTION_COLUMNS.items()},
    "s_state": String(),
    "s_data": JSON(),
    "r_year": Integer(),
    "r_until": Date(),
}
_UPDATE_CONTEXT = Sql(
    _CONTEXT_SELECT, params={"user_id": BigInteger(), "state_key": String()}, columns=_CONTEXT_COLUMNS
)
# PostgreSQL: the duplicate check and the context in one statement (a data-modifying WITH), one
# round trip. ``fresh`` is false for an update handled before. The conversation lock is taken
# with the unit's BEGIN, before this statement takes its snapshot (bot/middlewares.py).
_MARK_AND_READ_CONTEXT = Sql(
    f"""WITH marked AS (
            INSERT INTO processed_update (bot_id, update_id, at) VALUES (:bot_id, :update_id, :at)
            ON CONFLICT (bot_id, update_id) DO NOTHING
            RETURNING update_id)
        SELECT (SELECT count(*) FROM marked) AS fresh, context.*
        FROM ({_CONTEXT_SELECT}) AS context""",
    params={**_MARK_UPDATE.params, **_UPDATE_CONTEXT.params},
    columns={"fresh": Integer(), **_CONTEXT_COLUMNS},
)


@dataclass
class UpdateContext:
    """Read at the start of an update, inside its transaction: never cached across updates, so
    a contact deactivated or given another role by the CLI is seen at their next update."""

    contact: t.Contact | None
    institution: t.Institution | None
    state: str | None
    data: dict[str, Any] | None
    reopened: dict[int, dt.date] = field(default_factory=dict)  # the institution's reopened years → last day


# The reporting window (summaries, reminders, the CLI; a report step's open years come with the
# sender, Repos.start_update): one statement — the first reporting year and every reopened year,
# always at least one row (the setting's; its reopening columns are NULL when nothing is reopened).
_WINDOW = Sql(
    """SELECT s.value, i.abbr, r.year, r.until
       FROM (SELECT 1 AS one) AS one
       LEFT JOIN app_setting AS s ON s.key = :key
       LEFT JOIN period_reopening AS r ON TRUE
       LEFT JOIN institution AS i ON i.id = r.institution_id
       ORDER BY r.year, i.abbr""",
    params={"key": String()},
    columns={"value": String(), "abbr": String(), "year": Integer(), "until": Date()},
)


class PeriodRepo(_Repo):
    """Which years the bot chases: the first one (``reporting_from_year``) and reopened years."""

    FROM_YEAR = "reporting_from_year"

    async def setting(self, key: str) -> str | None:
        row = await self.session.get(t.AppSetting, key)
        return row.value if row is not None else None

    async def set_setting(self, key: str, value: str) -> None:
        row = await self.session.get(t.AppSetting, key)
        if row is None:
            self.session.add(t.AppSetting(key=key, value=value))
        elif row.value != value:
            row.value, row.set_at = value, t.utcnow()
            self.session.add(row)
        await self.session.flush()

    async def from_year(self) -> int | None:
        value = await self.setting(self.FROM_YEAR)
        return int(value) if value is not None else None

    async def reopenings(self) -> list[tuple[str, int, dt.date, t.PeriodReopening]]:
        """(institution abbr, year, until, row) of every reopened year, by year and institution."""
        stmt = (
            select(t.Institution.abbr, t.PeriodReopening)
            .join(t.Institution, col(t.Institution.id) == col(t.PeriodReopening.institution_id))
            .order_by(t.PeriodReopening.year, t.Institution.abbr)
        )
        return [(abbr, row.year, row.until, row) for abbr, row in (await self.session.exec(stmt)).all()]

    async def window(self) -> ReportingWindow:
        """The installation's reporting window. A database ``resobot init`` never set up chases
        every plan year (from the plan's first)."""
        rows = await _WINDOW.rows(self.source, key=self.FROM_YEAR)
        from_year = int(rows[0][0]) if rows[0][0] is not None else None
        reopened = {(abbr, year): until for _, abbr, year, until in rows if year is not None}
        return ReportingWindow(from_year=from_year or default_calendar().first_year, reopened=reopened)

    async def _reopening(self, institution_id: int, year: int) -> t.PeriodReopening | None:
        stmt = select(t.PeriodReopening).where(
            t.PeriodReopening.institution_id == institution_id, t.PeriodReopening.year == year
        )
        return (await self.session.exec(stmt)).first()

    async def reopen(
        self, institution_id: int, year: int, until: dt.date, by_contact_id: int | None
    ) -> t.PeriodReopening:
        """Open ``year`` for the institution until ``until`` (a second call moves the day)."""
        row = await self._reopening(institution_id, year)
        if row is None:
            row = t.PeriodReopening(institution_id=institution_id, year=year, until=until)
        row.until, row.reopened_by_contact_id, row.reopened_at = until, by_contact_id, t.utcnow()
        self.session.add(row)
        await self.session.flush()
        return row

    async def close(self, institution_id: int, year: int) -> bool:
        """Close a reopened year again; False when it was not reopened. Reports filed stay."""
        row = await self._reopening(institution_id, year)
        if row is None:
            return False
        await self.session.delete(row)
        await self.session.flush()
        return True


class Repos:
    def __init__(self, source: AsyncSession | Unit) -> None:
        self.source = source
        self.catalog = CatalogRepo(source)
        self.people = PeopleRepo(source)
        self.reports = ReportRepo(source)
        self.periods = PeriodRepo(source)

    @property
    def session(self) -> AsyncSession:
        return self.source.session if isinstance(self.source, Unit) else self.source

    # The repositories below work on the ORM session: on a unit of work, the first use of one
    # makes the session (as ``OutboxRepo(repos.session)`` did).

    @functools.cached_property
    def inputs(self) -> CompileInputsRepo:
        """Submitted values, first submissions, policy actuals, every revision (storage/compile_inputs.py)."""
        return CompileInputsRepo(self.session)

    @functools.cached_property
    def reviews(self) -> ReviewRepo:
        return ReviewRepo(self.session)

    @functools.cached_property
    def outbox(self) -> OutboxRepo:
        return OutboxRepo(self.session)

    @functools.cached_property
    def reminders(self) -> ReminderRepo:
        return ReminderRepo(self.session)

    @functools.cached_property
    def jobs(self) -> JobRunRepo:
        return JobRunRepo(self.session)

    @functools.cached_property
    def interrupted(self) -> InterruptedUpdateRepo:
        """Updates a stop left unhandled, kept for the next start (storage/interrupted.py)."""
        return InterruptedUpdateRepo(self.session)

    async def mark_update(self, update_id: int, now: dt.datetime | None = None, *, bot_id: int = 0) -> bool:
        """Remember a Telegram update id of bot ``bot_id``; False when it was handled before (a
        duplicate). Update ids are per bot: two bots sharing a database each have an update 1.

        One INSERT ... ON CONFLICT DO NOTHING (SQLite and PostgreSQL both speak it). Telegram
        re-delivers within hours at most, so ids older than UPDATE_MEMORY are forgotten, a
        batch at a time (every PRUNE_EVERY-th update)."""
        now = now or _now(self.source)
        if not await _MARK_UPDATE.run(self.source, bot_id=bot_id, update_id=update_id, at=now):
            return False
        await self._forget_updates(update_id, now)
        return True

    async def _forget_updates(self, update_id: int, now: dt.datetime) -> None:
        if update_id % PRUNE_EVERY == 0:
            await _FORGET_UPDATES.run(self.source, before=now - UPDATE_MEMORY)

    async def start_update(
        self, update_id: int, telegram_user_id: int | None, state_key: str | None, *, bot_id: int = 0
    ) -> UpdateContext | None:
        """The first statements of an update: None when it is a duplicate (:meth:`mark_update`);
        else the sender's contact and institution (ORM instances of this unit) and the
        conversation row. On PostgreSQL in a unit, one statement does both."""
        if isinstance(self.source, Unit) and self.source.pg is not None:
            now = self.source.now
            rows = await _MARK_AND_READ_CONTEXT.rows(
                self.source,
                bot_id=bot_id,
                update_id=update_id,
                at=now,
                user_id=telegram_user_id,
                state_key=state_key,
            )
            if not rows[0][0]:
                return None
            await self._forget_updates(update_id, now)
            rows = [row[1:] for row in rows]
        else:
            if not await self.mark_update(update_id, bot_id=bot_id):
                return None
            # a row per year reopened for the sender's institution (PeriodRepo.reopen), one without
            rows = await _UPDATE_CONTEXT.rows(self.source, user_id=telegram_user_id, state_key=state_key)
        row = rows[0]
        n, m = len(_CONTACT_COLUMNS), len(_CONTACT_COLUMNS) + len(_INSTITUTION_COLUMNS)
        contact = institution = None
        if row[0] is not None:
            contact = detached(t.Contact, **dict(zip(_CONTACT_COLUMNS, row[:n], strict=True)))
            institution = detached(t.Institution, **dict(zip(_INSTITUTION_COLUMNS, row[n:m], strict=True)))
            if isinstance(self.source, Unit):
                contact, institution = self.source.adopt(contact), self.source.adopt(institution)
            else:
                contact = await self.session.merge(contact, load=False)
                institution = await self.session.merge(institution, load=False)
        reopened = {r[-2]: r[-1] for r in rows if r[-2] is not None}
        return UpdateContext(contact, institution, row[m], row[m + 1], reopened)


UPDATE_MEMORY = dt.timedelta(days=7)
PRUNE_EVERY = 500
