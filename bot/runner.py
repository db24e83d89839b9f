"""``resobot run`` without the command line: its options, starting the bot (polling or the
webhook), and the one-line database error every command ends with.

The running bot has no use for typer, rich or the other commands' modules (~3 MB of its idle
memory, issue 12 item 6), so this module imports none of them: ``bot/__main__.py`` (the
``resobot`` console script) starts the bot from here, and ``bot.cli``'s ``run`` command calls
the same :func:`run_bot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from bot.app import run_polling
from bot.config import Settings, parse_listen, webhook_url_and_secret
from bot.services_container import open_services
from reporting_forms.catalog import Catalog

SQLALCHEMY_DATABASE_ERRORS = (DBAPIError, OperationalError, InterfaceError)


def database_error_types() -> tuple[type[BaseException], ...]:
    """SQLAlchemy's wrapped DBAPI errors, and asyncpg's own in case one escapes unwrapped —
    asyncpg's only when it is loaded (a PostgreSQL URL): an SQLite bot never imports it."""
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return SQLALCHEMY_DATABASE_ERRORS
    return (*SQLALCHEMY_DATABASE_ERRORS, asyncpg.PostgresError, asyncpg.InterfaceError)


def database_error_message(exc: BaseException) -> str:
    """The driver's own words, one line: ``database "x" does not exist``, ``no such table: y``."""
    root: BaseException = exc
    while True:
        inner = getattr(root, "orig", None) or root.__cause__
        if inner is None or inner is root:
            break
        root = inner
    text = str(root).strip() or type(root).__name__
    text = re.sub(r"^<class '[\w.]+'>:\s*", "", text.splitlines()[0])
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        text += " (run `resobot init` first)"
    return text


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The options of ``resobot run``."""

    webhook: bool = False
    listen: str | None = None

    def check(self, settings: Settings) -> None:
        """In webhook mode, its settings and ``--listen``: WebhookConfigError or ValueError, one
        line naming what is wrong."""
        if self.webhook:
            webhook_url_and_secret(settings)
            if self.listen is not None:
                parse_listen(self.listen)


def run_options(args: list[str]) -> RunOptions | None:
    """``args`` (the command line after the program) read as ``run [--webhook] [--listen
    HOST:PORT]``; None for anything else — another command, ``--help``, an option given twice
    or unknown — which the full command line (``bot.cli``) answers as it always has."""
    if not args or args[0] != "run":
        return None
    webhook, listen, rest = False, None, args[1:]
    while rest:
        arg, rest = rest[0], rest[1:]
        if arg == "--webhook" and not webhook:
            webhook = True
        elif arg.startswith("--listen=") and listen is None:
            listen = arg.removeprefix("--listen=")
        elif arg == "--listen" and listen is None and rest and not rest[0].startswith("-"):
            listen, rest = rest[0], rest[1:]
        else:
            return None
    return RunOptions(webhook=webhook, listen=listen)


def run_bot(settings: Settings, catalog: Catalog, options: RunOptions) -> None:
    """Run the Telegram bot until SIGINT/SIGTERM: long polling with the scheduler and the outbox
    sender, or the webhook server. The settings (a token; the webhook's) are checked already."""

    async def main() -> None:
        services = await open_services(settings, catalog)
        try:
            if options.webhook:
                # aiohttp's web server, which only webhook mode needs (bot/health.py)
                from bot.webhook import run_webhook

                await run_webhook(services, listen=options.listen)
            else:
                await run_polling(services)
        finally:
            await services.db.dispose()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
