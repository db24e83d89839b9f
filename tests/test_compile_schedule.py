"""The scheduled compilations: which runs are due (first working day 08:00, 15 January 08:00,
missed runs caught up), done once per run, and delivered to coordinators through the outbox
as a text summary and documents (sendDocument against the fake Bot API)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bot.config import Settings
from bot.sender import Sender
from bot.services_container import Services
from reporting_forms.catalog import Catalog
from reporting_forms.schedule import CompileRun, due_compile_runs
from services.compilation import enqueue_compilation
from storage.db import Database
from storage.jobs import JobRunRepo
from storage.outbox import KIND_DOCUMENT, KIND_SUMMARY, OutboxRepo
from storage.repositories import Repos
from storage.tables import OutboxStatus
from tests.chat_harness import prepare_database
from tests.fakebotapi import FakeBotAPI

RIGA = ZoneInfo("Europe/Riga")
D = dt.date.fromisoformat


def riga(day: str, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(D(day), dt.time(hour, minute), tzinfo=RIGA)


@pytest.mark.parametrize(
    ("now", "lookback", "expected"),
    [
        (riga("2026-12-01", 7, 59), 0, []),  # before 08:00 on the first working day
        (riga("2026-12-01", 8, 0), 0, [("monthly", "2026-12-01", 2026)]),
        (riga("2026-12-02", 9, 0), 0, []),  # the day after: nothing new without a look back
        (riga("2026-12-02", 9, 0), 14, [("monthly", "2026-12-01", 2026)]),  # caught up
        # January 2027: 1 January is a holiday, the first working day is Monday 4 January
        (riga("2027-01-15", 8, 0), 14, [("monthly", "2027-01-04", 2026), ("annual", "2027-01-15", 2026)]),
        (riga("2028-02-01", 9, 0), 14, []),  # after the plan period nothing is compiled
    ],
)
def test_due_runs(now: dt.datetime, lookback: int, expected: list) -> None:
    runs = due_compile_runs(now, lookback)
    assert [(r.kind, r.at.date().isoformat(), r.year) for r in runs] == expected
    assert all(r.at.timetz().replace(tzinfo=None) == dt.time(8) for r in runs)


@pytest.fixture
async def services(sqlite_url: str, catalog: Catalog, tmp_path) -> AsyncIterator[Services]:
    await prepare_database(sqlite_url, catalog)
    db = Database(sqlite_url)
    async with db.session() as s:
        repos = Repos(s)
        tm = await repos.people.institution("TM")
        vpd = await repos.people.institution("VPD")
        await repos.people.add_contact(
            display_name="Koordinatore", institution_id=tm.id, role="coordinator", telegram_user_id=8101
        )
        en = await repos.people.add_contact(
            display_name="Admin", institution_id=tm.id, role="admin", telegram_user_id=8102
        )
        en.language = "en"
        await repos.people.add_contact(display_name="Kontakts", institution_id=vpd.id, telegram_user_id=8103)
    settings = Settings(_env_file=None, database_url=sqlite_url, compiled_dir=tmp_path / "compiled")
    yield Services(db=db, catalog=catalog, settings=settings)
    await db.dispose()


async def test_a_run_is_queued_once_for_every_coordinator(services: Services) -> None:
    run = CompileRun(riga("2026-12-01", 8), "monthly", 2026)
    now = riga("2026-12-01", 8)
    first = await enqueue_compilation(services, run, now=now)
    assert first > 0
    assert await enqueue_compilation(services, run, now=now) == 0, "done once per run"
    async with services.db.session() as s:
        rows = await OutboxRepo(s).for_period([KIND_SUMMARY, KIND_DOCUMENT], now, now + dt.timedelta(1))
        assert await JobRunRepo(s).done("compile.monthly", D("2026-12-01"))
    assert len(rows) == first
    by_chat: dict[int, list] = {}
    for r in rows:
        by_chat.setdefault(r.chat_id, []).append(r)
    assert set(by_chat) == {8101, 8102}, "coordinators and admins, not contacts"
    for chat_rows in by_chat.values():
        kinds = [r.kind for r in chat_rows]
        assert kinds[0] == KIND_SUMMARY and KIND_DOCUMENT in kinds
        names = [r.payload["filename"] for r in chat_rows if r.kind == KIND_DOCUMENT]
        assert any(n.endswith(".xlsx") for n in names) and any(n.endswith(".png") for n in names)
    lv, en = by_chat[8101][0].payload["text"], by_chat[8102][0].payload["text"]
    assert "Mēneša kopsavilkums" in lv and "Monthly" in en


async def test_the_files_reach_the_coordinators_as_documents(services: Services) -> None:
    now = riga("2027-01-15", 8)
    async with FakeBotAPI() as server:
        settings = services.settings.model_copy(
            update={
                "telegram_bot_token": server.token,
                "telegram_api_base": server.base_url,
                "outbox_per_chat_rate": 50.0,
            }
        )
        bot = server.make_bot()
        try:
            with time_machine.travel(now, tick=True):
                added = await enqueue_compilation(services, CompileRun(now, "annual", 2026), now=now)
                stats = await Sender(services.db, bot, settings).drain_once()
            assert stats.sent == added and stats.failed == 0
            received = server.sent_to(8101)
            documents = [o for o in received if o.document_name]
            assert {o.document_name.rsplit(".", 1)[1] for o in documents} >= {"xlsx", "docx", "png"}
            assert all(o.document_bytes for o in documents)
            assert received[0].document_name is None and "Gada kopsavilkums" in received[0].text
            assert server.sent_to(8103) == []
        finally:
            await bot.session.close()
    async with services.db.session() as s:
        counts = await OutboxRepo(s).counts()
    assert counts == {OutboxStatus.SENT: added}


async def test_a_file_deleted_before_sending_fails_without_a_request(services: Services) -> None:
    now = riga("2026-12-01", 8)
    async with FakeBotAPI() as server:
        settings = services.settings.model_copy(
            update={"telegram_bot_token": server.token, "telegram_api_base": server.base_url}
        )
        bot = server.make_bot()
        try:
            with time_machine.travel(now, tick=True):
                await enqueue_compilation(services, CompileRun(now, "monthly", 2026), now=now)
                async with services.db.session() as s:
                    rows = await OutboxRepo(s).for_period([KIND_DOCUMENT], now, now + dt.timedelta(1))
                path = Path(rows[0].payload["path"])
                gone = [r.id for r in rows if r.payload["path"] == str(path)]
                path.unlink()
                await Sender(services.db, bot, settings).drain_once()
            sent = [o for o in server.outputs if o.document_name is not None]
            assert len(sent) == len(rows) - len(gone)  # every other document went out
        finally:
            await bot.session.close()
    async with services.db.session() as s:
        failed = [await OutboxRepo(s).get(i) for i in gone]
    for row in failed:
        assert row.status == OutboxStatus.FAILED and row.attempts == 0 and "file not found" in row.last_error
