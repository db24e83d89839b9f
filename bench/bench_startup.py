"""Start-up: the bot's idle memory and import time against a bare aiogram echo bot.

    .venv/bin/python bench/bench_startup.py [--repeat 3]

Both bots run as real processes in long-polling mode against the fake Bot API (tests/fakebotapi.py,
served in a thread of this process), one after the other in the same run:

- the bot: ``python -m bot run`` (the production entry point, what the ``resobot`` console
  script, ``make run`` and the container run: polling plus the reminder scheduler and the outbox
  sender) on a fresh SQLite database made by ``python -m bot init`` (untimed);
- the baseline: a bare aiogram echo bot (one router, one handler, ``start_polling``).

Figure: idle RSS (``VmRSS`` from /proc/<pid>/status), read once start-up has settled — after
the process's second ``getUpdates`` request (the first long poll answered, the loop idle), plus
a short pause. Baseline: the echo bot's idle RSS. Target ratio ≤ 1.25.
Also printed: the time from spawn to the first ``getUpdates`` and the import time of the bot's
modules vs aiogram's (fresh interpreters, best of ``--repeat``), for information.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakebotapi import FakeBotAPI, served_in_thread  # noqa: E402

ECHO_BOT = """
import asyncio, os
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

router = Router()


@router.message()
async def echo(message: Message) -> None:
    await message.answer(message.text or "")


async def main() -> None:
    api = TelegramAPIServer.from_base(os.environ["TELEGRAM_API_BASE"])
    bot = Bot(os.environ["TELEGRAM_BOT_TOKEN"], session=AiohttpSession(api=api))
    dp = Dispatcher()
    dp.include_router(router)
    await dp.start_polling(bot, polling_timeout=1)


asyncio.run(main())
"""

IMPORT_BOT = "import bot.__main__"  # the entry point: bot.runner, bot.app
IMPORT_ECHO = "import aiogram, aiogram.client.session.aiohttp, aiogram.client.telegram, aiogram.types"
SETTLE = 1.0  # seconds after the second getUpdates before RSS is read


def _status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def idle_process(
    server: FakeBotAPI, argv: list[str], env: dict[str, str], cwd: Path
) -> tuple[float, dict[str, int]]:
    """Start ``argv``, wait for its second getUpdates, settle; (seconds to first getUpdates, RSS)."""
    before = len(server.calls_of("getUpdates"))
    started = time.perf_counter()
    log = cwd / f"{Path(argv[-1]).stem}.log"  # a file, not a pipe nobody reads while it runs
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    first: float | None = None
    try:
        deadline = started + 120
        while len(server.calls_of("getUpdates")) < before + 2:
            if proc.poll() is not None or time.perf_counter() > deadline:
                output = log.read_text(errors="replace")
                raise SystemExit(f"{argv} did not start polling (exit {proc.returncode}):\n{output[-3000:]}")
            if first is None and len(server.calls_of("getUpdates")) > before:
                first = time.perf_counter() - started
            time.sleep(0.01)
        if first is None:
            first = time.perf_counter() - started
        time.sleep(SETTLE)
        return first, _status(proc.pid)
    finally:
        _stop(proc)


def import_seconds(statement: str, env: dict[str, str], cwd: Path, repeat: int) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    best = float("inf")
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=True
        )
        best = min(best, float(out.stdout.strip()))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="import-time runs (best of)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, served_in_thread() as server:
        work = Path(tmp)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tmp,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": f"sqlite+aiosqlite:///{work / 'bot.db'}",
            "TELEGRAM_BOT_TOKEN": server.token,
            "TELEGRAM_API_BASE": server.base_url,
            "TELEGRAM_BOT_USERNAME": "resobot_bench",
        }
        subprocess.run(
            [sys.executable, "-m", "bot", "init"], env=env, cwd=work, check=True, capture_output=True
        )
        echo_script = work / "echo_bot.py"
        echo_script.write_text(ECHO_BOT)
        bot_first, bot_mem = idle_process(server, [sys.executable, "-m", "bot", "run"], env, work)
        echo_first, echo_mem = idle_process(server, [sys.executable, str(echo_script)], env, work)
        bot_import = import_seconds(IMPORT_BOT, env, work, args.repeat)
        echo_import = import_seconds(IMPORT_ECHO, env, work, args.repeat)
    bot_rss, echo_rss = bot_mem["VmRSS"] / 1024, echo_mem["VmRSS"] / 1024
    print(
        f"bot idle RSS (resobot run, polling + scheduler + sender): {bot_rss:7.1f} MB  "
        f"(peak {bot_mem['VmHWM'] / 1024:.1f} MB)"
    )
    print(
        f"bare aiogram echo bot idle RSS (baseline):                {echo_rss:7.1f} MB  "
        f"(peak {echo_mem['VmHWM'] / 1024:.1f} MB)"
    )
    print(f"ratio: {bot_rss / echo_rss:.3f}  (target ≤ 1.25)")
    print(
        f"spawn → first getUpdates: bot {bot_first:.2f} s, echo {echo_first:.2f} s, "
        f"ratio {bot_first / echo_first:.2f}"
    )
    print(
        f"import time (best of {args.repeat}): bot modules {bot_import * 1000:.0f} ms, "
        f"aiogram {echo_import * 1000:.0f} ms, ratio {bot_import / echo_import:.2f}"
    )


if __name__ == "__main__":
    main()
