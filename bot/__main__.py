"""``resobot`` (the console script) and ``python -m bot``: the one entry point of every command.

``resobot run`` with a token and valid settings starts the bot straight from ``bot.runner``,
without the command line (typer, rich and the other commands' modules: ~3 MB the running bot
never uses, issue 12 item 6). Everything else — the other commands, ``--help``, ``run``
without a token (the offline console), and a ``run`` whose options, settings or catalog are
wrong — goes to the full command line, ``bot.cli``, which answers exactly as it always has.
"""

from __future__ import annotations

import sys

from bot.config import Settings, SettingsError, WebhookConfigError, load_settings
from bot.runner import RunOptions, database_error_message, database_error_types, run_bot, run_options
from reporting_forms.catalog import Catalog, CatalogError, default_catalog
from reporting_forms.texts import preload


def ready_to_run(options: RunOptions) -> tuple[Settings, Catalog] | None:
    """The settings and the catalog ``run`` starts with; None when the command line has to
    answer instead (no token: the console; a setting, the webhook's or the catalog wrong: the
    one-line error and exit code of ``bot.cli``)."""
    try:
        settings = load_settings()
        if not settings.telegram_bot_token:
            return None
        options.check(settings)
        # The default language's locale data first, while the heap is young: what Babel frees
        # as it loads it is then reused by the catalog and the rest of the start, not left as a
        # gap (~1 MB of the running bot's memory; bench/bench_startup.py). build_dispatcher
        # preloads it too, for the other entry points; the second time costs nothing.
        preload((settings.default_language,))
        return settings, default_catalog()
    except (SettingsError, WebhookConfigError, ValueError, CatalogError):
        return None


def main() -> None:
    options = run_options(sys.argv[1:])
    ready = ready_to_run(options) if options is not None else None
    if options is None or ready is None:
        from bot.cli import main as command_line

        command_line()
        return
    settings, catalog = ready
    try:
        run_bot(settings, catalog, options)
    except database_error_types() as exc:  # as bot.cli's commands end on one (exit code 3)
        from bot.cli_common import fail

        raise SystemExit(fail(f"Database error: {database_error_message(exc)}", 3).exit_code) from None


if __name__ == "__main__":
    main()
