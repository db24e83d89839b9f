"""The public router's own filter (ForPublicRouter) lets through every update one of its
handlers takes, and passes a registered contact's answers and buttons by."""

from __future__ import annotations

import datetime as dt
import itertools
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiogram import Bot
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.context import Ctx
from bot.routers.start import ForPublicRouter, public_router
from bot.states import ReportFlow
from storage.tables import Contact

BOT = Bot("42:TEST")
USER = {"id": 70, "is_bot": False, "first_name": "Anna"}
CONTACTS = {
    "none": None,
    "active": Contact(id=7, telegram_user_id=70, display_name="Anna", institution_id=3, active=True),
    "inactive": Contact(id=8, telegram_user_id=70, display_name="Anna", institution_id=3, active=False),
}
CHATS = {"private": {"id": 70, "type": "private"}, "group": {"id": -100, "type": "group"}}
TEXTS = ["61,5", "/help", " /start ABC", "/report 1.1.1", "/cancel", "", None]


def _message(chat: dict[str, Any], text: str | None, *, caption: bool = False) -> Message:
    fields: dict[str, Any] = {"message_id": 1, "date": dt.datetime(2026, 12, 4), "chat": chat, "from": USER}
    if text is not None:
        fields["caption" if caption else "text"] = text
    return Message.model_validate(fields)


def _ctx(contact: Contact | None) -> Ctx:
    return Ctx(cast(Any, SimpleNamespace()), cast(Any, None), "lv", None, contact, None)


def _events() -> list[tuple[str, TelegramObject]]:
    events: list[tuple[str, TelegramObject]] = []
    for chat, text, caption in itertools.product(CHATS.values(), TEXTS, (False, True)):
        events.append(("message", _message(chat, text, caption=caption)))
        events.append(("edited_message", _message(chat, text, caption=caption)))
    for chat in CHATS.values():
        events.append(
            (
                "callback_query",
                CallbackQuery(
                    id="q",
                    from_user=USER,
                    chat_instance="c",
                    data="y:n:2026",
                    message=_message(chat, "Izvēlieties gadu"),
                ),
            )
        )
    return events


async def _taken(update_type: str, event: TelegramObject, ctx: Ctx, raw_state: str | None) -> bool:
    """Would one of the public router's handlers take it (its own filters, as aiogram checks them)?"""
    for handler in public_router().observers[update_type].handlers:
        matched, _ = await handler.check(event, ctx=ctx, raw_state=raw_state, bot=BOT)
        if matched:
            return True
    return False


@pytest.mark.parametrize("contact", CONTACTS)
@pytest.mark.parametrize("raw_state", [None, ReportFlow.answering.state])
async def test_the_router_filter_passes_everything_its_handlers_take(
    contact: str, raw_state: str | None
) -> None:
    ctx, gate = _ctx(CONTACTS[contact]), ForPublicRouter()
    for update_type, event in _events():
        if await _taken(update_type, event, ctx, raw_state):
            assert await gate(event, ctx), (update_type, event)


async def test_a_registered_contacts_answers_and_buttons_pass_the_router_by() -> None:
    ctx, gate = _ctx(CONTACTS["active"]), ForPublicRouter()
    private = CHATS["private"]
    assert not await gate(_message(private, "61,5"), ctx)
    assert not await gate(_message(private, None), ctx)  # a sticker, a photo without a caption
    query = CallbackQuery(id="q", from_user=USER, chat_instance="c", data="y", message=_message(private, "x"))
    assert not await gate(query, ctx)
    assert await gate(_message(private, "/help"), ctx)
    assert await gate(_message(CHATS["group"], "61,5"), ctx)
    assert await gate(_message(private, "61,5"), _ctx(CONTACTS["inactive"]))
