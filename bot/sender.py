"""The outbox sender: the one path by which reminders, digests and scheduled compilations
reach Telegram.

Drains due ``outbox`` rows at no more than ``OUTBOX_GLOBAL_RATE`` messages/s overall and
``OUTBOX_PER_CHAT_RATE`` per chat, one request per chat at a time, never in the policy's quiet
hours (checked again right before each request, so a long batch or a 429 pause that runs into
20:00 holds the rest until morning). ``document`` rows go out with sendDocument.

Send path of one row (each step its own short transaction)::

    wait for the global rate limit, check quiet hours
    claim  (pending → sending, attempts + 1, COMMIT)
    sendMessage / sendDocument
    mark   (sending → sent + telegram_message_id, COMMIT — right after the response)

Failures: 429 → back to pending after ``retry_after`` (the whole sender pauses that long; a 429
does not use up an attempt); 5xx, timeouts and network errors → back to pending with
exponential backoff (``OUTBOX_BACKOFF_SECONDS`` doubling, capped), ``failed`` once
``OUTBOX_MAX_ATTEMPTS`` attempts are used; 403 → ``blocked`` and ``Contact.blocked``;
other 4xx → ``failed`` at once (retrying cannot help).

Exactly once, and its honest limit
----------------------------------
A crash (``kill -9``, power loss) can stop the process anywhere. Rows are never lost: a row is
``pending`` until claimed and ``sent`` only after Telegram answered. Rows are not repeated
either — with one exception: a row found in ``sending`` at start-up was claimed, and its
request *may* have reached Telegram before the crash. The Bot API has no idempotency key and
no way to read a chat's history, so nobody can tell. Policy: such rows are **sent again**
(``recover_in_flight``). The window is kept tiny — the rate-limit wait happens *before* the
claim, and ``sent`` is committed right after the response — so only a crash inside the HTTP
round trip itself (the request reached Telegram, the answer was not yet committed:
milliseconds) can repeat that one message. A timeout is the
same ambiguity without a crash: it is retried.
Run one bot process per database: its sender recovers in-flight rows at start-up, which is only
right when no other sender is mid-request. (``resobot reminders send-now`` may run next to the bot:
claims are atomic so nothing is sent twice, it skips recovery, but the rate limits are per process.)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
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
from aiogram.types import FSInputFile
from sqlalchemy.exc import OperationalError

from bot.config import Settings
from bot.reminders import render_outbox
from reporting_forms.reminders import ReminderPolicy
from storage.db import Database
from storage.outbox import KIND_DIGEST, KIND_DOCUMENT, QUIET_KINDS, REMINDER_KINDS, DueRow, OutboxRepo
from storage.tables import utcnow

log = logging.getLogger("resobot.sender")

Renderer = Callable[[str, dict[str, Any], str, int], tuple[str, Any]]


class RateLimiter:
    """Spaces out request starts: at least ``1/rate`` s apart, and at most ``rate`` starts in
    any window of ``1 + margin`` s. The margin absorbs network jitter, so a server that counts
    "N per second" at its end never sees N + 1. ``pause`` holds every start (a 429)."""

    def __init__(
        self,
        rate: float,
        *,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self.window = 1.0 + margin
        self.cap = max(1, math.floor(rate))
        self._clock, self._sleep = clock, sleep
        self._starts: deque[float] = deque()
        self._last = -math.inf
        self._paused_until = -math.inf
        self._lock = asyncio.Lock()

    def wait_time(self) -> float:
        now = self._clock()
        while self._starts and now - self._starts[0] >= self.window:
            self._starts.popleft()
        wait = max(self._paused_until - now, self._last + self.interval - now)
        if len(self._starts) >= self.cap:
            wait = max(wait, self._starts[0] + self.window - now)
        return wait

    async def acquire(self) -> None:
        async with self._lock:
            while (wait := self.wait_time()) > 0:
                await self._sleep(wait)
            self._last = self._clock()
            self._starts.append(self._last)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)


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
    ) -> None:
        self.db, self.bot, self.settings = db, bot, settings
        self.policy = policy or settings.reminder_policy
        self.renderer = renderer
        self.batch, self.clock = batch, clock
        self.limiter = RateLimiter(settings.outbox_global_rate)
        self.chat_interval = 1.0 / settings.outbox_per_chat_rate
        self._chat_next: dict[int, float] = {}
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._stopping = False
        # A one-shot sender next to a running bot (the CLI's send-now) must not requeue the
        # bot's in-flight rows: only the bot process's own sender recovers.
        self._recovered = not recover
        self.totals = SendStats()

    # -------------------------------------------------------------- lifecycle

    def wake(self) -> None:
        """Something was enqueued: look at the outbox now instead of at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def recover(self) -> None:
        """Once per process, before the first send: requeue rows a crash left in ``sending``."""
        if self._recovered:
            return
        async with self.db.session() as s:
            requeued, failed = await OutboxRepo(s).recover_in_flight(self.settings.outbox_max_attempts)
        if requeued or failed:
            log.warning(
                "outbox: %s row(s) were in flight at the last stop: %s requeued, %s failed",
                requeued + failed,
                requeued,
                failed,
            )
        self._recovered = True

    async def run(self) -> None:
        await self.recover()
        poll = self.settings.outbox_poll_seconds
        while not self._stopping:
            self._wake.clear()
            try:
                stats = await self.drain_once()
                if stats.sent + stats.retried + stats.rate_limited >= self.batch:
                    continue  # a full batch: there is probably more right now
                timeout = await self._sleep_time(poll)
            except Exception:  # the loop must survive a bad row or a database hiccup
                log.exception("outbox drain failed")
                timeout = poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _sleep_time(self, poll: float) -> float:
        if self.is_quiet(self.clock()):
            return poll
        async with self.db.session() as s:
            next_at = await OutboxRepo(s).next_due_at()
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
            repo = OutboxRepo(s)
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
                    if await OutboxRepo(s).cancel(row.id, "contact deactivated"):
                        stats.cancelled += 1
                continue
            queues.setdefault(row.chat_id, deque()).append(row)

        heap = [(self._chat_next.get(chat, 0.0), i, chat) for i, chat in enumerate(queues)]
        heapq.heapify(heap)
        tasks: set[asyncio.Task[None]] = set()
        seq = len(heap)
        while heap and not self._stopping:
            ready, _, chat = heapq.heappop(heap)
            if (delay := ready - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            row = queues[chat].popleft()
            self._chat_next[chat] = time.monotonic() + self.chat_interval
            if queues[chat]:
                seq += 1
                heapq.heappush(heap, (self._chat_next[chat], seq, chat))
            await self._slots.acquire()
            task = asyncio.create_task(self._deliver(row, stats))
            tasks.add(task)
            task.add_done_callback(lambda t: (tasks.discard(t), self._slots.release()))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
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
            body, markup = self.renderer(row.kind, row.payload, row.language, row.id)
        except Exception as exc:  # a payload the templates cannot render: never retry it
            log.exception("outbox row %s cannot be rendered", row.id)
            await self._fail(row, f"render: {exc!r}", stats)
            return
        if row.kind == KIND_DOCUMENT and not Path(row.payload.get("path", "")).is_file():
            await self._fail(row, f"file not found: {row.payload.get('path')}", stats)  # deleted since queued
            return
        async with self._chat_lock(row.chat_id):
            await self.limiter.acquire()
            if row.kind in QUIET_KINDS and self.is_quiet(self.clock()):
                return  # quiet hours began while the row waited (a long batch, a 429 pause): morning
            async with self.db.session() as s:
                if not await OutboxRepo(s).claim(row.id):
                    return  # someone else has it, a re-plan cancelled it, or the chat was blocked
            await self._send(row, body, markup, stats)

    def _chat_lock(self, chat_id: int) -> asyncio.Lock:
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        return lock

    async def _request(self, row: DueRow, body: str, markup: Any) -> Any:
        timeout = math.ceil(self.settings.outbox_request_timeout)
        if row.kind == KIND_DOCUMENT:
            path = Path(row.payload["path"])
            return await self.bot.send_document(
                chat_id=row.chat_id,
                document=FSInputFile(path, filename=row.payload.get("filename") or path.name),
                caption=body or None,
                parse_mode="HTML",
                request_timeout=max(timeout, 60),  # an upload takes longer than a message
            )
        return await self.bot.send_message(
            chat_id=row.chat_id, text=body, parse_mode="HTML", reply_markup=markup, request_timeout=timeout
        )

    async def _send(self, row: DueRow, body: str, markup: Any, stats: SendStats) -> None:
        attempt = row.attempts + 1
        try:
            message = await self._request(row, body, markup)
        except TelegramRetryAfter as exc:
            self.limiter.pause(exc.retry_after)
            stats.rate_limited += 1
            log.warning("outbox row %s: 429, retry after %ss", row.id, exc.retry_after)
            retry_at = self.clock() + dt.timedelta(seconds=exc.retry_after)
            error = f"429: {exc.message}"
            await self._write(lambda r: r.retry_later(row.id, retry_at, error, count_attempt=False))
        except TelegramForbiddenError as exc:
            await self._close_blocked(row, f"403: {exc.message}", stats)
        except TelegramUnauthorizedError as exc:  # a configuration error, not the row's fault
            log.error("outbox: the bot token was refused (%s); pausing 60 s", exc.message)
            self.limiter.pause(60)
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

    async def _write(self, change: Callable[[OutboxRepo], Awaitable[Any]], tries: int = 5) -> Any:
        """Commit one status change; a busy database is retried (losing a "sent" mark would
        mean sending that message again after the next restart)."""
        for attempt in range(1, tries + 1):
            try:
                async with self.db.session() as s:
                    return await change(OutboxRepo(s))
            except OperationalError:
                if attempt == tries:
                    raise
                await asyncio.sleep(0.05 * attempt)
        return None
