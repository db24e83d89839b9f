"""Start-up memory (issue 12, item 6): the bot starts without matplotlib, numpy, openpyxl or
python-docx; they load when a document is made, and making one still works.

Each check runs in a fresh interpreter (this test process has imported everything already).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from reporting_forms.catalog import Catalog
from storage.db import Database
from storage.repositories import Repos
from tests.chat_harness import prepare_database
from tests.fakebotapi import FakeBotAPI
from tests.test_webhook import free_port

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("matplotlib", "numpy", "openpyxl", "docx")

SCRIPT = """
import datetime as dt, io, json, sys

HEAVY = set(sys.argv[2].split(","))

def heavy():
    return sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)

import bot.app, bot.cli
from bot.app import build_dispatcher, settle_heap
from bot.services_container import Services
from bot.config import Settings
from reporting_forms.catalog import load_catalog
from storage.db import Database

url = sys.argv[1]
settings = Settings(database_url=url, _env_file=None)
services = Services(db=Database(url), catalog=load_catalog(), settings=settings)
dp = build_dispatcher(services)
import bot.scheduler, bot.sender  # what polling starts next to the dispatcher
settle_heap()
at_start = heavy()
import babel.localedata  # noqa: E402
from reporting_forms import texts  # noqa: E402

# the default language's (Latvian) locale data and messages; English only where start-up uses
# it: typed button labels ("Skip" works like the button: report). Polling adds the English
# command menu (setMyCommands with language_code=en: common) when it starts.
locales = sorted(babel.localedata._cache)  # what Babel has loaded (its cache of locale data)
templates = sorted(name for _, name in texts.environment().cache.keys())
# an SQLite bot has no use for them: the driver, and SQLAlchemy's PostgreSQL dialect
postgres_driver = "asyncpg" in sys.modules or "sqlalchemy.dialects.postgresql" in sys.modules
import babel.core  # noqa: E402

babel_global_kept = babel.core._global_data is not None  # Babel's cross-locale tables, let go

# the working-day calendar (the scheduler plans today at start): read from workdays_lv.json,
# without the holidays package (nor dateutil, which only it uses)
from reporting_forms.workdays import is_working_day  # noqa: E402

working = is_working_day(dt.date(2026, 1, 2))
calendar_modules = sorted(m for m in sys.modules if m.split(".")[0] in ("holidays", "dateutil"))

from openpyxl import load_workbook  # noqa: E402  (only after the start-up check)

from reporting_forms import exports
from reporting_forms.compilation import compile_plan

catalog = services.catalog
plan = next(p for p in catalog.plans if p.directions)
compiled = compile_plan(catalog, plan.id, [], year=None, as_of=dt.date(2026, 1, 15))
workbook = load_workbook(io.BytesIO(exports.export_xlsx(compiled)))
print(json.dumps({"at_start": at_start, "sheets": workbook.sheetnames, "after": heavy(),
                  "working": working, "calendar_modules": calendar_modules,
                  "postgres_driver": postgres_driver, "locales": locales, "templates": templates,
                  "babel_global_kept": babel_global_kept}))
"""


def _run(tmp_path: Path) -> dict:
    url = f"sqlite+aiosqlite:///{tmp_path / 'startup.db'}"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, ",".join(HEAVY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_bot_starts_without_document_libraries_and_still_makes_an_xlsx(tmp_path: Path) -> None:
    seen = _run(tmp_path)
    assert seen["at_start"] == []
    # making a document loads what it needs, and the file is a real workbook
    assert "openpyxl" in seen["after"]
    assert len(seen["sheets"]) >= 2


def test_the_working_day_calendar_needs_no_holidays_package(tmp_path: Path) -> None:
    seen = _run(tmp_path)
    assert seen["working"] is False  # 2 January 2026: a day off transferred from Saturday 17 January
    assert seen["calendar_modules"] == []  # holidays (and dateutil) never imported


def test_the_bot_starts_with_its_default_language_and_not_english(tmp_path: Path) -> None:
    seen = _run(tmp_path)
    assert "lv" in seen["locales"] and not any(name.startswith("en") for name in seen["locales"])
    assert seen["babel_global_kept"] is False  # read to load the locale's data, then let go
    # messages load with their feature's first message: the report's (typed button labels) at
    # start, not the coordinators' nor the console's
    assert "lv/report.j2" in seen["templates"]
    assert not {"lv/coordinator.j2", "lv/reports.j2", "lv/console.j2"} & set(seen["templates"])
    assert [name for name in seen["templates"] if name.startswith("en/")] == ["en/report.j2"]


def test_an_sqlite_bot_does_not_load_the_postgresql_driver_or_dialect(tmp_path: Path) -> None:
    assert _run(tmp_path)["postgres_driver"] is False


COMMAND_LINE = ("typer", "rich", "click", "shellingham")


async def test_the_running_bot_loads_no_command_line_and_english_on_first_use(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    """``resobot run`` (``python -m bot run``, the entry of ``make run``, the container and
    bench_startup.py), polling with its scheduler, sender and health endpoints: no typer, rich or
    click, none of the other commands' modules (bot.cli, bot.cli_*) and no aiohttp web server,
    start to stop (``-X importtime`` lists
    every module the process imported). Its default language is Latvian, so English is loaded
    by the first English message: an English contact's first messages are English, numbers and
    dates included."""
    await prepare_database(sqlite_url, catalog)
    db = Database(sqlite_url)
    async with db.session() as session:
        repos = Repos(session)
        vpd = await repos.people.institution("VPD")
        code = await repos.people.create_invite(
            institution_id=vpd.id, role="contact", expires_in=dt.timedelta(days=14)
        )
        measure = await repos.catalog.measure("1.1.1")
        indicators = [i for i in await repos.catalog.indicators(measure.id) if i.kind != "text"]
        await repos.reports.submit(
            measure_id=measure.id,
            institution_id=vpd.id,
            year=2026,
            answers={i.code: ("in_progress" if i.kind == "milestone" else 1200) for i in indicators},
            contact_id=None,
            now=dt.datetime(2026, 11, 20, 9, 30),  # 11:30 in Riga
        )
    await db.dispose()
    health_port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "DATABASE_URL": sqlite_url,
        "TELEGRAM_BOT_TOKEN": server.token,
        "TELEGRAM_API_BASE": server.base_url,
        "HEALTH_LISTEN": f"127.0.0.1:{health_port}",
    }
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        argv = [sys.executable, "-X", "importtime", "-m", "bot", "run"]
        proc = await asyncio.create_subprocess_exec(*argv, cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:  # polling: the first long poll answered, the second one waiting
            polling = await server._wait_until(lambda: len(server.calls_of("getUpdates")) >= 2, 90)
            assert polling, log_path.read_text(errors="replace")[-3000:]
            readyz = f"http://127.0.0.1:{health_port}/readyz"  # the container's health check
            async with aiohttp.ClientSession() as http, http.get(readyz) as resp:
                assert resp.status == 200 and (await resp.json())["database"] == "ok"
            emily = server.user(9301, first_name="Emily", language_code="en")
            emily.send(f"/start {code}")
            (welcome,) = await emily.replies(1, timeout=30)
            emily.send("/myreports")
            (reports,) = await emily.replies(1, timeout=30)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
    imported = {
        line.rpartition("|")[2].strip()
        for line in log_path.read_text(errors="replace").splitlines()
        if line.startswith("import time:")
    }
    assert {"bot.runner", "bot.app", "bot.scheduler", "bot.sender"} <= imported  # read right
    command_line = sorted(
        m for m in imported if m.split(".")[0] in COMMAND_LINE or m == "bot.cli" or m.startswith("bot.cli_")
    )
    assert command_line == []
    # the health endpoints are plain asyncio: aiohttp's web server is webhook mode's only
    assert sorted(m for m in imported if m == "aiohttp.web" or m.startswith("aiohttp.web_")) == []
    assert welcome.text.startswith("Welcome, Emily! Registration complete.")
    assert "submitted, revision 1, awaiting review on 20 Nov 2026, 11:30" in reports.text  # Babel's English
