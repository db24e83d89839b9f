"""The scheduler that triggers reminder planning, digests and compilations inside the bot process.

The scheduler only *triggers* work; what is due is always computed from the database by
``services.reminder_planner`` (the policy of ``reporting_forms.reminder_policy`` over catalog
deadlines, contacts, mutes, submitted values and the sent log), so it is right after any restart.
Jobs (APScheduler 3 ``AsyncIOScheduler``, jobs kept in the project database by
``SQLAlchemyJobStore``, in the TIMEZONE setting's zone):

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
sender starts; days the bot was down for entirely are caught up by the planner.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.leader import Leadership
from bot.sender import Sender
from reporting_forms.schedule import COMPILE_AT, due_compile_runs
from services.compilation import enqueue_compilation
from services.reminder_planner import JOB_PLAN, PlanResult, ReminderPlanner
from storage.tables import utcnow

if TYPE_CHECKING:
    from aiogram import Bot

    from bot.services_container import Services

log = logging.getLogger("resobot.scheduler")

JOB_DIGEST = "reminders.digest"
JOB_DRAIN = "outbox.drain"
JOB_COMPILE = "compile.run"
JOBS_TABLE = "apscheduler_jobs"
DRAIN_EVERY = dt.timedelta(minutes=1)


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
    "ReminderRuntime",
    "build_scheduler",
    "install_jobs",
    "jobstore_engine",
    "running_reminders",
    "sync_database_url",
]
