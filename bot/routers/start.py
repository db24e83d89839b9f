"""/start with an invite code, /help, /language, /cancel."""

from __future__ import annotations

import datetime as dt
import math

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject, CommandStart, Filter, StateFilter
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot.access import RequireContact
from bot.commands import set_contact_commands
from bot.context import ContactCtx, Ctx
from bot.filters import is_command
from bot.states import ReportFlow
from reporting_forms.registration import registration_wait
from reporting_forms.texts import alert, text
from storage.repositories import InviteError
from storage.tables import Contact, utcnow


async def start(message: Message, command: CommandObject, ctx: Ctx, bot: Bot) -> None:
    repos, contact, lang = ctx.repos, ctx.contact, ctx.lang
    code = (command.args or "").strip()
    if contact is not None and contact.active and not code:
        inst = await repos.people.institution_by_id(contact.institution_id)
        await message.answer(
            text(lang, "start.already_registered", name=contact.display_name, institution=inst.abbr)
        )
        return
    if not code:
        await message.answer(text(lang, "start.code_missing"))
        return
    user = message.from_user
    now = utcnow()
    wait = registration_wait(await repos.people.recent_failures(user.id, now - dt.timedelta(hours=6)), now)
    if wait > dt.timedelta(0):
        await message.answer(
            text(lang, "start.slow_down", minutes=max(1, math.ceil(wait.total_seconds() / 60)))
        )
        return
    try:
        new = await repos.people.redeem_invite(
            code[:128], telegram_user_id=user.id, display_name=user.full_name, language=lang, now=now
        )
    except InviteError as exc:
        await repos.people.record_attempt(user.id, ok=False, now=now)
        await message.answer(text(lang, f"start.code_{exc.reason}"))
        return
    await repos.people.record_attempt(user.id, ok=True, now=now)
    inst = await repos.people.institution_by_id(new.institution_id)
    await message.answer(
        text(
            new.language,
            "start.welcome",
            name=new.display_name,
            institution=inst.abbr,
            institution_name=inst.name if new.language == "lv" else inst.name_en,
            role=new.role,
        )
    )
    await set_contact_commands(bot, message.chat.id, new.role, new.language)


async def help_(message: Message, ctx: Ctx) -> None:
    repos, contact, lang = ctx.repos, ctx.contact, ctx.lang
    if contact is None or not contact.active:
        await message.answer(text(lang, "common.help_unregistered"))
        return
    inst = await repos.people.institution_by_id(contact.institution_id)
    await message.answer(
        text(
            lang,
            "common.help_registered",
            name=contact.display_name,
            institution=inst.abbr,
            role=contact.role,
        )
    )


async def switch_language(message: Message, contact: Contact, bot: Bot) -> str:
    """Latvian ↔ English: say so in the new language, update the menu; returns the new language."""
    contact.language = "en" if contact.language == "lv" else "lv"
    await message.answer(text(contact.language, "common.language_switched"))
    await set_contact_commands(bot, message.chat.id, contact.role, contact.language)
    return contact.language


async def language(message: Message, ctx: ContactCtx, bot: Bot) -> None:
    await switch_language(message, ctx.contact, bot)


async def cancel(message: Message, ctx: ContactCtx) -> None:
    """Outside a report there is nothing to cancel (the report router handles its own /cancel)."""
    await ctx.state.clear()
    await message.answer(text(ctx.lang, "common.nothing_to_cancel"))


def _unregistered(ctx: Ctx) -> bool:
    """The sender has no active contact."""
    return ctx.contact is None or not ctx.contact.active


class Unregistered(Filter):
    """True for users without an active contact: they may use only /start and /help."""

    async def __call__(self, event: TelegramObject, ctx: Ctx) -> bool:
        return _unregistered(ctx)


class ForPublicRouter(Filter):
    """The public router's own filter: an update one of its handlers may take — from a group or
    channel, a command (/start, /help), or from a user without an active contact. Anything
    else (a registered contact's answer or button, most updates) passes the router by with
    this one check instead of each of its handlers' filters."""

    async def __call__(self, event: TelegramObject, ctx: Ctx) -> bool:
        if _unregistered(ctx):
            return True
        if isinstance(event, CallbackQuery):
            message = event.message
            return message is not None and message.chat.type != ChatType.PRIVATE
        if isinstance(event, Message):
            return event.chat.type != ChatType.PRIVATE or is_command(event.text or event.caption)
        return True


async def gate_message(message: Message, ctx: Ctx) -> None:
    unknown = ctx.contact is None
    await message.answer(text(ctx.lang, "common.not_registered" if unknown else "common.deactivated"))


async def gate_callback(query: CallbackQuery, ctx: Ctx) -> None:
    unknown = ctx.contact is None
    await query.answer(
        alert(ctx.lang, "common.not_registered" if unknown else "common.deactivated"), show_alert=True
    )


async def gate_edited(message: Message) -> None:
    """Edits from unregistered users are ignored silently."""


async def not_private(message: Message, ctx: Ctx) -> None:
    await message.answer(text(ctx.lang, "common.private_only"))


async def not_private_callback(query: CallbackQuery, ctx: Ctx) -> None:
    await query.answer(alert(ctx.lang, "common.private_only"), show_alert=True)


def public_router() -> Router:
    """Open to everyone; catches everything else an unregistered user sends. Groups get
    nothing but a pointer to the private chat (report data must not reach a group)."""
    router = Router(name="public")
    for observer in (router.message, router.callback_query, router.edited_message):
        observer.filter(ForPublicRouter())
    router.message.register(not_private, F.chat.type != ChatType.PRIVATE)
    router.callback_query.register(not_private_callback, F.message.chat.type != ChatType.PRIVATE)
    router.edited_message.register(gate_edited, F.chat.type != ChatType.PRIVATE)
    router.message.register(start, CommandStart())
    # in a report the report router answers /help itself: the step's help, then the same step
    router.message.register(help_, Command("help"), ~StateFilter(*ReportFlow.__states__))
    router.message.register(help_, Command("help"), Unregistered())
    router.message.register(gate_message, Unregistered())
    router.callback_query.register(gate_callback, Unregistered())
    router.edited_message.register(gate_edited, Unregistered())
    return router


def basics_router() -> Router:
    router = Router(name="basics")
    router.message.middleware(RequireContact())
    router.message.register(language, Command("language"))
    router.message.register(cancel, Command("cancel"))
    return router
