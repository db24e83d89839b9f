"""Who may do what: registered, active contacts only, by role. Unregistered users get only
/start and /help and never any plan or report data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.context import Ctx
from reporting_forms.texts import as_plain, text

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


async def reply(event: TelegramObject, message: str) -> None:
    """Answer a message or a button press with a plain notice."""
    if isinstance(event, CallbackQuery):
        await event.answer(as_plain(message), show_alert=True)  # alerts are plain text
    elif isinstance(event, Message):
        await event.answer(message)


class RequireContact(BaseMiddleware):
    """Router middleware: the handlers behind it need a registered, active contact
    (and, when ``roles`` is given, one of those roles); they get ``ctx`` as a ContactCtx."""

    def __init__(self, roles: frozenset[str] | None = None) -> None:
        self.roles = roles

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        ctx: Ctx = data["ctx"]
        contact, lang = ctx.contact, ctx.lang
        if contact is None:
            await reply(event, text(lang, "common.not_registered"))
            return None
        if not contact.active:
            await reply(event, text(lang, "common.deactivated"))
            return None
        if self.roles is not None and contact.role not in self.roles:
            await reply(event, text(lang, "common.forbidden"))
            return None
        data["ctx"] = ctx.of_contact() or ctx
        return await handler(event, data)
