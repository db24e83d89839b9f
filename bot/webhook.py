"""Webhook mode: ``resobot run --webhook`` — Telegram posts updates to an aiohttp server.

The server listens on ``--listen`` / ``WEBHOOK_LISTEN`` (default 0.0.0.0:8080), at the path of
``WEBHOOK_URL`` (``https://bot.example.lv/tg/hook`` → ``/tg/hook``; ``/webhook`` when the URL
has none), behind a TLS reverse proxy. Every request must carry ``WEBHOOK_SECRET`` in
``X-Telegram-Bot-Api-Secret-Token``: one without it, or with a wrong one, is answered 401 and
never reaches the dispatcher. At start ``setWebhook`` registers the URL, the secret and the
update types the handlers use; the reminder scheduler and the outbox sender run as in polling
mode (bot/app.py ``background``); ``/healthz``, ``/readyz`` and ``/metrics`` are served on the
same listener (bot/health.py).

An update is answered 200 only after its handlers ran and its transaction committed
(``handle_in_background=False``): if the process dies in between, Telegram delivers it again,
and a repeat of an update already handled is dropped by its id (bot/middlewares.py).

Stopping (SIGTERM, SIGINT): stop accepting requests and let those in progress finish, then stop
the scheduler and the sender, then close the Bot API session — the order in which nothing that
is still running loses the session it needs. The webhook stays registered: Telegram keeps the
updates for the next start, or for another instance behind the same URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.app import (
    Services,
    background,
    build_dispatcher,
    finish_updates,
    resume_interrupted,
    telegram_bot,
    wait_for_bot_api,
)
from bot.config import parse_listen, webhook_url_and_secret
from bot.health import PATHS, Health, observed
from bot.replay import UpdateReplay

log = logging.getLogger("resobot.webhook")

DEFAULT_PATH = "/webhook"
SHUTDOWN_TIMEOUT = 20.0  # seconds requests in progress get to finish at a stop


def webhook_path(url: str) -> str:
    path = urlsplit(url).path
    return path if path and path != "/" else DEFAULT_PATH


class SecretRequestHandler(SimpleRequestHandler):
    """aiogram's handler for one bot, with a secret that is never optional; refusals are
    counted and logged. The Bot API session is closed by :func:`run_webhook`, after the
    sender stopped, not by the web application's shutdown."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, secret: str, health: Health, **data: Any) -> None:
        super().__init__(dispatcher, bot, handle_in_background=False, secret_token=secret, **data)
        self.health = health

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        if not self.secret_token:  # never: webhook_url_and_secret requires one
            return False
        ok = super().verify_secret(telegram_secret_token, bot)
        if not ok:
            self.health.metrics.webhook_rejected += 1
            log.warning("webhook request refused: wrong or missing secret token")
        return ok

    async def close(self) -> None:
        """Nothing here (see the class docstring)."""


def add_health_routes(app: web.Application, health: Health) -> None:
    """``/healthz``, ``/readyz`` and ``/metrics`` on the webhook server too (bot/health.py)."""

    async def view(request: web.Request) -> web.Response:
        reply = await health.answer(request.path)
        return web.Response(
            text=reply.body, status=reply.status.value, headers={"Content-Type": reply.content_type}
        )

    for path in PATHS:
        app.router.add_get(path, view)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run_webhook(
    services: Services,
    *,
    listen: str | None = None,
    reminders: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the webhook until ``stop`` is set (SIGTERM/SIGINT when not given)."""
    settings = services.settings
    url, secret = webhook_url_and_secret(settings)
    host, port = parse_listen(listen or settings.webhook_listen)
    path = webhook_path(url)
    stop = stop or _stop_event()
    bot = telegram_bot(settings)
    dp = build_dispatcher(services)
    # an update that fails because the database is down is held and replayed (as in polling):
    # it is answered 200 and not lost
    services.replay = UpdateReplay(
        dp, bot, services.db, settings.default_language, data_dir=settings.data_dir
    )
    services.replay.start()
    app = web.Application()
    try:
        async with observed(services, dp) as health:
            add_health_routes(app, health)
            SecretRequestHandler(dp, bot, secret, health).register(app, path=path)
            setup_application(app, dp, bot=bot)  # the dispatcher's startup/shutdown with the app's
            runner = web.AppRunner(
                app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
            )
            await runner.setup()  # the dispatcher's startup: commands, heap
            serving = True
            try:
                await web.TCPSite(runner, host, port).start()
                log.info("webhook server on %s:%s%s", host, port, path)
                async with background(services, bot, enabled=reminders) as runtime:
                    health.runtime = runtime
                    await wait_for_bot_api(
                        bot,
                        call=lambda: bot.set_webhook(
                            url,
                            secret_token=secret,
                            allowed_updates=dp.resolve_used_update_types(),
                            drop_pending_updates=False,
                        ),
                    )
                    log.info("webhook set: %s", url)
                    await resume_interrupted(services, bot)  # what the last stop left unhandled
                    await stop.wait()
                    log.info("stopping: no new requests, finishing those in progress")
                    serving = False
                    await runner.cleanup()  # stop listening, wait for handlers, dispatcher shutdown
                    # Telegram was answered for every update; those still held for replay are kept
                    await finish_updates(dp, services, bot)
            finally:
                if serving:
                    await runner.cleanup()
    finally:
        await services.replay.stop()
        services.replay = None
        await bot.session.close()


__all__ = [
    "SecretRequestHandler",
    "add_health_routes",
    "run_webhook",
    "webhook_path",
]
