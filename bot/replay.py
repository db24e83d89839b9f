"""Updates that arrive while the database is unreachable: kept and handled once it is back.

Long polling confirms an update to Telegram with the next ``getUpdates`` whatever became of it,
so an update whose unit of work failed because the database was down would be gone. Instead the
error handler (bot/app.py) hands it here: the user is told once per outage that the message is
kept and the answer will follow (templates ``common.db_unavailable``), and the update is replayed
through the dispatcher — in arrival order, per user after any of theirs still held — as soon as
the database answers again (checked with backoff, one log line per outage). A replayed update is
handled exactly once: its failed transaction was rolled back, so it was never marked processed.

Held updates live in this process's memory, and each is written down in the data folder as it
is held (a journal of this process, ``held-updates.<pid>-<random>.jsonl``, fsynced); each one
handled is marked so there, and the journal goes once all were. A stop keeps those not handled
yet in the database (``interrupted_update``), or in a file of the data folder while the database
is still down (bot/app.py: ``finish_updates``), and the next start hands them back here
(:meth:`UpdateReplay.resume`), to be handled before that user's new ones. A process killed
during an outage leaves its journal, which a next start adds to that file
(:meth:`UpdateReplay.start`) without those marked handled (one whose mark was lost with the
machine is dropped by the duplicate check). An instance started on a data folder that another
one shares while that one holds updates takes that one's journal too: both may then handle an
update, and the duplicate check lets one through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from sqlalchemy import text as sql
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.redact import chat_ref
from reporting_forms.registration import language_of
from reporting_forms.texts import text
from storage.db import Database
from storage.interrupted import FALLBACK_FILE, journals, keep_in_file, mark_handled, move_file, new_journal
from storage.repositories import Repos

if TYPE_CHECKING:
    from aiogram import Bot, Dispatcher

log = logging.getLogger("resobot.replay")

MAX_HELD = 10_000  # beyond this an outage is long enough that memory matters more
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0


def is_outage(exc: BaseException | None) -> bool:
    """Did this fail because the database could not be reached (not because of the data)?"""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | ConnectionError | TimeoutError):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, OSError) and exc.errno is not None:  # refused, unreachable, reset
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def as_kept(update: Update) -> tuple[int, dict[str, Any]]:
    """An update as it is kept for a later start: its id, and the update as Telegram sent it."""
    return update.update_id, update.model_dump(mode="json", by_alias=True, exclude_none=True)


def _chat_of(update: Update) -> int | None:
    message = update.message or update.edited_message
    if message is not None:
        return message.chat.id
    query = update.callback_query
    if query is not None:
        return query.message.chat.id if query.message else query.from_user.id
    return None


class UpdateReplay:
    """Holds updates that failed for want of a database and replays them when it is back.

    With ``data_dir``, each update it holds is written down there first, in a journal of its own."""

    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        db: Database,
        default_language: str = "lv",
        *,
        data_dir: Path | None = None,
    ) -> None:
        self.dp, self.bot, self.db = dp, bot, db
        self.journal = new_journal(data_dir) if data_dir is not None else None
        self._written: set[int] = set()  # ids of the updates in the journal not yet handled
        self.default_language = default_language
        self._held: deque[Update] = deque()
        self._held_chats: dict[int, int] = {}  # chat → updates of it held
        self._told: set[int] = set()  # chats told in this outage
        self._replaying: Update | None = None
        self._requeued = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._down_since: float | None = None
        self._kept: set[int] = set()  # ids of updates an earlier stop kept (interrupted_update)
        self._paused = False

    @property
    def held(self) -> int:
        return len(self._held)

    def holds_chat(self, chat_id: int | None) -> bool:
        return chat_id is not None and self._held_chats.get(chat_id, 0) > 0

    def start(self) -> None:
        """Before the first update: what a process killed during an outage had written down joins
        the file of updates kept for the start (bot/app.py: ``resume_interrupted`` reads it)."""
        if self.journal is not None:
            data_dir = self.journal.parent
            try:
                moved = sum(move_file(left, data_dir / FALLBACK_FILE) for left in journals(data_dir))
            except OSError as exc:
                log.error("replay: the journals of updates held in %s could not be read: %s", data_dir, exc)
            else:
                if moved:
                    log.warning(
                        "replay: %d update(s) held when the last process ended are kept for this start", moved
                    )
        self._task = asyncio.create_task(self._run(), name="update-replay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._held:
            log.error("replay: %s held update(s) were not handled before the stop", self.held)

    def resume(self, updates: list[Update]) -> None:
        """Updates an earlier stop kept: handled first, in order (a user's new updates queue
        behind theirs), nobody told; each one's kept row is deleted once it was handled."""
        for update in updates:
            self._kept.add(update.update_id)
            self._queue(update)
        self._wake.set()

    def _queue(self, update: Update, *, front: bool = False) -> int | None:
        """Hold ``update`` (at the back, or ``front``), counted for its chat; the chat."""
        if front:
            self._held.appendleft(update)
        else:
            self._held.append(update)
        chat = _chat_of(update)
        if chat is not None:
            self._held_chats[chat] = self._held_chats.get(chat, 0) + 1
        return chat

    def pause(self) -> None:
        """A stop: no further held update is begun (the one being replayed goes on, with every
        other update still being handled)."""
        self._paused = True
        self._wake.set()

    def release(self) -> list[Update]:
        """The held updates not begun, handed over to the stop that keeps them; none held after."""
        held = list(self._held)
        self._held.clear()
        self._held_chats.clear()
        return held

    async def hold(self, update: Update, lang: str | None = None) -> None:
        """Keep ``update`` for later and tell its user once per outage."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("the database is unavailable: updates are held and will be replayed")
        replaying = update is self._replaying  # still down: back to the front, in order
        if not replaying and len(self._held) >= MAX_HELD:
            log.error("replay: %s updates held already; update %s dropped", MAX_HELD, update.update_id)
            return
        if replaying:
            self._requeued = True
        elif update.update_id not in self._kept:  # a kept one is in the database already
            self._write_down(update)
        chat = self._queue(update, front=replaying)
        if chat is not None and chat not in self._told:
            self._told.add(chat)
            await self._tell(update, chat, lang)
        self._wake.set()

    def _write_down(self, update: Update) -> None:
        """Into the journal, flushed to disk, before it is held (on the loop: an outage's rare
        path, and nothing else runs between the write and the hold)."""
        if self.journal is None:
            return
        try:
            keep_in_file(self.journal, self.bot.id, [as_kept(update)])
            self._written.add(update.update_id)
        except OSError as exc:
            log.error(
                "replay: update %s is held in memory only, not in %s: %s",
                update.update_id,
                self.journal,
                exc,
            )

    def forget_written(self) -> None:
        """Every update written down was handled, or a stop has kept it: the journal goes."""
        self._written.clear()
        if self.journal is None:
            return
        try:
            self.journal.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("replay: %s could not be removed: %s", self.journal, exc)

    async def _tell(self, update: Update, chat: int, lang: str | None) -> None:
        query = update.callback_query
        if query is not None:
            with contextlib.suppress(Exception):
                await query.answer()
        user = query.from_user if query else (update.message.from_user if update.message else None)
        # the contact's language is in the database: Telegram's language of the user instead
        language = lang or language_of(user.language_code if user else None, self.default_language)
        try:
            await self.bot.send_message(chat, text(language, "common.db_unavailable"))
        except Exception as exc:  # the Bot API may be what is down; the update is kept anyway
            log.warning("replay: could not tell chat %s to wait: %s", chat_ref(chat), type(exc).__name__)

    async def _database_up(self) -> bool:
        try:
            async with self.db.session() as s:
                await s.exec(sql("SELECT 1"))
        except Exception:
            return False
        return True

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._paused:
            if not self._held:
                self._wake.clear()
                await self._wake.wait()
                delay = BACKOFF_FIRST
                continue
            await asyncio.sleep(delay)
            if not await self._database_up():
                delay = min(BACKOFF_MAX, delay * 2)
                continue
            if await self._replay_all():
                if not self._held:  # drained, not paused midway
                    self.forget_written()
                if self._down_since is not None:
                    down = time.monotonic() - self._down_since
                    log.warning("the database is back after %.0f s: held updates replayed", down)
                self._down_since = None
                self._told.clear()
                delay = BACKOFF_FIRST
            else:
                delay = min(BACKOFF_MAX, delay * 2)

    async def _replay_all(self) -> bool:
        """Feed the held updates in order; False when the database failed again midway."""
        while self._held and not self._paused:
            update = self._held.popleft()
            chat = _chat_of(update)
            if chat is not None:
                self._held_chats[chat] -= 1
                if not self._held_chats[chat]:
                    del self._held_chats[chat]
            self._replaying, self._requeued = update, False
            try:
                await self.dp.feed_update(self.bot, update, replayed=True)
            except Exception:  # the error handler logs; a handler bug must not stop the replay
                log.exception("replay: update %s failed again", update.update_id)
            finally:
                self._replaying = None
            if self._requeued:
                return False
            if update.update_id in self._written:
                self._handled(update.update_id)
            if update.update_id in self._kept:
                await self._forget(update.update_id)
        return True

    def _handled(self, update_id: int) -> None:
        """A written-down update was handled: marked so in the journal, which a next start would
        otherwise carry forward (should the process be killed before the replay drains)."""
        self._written.discard(update_id)
        if self.journal is None:
            return
        try:
            mark_handled(self.journal, self.bot.id, update_id)
        except OSError as exc:  # the duplicate check of a next start drops it instead
            log.warning("replay: update %s handled, not marked so in %s: %s", update_id, self.journal, exc)

    async def _forget(self, update_id: int) -> None:
        """An update an earlier stop kept was handled: its row goes. Should that fail, the next
        start hands it back and the duplicate check drops it."""
        self._kept.discard(update_id)
        try:
            async with self.db.session() as s:
                await Repos(s).interrupted.forget(self.bot.id, update_id)
        except Exception as exc:
            log.warning("replay: kept update %s handled, its row kept: %s", update_id, type(exc).__name__)


class HoldBehindReplay(BaseMiddleware):
    """Outer update middleware: while a user has updates held for replay, their new updates
    queue behind them (answers keep their order)."""

    def __init__(self, replay: Callable[[], UpdateReplay | None]) -> None:
        self.replay = replay

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        replay = self.replay()
        held = replay is not None and not data.get("replayed") and isinstance(event, Update)
        if held and replay.holds_chat(_chat_of(event)):  # type: ignore[union-attr, arg-type]
            await replay.hold(event)  # type: ignore[union-attr, arg-type]
            return None
        return await handler(event, data)
