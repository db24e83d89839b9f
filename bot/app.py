"""Builds the one Dispatcher used everywhere — Telegram polling, the offline console, the
tests and the benchmark — and runs it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import ErrorEvent, Update
from sqlalchemy.orm import configure_mappers

from bot.commands import set_default_commands
from bot.config import Settings
from bot.context import WithContext
from bot.fsm_storage import DatabaseStorage
from bot.health import observed
from bot.middlewares import InFlight, StateInUnit, UnblockOnContact, UnitOfWork, run_filters_inline
from bot.redact import chat_ref
from bot.replay import HoldBehindReplay, UpdateReplay, as_kept, is_outage
from bot.routers import ROUTERS
from bot.scheduler import running_reminders
from bot.sender import sending
from bot.services_container import Services
from bot.throttle import Throttle, install
from reporting_forms.compilation import default_status_rules, default_validation_rules
from reporting_forms.texts import plain, preload, text
from storage.interrupted import FALLBACK_FILE, keep_in_file, read_file
from storage.repositories import Repos
from storage.tables import Role

log = logging.getLogger("resobot")


def build_dispatcher(services: Services, routers: Sequence[Callable[[], Router]] = ROUTERS) -> Dispatcher:
    """The bot's dispatcher: its middlewares (the update's unit of work, FSM, context) and
    ``routers``, the feature routers (bench/bench_chat.py times the same stack with a router of
    its own)."""
    dp = Dispatcher(
        storage=DatabaseStorage(services.db),
        events_isolation=SimpleEventIsolation(),
        disable_fsm=True,  # registered just below: StateInUnit, where aiogram's would be
        services=services,
        catalog=services.catalog,
        settings=services.settings,
    )
    fsm = dp.fsm  # its close() is already a shutdown handler (the same storage and isolation)
    dp.fsm = StateInUnit(storage=fsm.storage, events_isolation=fsm.events_isolation, strategy=fsm.strategy)
    dp["in_flight"] = in_flight = InFlight()  # outermost: a stop lets the updates it holds finish
    dp.update.outer_middleware(in_flight)
    dp.update.outer_middleware(HoldBehindReplay(lambda: services.replay))  # no database needed
    dp.update.outer_middleware(dp.fsm)  # the per-user lock; UnitOfWork reads the state inside it
    dp.update.outer_middleware(UnitOfWork(services.db, services.settings.default_language))
    dp.update.outer_middleware(UnblockOnContact())  # inside UnitOfWork: sees the contact
    dp.update.outer_middleware(WithContext(services))  # ``ctx`` for every router
    dp.include_routers(*(factory() for factory in routers))
    run_filters_inline(dp)  # F.text, F.chat.type, bare states: on the loop, not a thread each
    dp.errors.register(_on_error)
    dp.startup.register(set_default_commands)
    dp.startup.register(settle_heap)
    configure_mappers()  # before the first update: a follower runs no ORM query before it
    # The default language's locale data loaded before the first update, not during it; the
    # other language's on its first use, and each feature's messages with its first message
    # (issue 12, item 6).
    preload((services.settings.default_language,))
    default_status_rules()  # the rule files, read by the first summary card otherwise
    default_validation_rules()
    return dp


def settle_heap() -> None:
    """Startup: move what is loaded by now (the catalog, compiled templates, pydantic and
    SQLAlchemy machinery — some 350,000 objects) out of the cyclic collector's reach
    (``gc.freeze``). A full collection otherwise walks them all again (~0.2 s here), pauses
    that took ~15 % of an answer's time in bench/bench_chat.py. Once per process: a later
    start (tests start many bots) would freeze objects that die with it."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


async def _on_error(event: ErrorEvent, bot: Bot, services: Services) -> bool:
    """Last line of defence: log it, tell the user in their language, never a traceback.

    Each step is guarded on its own, so the failure message is sent even when the button was
    already answered or the database is what failed."""
    update = event.update
    if services.replay is not None and is_outage(event.exception):
        await services.replay.hold(update)  # the user is told once; handled when it is back
        return True
    log.error("update %s failed", event.update.update_id, exc_info=event.exception)
    query = update.callback_query
    message = update.message or (query.message if query else None)
    user = query.from_user if query else (message.from_user if message else None)
    chat_id = message.chat.id if message else (user.id if user else None)
    if chat_id is None:
        return True
    lang = services.settings.default_language
    try:
        async with services.db.session() as session:
            contact = await Repos(session).people.contact_by_telegram(user.id if user else chat_id)
            lang = contact.language if contact else lang
    except Exception:
        log.exception("could not read the language of chat %s", chat_ref(chat_id))
    if query is not None:
        try:
            await query.answer()
        except Exception:  # e.g. the handler had answered it already
            log.debug("callback query %s could not be answered again", query.id)
    try:
        await bot.send_message(chat_id, text(lang, "common.failure"))
    except Exception:  # the error path itself must never raise
        log.exception("could not report the failure to chat %s", chat_ref(chat_id))
    return True


def telegram_bot(settings: Settings) -> Bot:
    """The Telegram bot (polling, webhook, the CLI's sends); its requests go through the rate
    limits and bounded 429 retries of bot/throttle.py, direct answers and outbox rows alike."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    bot = Bot(
        settings.telegram_bot_token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML)
    )
    install(bot, Throttle.from_settings(settings))
    return bot


async def run_polling(services: Services, *, reminders: bool = True) -> None:
    """Long polling plus, unless ``reminders=False``, the reminder scheduler and outbox sender,
    and the health endpoints on HEALTH_LISTEN (bot/health.py).

    Shutdown order (SIGTERM/SIGINT stop the polling): the scheduler and the sender stop first —
    requests already sent get their answers and are recorded as sent — and only then is the
    bot's HTTP session closed (aiogram would close it first: ``close_bot_session=False``)."""
    bot = telegram_bot(services.settings)
    dp = build_dispatcher(services)
    services.replay = UpdateReplay(
        dp, bot, services.db, services.settings.default_language, data_dir=services.settings.data_dir
    )
    services.replay.start()
    stop_early = _stop_on_signals()  # SIGTERM while starting: no polling, the same clean stop
    try:
        await wait_for_bot_api(bot, stop=stop_early)
        async with background(services, bot, enabled=reminders) as runtime, observed(services, dp, runtime):
            if not stop_early.is_set():  # aiogram installs its own handlers from here on
                await resume_interrupted(services, bot)
                await dp.start_polling(
                    bot, allowed_updates=dp.resolve_used_update_types(), close_bot_session=False
                )
                await finish_updates(dp, services, bot)
    finally:
        await services.replay.stop()
        services.replay = None
        await bot.session.close()


async def finish_updates(dp: Dispatcher, services: Services, bot: Bot) -> None:
    """After polling stopped: let the updates still being handled finish (at most
    STOP_GRACE_SECONDS), before the sender, the scheduler and the database stop. Telegram
    counts them delivered already, so those cut off after the grace, and those still held for
    replay (bot/replay.py), are kept in the database (``interrupted_update``) and handled at the next
    start (:func:`resume_interrupted`); each is logged by its id."""
    replay = services.replay
    if replay is not None:
        replay.pause()
    grace = services.settings.stop_grace_seconds
    in_flight: InFlight = dp["in_flight"]
    cancelled = await in_flight.finish(grace)
    unhandled = {u.update_id: u for u in [*cancelled, *(replay.release() if replay is not None else [])]}
    if unhandled and not await _keep_unhandled(services, bot, list(unhandled.values())):
        return  # what the replay wrote down as it held updates stays, for the next start
    if replay is not None:
        replay.forget_written()  # each update it wrote down was handled, or is kept now


async def _keep_unhandled(services: Services, bot: Bot, unhandled: list[Update]) -> bool:
    """Keep ``unhandled`` for the next start: in the database, or in the data folder's file
    while the database is down; False when neither could take them (they are logged lost)."""
    ids = ", ".join(str(u.update_id) for u in sorted(unhandled, key=lambda u: u.update_id))
    kept = [as_kept(u) for u in unhandled]
    grace = services.settings.stop_grace_seconds
    try:
        async with services.db.session() as s:
            await Repos(s).interrupted.save(bot.id, kept)
    except Exception as exc:  # the database is down (an outage): a file of the data folder instead
        fallback = services.settings.data_dir / FALLBACK_FILE
        try:
            keep_in_file(fallback, bot.id, kept)
        except OSError as file_error:
            log.error(
                "stop: %d update(s) left unhandled could be kept neither in the database (%s) nor "
                "in %s (%s) and are lost: %s",
                len(unhandled),
                type(exc).__name__,
                fallback,
                file_error,
                ids,
            )
            return False
        log.warning(
            "stop: the database is unavailable (%s): %d update(s) left unhandled are kept in %s "
            "and handled at the next start: %s",
            type(exc).__name__,
            len(unhandled),
            fallback,
            ids,
        )
        return True
    log.warning(
        "stop: %d update(s) left unhandled (cut off after %s s, or held for replay) are kept "
        "and handled at the next start: %s",
        len(unhandled),
        grace,
        ids,
    )
    return True


async def resume_interrupted(services: Services, bot: Bot) -> None:
    """The updates an earlier stop kept (:func:`finish_updates`), handed to the replay: handled
    first, each user's before their new ones; a row is deleted once its update was handled.
    Those a stop kept in the data folder's file (the database was down) move into the database
    first. Unreadable now (the database is down), they stay kept for a later start."""
    replay = services.replay
    if replay is None:
        return
    fallback = services.settings.data_dir / FALLBACK_FILE
    try:
        async with services.db.session() as s:
            interrupted = Repos(s).interrupted
            for bot_id, updates in read_file(fallback).items():
                await interrupted.save(bot_id, updates)
            kept = await interrupted.pending(bot.id)
        fallback.unlink(missing_ok=True)  # in the database now (a line cut short is not an update)
    except Exception as exc:
        log.warning("start: the updates an earlier stop kept could not be read (%s)", type(exc).__name__)
        return
    updates = []
    for update_id, payload in kept:
        try:
            updates.append(Update.model_validate(payload, context={"bot": bot}))
        except ValueError:
            log.error("start: kept update %s is not a valid update; left for `resobot purge`", update_id)
    if updates:
        log.warning(
            "start: %d update(s) an earlier stop kept are handled first: %s",
            len(updates),
            ", ".join(str(u.update_id) for u in updates),
        )
        replay.resume(updates)


async def wait_for_bot_api(
    bot: Bot,
    *,
    call: Callable[[], Awaitable[Any]] | None = None,
    first_delay: float = 1.0,
    max_delay: float = 60.0,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    stop: asyncio.Event | None = None,
) -> None:
    """The first Bot API call of a start — dropping a webhook for polling, or ``call`` (setting
    the webhook) — repeated until the API answers: a network error or a 5xx is one log line per
    attempt, the delay doubling from ``first_delay`` up to ``max_delay`` — never a traceback and exit.
    Returns early when ``stop`` is set (SIGTERM during an outage at start: a clean stop)."""
    first = call or (lambda: bot.delete_webhook(drop_pending_updates=False))
    delay, attempt = first_delay, 0
    while stop is None or not stop.is_set():
        attempt += 1
        try:
            await first()
            return
        except (TelegramNetworkError, TelegramServerError, TelegramRetryAfter) as exc:
            reason = " ".join(str(exc).split())[:200]
            log.warning("Bot API unreachable (attempt %d, retry in %.0f s): %s", attempt, delay, reason)
        if stop is None:
            await sleep(delay)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, max_delay)


def _stop_on_signals() -> asyncio.Event:
    """Until aiogram's polling takes SIGTERM/SIGINT over, they only note that a stop is wanted
    (the default action would kill the process with the sender already running)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop


@contextlib.asynccontextmanager
async def background(services: Services, bot: Bot, *, enabled: bool = True) -> AsyncIterator[Any]:
    """The hook that runs the reminder scheduler and the outbox sender next to a Dispatcher
    (Telegram polling, or the console with ``run_console(..., reminders=True)``). Without the
    scheduler (``enabled=False``: the console by default) the sender still runs, so notices an
    update queued (a review, a reopened year) are delivered."""
    if not enabled:
        async with sending(services, bot):
            yield None
        return
    async with running_reminders(services, bot) as runtime:
        yield runtime


# ------------------------------------------------------------------ offline console

DEMO_TELEGRAM_ID_BASE = 9_000_000_000  # console users get ids no real Telegram user has here
# One demo user per (role, institution): a demo coordinator of TM is not TM's demo contact.
DEMO_ROLE_OFFSET = {Role.CONTACT: 0, Role.COORDINATOR: 100_000, Role.ADMIN: 200_000}


class ConsoleSetupError(RuntimeError):
    """The console cannot start as asked (unknown contact or institution)."""


async def console_identity(
    services: Services, contact_id: int | None, institution: str, role: Role = Role.CONTACT
) -> tuple[dict, list[str]]:
    """Who the console user is, and lines to type for them first.

    ``--as ID`` acts as that contact. Otherwise the demo user of ``institution`` in ``role``:
    on the first run it is not registered yet, so the console registers it with a fresh invite,
    visibly.
    """
    async with services.db.session() as session:
        repos = Repos(session)
        if contact_id is not None:
            contact = await repos.people.contact(contact_id)
            if contact is None:
                raise ConsoleSetupError(f"No contact with id {contact_id}; see `resobot contacts`.")
            if contact.telegram_user_id is None:
                contact.telegram_user_id = DEMO_TELEGRAM_ID_BASE + contact.id
            user = {
                "id": contact.telegram_user_id,
                "first_name": contact.display_name,
                "language_code": contact.language,
            }
            return user, []
        inst = await repos.people.institution(institution)
        if inst is None:
            raise ConsoleSetupError(f"Unknown institution {institution!r}; see `resobot institutions`.")
        user = {
            "id": DEMO_TELEGRAM_ID_BASE + DEMO_ROLE_OFFSET[role] + inst.id,
            "first_name": f"Demo {inst.abbr}",
            "language_code": "lv",
        }
        contact = await repos.people.contact_by_telegram(user["id"])
        if contact is not None and contact.active:
            return user, ["/help"]
        code = await repos.people.create_invite(
            institution_id=inst.id,
            role=role.value,
            expires_in=dt.timedelta(hours=1),
            # the institution is shown next to the name, never twice
            display_name=plain("lv", "console.demo_name", role=role.value),
        )
        return user, [f"/start {code}"]


async def run_console(
    services: Services,
    *,
    contact_id: int | None = None,
    institution: str = "VPD",
    role: Role = Role.CONTACT,
    input_fn: Any = None,
    console: Any = None,
    reminders: bool = False,
) -> None:
    """The same dispatcher and handlers, in a terminal: typed lines become updates."""
    from rich.console import Console

    from bot.console import ConsoleChat, build_console_bot

    console = console or Console()
    user, first_lines = await console_identity(services, contact_id, institution, role)
    throttle = Throttle.from_settings(services.settings)
    bot = build_console_bot(services.settings.console_files_dir, console=console, throttle=throttle)
    dp = build_dispatcher(services)
    chat = ConsoleChat(dp, bot, user=user, console=console, input_fn=input_fn)
    try:
        await dp.emit_startup(bot=bot)
        async with background(services, bot, enabled=reminders):
            for line in first_lines:  # typed on the user's behalf: shown, after the how-to line
                await chat.handle_line(line, echo=True)
            await chat.run()
    finally:
        await dp.emit_shutdown(bot=bot)
        await bot.session.close()
