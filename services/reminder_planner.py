"""Reminder planning: the policy (reporting_forms/reminder_policy.py) over the database → outbox rows.

What is due is always computed from the database (catalog deadlines, contacts, mutes, submitted
values, the sent log), so a plan is right after any restart; bot/scheduler.py only triggers it.
The daily plan is idempotent: unique dedup keys, and at most one reminder row per contact per
day — a re-plan refreshes a row not sent yet. Days nobody planned (the bot was down) are caught
up on the next planning day (up to ``catch_up_days``, see ``job_run``): their reminders are
listed in that day's message, once. Reminders planned but never delivered (a snooze, a day that
ended in an outage) are folded into the next day's message too, so a contact still gets one
message a day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from reporting_forms.catalog import Catalog, natural_key
from reporting_forms.payloads import KIND_DIGEST, KIND_REMINDER, KIND_SNOOZE, REMINDER_KINDS, ReminderPayload
from reporting_forms.reminder_policy import (
    MeasureDue,
    MissingFn,
    ReminderPolicy,
    chased_only,
    due_items,
    due_items_caught_up,
    escalation_digest,
    measures_due,
    merge_carried,
    plan_messages,
)
from reporting_forms.workdays import is_working_day
from services.reminder_messages import digest_payloads
from storage.db import Database, as_utc
from storage.outbox import NewMessage, Recipient, missing_from_reported, outbox_key
from storage.repositories import Repos
from storage.tables import COORDINATOR_ROLES, OutboxStatus, Role, utcnow

JOB_PLAN = "reminders.plan"  # the scheduler's job id, and the day record (job_run) of a plan
# Rows in these states were (or are being) delivered: a re-plan leaves the day alone.
HANDLED = frozenset({OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.BLOCKED})


@dataclass
class PlanResult:
    messages: int = 0  # what the policy wants sent
    added: int = 0
    refreshed: int = 0  # an unsent row of the day got new content
    cancelled: int = 0  # an unsent row of the day is no longer needed
    unchanged: int = 0

    def __str__(self) -> str:
        return (
            f"{self.messages} planned: {self.added} added, {self.refreshed} refreshed, "
            f"{self.cancelled} cancelled, {self.unchanged} unchanged"
        )


@dataclass(frozen=True)
class PreviewMessage:
    send_at: dt.datetime
    contact_id: int
    recipient: str
    chat_id: int
    institution: str
    kind: str  # outbox kind: reminder | digest
    kinds: tuple[str, ...]  # policy kinds (deadline, request, reminder, overdue) or ("digest",)
    measures: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "send_at": self.send_at.isoformat(),
            "recipient": self.recipient,
            "contact_id": self.contact_id,
            "chat_id": self.chat_id,
            "institution": self.institution,
            "kind": self.kind,
            "kinds": list(self.kinds),
            "measures": list(self.measures),
        }


@dataclass
class _Inputs:
    recipients: list[Recipient]
    missing: MissingFn  # only what the bot chases on the day (see chased_only)
    mutes: list[Any] = field(default_factory=list)  # MuteView

    @property
    def refs(self) -> list[Any]:
        """The institutions' reporting contacts: reminders go to them (never to a coordinator or
        an admin, who get the digest), and the digest counts them as who can be reached."""
        return [r.ref for r in self.recipients if r.role == Role.CONTACT]


class ReminderPlanner:
    """Turns the policy over storage data into outbox rows (and previews them)."""

    def __init__(
        self,
        db: Database,
        policy: ReminderPolicy,
        measures: Sequence[MeasureDue],
        *,
        digest_institutions: Iterable[str] | None = None,
    ) -> None:
        self.db, self.policy, self.measures = db, policy, tuple(measures)
        self.digest_institutions = frozenset(digest_institutions) if digest_institutions is not None else None

    @classmethod
    def from_catalog(cls, db: Database, catalog: Catalog, policy: ReminderPolicy) -> ReminderPlanner:
        """Measures from the catalog; the digest covers institutions that report in chat."""
        return cls(db, policy, measures_due(catalog), digest_institutions=catalog.reporting_institutions())

    def today(self, now: dt.datetime | None = None) -> dt.date:
        return (now or utcnow()).astimezone(self.policy.tz).date()

    def day_bounds(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        start = dt.datetime.combine(day, dt.time(0), tzinfo=self.policy.tz)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=self.policy.tz)
        return start, end

    async def _inputs(self, mutes_on: dt.date | None, day: dt.date | None = None) -> _Inputs:
        """Recipients, mutes, and what is missing among what the bot chases on ``day``
        (default ``mutes_on``, else today)."""
        async with self.db.session() as s:
            repo = Repos(s).reminders
            recipients = await repo.recipients()
            reported = await repo.reported()
            mutes = await repo.mutes(active_on=mutes_on)
            window = await Repos(s).periods.window()
        missing = missing_from_reported(self.measures, reported)
        on = day or mutes_on or self.today()
        return _Inputs(recipients, chased_only(missing, window, on), mutes)

    # -------------------------------------------------------------- reminders

    async def plan_reminders(self, day: dt.date) -> PlanResult:
        """The day's reminders into the outbox: one row per contact, listing what is due today,
        what was due on days nobody planned (the bot was down: caught up, once), and the lines of
        the contact's undelivered rows (a snooze for today, a reminder whose day passed unsent),
        which are cancelled as carried. Records the day in ``job_run``."""
        inputs = await self._inputs(day)
        since = await self._first_unplanned_day(day)
        items = due_items_caught_up(self.policy, self.measures, day, since)
        mutes = [m.as_mute() for m in inputs.mutes]
        messages = plan_messages(self.policy, items, inputs.refs, mutes, inputs.missing)
        undelivered = await self._undelivered(day)
        carried = {
            contact_id: [line for row in rows for line in ReminderPayload.from_json(row.payload).carried()]
            for contact_id, rows in undelivered.items()
        }
        messages = merge_carried(self.policy, messages, carried, inputs.refs, mutes, inputs.missing, day)
        wanted = {
            m.contact_id: [
                NewMessage(
                    m.dedup_key,
                    m.contact_id,
                    m.chat_id,
                    KIND_REMINDER,
                    ReminderPayload.of_message(m),
                    m.send_at,
                )
            ]
            for m in messages
        }
        start = self.day_bounds(day)[0]
        carried_ids = {  # the day's own reminder row is reconciled, the others are folded in
            cid: [r.id for r in rows if r.kind == KIND_SNOOZE or as_utc(r.send_at) < start]
            for cid, rows in undelivered.items()
        }
        result = await self._store_daily(day, KIND_REMINDER, wanted, carried=carried_ids, job=JOB_PLAN)
        result.messages = len(messages)
        return result

    async def _first_unplanned_day(self, day: dt.date) -> dt.date | None:
        """The first day after the last planned one, when days before ``day`` were missed
        (at most ``catch_up_days`` back); None when nothing was missed or nothing was ever planned."""
        async with self.db.session() as s:
            last = await Repos(s).jobs.last_day(JOB_PLAN, before=day)
        if last is None or last >= day - dt.timedelta(days=1):
            return None
        return max(last + dt.timedelta(days=1), day - dt.timedelta(days=self.policy.catch_up_days))

    async def _undelivered(self, day: dt.date) -> dict[int | None, list[Any]]:
        """Pending reminder rows whose lines belong in ``day``'s message: snoozes due that day, any
        reminder or snooze of an earlier day (within the catch-up window) that was never sent,
        and the day's own unsent row (a re-plan keeps what an earlier run folded into it)."""
        start, end = self.day_bounds(day)
        since = start - dt.timedelta(days=self.policy.catch_up_days)
        out: dict[int | None, list[Any]] = defaultdict(list)
        async with self.db.session() as s:
            for row in await Repos(s).outbox.for_period(list(REMINDER_KINDS), since, end):
                if row.status == OutboxStatus.PENDING:
                    out[row.contact_id].append(row)
        return dict(out)

    async def _store_daily(
        self,
        day: dt.date,
        kind: str,
        wanted: dict[int | None, list[NewMessage]],
        *,
        carried: dict[int | None, list[int]] | None = None,
        job: str | None = None,
    ) -> PlanResult:
        """Make the day's rows of ``kind`` match ``wanted`` (per contact, one or more parts) without
        ever touching a contact whose rows of the day are already being or were delivered.
        ``carried`` rows (folded into the contact's new row) are cancelled in the same transaction;
        ``job`` records the day as planned in it too."""
        carried = carried or {}
        start, end = self.day_bounds(day)
        for attempt in (1, 2):
            result = PlanResult()
            try:
                async with self.db.session() as s:
                    repo = Repos(s).outbox
                    existing: dict[int | None, list[Any]] = defaultdict(list)
                    for row in await repo.for_period([kind], start, end):
                        existing[row.contact_id].append(row)
                    new: list[NewMessage] = []
                    for contact_id in set(existing) | set(wanted) | set(carried):
                        rows, parts = existing.get(contact_id, []), wanted.get(contact_id, [])
                        if any(r.status in HANDLED for r in rows):
                            # today's message is out: what was carried waits for the next day
                            result.unchanged += len(parts)
                            continue
                        for row_id in carried.get(contact_id, ()):
                            await repo.cancel(row_id, f"carried into the reminder of {day.isoformat()}")
                        if sorted(r.dedup_key for r in rows if r.status == OutboxStatus.PENDING) == sorted(
                            p.dedup_key for p in parts
                        ):
                            result.unchanged += len(parts)
                            continue
                        if len(rows) == 1 and len(parts) == 1:
                            await repo.replace_pending(rows[0].id, parts[0])
                            result.refreshed += 1
                            continue
                        result.cancelled += sum(
                            1 for r in rows if r.status == OutboxStatus.PENDING and not parts
                        )
                        await repo.delete_unsent(r.id for r in rows)
                        new.extend(parts)
                    result.added = await repo.add_many(new)
                    if job is not None:
                        await Repos(s).jobs.mark(job, day, str(result))
                return result
            except IntegrityError:  # another planner inserted the same key meanwhile: once more
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # -------------------------------------------------------------- digest

    async def build_digest(self, day: dt.date, inputs: _Inputs | None = None) -> Any:
        inputs = inputs or await self._inputs(day)
        async with self.db.session() as s:
            sent_log = await Repos(s).outbox.sent_log()
        return escalation_digest(
            self.policy,
            self.measures,
            inputs.refs,
            inputs.missing,
            sent_log,
            day,
            institutions=self.digest_institutions,
        )

    async def plan_digest(self, day: dt.date) -> PlanResult:
        """The escalation digest for every reachable coordinator, on working days with anything overdue."""
        if not is_working_day(day, self.policy.country):
            return PlanResult()
        inputs = await self._inputs(day)
        digest = await self.build_digest(day, inputs)
        names = {r.ref.contact_id: r.name for r in inputs.recipients}
        wanted: dict[int | None, list[NewMessage]] = {}
        for r in inputs.recipients:
            if r.role not in COORDINATOR_ROLES or not r.ref.reachable or not digest.entries:
                continue
            payloads = digest_payloads(digest, inputs.mutes, names, r.ref.language, self.policy.tz)
            wanted[r.ref.contact_id] = [
                NewMessage(
                    outbox_key(
                        [
                            r.ref.contact_id,
                            KIND_DIGEST,
                            day.isoformat(),
                            p.part,
                            p.parts,
                            outbox_key(p.to_json()),
                        ]
                    ),
                    r.ref.contact_id,
                    r.ref.chat_id,
                    KIND_DIGEST,
                    p,
                    self.policy.send_at(day),
                )
                for p in payloads
            ]
        result = await self._store_daily(day, KIND_DIGEST, wanted)
        result.messages = sum(len(v) for v in wanted.values())
        return result

    # -------------------------------------------------------------- preview

    async def preview(self, start: dt.date, end: dt.date, *, digests: bool = True) -> list[PreviewMessage]:
        """What would be sent in [start, end] if nothing changed from now on (nothing is written)."""
        inputs = await self._inputs(None, start)
        by_id = {r.ref.contact_id: r for r in inputs.recipients}
        items = due_items(self.policy, self.measures, start, end)
        messages = plan_messages(
            self.policy, items, inputs.refs, [m.as_mute() for m in inputs.mutes], inputs.missing
        )
        out = [
            PreviewMessage(
                send_at=m.send_at,
                contact_id=m.contact_id,
                recipient=by_id[m.contact_id].name,
                chat_id=m.chat_id,
                institution=m.institution,
                kind=KIND_REMINDER,
                kinds=tuple(sorted(k.value for k in m.kinds)),
                measures=tuple(dict.fromkeys(i.measure_id for i in m.items)),
            )
            for m in messages
        ]
        coordinators = [r for r in inputs.recipients if r.role in COORDINATOR_ROLES and r.ref.reachable]
        if digests and coordinators:
            day = start
            while day <= end:
                if is_working_day(day, self.policy.country):
                    digest = await self.build_digest(day, inputs)
                    overdue = tuple(sorted({e.measure_id for e in digest.entries}, key=natural_key))
                    if digest.entries:
                        out += [
                            PreviewMessage(
                                send_at=self.policy.send_at(day),
                                contact_id=c.ref.contact_id,
                                recipient=c.name,
                                chat_id=c.ref.chat_id,
                                institution=c.ref.institution,
                                kind=KIND_DIGEST,
                                kinds=(KIND_DIGEST,),
                                measures=overdue,
                            )
                            for c in coordinators
                        ]
                day += dt.timedelta(days=1)
        out.sort(key=lambda p: (p.send_at, p.kind != KIND_REMINDER, p.contact_id))
        return out
