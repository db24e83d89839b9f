"""Telegram's flood limits, kept in one place for every request a Bot makes: direct answers to
updates and the outbox sender's messages alike.

``Throttle`` is an aiogram request middleware (``BaseRequestMiddleware``), registered on every
Bot the application builds (``bot.app.telegram_bot``, the console's bot, the tests' bots;
``install``). Before a request that puts a message into a chat (``send*`` but the chat action,
``edit*``, ``copy*``, ``forward*``) it waits for

- the chat's turn: ``OUTBOX_PER_CHAT_RATE`` messages/s to one private chat (``GROUP_RATE``, 20 a
  minute, to a group), after a burst of up to ``CHAT_BURST`` — a reply of two or three messages
  goes out at once, a longer run is spaced;
- the global limit: at most ``OUTBOX_GLOBAL_RATE`` starts per second overall, evenly spaced
  (``RateLimiter``).

A 429 (``TelegramRetryAfter``) pauses every start for ``retry_after``. A direct answer is then
tried again, at most ``RETRY_AFTER_TRIES`` times and ``RETRY_AFTER_MAX_WAIT`` s in all; past that
the 429 goes to the handler's error handler.

The outbox sender waits for its turn *before* it claims a row (a crash while waiting must leave
the row pending, bot/sender.py) and then sends inside ``prepaid()``: the middleware does not
wait a second time for that request, and a 429 is raised at once — the row goes back to the
outbox for ``retry_after`` (no attempt used) instead of waiting inside its claim, which would
stretch the window in which a crash leaves it in doubt and outlast the claim's lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType

from bot.config import Settings

if TYPE_CHECKING:
    from aiogram.methods import Response

log = logging.getLogger("resobot.throttle")

# messages/s overall (Telegram: about 30) and to one chat (about 1): the settings' defaults
GLOBAL_RATE: float = Settings.model_fields["outbox_global_rate"].default
PER_CHAT_RATE: float = Settings.model_fields["outbox_per_chat_rate"].default
GROUP_RATE = 20 / 60  # messages/s to one group (Telegram: 20 a minute)
CHAT_BURST = 3  # messages one chat may get at once before the per-chat spacing applies
RETRY_AFTER_TRIES = 2  # a 429 is retried at most this often per request…
RETRY_AFTER_MAX_WAIT = 10.0  # …and for at most this many seconds of waiting in all
THROTTLED_PREFIXES = ("send", "edit", "copy", "forward")  # methods that put a message in a chat
UNTHROTTLED = frozenset({"sendChatAction"})
IDLE_CHATS = 10_000  # per-chat bookkeeping is pruned past this many chats

_prepaid: contextvars.ContextVar[bool] = contextvars.ContextVar("resobot_throttle_prepaid", default=False)


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


class ChatSpacing:
    """Per-chat turns (a generic cell rate algorithm): ``rate`` messages/s to one chat after a
    burst of ``burst``; a negative chat id (a group) gets ``group_rate``. ``reserve`` books the
    chat's next turn and says how long to wait for it, so concurrent requests to one chat queue
    up in order without a lock."""

    def __init__(
        self,
        rate: float,
        *,
        group_rate: float = GROUP_RATE,
        burst: int = CHAT_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.group_rate, self.burst = rate, group_rate, max(1, burst)
        self._clock = clock
        self._next: dict[Any, float] = {}  # chat → its theoretical next turn

    def interval(self, chat_id: Any) -> float:
        group = isinstance(chat_id, int) and chat_id < 0
        return 1.0 / (min(self.rate, self.group_rate) if group else self.rate)

    def reserve(self, chat_id: Any) -> float:
        now = self._clock()
        interval = self.interval(chat_id)
        turn = max(self._next.get(chat_id, now), now)
        self._next[chat_id] = turn + interval
        if len(self._next) > IDLE_CHATS:
            self._next = {c: t for c, t in self._next.items() if t > now}
        return max(0.0, turn - (self.burst - 1) * interval - now)


def throttled(method: TelegramMethod[Any]) -> bool:
    """Does ``method`` put a message into a chat (and so count against the flood limits)?"""
    name = method.__api_method__
    return name.startswith(THROTTLED_PREFIXES) and name not in UNTHROTTLED


class Throttle(BaseRequestMiddleware):
    """The request middleware: per-chat and global rate limits, bounded 429 retries."""

    def __init__(
        self,
        global_rate: float = GLOBAL_RATE,
        per_chat_rate: float = PER_CHAT_RATE,
        *,
        group_rate: float = GROUP_RATE,
        chat_burst: int = CHAT_BURST,
        retry_tries: int = RETRY_AFTER_TRIES,
        retry_max_wait: float = RETRY_AFTER_MAX_WAIT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.limiter = RateLimiter(global_rate, clock=clock, sleep=sleep)
        self.chats = ChatSpacing(per_chat_rate, group_rate=group_rate, burst=chat_burst, clock=clock)
        self.retry_tries, self.retry_max_wait = retry_tries, retry_max_wait
        self._sleep = sleep
        self.retried = 0  # 429s waited out and tried again
        self.given_up = 0  # 429s raised to the caller (the budget was spent)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Throttle:
        return cls(settings.outbox_global_rate, settings.outbox_per_chat_rate, **kwargs)

    def chat_interval(self, chat_id: Any) -> float:
        """Seconds between two messages to ``chat_id`` once its burst is used."""
        return self.chats.interval(chat_id)

    async def acquire(self, chat_id: Any) -> None:
        """Wait for ``chat_id``'s turn, then for a global start."""
        if chat_id is not None and (wait := self.chats.reserve(chat_id)) > 0:
            await self._sleep(wait)
        await self.limiter.acquire()

    def pause(self, seconds: float) -> None:
        """Hold every start for ``seconds`` (a 429, a refused token)."""
        self.limiter.pause(seconds)

    @staticmethod
    @contextlib.contextmanager
    def prepaid() -> Iterator[None]:
        """Requests made inside this block have waited their turn already (``acquire``)."""
        token = _prepaid.set(True)
        try:
            yield
        finally:
            _prepaid.reset(token)

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        limited = throttled(method)
        chat_id = getattr(method, "chat_id", None)
        prepaid = _prepaid.get()
        if limited and not prepaid:
            await self.acquire(chat_id)
        tries, waited = 0, 0.0
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                self.pause(exc.retry_after)
                if prepaid:  # the outbox's claimed row: it goes back to the outbox at once
                    raise
                if tries >= self.retry_tries or waited + exc.retry_after > self.retry_max_wait:
                    self.given_up += 1
                    raise
                tries += 1
                waited += exc.retry_after
                self.retried += 1
                log.warning(
                    "%s: 429, trying again in %s s (%s of %s)",
                    method.__api_method__,
                    exc.retry_after,
                    tries,
                    self.retry_tries,
                )
                if limited:
                    await self.acquire(chat_id)  # waits the pause out, then takes a turn again
                else:
                    await self._sleep(exc.retry_after)


def throttle_of(bot: Bot) -> Throttle | None:
    """The Throttle registered on ``bot``'s session, if any."""
    return next((m for m in bot.session.middleware if isinstance(m, Throttle)), None)


def install(bot: Bot, throttle: Throttle | None = None) -> Throttle:
    """Register ``throttle`` (default limits if None) on ``bot`` unless it has one; returns the
    one in use. Every Bot the application builds goes through here."""
    existing = throttle_of(bot)
    if existing is not None:
        return existing
    throttle = throttle or Throttle()
    bot.session.middleware(throttle)
    return throttle
