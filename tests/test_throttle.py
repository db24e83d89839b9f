"""bot/throttle.py: the one request middleware that rate-limits and retries 429s, for the
direct answers of handlers as for the outbox sender."""

from __future__ import annotations

import asyncio
import io
import time
from itertools import pairwise

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import AnswerCallbackQuery, SendChatAction, SendMessage
from aiogram.types import Message
from rich.console import Console

from bot.app import telegram_bot
from bot.config import Settings
from bot.console import ConsoleChat, build_console_bot
from bot.offline import RecordingSession
from bot.throttle import RateLimiter, Throttle, install, throttle_of, throttled
from tests.chat_harness import Harness


class FakeTime:
    """A clock that only moves when someone sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def recording_bot(throttle: Throttle) -> tuple[Bot, RecordingSession, list[float]]:
    """A bot whose calls are recorded with the fake time at which each request was made."""
    session = RecordingSession()
    bot = Bot("42:throttle", session=session, default=DefaultBotProperties(parse_mode="HTML"))
    install(bot, throttle)
    at: list[float] = []

    async def stamp(make_request, bot, method):
        at.append(throttle.limiter._clock())
        return await make_request(bot, method)

    session.middleware(stamp)  # after the throttle: sees when the request really starts
    return bot, session, at


def test_which_methods_are_throttled() -> None:
    assert throttled(SendMessage(chat_id=1, text="x"))
    assert not throttled(SendChatAction(chat_id=1, action="typing"))
    assert not throttled(AnswerCallbackQuery(callback_query_id="1"))


async def test_direct_answers_are_spaced_per_chat_after_a_burst() -> None:
    fake = FakeTime()
    throttle = Throttle(25.0, 1.0, chat_burst=3, clock=fake.clock, sleep=fake.sleep)
    bot, session, at = recording_bot(throttle)
    router = Router()

    @router.message()
    async def answer_five(message: Message) -> None:  # one update, five direct answers
        for i in range(5):
            await message.answer(f"daļa {i}")

    dp = Dispatcher()
    dp.include_router(router)
    chat = ConsoleChat(
        dp,
        bot,
        user={"id": 501, "first_name": "A", "language_code": "lv"},
        console=Console(file=io.StringIO()),
        input_fn=lambda _p: "",
        first_update_id=1,
    )
    await chat.feed(chat.message_update("sveiki"))
    assert chat.errors == []
    assert [m.text for m in session.of_type(SendMessage)] == [f"daļa {i}" for i in range(5)]
    start = at[0]
    offsets = [round(t - start, 3) for t in at]
    # three at once (a burst; only the global spacing of 1/25 s between them), then one a second
    assert offsets[:3] == [0.0, 0.04, 0.08], offsets
    assert offsets[3:] == [1.0, 2.0], offsets
    await bot.session.close()


async def test_groups_get_twenty_a_minute_and_other_chats_are_not_held_up() -> None:
    fake = FakeTime()
    throttle = Throttle(1000.0, 1.0, chat_burst=1, clock=fake.clock, sleep=fake.sleep)
    bot, _session, at = recording_bot(throttle)
    for _ in range(3):
        await bot.send_message(-100, "grupa")
    assert [round(b - a, 3) for a, b in pairwise(at)] == [3.0, 3.0]
    before = fake.now
    await bot.send_message(7, "cits")  # another chat: its own turn is free
    assert at[-1] - before < 0.01
    before = fake.now
    await bot.send_chat_action(7, "typing")  # not a message: not throttled, not even globally
    assert fake.now == before
    await bot.session.close()


async def test_a_direct_answer_is_retried_after_retry_after(harness: Harness) -> None:
    user = await harness.register(1501, "VPD")
    before = len(harness.server.sent_to(1501))
    harness.server.rate_limit(per_second=1, retry_after=1, methods=["sendMessage"])
    user.send("/help")
    (first,) = await user.replies(1)
    started = time.monotonic()
    user.send("/help")  # its answer meets a 429 and is waited out by the middleware
    (second,) = await user.replies(1, timeout=10)
    assert second.text == first.text
    assert time.monotonic() - started >= 0.95
    assert harness.server.stats["429"] == 1
    throttle = throttle_of(harness.bot)
    assert throttle is not None and (throttle.retried, throttle.given_up) == (1, 0)
    assert len(harness.server.sent_to(1501)) == before + 2  # both help texts, none lost


async def test_a_429_past_the_budget_reaches_the_caller() -> None:
    """A retry_after longer than the budget: no waiting, the error goes up (the sender then
    reschedules its row; a handler's goes to the error handler)."""
    fake = FakeTime()
    throttle = Throttle(1000.0, 1000.0, retry_max_wait=10.0, clock=fake.clock, sleep=fake.sleep)
    calls = 0

    async def make_request(bot, method):
        nonlocal calls
        calls += 1
        raise TelegramRetryAfter(method=method, message="Too Many Requests", retry_after=30)

    method = SendMessage(chat_id=1, text="x")
    try:
        await throttle(make_request, None, method)  # type: ignore[arg-type]
    except TelegramRetryAfter as exc:
        assert exc.retry_after == 30
    else:
        raise AssertionError("the 429 was swallowed")
    assert (calls, throttle.retried, throttle.given_up) == (1, 0, 1)
    # every later start waits the 429 out
    await throttle.acquire(2)
    assert sum(fake.slept) >= 30 - 1e-9


def test_every_bot_the_app_builds_has_the_middleware(tmp_path) -> None:
    settings = Settings(
        _env_file=None, telegram_bot_token="42:x", outbox_global_rate=12.0, outbox_per_chat_rate=0.5
    )
    bot = telegram_bot(settings)
    throttle = throttle_of(bot)
    assert throttle is not None and throttle.limiter.cap == 12 and throttle.chat_interval(5) == 2.0
    assert len([m for m in bot.session.middleware if isinstance(m, Throttle)]) == 1
    assert install(bot) is throttle, "installing twice keeps the one there is"
    assert throttle_of(build_console_bot(tmp_path, console=Console(file=io.StringIO()))) is not None


async def test_rate_limiter_spacing_window_and_pause() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(10, margin=0.05, clock=lambda: now[0], sleep=sleep)
    starts = []
    for _ in range(25):
        await limiter.acquire()
        starts.append(now[0])
    assert all(b - a >= 0.1 - 1e-9 for a, b in pairwise(starts))
    for i in range(len(starts) - 10):  # never 11 starts within 1.05 s
        assert starts[i + 10] - starts[i] >= 1.05 - 1e-9
    limiter.pause(3)
    before = now[0]
    await limiter.acquire()
    assert now[0] - before >= 3 - 1e-9
