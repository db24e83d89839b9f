"""Reminder planning and the scheduler that triggers it, inside the bot process.

The scheduler only *triggers* work; what is due is always computed from the database with
``reporting_forms.reminders`` (catalog deadlines, contacts, mutes, submitted values, the sent
log), so it is right after any restart. Jobs (APScheduler 3 ``AsyncIOScheduler``, jobs kept
in the project database by ``SQLAlchemyJobStore``, time zone of the policy — Europe/Riga):

``reminders.plan``    every day at send_time − REMINDER_PLAN_LEAD_MINUTES (08:55): today's
                      planned messages → outbox (idempotent: unique dedup_key, and at most one
                      reminder row per contact per day — a re-plan refreshes a row not sent yet)
``reminders.digest``  a minute later: the coordinators' escalation digest, one per working day
                      while anything is overdue
``compile.run``       every day at 08:00: a monthly compilation on the first working day of
                      the month, the annual one on 15 January, queued for coordinators (the
                      text and the files through the outbox; done once per run, see job_run)
``outbox.drain``      every minute: wakes the sender (which also polls on its own)

Stable job ids + ``replace_existing=True`` keep one copy of each job however often the bot
starts; ``coalesce=True`` + ``misfire_grace_time`` run a job missed during downtime once, not
once per missed occasion. Planning and due compilations also run at start-up, before the
sender starts. Days the bot was down for entirely are caught up on the next planning day (up
to ``catch_up_days``, see ``job_run``): their reminders are listed in that day's message, once.
Reminders that were planned but never delivered (a snooze, a day that ended in an outage) are
folded into the next day's message too, so a contact still gets one message a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from bot.reminders import digest_payloads
from reporting_forms.catalog import Catalog
from reporting_forms.reminders import (
    MeasureDue,
    MissingFn,
    ReminderPolicy,
    carried_items,
    chased_only,
    due_items,
    due_items_caught_up,
    escalation_digest,
    measures_due,
    merge_carried,
    natural_key,
    plan_messages,
)
from reporting_forms.schedule import COMPILE_AT, due_compile_runs
from reporting_forms.workdays import is_working_day
from services.compilation import enqueue_compilation
from storage.db import Database, as_utc
from storage.jobs import JobRunRepo
from storage.outbox import (
    KIND_DIGEST,
    KIND_REMINDER,
    KIND_SNOOZE,
    REMINDER_KINDS,
    NewMessage,
    OutboxRepo,
    Recipient,
    ReminderRepo,
    missing_from_reported,
    outbox_key,
)
from storage.repositories import Repos
from storage.tables import OutboxStatus, Role, utcnow

if TYPE_CHECKING:
    from aiogram import Bot

    from bot.sender import Sender
    from bot.services_container import Services

log = logging.getLogger("resobot.scheduler")

JOB_PLAN = "reminders.plan"
JOB_DIGEST = "reminders.digest"
JOB_DRAIN = "outbox.drain"
JOB_COMPILE = "compile.run"
JOBS_TABLE = "apscheduler_jobs"
DRAIN_EVERY = dt.timedelta(minutes=1)
COORDINATOR_ROLES = frozenset({Role.COORDINATOR, Role.ADMIN})
# Rows in these states were (or are being) delivered: a re-plan leaves the day alone.
HANDLED = frozenset({OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.BLOCKED})


# ------------------------------------------------------------------ planning


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
            repo = ReminderRepo(s)
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
            contact_id: [line for row in rows for line in carried_items(row.payload)]
            for contact_id, rows in undelivered.items()
        }
        messages = merge_carried(self.policy, messages, carried, inputs.refs, mutes, inputs.missing, day)
        wanted = {
            m.contact_id: [
                NewMessage(m.dedup_key, m.contact_id, m.chat_id, KIND_REMINDER, m.payload(), m.send_at)
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
            last = await JobRunRepo(s).last_day(JOB_PLAN, before=day)
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
            for row in await OutboxRepo(s).for_period(list(REMINDER_KINDS), since, end):
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
                    repo = OutboxRepo(s)
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
                        await JobRunRepo(s).mark(job, day, str(result))
                return result
            except IntegrityError:  # another planner inserted the same key meanwhile: once more
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    # -------------------------------------------------------------- digest

    async def build_digest(self, day: dt.date, inputs: _Inputs | None = None) -> Any:
        inputs = inputs or await self._inputs(day)
        async with self.db.session() as s:
            sent_log = await OutboxRepo(s).sent_log()
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
                        [r.ref.contact_id, KIND_DIGEST, day.isoformat(), p["part"], p["parts"], outbox_key(p)]
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


# ------------------------------------------------------------------ the scheduler


def sync_database_url(url: str) -> str:
    """The job store is synchronous: sqlite+aiosqlite → sqlite, postgresql+asyncpg → psycopg 3."""
    parsed = make_url(url)
    driver = parsed.drivername
    if driver.startswith("sqlite"):
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    if driver.startswith("postgresql"):
        query = dict(parsed.query)
        if "ssl" in query:  # asyncpg's ?ssl=require is libpq's ?sslmode=require
            query["sslmode"] = query.pop("ssl")
        return parsed.set(drivername="postgresql+psycopg", query=query).render_as_string(hide_password=False)
    raise ValueError(f"no synchronous driver known for {driver!r}")


def _sqlite_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")  # share the file with the bot's async engine
    cursor.close()


def jobstore_engine(database_url: str) -> Engine:
    engine = create_engine(sync_database_url(database_url), pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_busy_timeout)
    return engine


def build_scheduler(settings: Settings, engine: Engine) -> AsyncIOScheduler:
    policy = settings.reminder_policy
    return AsyncIOScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
        timezone=policy.tz,
        job_defaults={
            "coalesce": True,
            "misfire_grace_time": settings.scheduler_misfire_grace_seconds,
            "max_instances": 1,
        },
    )


def _install(
    scheduler: AsyncIOScheduler, func: str, trigger: Any, job_id: str, name: str, **options: Any
) -> None:
    """``add_job(replace_existing=True)`` under a stable id — but a stored job with the same
    trigger keeps its ``next_run_time``: replacing would reschedule from now and silently drop
    a run that was missed while the bot was down (coalesce/misfire then handle it)."""
    old = scheduler.get_job(job_id)
    if (
        old is not None
        and old.next_run_time is not None
        and str(old.trigger) == str(trigger)
        and str(getattr(old.trigger, "timezone", "")) == str(getattr(trigger, "timezone", ""))
    ):
        options["next_run_time"] = old.next_run_time
    scheduler.add_job(func, trigger, id=job_id, name=name, replace_existing=True, **options)


def install_jobs(scheduler: AsyncIOScheduler, settings: Settings) -> None:
    """Add (or replace) the jobs under their stable ids. Idempotent across restarts.

    Call it on a scheduler started with ``paused=True`` (so the stored jobs are visible), then
    ``resume()``: a run missed during downtime is then run once (coalesced) if within the grace."""
    policy = settings.reminder_policy
    plan_at = dt.datetime.combine(dt.date(2000, 1, 3), policy.send_time) - dt.timedelta(
        minutes=settings.reminder_plan_lead_minutes
    )
    digest_at = plan_at + dt.timedelta(minutes=1)
    if settings.reminders_enabled:
        _install(
            scheduler,
            f"{__name__}:plan_job",
            CronTrigger(hour=plan_at.hour, minute=plan_at.minute, timezone=policy.tz),
            JOB_PLAN,
            "plan today's reminders",
        )
        _install(
            scheduler,
            f"{__name__}:digest_job",
            CronTrigger(hour=digest_at.hour, minute=digest_at.minute, timezone=policy.tz),
            JOB_DIGEST,
            "coordinators' escalation digest",
        )
    else:
        for job_id in (JOB_PLAN, JOB_DIGEST):
            with contextlib.suppress(JobLookupError):
                scheduler.remove_job(job_id)
    if settings.compile_enabled:
        _install(
            scheduler,
            f"{__name__}:compile_job",
            CronTrigger(hour=COMPILE_AT.hour, minute=COMPILE_AT.minute, timezone=policy.tz),
            JOB_COMPILE,
            "scheduled compilations for coordinators",
        )
    else:
        with contextlib.suppress(JobLookupError):
            scheduler.remove_job(JOB_COMPILE)
    _install(
        scheduler,
        f"{__name__}:drain_job",
        IntervalTrigger(seconds=int(DRAIN_EVERY.total_seconds()), timezone=policy.tz),
        JOB_DRAIN,
        "wake the outbox sender",
        misfire_grace_time=int(DRAIN_EVERY.total_seconds()),
    )


# Jobs are stored by reference ("bot.scheduler:plan_job"), so they reach the running
# process's runtime through this module-level slot instead of pickled arguments.
_current: ReminderRuntime | None = None


async def plan_job() -> None:
    if _current is not None:
        await _current.plan_reminders()


async def digest_job() -> None:
    if _current is not None:
        await _current.plan_digest()


async def drain_job() -> None:
    if _current is not None:
        _current.ensure_sender()


async def compile_job() -> None:
    if _current is not None:
        await _current.run_compilations()


class ReminderRuntime:
    """The scheduler and the sender of one bot process."""

    def __init__(self, services: Services, bot: Bot, *, plan_on_start: bool = True) -> None:
        from bot.sender import Sender

        self.services, self.bot = services, bot
        self.settings = services.settings
        self.policy = self.settings.reminder_policy
        self.planner = ReminderPlanner.from_catalog(services.db, services.catalog, self.policy)
        self.sender: Sender = Sender(services.db, bot, self.settings, policy=self.policy)
        self.plan_on_start = plan_on_start
        self.scheduler: AsyncIOScheduler | None = None
        self._engine: Engine | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self._planning = asyncio.Lock()  # start-up planning and a coalesced missed run may overlap
        self._ready = False  # start-up planning done: the sender may run
        self.leadership: Any = None  # bot/leader.py's Leadership, set by running_reminders

    @property
    def is_leader(self) -> bool | None:
        """Whether this process runs the scheduler and the outbox (``/readyz``): the services'
        state, which the leader election keeps (None until decided)."""
        return self.services.is_leader

    async def start(self) -> None:
        """Become the instance that schedules and sends (bot/leader.py calls it on winning)."""
        global _current
        from bot.sender import Sender

        _current = self
        if self.sender.stopping:  # led before, stepped down: a fresh sender
            self.sender = Sender(self.services.db, self.bot, self.settings, policy=self.policy)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # no line per minute-job run
        self._engine = jobstore_engine(self.settings.database_url)
        self.scheduler = build_scheduler(self.settings, self._engine)
        engine = self._engine
        await asyncio.to_thread(lambda: engine.connect().close())  # fail early on a wrong URL
        self.scheduler.start(paused=True)
        install_jobs(self.scheduler, self.settings)
        # Plan first, then send: the sender must not see a snooze or yesterday's unsent row
        # before the planner has folded it into today's reminder.
        if self.settings.reminders_enabled and self.plan_on_start:
            await self.plan_reminders()
            await self.plan_digest()
        if self.settings.compile_enabled and self.plan_on_start:
            await self.run_compilations()
        self._ready = True
        self.scheduler.resume()
        self.ensure_sender()

    def ensure_sender(self) -> None:
        """Start the sender loop (again, if it ever died) and wake it."""
        if not self._ready:
            return
        if self._sender_task is None or self._sender_task.done():
            if (
                self._sender_task is not None
                and not self._sender_task.cancelled()
                and self._sender_task.exception()
            ):
                log.error("the outbox sender stopped; restarting it", exc_info=self._sender_task.exception())
            self._sender_task = asyncio.create_task(self.sender.run(), name="outbox-sender")
        self.services.sender = self.sender  # woken after an update's unit queues rows
        self.sender.wake()

    async def plan_reminders(self, day: dt.date | None = None) -> PlanResult | None:
        day = day or self.planner.today()
        try:
            async with self._planning:
                result = await self.planner.plan_reminders(day)
        except Exception:  # a failed run is retried by the next trigger; never kill the bot
            log.exception("planning reminders for %s failed", day)
            return None
        log.info("reminders for %s: %s", day, result)
        self.sender.wake()
        return result

    async def plan_digest(self, day: dt.date | None = None) -> PlanResult | None:
        day = day or self.planner.today()
        try:
            async with self._planning:
                result = await self.planner.plan_digest(day)
        except Exception:
            log.exception("planning the digest for %s failed", day)
            return None
        if result.messages:
            log.info("digest for %s: %s", day, result)
        self.sender.wake()
        return result

    async def run_compilations(self, now: dt.datetime | None = None) -> int:
        """Queue every scheduled compilation whose time has come and that is not done yet
        (within the catch-up window). Returns the outbox rows added."""
        now = now or utcnow()
        added = 0
        for run in due_compile_runs(now, self.policy.catch_up_days, self.policy.tz):
            try:
                async with self._planning:
                    added += await enqueue_compilation(self.services, run, now=now)
            except Exception:  # the next trigger retries; never kill the bot
                log.exception("the %s compilation of %s failed", run.kind, run.at.date())
        if added:
            log.info("compilations: %s outbox row(s) queued", added)
            self.sender.wake()
        return added

    async def stop(self) -> None:
        """Stop scheduling and sending: no new request starts, requests already sent get their
        answers and are recorded (bounded by the request timeout; past it the task is cancelled
        and its rows wait for their lease to expire)."""
        global _current
        self._ready = False
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        self.scheduler = None
        if self.services.sender is self.sender:
            self.services.sender = None
        self.sender.stop()
        task, self._sender_task = self._sender_task, None
        if task is not None:
            grace = max(self.settings.outbox_request_timeout, 60.0) + 5
            try:
                await asyncio.wait_for(task, grace)
            except TimeoutError:
                log.error("the outbox sender did not stop within %.0f s; abandoned", grace)
            except Exception:
                log.exception("the outbox sender stopped with an error")
        if _current is self:
            _current = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


@contextlib.asynccontextmanager
async def running_reminders(
    services: Services, bot: Bot, *, plan_on_start: bool = True
) -> AsyncIterator[ReminderRuntime]:
    """Scheduler + sender for the duration of the block (the bot's polling, the console) — in
    the leader only (bot/leader.py): on PostgreSQL the instance holding the leader lock, on
    SQLite always this one. ``services.is_leader`` tells which this instance is."""
    from bot.leader import Leadership

    runtime = ReminderRuntime(services, bot, plan_on_start=plan_on_start)

    def report(value: bool | None) -> None:
        services.is_leader = value

    leadership = Leadership(
        services.settings.database_url,
        on_gain=runtime.start,
        on_lose=runtime.stop,
        poll_seconds=services.settings.leader_poll_seconds,
        report=report,
    )
    runtime.leadership = leadership
    await leadership.start()
    try:
        yield runtime
    finally:
        await leadership.stop()


__all__ = [
    "JOB_COMPILE",
    "JOB_DIGEST",
    "JOB_DRAIN",
    "JOB_PLAN",
    "PlanResult",
    "PreviewMessage",
    "ReminderPlanner",
    "ReminderRuntime",
    "build_scheduler",
    "install_jobs",
    "jobstore_engine",
    "running_reminders",
    "sync_database_url",
]
