"""Update middlewares: one database transaction per update, duplicate updates dropped,
the current contact and language injected into handler data."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Router
from aiogram.fsm.context import FSMContext
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.state import State
from aiogram.fsm.storage.base import DEFAULT_DESTINY
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    DeleteWebhook,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    GetUpdates,
    Response,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetMyCommands,
)
from aiogram.types import TelegramObject, Update, User

from bot.fsm_storage import DatabaseStorage, UnitState
from reporting_forms.registration import language_of
from storage.db import Database
from storage.repositories import Repos
from storage.tables import Contact

log = logging.getLogger(__name__)
Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

# aiogram validates every Bot API answer with ``Response[method.__returning__]``; pydantic
# keeps parametrised generic models only in a WeakValueDictionary, so after a garbage
# collection the model is built again — ~9 ms each time, several times a minute under load
# (bench/bench_chat.py: 428 rebuilds in 1162 calls). Strong references keep the few the bot uses.
_PINNED_RESPONSES = tuple(
    Response[returning]  # type: ignore[valid-type]
    for returning in dict.fromkeys(
        m.__returning__
        for m in (
            SendMessage,
            EditMessageText,
            EditMessageReplyMarkup,
            AnswerCallbackQuery,
            SendDocument,
            SendPhoto,
            DeleteMessage,
            SetMyCommands,
            GetUpdates,
            GetMe,
            DeleteWebhook,
        )
    )
)


class StateInUnit(FSMContextMiddleware):
    """aiogram's FSM middleware (the per-user lock, ``state``, ``fsm_storage``) without its read
    of the state: with the project's DatabaseStorage, UnitOfWork — the next middleware — reads
    it in the update's transaction (its first SELECT) and sets ``raw_state``. aiogram's own
    read was a transaction of its own before that one, on every update. Another storage: as
    aiogram does it."""

    def get_context(
        self,
        bot: Bot,
        chat_id: int,
        user_id: int,
        thread_id: int | None = None,
        business_connection_id: str | None = None,
        destiny: str = DEFAULT_DESTINY,
    ) -> FSMContext:
        """A :class:`UnitState`, which UnitOfWork attaches to the row it reads (aiogram's key)."""
        context = super().get_context(bot, chat_id, user_id, thread_id, business_connection_id, destiny)
        if not isinstance(self.storage, DatabaseStorage):
            return context
        return UnitState(self.storage, context.key)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(self.storage, DatabaseStorage):
            return await super().__call__(handler, event, data)
        bot: Bot = data["bot"]
        context = self.resolve_event_context(bot, data)
        data["fsm_storage"] = self.storage
        if context:
            async with self.events_isolation.lock(key=context.key):
                data["state"] = context
                return await handler(event, data)
        return await handler(event, data)


class InFlight(BaseMiddleware):
    """The outermost update middleware: the updates being handled, so that a stop lets them finish.

    Long polling confirms an update to Telegram with the next ``getUpdates``, sent while the
    update is still being handled; aiogram's ``start_polling`` does not wait for those handlers
    when it stops, and ``asyncio.run`` then cancels them: the update's unit of work rolls back
    and Telegram never delivers it again. The polling bot waits for them (:meth:`finish`)
    after polling stopped, while the sender and the database are still up, and keeps those
    it had to cut off for the next start (bot/app.py). Webhook mode answers Telegram only
    after an update was handled, so its stop waits for the requests instead; it uses
    :meth:`finish` for the replay's update (bot/webhook.py).

    Each update is followed by a future of its own, not by its task: a replayed update
    (bot/replay.py) runs in the replay's long-lived task."""

    def __init__(self) -> None:
        self._updates: dict[asyncio.Future[None], tuple[asyncio.Task[Any] | None, Update]] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        done = asyncio.get_running_loop().create_future()
        self._updates[done] = (asyncio.current_task(), event)
        try:
            return await handler(event, data)
        finally:
            del self._updates[done]
            done.set_result(None)

    async def finish(self, timeout: float) -> list[Update]:
        """Wait up to ``timeout`` seconds for the updates being handled, then cancel the rest
        and wait for their units of work to roll back (on SQLite one holds the database's
        write lock, which the stopping sender needs); those cancelled, by update id, unhandled
        (bot/app.py keeps them for the next start)."""
        await asyncio.sleep(0)  # an update whose task was created as polling stopped starts now
        if not self._updates:
            return []
        await asyncio.wait(set(self._updates), timeout=timeout)
        unfinished = dict(self._updates)
        for task, _ in unfinished.values():
            if task is not None:
                task.cancel()
        if unfinished:
            await asyncio.wait(set(unfinished), timeout=timeout)
        return sorted((update for _, update in unfinished.values()), key=lambda u: u.update_id)


class UnitOfWork(BaseMiddleware):
    """Outer update middleware (runs inside aiogram's per-user FSM lock).

    Opens the update's unit of work and binds it, so FSM draft writes and domain writes commit
    together or not at all, before the update counts as handled; an update id seen before
    (Telegram re-delivery) is dropped. On PostgreSQL the unit's BEGIN takes the chat's lock
    across instances (:func:`conversation_lock`). The duplicate check, then the sender's contact
    and institution with their conversation row and the years reopened for the institution (one
    SELECT; on PostgreSQL the check's own statement), open the transaction. The update's FSM
    context (:class:`UnitState`) works on that conversation row, written once, at the commit
    (bot/fsm_storage.py).
    """

    def __init__(self, db: Database, default_language: str = "lv") -> None:
        self.db = db
        self.default_language = default_language

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user: User | None = data.get("event_from_user")
        storage, context = data.get("fsm_storage"), data.get("state")
        key = storage.key(context.key) if isinstance(storage, DatabaseStorage) and context else None
        # on PostgreSQL the unit's BEGIN takes the conversation lock
        async with self.db.unit(lock=conversation_lock(self.db, key) if key is not None else None) as unit:
            repos = Repos(unit)
            bot = data.get("bot")
            start = await repos.start_update(
                event.update_id, user.id if user else None, key, bot_id=bot.id if bot is not None else 0
            )
            if start is None:
                log.info("duplicate update %s dropped", event.update_id)
                return None
            if key is not None:
                row = storage.prime(unit, key, start.state, start.data)
                if isinstance(context, UnitState):
                    context.attach(unit, row)
                data["raw_state"] = start.state  # as read in this transaction
            contact = start.contact
            data["repos"] = repos
            data["contact"] = contact
            data["institution"] = start.institution
            data["reopened"] = start.reopened
            if contact is not None:
                data["lang"] = contact.language
            else:
                data["lang"] = language_of(user.language_code if user else None, self.default_language)
            return await handler(event, data)


# pg_advisory_xact_lock(int4, int4): a key space of its own (the leader lock is the bigint form)
CHAT_LOCK_CLASS = int.from_bytes(b"rbot", "big")


@functools.lru_cache(maxsize=4096)
def chat_lock_key(key: str) -> int:
    """An FSM key as the int4 of a PostgreSQL advisory lock (a collision only serialises two chats)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big", signed=True)


def conversation_lock(db: Database, key: str) -> tuple[int, int] | None:
    """The per-user conversation lock across instances, as the advisory lock (class, key) an
    update's unit takes with its BEGIN (``Database.unit(lock=...)``); None on SQLite.

    aiogram's lock (StateInUnit) holds within one process; with several instances on one
    PostgreSQL database, two updates of one user may arrive at two of them. The second one's
    BEGIN waits until the first commits — then its first statement reads the state the first
    wrote. SQLite: one process (bot/leader.py), nothing to do."""
    if db.dialect.name != "postgresql":
        return None
    return CHAT_LOCK_CLASS, chat_lock_key(key)


def run_filters_inline(router: Router) -> Router:
    """Run the router's synchronous filters on the event loop (and its sub-routers').

    aiogram calls a filter that is not a coroutine — a magic filter such as ``F.text``, a bare
    ``State`` — through ``asyncio.to_thread``: a round trip to a worker thread for every such
    filter of every handler tried, ~0.2 ms each when the machine is idle and several times that
    under load; an answer in the report form passed seven. These filters only look at the event
    and the state, so they run inline, with the same arguments.
    """
    pending = [router]
    while pending:
        r = pending.pop()
        pending.extend(r.sub_routers)
        for observer in r.observers.values():
            filters = [*(observer._handler.filters or ())]
            for handler in observer.handlers:
                filters.extend(handler.filters or ())
            for f in filters:
                if not f.awaitable and (f.magic is not None or isinstance(f.callback, State)):
                    f.callback, f.awaitable = _on_loop(f.callback), True
    return router


def _on_loop(check: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def inline(*args: Any, **kwargs: Any) -> Any:
        return check(*args, **kwargs)

    return inline


class UnblockOnContact(BaseMiddleware):
    """A contact flagged ``blocked`` (a 403 on a reminder) who writes to the bot again has
    unblocked it: clear the flag so reminders resume. Runs inside UnitOfWork (same session)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        contact: Contact | None = data.get("contact")
        if contact is not None and contact.blocked:
            contact.blocked = False
        return await handler(event, data)
