"""The outbox sender: the one path by which reminders, digests and scheduled compilations
reach Telegram.

Drains due ``outbox`` rows at no more than ``OUTBOX_GLOBAL_RATE`` messages/s overall and
``OUTBOX_PER_CHAT_RATE`` per chat — the limits of the bot's request middleware (bot/throttle.py),
shared with the bot's direct answers — one request per chat at a time, never in the policy's quiet
hours (checked again right before each request, so a long batch or a 429 pause that runs into
20:00 holds the rest until morning). ``document`` rows go out with sendDocument.

Send path of one row (each step its own short transaction)::

    wait for the chat's turn and the global rate limit (bot/throttle.py), check quiet hours
    claim  (pending → sending, attempts + 1, COMMIT)
    sendMessage / sendDocument
    mark   (sending → sent + telegram_message_id, COMMIT — right after the response)

Failures: 429 → back to pending after ``retry_after`` (the middleware pauses every start of the
bot that long, direct answers too; a 429 does not use up an attempt); 5xx, timeouts and network
errors → back to pending with exponential backoff (``OUTBOX_BACKOFF_SECONDS`` doubling,
capped), ``failed`` once ``OUTBOX_MAX_ATTEMPTS`` attempts are used; 403 → ``blocked`` and ``Contact.blocked``;
other 4xx → ``failed`` at once (retrying cannot help).

Exactly once, and its honest limit
----------------------------------
A crash (``kill -9``, power loss) can stop the process anywhere. Rows are never lost: a row is
``pending`` until claimed and ``sent`` only after Telegram answered. Rows are not repeated
either — with one exception: a row left in ``sending`` was claimed, and its request *may* have
reached Telegram before the crash. The Bot API has no idempotency key and no way to read a
chat's history, so nobody can tell. Policy: such rows are **sent again** (``recover_in_flight``)
once their claim's lease (``claimed_by``, ``claim_expires_at``: ``OUTBOX_CLAIM_LEASE_SECONDS``,
never shorter than the request timeout + 5 s) has expired — a live claim, whose request may
still be running in another instance, is never touched. On SQLite (one process per file) the
rows in ``sending`` at start-up are a dead process's and are requeued at once. The window is
kept tiny — the rate-limit wait happens *before* the claim, and ``sent`` is committed right
after the response — so only a crash inside the HTTP round trip itself (the request reached
Telegram, the answer was not yet committed: milliseconds) can repeat that one message. A
timeout is the same ambiguity without a crash: it is retried. A clean stop (SIGTERM) repeats
nothing: no new request starts, those in flight get their answers and are recorded before the
bot's HTTP session closes (bot/app.py ``run_polling``).

Several bot processes may share one PostgreSQL database: only the leader (bot/leader.py) runs a
sender, so the rate limits hold for the database. (``resobot reminders send-now`` may run next to
the bot: claims are atomic so nothing is sent twice, it skips recovery, but its rate limits are its
own.) The bookkeeping write after a request is retried on any database error with bounded backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import logging
import math
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import FSInputFile, InlineKeyboardMarkup
from sqlalchemy.exc import DBAPIError

from bot.config import Settings
from bot.keyboards import reminder_keyboard
from bot.replay import is_outage
from bot.throttle import Throttle, install
from reporting_forms.payloads import DocumentPayload, OutboxPayload, ReminderPayload, load_payload
from reporting_forms.reminder_policy import ReminderPolicy
from services.reminder_messages import outbox_text
from storage.db import Database, is_sqlite
from storage.outbox import DOCUMENT_KINDS, KIND_DIGEST, QUIET_KINDS, REMINDER_KINDS, DueRow, OutboxRepo
from storage.repositories import Repos
from storage.tables import utcnow

log = logging.getLogger("resobot.sender")

# The bookkeeping write after a request: 0.1, 0.2, 0.4 … ≤ 5 s between tries, ~30 s in all.
WRITE_TRIES = 10
WRITE_BACKOFF = 0.1
WRITE_BACKOFF_MAX = 5.0

Renderer = Callable[[OutboxPayload, str, int], tuple[str, InlineKeyboardMarkup | None]]


def render_outbox(payload: OutboxPayload, lang: str, row_id: int) -> tuple[str, InlineKeyboardMarkup | None]:
    """What an outbox row looks like in chat: its text, and a reminder's buttons."""
    markup = reminder_keyboard(row_id, payload, lang) if isinstance(payload, ReminderPayload) else None
    return outbox_text(payload, lang), markup


@dataclass
class SendStats:
    sent: int = 0
    retried: int = 0  # 5xx / network errors put back with backoff
    rate_limited: int = 0  # 429 answers
    failed: int = 0
    blocked: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: SendStats) -> None:
        for name in ("sent", "retried", "rate_limited", "failed", "blocked", "cancelled"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


def backoff(attempt: int, base: float, cap: float) -> float:
    """Delay before retry number ``attempt`` (1-based): base, 2·base, 4·base, … ≤ cap."""
    return min(cap, base * 2 ** max(0, attempt - 1))


class Sender:
    """Drains the outbox through ``bot``. ``run()`` loops until ``stop()``; ``drain_once()``
    sends everything due now (the CLI's send-now and the tests use it directly)."""

    def __init__(
        self,
        db: Database,
        bot: Bot,
        settings: Settings,
        *,
        policy: ReminderPolicy | None = None,
        renderer: Renderer = render_outbox,
        batch: int = 500,
        concurrency: int = 8,
        clock: Callable[[], dt.datetime] = utcnow,
        recover: bool = True,
        instance_id: str | None = None,
    ) -> None:
        self.db, self.bot, self.settings = db, bot, settings
        self.policy = policy or settings.reminder_policy
        self.renderer = renderer
        self.batch, self.clock = batch, clock
        # The bot's request middleware holds the rate limits (bot/throttle.py): shared with the
        # direct answers of the same bot. A bot built without one gets it from these settings.
        self.throttle = install(bot, Throttle.from_settings(settings))
        self._chat_next: dict[int, float] = {}
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()  # set by stop(): waits before a claim are abandoned
        # Only the leader's sender recovers expired claims; a one-shot sender (the CLI's
        # send-now) leaves them to it.
        self._recover = recover
        # SQLite: one process per database file (bot/leader.py), so at its start every row in
        # ``sending`` is a dead process's, whatever its lease says: recovered at once.
        self._first_recovery = is_sqlite(db.url)
        self.instance_id = instance_id or settings.instance_id or default_instance_id()
        self._db_down_since: float | None = None  # an outage: logged once, retried with backoff
        self._db_failures = 0
        self.totals = SendStats()

    # -------------------------------------------------------------- lifecycle

    def wake(self) -> None:
        """Something was enqueued: look at the outbox now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """No new request starts from now on; requests already sent finish and are recorded
        (``run()`` / ``drain_once()`` return once they have)."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def lease_until(self, request_timeout: float) -> dt.datetime:
        """The end of a claim's lease: never shorter than the request it covers may take."""
        lease = max(self.settings.outbox_claim_lease_seconds, request_timeout + 5)
        return self.clock() + dt.timedelta(seconds=lease)

    async def recover(self) -> None:
        """Requeue rows whose claim has expired: their sender died or lost the database in the
        middle of a request. A live claim — a request that may still be running, here or in
        another instance — is left alone. Run before every drain by the leader's sender."""
        if not self._recover:
            return
        now = None if self._first_recovery else self.clock()
        async with self.db.session() as s:
            requeued, failed = await Repos(s).outbox.recover_in_flight(
                self.settings.outbox_max_attempts, now=now
            )
        self._first_recovery = False
        if requeued or failed:
            log.warning(
                "outbox: %s row(s) with an expired claim (their sender stopped mid-request): "
                "%s requeued, %s failed",
                requeued + failed,
                requeued,
                failed,
            )

    async def run(self) -> None:
        poll = self.settings.outbox_poll_seconds
        while not self._stopping:
            self._wake.clear()
            try:
                stats = await self.drain_once()
                self._database_back()
                if stats.sent + stats.retried + stats.rate_limited >= self.batch:
                    continue  # a full batch: there is probably more right now
                timeout = await self._sleep_time(poll)
            except Exception as exc:  # the loop must survive a bad row or a database outage
                if is_outage(exc):  # one line per outage, then backoff
                    timeout = self._database_down(exc, poll)
                else:
                    log.exception("outbox drain failed")
                    timeout = poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _database_down(self, exc: BaseException, poll: float) -> float:
        now = time.monotonic()
        if self._db_down_since is None:
            self._db_down_since = now
            self._db_failures = 0
            log.warning("outbox: the database is unavailable (%s); retrying with backoff", _one_line(exc))
        self._db_failures += 1
        return min(60.0, poll * 2 ** min(self._db_failures - 1, 6))

    def _database_back(self) -> None:
        if self._db_down_since is not None:
            log.warning("outbox: the database is back after %.0f s", time.monotonic() - self._db_down_since)
            self._db_down_since = None

    async def _sleep_time(self, poll: float) -> float:
        if self.is_quiet(self.clock()):
            return poll
        async with self.db.session() as s:
            next_at = await Repos(s).outbox.next_due_at()
        if next_at is None:
            return poll
        return min(poll, max(0.05, (next_at - self.clock()).total_seconds()))

    # -------------------------------------------------------------- draining

    def is_quiet(self, now: dt.datetime) -> bool:
        return self.policy.quiet_hours.contains(now.astimezone(self.policy.tz).time())

    def _today_start(self, now: dt.datetime) -> dt.datetime:
        local = now.astimezone(self.policy.tz)
        return dt.datetime.combine(local.date(), dt.time(0), tzinfo=self.policy.tz)

    async def drain_once(self, *, until: dt.datetime | None = None) -> SendStats:
        """Send every row due by ``until`` (default: now), respecting rate limits; returns counts."""
        await self.recover()
        stats = SendStats()
        now = self.clock()
        today = self._today_start(now)
        async with self.db.session() as s:
            repo = Repos(s).outbox
            stats.cancelled += await repo.expire([KIND_DIGEST], today)
            window = dt.timedelta(days=self.policy.catch_up_days)
            stats.cancelled += await repo.expire(REMINDER_KINDS, today - window)
            rows = await repo.due(now, limit=self.batch, until=until, day_start=today)
        quiet = self.is_quiet(now)
        queues: dict[int, deque[DueRow]] = {}
        for row in rows:
            if quiet and row.kind in QUIET_KINDS:
                continue
            if row.contact_blocked:
                await self._close_blocked(row, "contact has blocked the bot", stats)
                continue
            if not row.contact_active:
                async with self.db.session() as s:
                    if await Repos(s).outbox.cancel(row.id, "contact deactivated"):
                        stats.cancelled += 1
                continue
            queues.setdefault(row.chat_id, deque()).append(row)

        if self._stopping:
            queues.clear()
        heap = [(self._chat_next.get(chat, 0.0), i, chat) for i, chat in enumerate(queues)]
        heapq.heapify(heap)
        tasks: set[asyncio.Task[None]] = set()
        seq = len(heap)
        while heap and not self._stopping:
            ready, _, chat = heapq.heappop(heap)
            if (delay := ready - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            row = queues[chat].popleft()
            self._chat_next[chat] = time.monotonic() + self.throttle.chat_interval(chat)
            if queues[chat]:
                seq += 1
                heapq.heappush(heap, (self._chat_next[chat], seq, chat))
            await self._slots.acquire()
            task = asyncio.create_task(self._deliver(row, stats))
            tasks.add(task)
            task.add_done_callback(lambda t: (tasks.discard(t), self._slots.release()))
        if tasks:
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, BaseException):  # never swallowed without a line
                    log.error("outbox: a delivery failed unexpectedly", exc_info=outcome)
                    stats.errors.append(_one_line(outcome))
        self._forget_idle_chats()
        self.totals.add(stats)
        return stats

    def _forget_idle_chats(self) -> None:
        now = time.monotonic()
        if len(self._chat_next) > 10_000:
            self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}
            self._chat_locks = {c: lock for c, lock in self._chat_locks.items() if lock.locked()}

    async def _deliver(self, row: DueRow, stats: SendStats) -> None:
        """One row: render, then — one request per chat at a time, so a 403 or a 429 is known
        before the chat's next row goes — wait for the global rate limit, check quiet hours,
        claim, send, mark. The wait comes before the claim: a crash while waiting leaves the
        row pending, and only a crash inside the request itself leaves it in flight."""
        try:
            payload = load_payload(row.kind, row.payload)
            body, markup = self.renderer(payload, row.language, row.id)
        except Exception as exc:  # a payload the templates cannot render: never retry it
            log.exception("outbox row %s cannot be rendered", row.id)
            await self._fail(row, f"render: {exc!r}", stats)
            return
        if isinstance(payload, DocumentPayload) and not Path(payload.path).is_file():
            await self._fail(row, f"file not found: {payload.path}", stats)  # deleted since queued
            return
        async with self._chat_lock(row.chat_id):
            if not await self._unless_stopped(lambda: self.throttle.acquire(row.chat_id)):
                return  # stopping: the row stays pending, untouched
            if row.kind in QUIET_KINDS and self.is_quiet(self.clock()):
                return  # quiet hours began while the row waited (a long batch, a 429 pause): morning
            lease = self.lease_until(self._timeout_of(row))
            async with self.db.session() as s:
                if not await Repos(s).outbox.claim(row.id, self.instance_id, lease):
                    return  # someone else has it, a re-plan cancelled it, or the chat was blocked
            await self._send(row, payload, body, markup, stats)

    async def _unless_stopped(self, wait: Callable[[], Awaitable[Any]]) -> bool:
        """Await ``wait()`` unless ``stop()`` comes first (then it is cancelled): True if it finished."""
        if self._stopping:
            return False
        task = asyncio.ensure_future(wait())
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if task.done() and not task.cancelled():
            task.result()
            return not self._stopping
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return False

    def _timeout_of(self, row: DueRow) -> int:
        timeout = math.ceil(self.settings.outbox_request_timeout)
        return max(timeout, 60) if row.kind in DOCUMENT_KINDS else timeout

    def _chat_lock(self, chat_id: int) -> asyncio.Lock:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        return lock

    async def _request(self, row: DueRow, payload: OutboxPayload, body: str, markup: Any) -> Any:
        timeout = self._timeout_of(row)
        if isinstance(payload, DocumentPayload):
            path = Path(payload.path)
            return await self.bot.send_document(
                chat_id=row.chat_id,
                document=FSInputFile(path, filename=payload.filename or path.name),
                caption=body or None,
                parse_mode="HTML",
                request_timeout=timeout,  # an upload takes longer than a message (_timeout_of)
            )
        return await self.bot.send_message(
            chat_id=row.chat_id, text=body, parse_mode="HTML", reply_markup=markup, request_timeout=timeout
        )

    async def _send(
        self, row: DueRow, payload: OutboxPayload, body: str, markup: Any, stats: SendStats
    ) -> None:
        attempt = row.attempts + 1
        try:
            with self.throttle.prepaid():  # the turn was taken before the claim (_deliver)
                message = await self._request(row, payload, body, markup)
        except TelegramRetryAfter as exc:  # the middleware paused the bot; the row waits in the outbox
            self.throttle.pause(exc.retry_after)
            stats.rate_limited += 1
            log.warning("outbox row %s: 429, retry after %ss", row.id, exc.retry_after)
            retry_at = self.clock() + dt.timedelta(seconds=exc.retry_after)
            error = f"429: {exc.message}"
            await self._write(lambda r: r.retry_later(row.id, retry_at, error, count_attempt=False))
        except TelegramForbiddenError as exc:
            await self._close_blocked(row, f"403: {exc.message}", stats)
        except TelegramUnauthorizedError as exc:  # a configuration error, not the row's fault
            log.error("outbox: the bot token was refused (%s); pausing 60 s", exc.message)
            self.throttle.pause(60)
            retry_at = self.clock() + dt.timedelta(seconds=60)
            error = f"401: {exc.message}"
            await self._write(lambda r: r.retry_later(row.id, retry_at, error, count_attempt=False))
        except (TelegramServerError, TelegramNetworkError) as exc:
            await self._retry_or_fail(row, attempt, f"{type(exc).__name__}: {exc.message}", stats)
        except TelegramAPIError as exc:  # 400 and friends: the same request would fail again
            log.warning("outbox row %s failed: %s", row.id, exc.message)
            await self._fail(row, f"{type(exc).__name__}: {exc.message}", stats)
        except Exception as exc:  # unexpected: treat like a transient error, bounded by attempts
            log.exception("outbox row %s: unexpected error while sending", row.id)
            await self._retry_or_fail(row, attempt, f"{type(exc).__name__}: {exc}", stats)
        else:
            sent_at = self.clock()
            await self._write(lambda r: r.mark_sent(row.id, message.message_id, sent_at))
            stats.sent += 1

    async def _fail(self, row: DueRow, error: str, stats: SendStats) -> None:
        """For good: the row is marked failed and never tried again."""
        await self._write(lambda r: r.mark_failed(row.id, error))
        stats.failed += 1

    async def _retry_or_fail(self, row: DueRow, attempt: int, error: str, stats: SendStats) -> None:
        if attempt >= self.settings.outbox_max_attempts:
            log.warning("outbox row %s failed after %s attempts: %s", row.id, attempt, error)
            await self._fail(row, f"after {attempt} attempts: {error}", stats)
            return
        delay = backoff(
            attempt, self.settings.outbox_backoff_seconds, self.settings.outbox_backoff_max_seconds
        )
        retry_at = self.clock() + dt.timedelta(seconds=delay)
        await self._write(lambda r: r.retry_later(row.id, retry_at, error))
        stats.retried += 1

    async def _close_blocked(self, row: DueRow, error: str, stats: SendStats) -> None:
        closed = await self._write(lambda r: r.mark_blocked(row.id, row.contact_id, error))
        stats.blocked += max(1, closed or 0)

    async def _write(self, change: Callable[[OutboxRepo], Awaitable[Any]], tries: int | None = None) -> Any:
        """Commit one status change. A busy database, a dropped connection or a short outage
        (any DBAPIError: OperationalError, asyncpg's InterfaceError…) is retried with bounded
        backoff — losing a "sent" mark would mean sending that message again. Past the last
        try the row stays in ``sending`` until its lease expires; that is logged."""
        tries = tries or WRITE_TRIES
        for attempt in range(1, tries + 1):
            try:
                async with self.db.session() as s:
                    return await change(Repos(s).outbox)
            except DBAPIError as exc:
                if attempt == tries:
                    log.error(
                        "outbox: a status change was not written after %s tries: %s", tries, _one_line(exc)
                    )
                    raise
                delay = min(WRITE_BACKOFF_MAX, WRITE_BACKOFF * 2 ** (attempt - 1))
                log.warning(
                    "outbox: writing a status change failed (try %s of %s, again in %.1f s): %s",
                    attempt,
                    tries,
                    delay,
                    _one_line(exc),
                )
                await asyncio.sleep(delay)
        return None


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:300]}"


def default_instance_id() -> str:
    """This process in outbox claims: host, pid and a random suffix (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@contextlib.asynccontextmanager
async def sending(services: Any, bot: Bot) -> AsyncIterator[Sender]:
    """The outbox sender alone, without the scheduler: the offline console without reminders
    and the tests' running bot. Notices queued by an update go out once it has committed."""
    settings = services.settings
    sender = Sender(services.db, bot, settings, policy=settings.reminder_policy)
    services.sender = sender
    task = asyncio.create_task(sender.run(), name="outbox-sender")
    try:
        yield sender
    finally:
        sender.stop()
        await task
        if services.sender is sender:
            services.sender = None
