"""Last router: a registered contact's message that no feature claimed."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from reporting_forms.texts import alert, text


async def unknown_message(message: Message, lang: str) -> None:
    if message.text is None:
        await message.answer(text(lang, "common.only_text"))
        return
    await message.answer(text(lang, "common.unknown_input"))


async def unknown_callback(query: CallbackQuery, lang: str) -> None:
    """A button no handler claims: an old one, or forged data (an id out of range)."""
    await query.answer(alert(lang, "common.stale_button"), show_alert=True)


def router() -> Router:
    r = Router(name="fallback")
    r.message.register(unknown_message)
    r.callback_query.register(unknown_callback)
    return r
