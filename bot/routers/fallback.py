"""Last router: a registered contact's message that no feature claimed."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from bot.context import Ctx
from reporting_forms.texts import alert, text


async def unknown_message(message: Message, ctx: Ctx) -> None:
    if message.text is None:
        await message.answer(text(ctx.lang, "common.only_text"))
        return
    await message.answer(text(ctx.lang, "common.unknown_input"))


async def unknown_callback(query: CallbackQuery, ctx: Ctx) -> None:
    """A button no handler claims: an old one, or forged data (an id out of range)."""
    await query.answer(alert(ctx.lang, "common.stale_button"), show_alert=True)


def router() -> Router:
    r = Router(name="fallback")
    r.message.register(unknown_message)
    r.callback_query.register(unknown_callback)
    return r
