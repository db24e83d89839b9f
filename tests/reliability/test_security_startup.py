"""Issue 11, defect 7: ``resobot run`` with the Bot API unreachable at start keeps trying with a
bounded backoff and one log line per attempt — no 300-line traceback, no exit — and starts once
the API answers."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from bot.app import wait_for_bot_api
from tests.fakebotapi import FakeBotAPI


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_waits_for_an_unreachable_bot_api(sqlite_url: str, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OUTBOX_", "REMINDER"))},
        "DATABASE_URL": sqlite_url,
        "TELEGRAM_BOT_TOKEN": "123456:TEST-token-for-unreachable-api",
        "TELEGRAM_API_BASE": f"http://127.0.0.1:{_closed_port()}",
        "REMINDERS_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env, stdout=log, stderr=log
        )
        try:
            for _ in range(1200):  # until two attempts were logged (start-up is slow on a busy machine)
                if log_path.read_text(errors="replace").count("Bot API unreachable") >= 2 or proc.returncode:
                    break
                await asyncio.sleep(0.05)
            assert proc.returncode is None, log_path.read_text(errors="replace")[-2000:]
        finally:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()
    output = log_path.read_text(errors="replace")
    assert "Traceback" not in output, output[-2000:]
    attempts = [line for line in output.splitlines() if "Bot API unreachable" in line]
    assert len(attempts) >= 2 and "attempt 1" in attempts[0] and "attempt 2" in attempts[1]
    assert "Connect call failed" in attempts[0]  # the reason, on the same line


async def test_wait_for_bot_api_backs_off_and_returns_once_it_answers(server: FakeBotAPI) -> None:
    server.fail_next("deleteWebhook", status=502, times=6)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    bot = server.make_bot()
    try:
        await wait_for_bot_api(bot, first_delay=1.0, max_delay=8.0, sleep=sleep)
    finally:
        await bot.session.close()
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert len(server.calls_of("deleteWebhook")) == 7


async def test_setting_the_webhook_is_retried_too(server: FakeBotAPI) -> None:
    """Webhook mode's first call (setWebhook) goes through the same bounded retry."""
    server.fail_next("setWebhook", status=502, times=2)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    bot = server.make_bot()
    try:
        await wait_for_bot_api(
            bot, call=lambda: bot.set_webhook("https://bot.example.lv/hook", secret_token="s3"), sleep=sleep
        )
    finally:
        await bot.session.close()
    assert delays == [1.0, 2.0]
    assert len(server.calls_of("setWebhook")) == 3 and not server.calls_of("deleteWebhook")
