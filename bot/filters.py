"""Message filters on the text itself: a command or text typed at a step of a flow. The report
router checks its typed-text handlers first with them (bot/routers/report.py)."""

from __future__ import annotations

from aiogram import F


def is_command(text: str | None) -> bool:
    """A command (or an attempt at one): its first word starts with "/", as aiogram's Command
    filter reads a message ("/cancel", " /cancel", "/cancel@bot")."""
    return text is not None and text.lstrip().startswith("/")


def is_typed(text: str | None) -> bool:
    """Text typed at a step of a flow: any text that is not a command."""
    return text is not None and not is_command(text)


TYPED = F.text.func(is_typed)
COMMAND_TEXT = F.text.func(is_command)
