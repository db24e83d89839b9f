"""Builds the one Dispatcher used everywhere — Telegram polling, the offline console, the
tests and the benchmark — and runs it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import ErrorEvent

from bot.commands import set_default_commands
from bot.config import Settings
from bot.middlewares import UnitOfWork
from bot.routers import ROUTERS
from reporting_forms.catalog import Catalog
from reporting_forms.texts import text
from storage.db import Database
from storage.fsm import DatabaseStorage
from storage.repositories import Repos

log = logging.getLogger("resobot")


@dataclass
class Services:
    """What handlers receive besides the event (aiogram workflow data)."""

    db: Database
    catalog: Catalog
    settings: Settings


def build_dispatcher(services: Services) -> Dispatcher:
    dp = Dispatcher(
        storage=DatabaseStorage(services.db),
        events_isolation=SimpleEventIsolation(),
        services=services,
        catalog=services.catalog,
        settings=services.settings,
    )
    dp.update.outer_middleware(UnitOfWork(services.db, services.settings.default_language))
    dp.include_routers(*(factory() for factory in ROUTERS))
    dp.errors.register(_on_error)
    dp.startup.register(set_default_commands)
    return dp


async def _on_error(event: ErrorEvent, bot: Bot, services: Services) -> bool:
    """Last line of defence: log it, tell the user in their language, never a traceback."""
    log.error("update %s failed", event.update.update_id, exc_info=event.exception)
    update = event.update
    user = update.event_from_user if hasattr(update, "event_from_user") else None
    message = update.message or (update.callback_query.message if update.callback_query else None)
    chat_id = message.chat.id if message else (user.id if user else None)
    if chat_id is None:
        return True
    lang = services.settings.default_language
    try:
        async with services.db.session() as session:
            contact = await Repos(session).people.contact_by_telegram(chat_id)
            lang = contact.language if contact else lang
        if update.callback_query:
            await update.callback_query.answer()
        await bot.send_message(chat_id, text(lang, "common.failure"))
    except Exception:  # the error path itself must never raise
        log.exception("could not report the failure to chat %s", chat_id)
    return True


def telegram_bot(settings: Settings) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    return Bot(
        settings.telegram_bot_token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML)
    )


async def run_polling(services: Services) -> None:
    bot = telegram_bot(services.settings)
    dp = build_dispatcher(services)
    try:
        await bot.delete_webhook(drop_pending_updates=False)
        await dp.start_polling(bot, allowed_updates=dp.resolve_used_update_types())
    finally:
        await bot.session.close()
