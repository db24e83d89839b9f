"""The outbox and the reads the reminder planner needs. Async, portable SQL.

Every outgoing reminder, snooze and digest is an ``outbox`` row with a unique ``dedup_key``:
enqueueing the same key twice adds nothing. A row's life::

    pending ──claim──▶ sending ──sent──▶ sent
       ▲                  │ 429 / 5xx / timeout (bounded) ──▶ pending (next_attempt_at)
       │                  ├─ 403 ──▶ blocked (and Contact.blocked)
       └── recover ◀──────┤ crash (row left in "sending") ──▶ pending again (see bot/sender.py)
                          └─ 400 / attempts used up ──▶ failed
    pending ──▶ cancelled   (superseded by a re-plan, expired, contact inactive)

``claim`` and the status changes are conditional UPDATEs (``WHERE status = ...``), so a row
cannot be claimed twice and a late re-plan never rewrites a row that is already in flight.
All datetimes are written in UTC (SQLite keeps no offset).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from reporting_forms.dedup import outbox_key as outbox_key  # re-exported: producers import it from here
from reporting_forms.payloads import (  # re-exported: producers import the kinds from here
    DOCUMENT_KINDS as DOCUMENT_KINDS,
)
from reporting_forms.payloads import (
    KIND_DIGEST,
    KIND_DOCUMENT,
    KIND_REMINDER,
    KIND_SNOOZE,
    KIND_SUMMARY,
    PAYLOAD_TYPES,
    REMINDER_KINDS,
    OutboxPayload,
    ReminderPayload,
    stored_language,
)
from reporting_forms.payloads import (
    KIND_FILE as KIND_FILE,
)
from reporting_forms.payloads import (
    KIND_NOTICE as KIND_NOTICE,
)
from reporting_forms.reminder_policy import ContactRef, MeasureDue, MissingMap, Mute, SentLogEntry
from storage import tables as t
from storage.db import as_utc

# The kinds and their payload classes live in reporting_forms/payloads.py (re-exported here).
# Messages of one day: an unsent reminder/snooze is folded into the next day's reminder by the
# planner, an unsent digest is superseded by the next day's. The sender never sends them late.
DAILY_KINDS = frozenset({KIND_REMINDER, KIND_SNOOZE, KIND_DIGEST})
# Never sent in quiet hours (every scheduled kind; they wait for the morning).
# A notice (a coordinator's review, a reopened year) answers someone's action: sent at once.
QUIET_KINDS = frozenset({*DAILY_KINDS, KIND_SUMMARY, KIND_DOCUMENT})

S = t.OutboxStatus


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("outbox datetimes must be aware")
    return moment.astimezone(dt.UTC)


@dataclass(frozen=True)
class NewMessage:
    """An outbox row to enqueue; ``payload`` is the class of its ``kind`` (reporting_forms/payloads.py)."""

    dedup_key: str
    contact_id: int | None
    chat_id: int
    kind: str
    payload: OutboxPayload
    send_at: dt.datetime  # aware

    def __post_init__(self) -> None:
        expected = PAYLOAD_TYPES.get(self.kind)
        if expected is None or not isinstance(self.payload, expected):
            raise TypeError(f"an outbox row of kind {self.kind!r} cannot carry {type(self.payload).__name__}")


@dataclass(frozen=True)
class DueRow:
    """A pending row that may be sent now, with what the sender needs to know of its contact."""

    id: int
    dedup_key: str
    contact_id: int | None
    chat_id: int
    kind: str
    payload: dict[str, Any]  # as stored: read it with reporting_forms.payloads.load_payload
    send_at: dt.datetime
    attempts: int
    language: str
    contact_active: bool
    contact_blocked: bool


@dataclass(frozen=True)
class LogRow:
    id: int
    kind: str
    status: str
    contact_id: int | None
    recipient: str
    institution: str
    chat_id: int
    send_at: dt.datetime
    sent_at: dt.datetime | None
    attempts: int
    telegram_message_id: int | None
    last_error: str | None
    measures: tuple[str, ...]


@dataclass(frozen=True)
class Recipient:
    """A contact as the planner sees it (only contacts with a Telegram chat)."""

    ref: ContactRef
    name: str
    role: str


@dataclass(frozen=True)
class MuteView:
    id: int
    contact_id: int
    contact_name: str
    institution: str
    measure_id: str  # the measure's code, e.g. "1.1.5"
    until: dt.date
    reason: str
    created_at: dt.datetime

    def as_mute(self) -> Mute:
        return Mute(self.contact_id, self.measure_id, self.until, self.reason)


def missing_from_reported(
    measures: Iterable[MeasureDue], reported: dict[tuple[str, str, int], set[str]]
) -> MissingMap:
    """``reported`` (measure, institution, year) → indicator codes with a value, as the policy's
    MissingMap: for each reported key, the measure's rows still without a value. Keys that were
    never reported stay absent (the policy then treats every row as missing)."""
    rows = {m.measure_id: m.all_indicator_ids for m in measures}
    return {key: tuple(r for r in rows.get(key[0], ()) if r not in found) for key, found in reported.items()}


class OutboxRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -------------------------------------------------------------- enqueue

    async def existing_keys(self, keys: Iterable[str]) -> set[str]:
        keys = list(dict.fromkeys(keys))
        found: set[str] = set()
        for start in range(0, len(keys), 500):  # stay below bound-parameter limits
            chunk = keys[start : start + 500]
            stmt = select(t.Outbox.dedup_key).where(col(t.Outbox.dedup_key).in_(chunk))
            found.update((await self.session.exec(stmt)).all())
        return found

    async def add_many(self, messages: Sequence[NewMessage], now: dt.datetime | None = None) -> int:
        """Insert the messages whose key is new; returns how many were added.

        Idempotent by ``dedup_key``. Two writers racing on one key make the later flush fail
        with IntegrityError (the unique index) — the caller's transaction rolls back and can be
        retried; nothing vendor-specific (no ON CONFLICT) is needed.
        """
        existing = await self.existing_keys(m.dedup_key for m in messages)
        created = _utc(now) if now else t.utcnow()
        added = 0
        for m in messages:
            if m.dedup_key in existing:
                continue
            existing.add(m.dedup_key)
            self.session.add(
                t.Outbox(
                    dedup_key=m.dedup_key,
                    contact_id=m.contact_id,
                    chat_id=m.chat_id,
                    kind=m.kind,
                    payload=m.payload.to_json(),
                    send_at=_utc(m.send_at),
                    status=S.PENDING,
                    created_at=created,
                )
            )
            added += 1
        await self.session.flush()
        return added

    async def add(self, message: NewMessage) -> bool:
        return await self.add_many([message]) == 1

    async def get(self, row_id: int) -> t.Outbox | None:
        return await self.session.get(t.Outbox, row_id)

    async def by_key(self, dedup_key: str) -> t.Outbox | None:
        return (await self.session.exec(select(t.Outbox).where(t.Outbox.dedup_key == dedup_key))).first()

    async def for_period(
        self, kinds: Iterable[str], start: dt.datetime, end: dt.datetime, contact_id: int | None = None
    ) -> list[t.Outbox]:
        """Rows of these kinds whose send_at is in [start, end), oldest first."""
        stmt = select(t.Outbox).where(
            col(t.Outbox.kind).in_(list(kinds)),
            t.Outbox.send_at >= _utc(start),
            t.Outbox.send_at < _utc(end),
        )
        if contact_id is not None:
            stmt = stmt.where(t.Outbox.contact_id == contact_id)
        return list((await self.session.exec(stmt.order_by(t.Outbox.send_at, t.Outbox.id))).all())

    async def replace_pending(self, row_id: int, message: NewMessage) -> bool:
        """Give a row that was never sent (pending or cancelled) new content and key.

        Conditional: a row the sender claimed meanwhile is left alone (False)."""
        stmt = (
            update(t.Outbox)
            .where(col(t.Outbox.id) == row_id, col(t.Outbox.status).in_([S.PENDING, S.CANCELLED]))
            .values(
                dedup_key=message.dedup_key,
                payload=message.payload.to_json(),
                send_at=_utc(message.send_at),
                status=S.PENDING,
                attempts=0,
                next_attempt_at=None,
                last_error=None,
            )
        )
        return (await self.session.exec(stmt)).rowcount == 1

    async def delete_unsent(self, row_ids: Iterable[int]) -> int:
        ids = list(row_ids)
        if not ids:
            return 0
        stmt = delete(t.Outbox).where(
            col(t.Outbox.id).in_(ids), col(t.Outbox.status).in_([S.PENDING, S.CANCELLED])
        )
        return (await self.session.exec(stmt)).rowcount

    async def cancel(self, row_id: int, reason: str) -> bool:
        stmt = (
            update(t.Outbox)
            .where(col(t.Outbox.id) == row_id, t.Outbox.status == S.PENDING)
            .values(status=S.CANCELLED, last_error=reason[:500])
        )
        return (await self.session.exec(stmt)).rowcount == 1

    # -------------------------------------------------------------- the sender's side

    async def due(
        self,
        now: dt.datetime,
        limit: int = 500,
        until: dt.datetime | None = None,
        *,
        day_start: dt.datetime | None = None,
    ) -> list[DueRow]:
        """Pending rows with send_at ≤ ``until`` (default ``now``) whose retry time has come.
        With ``day_start``, rows of ``DAILY_KINDS`` from before it are left out: they belong to
        a day that has passed (the planner folds them into today's reminder)."""
        now, until = _utc(now), _utc(until or now)
        stmt = (
            select(t.Outbox, t.Contact)
            .join(t.Contact, col(t.Outbox.contact_id) == col(t.Contact.id), isouter=True)
            .where(
                t.Outbox.status == S.PENDING,
                t.Outbox.send_at <= until,
                or_(col(t.Outbox.next_attempt_at).is_(None), col(t.Outbox.next_attempt_at) <= now),
            )
            .order_by(t.Outbox.send_at, t.Outbox.id)
            .limit(limit)
        )
        if day_start is not None:
            stmt = stmt.where(
                or_(col(t.Outbox.kind).not_in(list(DAILY_KINDS)), t.Outbox.send_at >= _utc(day_start))
            )
        out = []
        for row, contact in (await self.session.exec(stmt)).all():
            out.append(
                DueRow(
                    id=row.id,
                    dedup_key=row.dedup_key,
                    contact_id=row.contact_id,
                    chat_id=row.chat_id,
                    kind=row.kind,
                    payload=row.payload,
                    send_at=as_utc(row.send_at),
                    attempts=row.attempts,
                    language=contact.language if contact else stored_language(row.payload),
                    contact_active=contact.active if contact else True,
                    contact_blocked=contact.blocked if contact else False,
                )
            )
        return out

    async def next_due_at(self) -> dt.datetime | None:
        """The earliest moment a pending row becomes sendable (for the sender's sleep)."""
        # a retry time is always later than the row's send_at, so it wins when set
        stmt = select(func.min(func.coalesce(t.Outbox.next_attempt_at, t.Outbox.send_at))).where(
            t.Outbox.status == S.PENDING
        )
        first = (await self.session.exec(stmt)).one()
        if first is None:
            return None
        if isinstance(first, str):  # SQLite returns the stored text for an aggregate
            first = dt.datetime.fromisoformat(first)
        return as_utc(first)

    async def claim(
        self, row_id: int, owner: str | None = None, lease_until: dt.datetime | None = None
    ) -> bool:
        """pending → sending, counting the attempt, under a lease: ``owner`` (the instance) has
        the row until ``lease_until``. False when someone else has it. On PostgreSQL the row is
        picked with ``FOR UPDATE SKIP LOCKED``: a row another instance is claiming this very
        moment is skipped instead of waited for."""
        pick = (
            select(t.Outbox.id)
            .where(col(t.Outbox.id) == row_id, t.Outbox.status == S.PENDING)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = (
            update(t.Outbox)
            .where(col(t.Outbox.id) == pick, t.Outbox.status == S.PENDING)
            .values(
                status=S.SENDING,
                attempts=col(t.Outbox.attempts) + 1,
                claimed_by=owner,
                claim_expires_at=_utc(lease_until) if lease_until else None,
            )
        )
        return (await self.session.exec(stmt)).rowcount == 1

    async def mark_sent(self, row_id: int, message_id: int | None, now: dt.datetime) -> bool:
        stmt = (
            update(t.Outbox)
            # pending too: a claim that expired while its request was in fact accepted (the
            # bookkeeping write was late) is marked sent rather than sent again
            .where(col(t.Outbox.id) == row_id, col(t.Outbox.status).in_([S.SENDING, S.PENDING]))
            .values(status=S.SENT, sent_at=_utc(now), telegram_message_id=message_id, last_error=None)
        )
        return (await self.session.exec(stmt)).rowcount == 1

    async def retry_later(
        self, row_id: int, next_attempt_at: dt.datetime, error: str, *, count_attempt: bool = True
    ) -> None:
        """sending → pending with a retry time. A 429 does not use up an attempt."""
        values: dict[str, Any] = {
            "status": S.PENDING,
            "next_attempt_at": _utc(next_attempt_at),
            "last_error": error[:500],
        }
        if not count_attempt:
            values["attempts"] = col(t.Outbox.attempts) - 1
        stmt = update(t.Outbox).where(col(t.Outbox.id) == row_id, t.Outbox.status == S.SENDING)
        await self.session.exec(stmt.values(**values))

    async def mark_failed(self, row_id: int, error: str) -> None:
        stmt = (
            update(t.Outbox)
            .where(col(t.Outbox.id) == row_id, col(t.Outbox.status).in_([S.SENDING, S.PENDING]))
            .values(status=S.FAILED, last_error=error[:500])
        )
        await self.session.exec(stmt)

    async def mark_blocked(self, row_id: int, contact_id: int | None, error: str) -> int:
        """The user blocked the bot: this row and every other unsent row to the contact become
        ``blocked`` and the contact is flagged. Returns how many rows were closed."""
        if contact_id is not None:
            contact = await self.session.get(t.Contact, contact_id)
            if contact is not None:
                contact.blocked = True
        cond = col(t.Outbox.id) == row_id
        if contact_id is not None:
            cond = or_(cond, col(t.Outbox.contact_id) == contact_id)
        stmt = (
            update(t.Outbox)
            .where(cond, col(t.Outbox.status).in_([S.SENDING, S.PENDING]))
            .values(status=S.BLOCKED, last_error=error[:500])
        )
        result = (await self.session.exec(stmt)).rowcount
        await self.session.flush()
        return result

    async def recover_in_flight(self, max_attempts: int, now: dt.datetime | None = None) -> tuple[int, int]:
        """Rows left in ``sending`` whose claim has expired — their instance died or lost the
        database mid-request — go back to pending (they may or may not have reached Telegram —
        see bot/sender.py), unless their attempts are used up. A live claim (another instance's
        request may still be running) is never touched. Without ``now``: every row in
        ``sending``. A claim without an expiry (before the lease existed) counts as expired.
        Returns (requeued, failed)."""
        in_flight = t.Outbox.status == S.SENDING
        if now is not None:
            expired = or_(
                col(t.Outbox.claim_expires_at).is_(None), col(t.Outbox.claim_expires_at) < _utc(now)
            )
            in_flight = and_(in_flight, expired)
        released = {"claimed_by": None, "claim_expires_at": None}
        failed = (
            await self.session.exec(
                update(t.Outbox)
                .where(in_flight, t.Outbox.attempts >= max_attempts)
                .values(status=S.FAILED, last_error="interrupted while sending; attempts used up", **released)
            )
        ).rowcount
        requeued = (
            await self.session.exec(
                update(t.Outbox)
                .where(in_flight)
                .values(status=S.PENDING, last_error="interrupted while sending; sent again", **released)
            )
        ).rowcount
        return requeued, failed

    async def expire(self, kinds: Iterable[str], before: dt.datetime) -> int:
        """Cancel pending rows of these kinds due before ``before``: a digest of a past day
        (today's replaces it), a reminder older than the planner's catch-up window."""
        stmt = (
            update(t.Outbox)
            .where(
                t.Outbox.status == S.PENDING,
                col(t.Outbox.kind).in_(list(kinds)),
                t.Outbox.send_at < _utc(before),
            )
            .values(status=S.CANCELLED, last_error="expired: its day passed before it could be sent")
        )
        return (await self.session.exec(stmt)).rowcount

    # -------------------------------------------------------------- reading

    async def counts(self) -> dict[str, int]:
        stmt = select(t.Outbox.status, func.count()).group_by(t.Outbox.status)
        return {status: n for status, n in (await self.session.exec(stmt)).all()}

    async def log(self, recipient: str | None = None, limit: int = 200) -> list[LogRow]:
        """Newest first. ``recipient``: a contact id, a chat id or part of a contact's name."""
        stmt = (
            select(t.Outbox, t.Contact, t.Institution)
            .join(t.Contact, col(t.Outbox.contact_id) == col(t.Contact.id), isouter=True)
            .join(t.Institution, col(t.Contact.institution_id) == col(t.Institution.id), isouter=True)
        )
        if recipient:
            who = recipient.strip()
            # Names are matched in Python: SQLite's lower() folds ASCII only ("Ē" ≠ "ē").
            names = (await self.session.exec(select(t.Contact.id, t.Contact.display_name))).all()
            ids = [cid for cid, name in names if who.casefold() in name.casefold()]
            conds = [col(t.Outbox.contact_id).in_(ids)]
            if who.lstrip("-").isdigit():
                conds += [col(t.Outbox.contact_id) == int(who), col(t.Outbox.chat_id) == int(who)]
            stmt = stmt.where(or_(*conds))
        stmt = stmt.order_by(col(t.Outbox.send_at).desc(), col(t.Outbox.id).desc()).limit(limit)
        out = []
        for row, contact, inst in (await self.session.exec(stmt)).all():
            reminder = ReminderPayload.from_json(row.payload) if row.kind in REMINDER_KINDS else None
            out.append(
                LogRow(
                    id=row.id,
                    kind=row.kind,
                    status=row.status,
                    contact_id=row.contact_id,
                    recipient=contact.display_name if contact else "—",
                    institution=inst.abbr if inst else "—",
                    chat_id=row.chat_id,
                    send_at=as_utc(row.send_at),
                    sent_at=as_utc(row.sent_at),
                    attempts=row.attempts,
                    telegram_message_id=row.telegram_message_id,
                    last_error=row.last_error,
                    measures=reminder.measures if reminder else (),
                )
            )
        return out

    async def sent_log(self, until: dt.datetime | None = None) -> list[SentLogEntry]:
        """(contact, measure, sent_at) for every delivered reminder and snooze."""
        stmt = select(t.Outbox.contact_id, t.Outbox.payload, t.Outbox.sent_at).where(
            t.Outbox.status == S.SENT,
            col(t.Outbox.kind).in_(list(REMINDER_KINDS)),
            col(t.Outbox.contact_id).is_not(None),
        )
        if until is not None:
            stmt = stmt.where(t.Outbox.sent_at <= _utc(until))
        out: list[SentLogEntry] = []
        for contact_id, payload, sent_at in (await self.session.exec(stmt)).all():
            at = as_utc(sent_at)
            out.extend((contact_id, code, at) for code in ReminderPayload.from_json(payload).measures)
        return out


class ReminderRepo:
    """What the reminder planner reads: recipients, mutes and which values were reported."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def recipients(self) -> list[Recipient]:
        """Every contact with a Telegram chat (inactive and blocked ones too: the digest lists them)."""
        stmt = (
            select(t.Contact, t.Institution.abbr)
            .join(t.Institution, col(t.Contact.institution_id) == col(t.Institution.id))
            .where(col(t.Contact.telegram_user_id).is_not(None))
            .order_by(t.Contact.id)
        )
        return [
            Recipient(
                ref=ContactRef(
                    contact_id=c.id,
                    chat_id=c.telegram_user_id,
                    institution=abbr,
                    language=c.language,
                    active=c.active,
                    blocked=c.blocked,
                ),
                name=c.display_name,
                role=c.role,
            )
            for c, abbr in (await self.session.exec(stmt)).all()
        ]

    async def reported(self, years: Iterable[int] | None = None) -> dict[tuple[str, str, int], set[str]]:
        """(measure code, institution, year) → indicator codes that have a value in a submitted report."""
        stmt = (
            select(t.Measure.code, t.Institution.abbr, t.ReportingPeriod.year, t.Indicator.code)
            .select_from(t.Report)
            .join(t.Measure, col(t.Report.measure_id) == col(t.Measure.id))
            .join(t.Institution, col(t.Report.institution_id) == col(t.Institution.id))
            .join(t.ReportingPeriod, col(t.Report.period_id) == col(t.ReportingPeriod.id))
            .join(t.ReportValue, col(t.ReportValue.report_id) == col(t.Report.id), isouter=True)
            .join(t.Indicator, col(t.ReportValue.indicator_id) == col(t.Indicator.id), isouter=True)
            .where(t.Report.status == t.ReportStatus.SUBMITTED)
        )
        if years is not None:
            stmt = stmt.where(col(t.ReportingPeriod.year).in_(list(years)))
        out: dict[tuple[str, str, int], set[str]] = defaultdict(set)
        for measure, inst, year, indicator in (await self.session.exec(stmt)).all():
            found = out[(measure, inst, year)]
            if indicator is not None:
                found.add(indicator)
        return dict(out)

    async def mutes(self, active_on: dt.date | None = None, contact_id: int | None = None) -> list[MuteView]:
        """Mutes still in force on ``active_on`` (``until`` after it), or all of them."""
        stmt = (
            select(t.ReminderMute, t.Measure.code, t.Contact.display_name, t.Institution.abbr)
            .join(t.Measure, col(t.ReminderMute.measure_id) == col(t.Measure.id))
            .join(t.Contact, col(t.ReminderMute.contact_id) == col(t.Contact.id))
            .join(t.Institution, col(t.Contact.institution_id) == col(t.Institution.id))
        )
        if active_on is not None:
            stmt = stmt.where(t.ReminderMute.until > active_on)
        if contact_id is not None:
            stmt = stmt.where(t.ReminderMute.contact_id == contact_id)
        stmt = stmt.order_by(t.Institution.abbr, t.Contact.display_name, t.ReminderMute.id)
        return [
            MuteView(
                id=m.id,
                contact_id=m.contact_id,
                contact_name=name,
                institution=abbr,
                measure_id=code,
                until=m.until,
                reason=m.reason,
                created_at=as_utc(m.created_at),
            )
            for m, code, name, abbr in (await self.session.exec(stmt)).all()
        ]

    async def add_mute(
        self,
        *,
        contact_id: int,
        measure_code: str,
        until: dt.date,
        reason: str,
        now: dt.datetime | None = None,
    ) -> t.ReminderMute:
        measure = (
            await self.session.exec(
                select(t.Measure).where(t.Measure.code == measure_code, col(t.Measure.active).is_(True))
            )
        ).first()
        if measure is None:
            raise LookupError(f"no active measure {measure_code!r}")
        mute = t.ReminderMute(
            contact_id=contact_id,
            measure_id=measure.id,
            until=until,
            reason=reason,
            created_at=_utc(now) if now else t.utcnow(),
        )
        self.session.add(mute)
        await self.session.flush()
        return mute
