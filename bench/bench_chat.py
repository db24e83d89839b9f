"""Updates per second: complete report flows (SQLite, drafts persisted) vs a bare aiogram echo.

Both run in this process through ``Dispatcher.feed_update`` with a session that intercepts the
API calls (RecordingSession). Prints both figures and the ratio (target: ratio ≥ 0.5).

    .venv/bin/python bench/bench_chat.py [flows]
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.types import Message
from rich.console import Console

from bot.app import Services, build_dispatcher
from bot.config import Settings
from bot.console import ConsoleChat, RecordingSession
from reporting_forms.catalog import load_catalog
from storage.db import Database, upgrade
from storage.repositories import Repos

# One complete report on measure 1.1.1: /report, status, date, trained, skip comment, confirm.
FLOW = ("/report 1.1.1", "procesā", "01.10.2026", "45", "izlaist", "apstiprināt")
USERS = 20


def _chat(dp: Dispatcher, user_id: int) -> ConsoleChat:
    bot = Bot("42:bench", session=RecordingSession(), default=DefaultBotProperties(parse_mode="HTML"))
    user = {"id": user_id, "first_name": "Bench", "language_code": "lv"}
    return ConsoleChat(
        dp,
        bot,
        user=user,
        console=Console(file=io.StringIO()),
        input_fn=lambda _p: "",
        first_update_id=user_id * 1_000_000,
    )


async def _drive(chats: list[ConsoleChat], flows: int) -> float:
    """Feed ``flows`` complete flows round-robin over the users; returns updates per second."""
    started = time.perf_counter()
    updates = 0
    for n in range(flows):
        chat = chats[n % len(chats)]
        for line in FLOW:
            await chat.send_text(line)
            updates += 1
    elapsed = time.perf_counter() - started
    errors = sum(len(c.errors) for c in chats)
    if errors:
        raise SystemExit(f"{errors} handler errors: {chats[0].errors[:1]}")
    return updates / elapsed


async def bare_echo(flows: int) -> float:
    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    dp = Dispatcher()
    dp.include_router(router)
    return await _drive([_chat(dp, 1000 + i) for i in range(USERS)], flows)


async def report_flows(flows: int, workdir: Path) -> tuple[float, int]:
    url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    catalog = load_catalog()
    db = Database(url)
    async with db.session() as s:
        repos = Repos(s)
        await repos.catalog.sync(catalog)
        vpd = await repos.people.institution("VPD")
        for i in range(USERS):
            await repos.people.add_contact(
                display_name=f"U{i}", institution_id=vpd.id, telegram_user_id=2000 + i
            )
    services = Services(db=db, catalog=catalog, settings=Settings(database_url=url, _env_file=None))
    dp = build_dispatcher(services)
    chats = [_chat(dp, 2000 + i) for i in range(USERS)]
    rate = await _drive(chats, flows)
    async with db.session() as s:
        stored = sum(v.revision for v in await Repos(s).reports.views())
    await db.dispose()
    return rate, stored


async def main(flows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await bare_echo(20)  # warm up imports and pydantic models
        echo = await bare_echo(flows)
        flow, stored = await report_flows(flows, Path(tmp))
    print(
        f"report flows (SQLite, drafts persisted): {flow:8.1f} updates/s  ({flows} flows, {stored} revisions)"
    )
    print(f"bare aiogram echo (baseline):           {echo:8.1f} updates/s")
    print(f"ratio: {flow / echo:.2f}  (target ≥ 0.5)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
