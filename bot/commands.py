"""Bot commands registered with setMyCommands per language and per role."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault

from reporting_forms.texts import LANGUAGES, text

PUBLIC = ("start", "help")
COORDINATOR_COMMANDS = ("summary", "overdue", "review", "export", "indicator")
BY_ROLE: dict[str, tuple[str, ...]] = {
    "contact": ("report", "myreports", "mystatus", "language", "cancel", "help"),
    "coordinator": ("report", "myreports", *COORDINATOR_COMMANDS, "mystatus", "language", "cancel", "help"),
    "admin": ("report", "myreports", *COORDINATOR_COMMANDS, "mystatus", "language", "cancel", "help"),
}


def commands(lang: str, names: tuple[str, ...]) -> list[BotCommand]:
    return [BotCommand(command=name, description=text(lang, f"common.cmd_{name}")) for name in names]


async def set_default_commands(bot: Bot) -> None:
    """What an unregistered user sees: /start and /help, in Latvian and in English."""
    await bot.set_my_commands(commands("lv", PUBLIC), scope=BotCommandScopeDefault())
    for lang in LANGUAGES:
        if lang != "lv":
            await bot.set_my_commands(
                commands(lang, PUBLIC), scope=BotCommandScopeDefault(), language_code=lang
            )


async def set_contact_commands(bot: Bot, chat_id: int, role: str, lang: str) -> None:
    """A registered contact's own menu, in the contact's chosen language."""
    await bot.set_my_commands(
        commands(lang, BY_ROLE.get(role, BY_ROLE["contact"])), scope=BotCommandScopeChat(chat_id=chat_id)
    )
