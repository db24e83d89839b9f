"""Update middlewares: one database transaction per update, duplicate updates dropped,
the current contact and language injected into handler data."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
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

from reporting_forms.registration import language_of
from storage.db import Database
from storage.repositories import Repos

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


class UnitOfWork(BaseMiddleware):
    """Outer update middleware (runs inside aiogram's per-user FSM lock).

    Opens the update's session and binds it, so FSM draft writes and domain writes commit
    together or not at all; an update id seen before (Telegram re-delivery) is dropped.
    """

    def __init__(self, db: Database, default_language: str = "lv") -> None:
        self.db = db
        self.default_language = default_language

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        async with self.db.bound() as session:
            repos = Repos(session)
            if not await repos.mark_update(event.update_id):
                log.info("duplicate update %s dropped", event.update_id)
                return None
            user: User | None = data.get("event_from_user")
            found = await repos.people.contact_with_institution(user.id) if user else None
            contact, data["institution"] = found or (None, None)
            data["repos"] = repos
            data["contact"] = contact
            if contact is not None:
                data["lang"] = contact.language
            else:
                data["lang"] = language_of(user.language_code if user else None, self.default_language)
            return await handler(event, data)
