"""``resobot reminders preview | log | send-now`` run in-process with typer's CliRunner."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from typer.testing import CliRunner

from bot.cli import app
from storage.db import Database
from storage.outbox import OutboxRepo
from storage.repositories import Repos
from tests.fakebotapi import FakeBotAPI, served_in_thread

runner = CliRunner()
RIGA = ZoneInfo("Europe/Riga")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_BASE", "REMINDER_POLICY_OVERRIDES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    run("init")
    asyncio.run(_people(url))
    return url


async def _people(url: str) -> None:
    db = Database(url)
    async with db.session() as s:
        repos = Repos(s)
        for name, inst, role, tg in (
            ("Līga Ozola", "LM", "contact", 3001),
            ("Koordinatore", "TM", "coordinator", 4001),
        ):
            institution = await repos.people.institution(inst)
            await repos.people.add_contact(
                display_name=name, institution_id=institution.id, role=role, telegram_user_id=tg
            )
    await db.dispose()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


async def _outbox(url: str) -> list:
    db = Database(url)
    async with db.session() as s:
        rows = await OutboxRepo(s).log()
    await db.dispose()
    return rows


def test_preview_json(env: str) -> None:
    out = run("reminders", "preview", "--from", "2026-11-01", "--to", "2027-01-31", "--json")
    rows = json.loads(out)  # one JSON array (the keys are for machines; the table shows words)
    lm = [r for r in rows if r["recipient"] == "Līga Ozola"]
    assert [r["send_at"] for r in lm] == [
        "2026-12-01T09:00:00+02:00",
        "2026-12-15T09:00:00+02:00",
        "2026-12-17T09:00:00+02:00",
        "2026-12-23T09:00:00+02:00",
        "2026-12-29T09:00:00+02:00",
        "2026-12-30T09:00:00+02:00",
        "2027-01-15T09:00:00+02:00",
    ]
    first = lm[0]
    assert first["institution"] == "LM" and first["kind"] == "reminder" and first["chat_id"] == 3001
    assert set(first["kinds"]) == {"deadline", "request"} and first["measures"] == [
        "2.5.1",
        "2.6.1",
        "4.5.1",
        "4.5.2",
    ]
    digests = [r for r in rows if r["kind"] == "digest"]
    assert digests and {r["recipient"] for r in digests} == {"Koordinatore"}
    assert not any(
        r["send_at"].startswith(("2026-11-18", "2026-12-24", "2026-12-31", "2027-01-01")) for r in rows
    )
    assert asyncio.run(_outbox(env)) == [], "a preview sends and stores nothing"


def test_preview_json_is_an_empty_array_when_nothing_is_due(env: str) -> None:
    out = run("reminders", "preview", "--from", "2026-11-07", "--to", "2026-11-08", "--json")  # a weekend
    assert json.loads(out) == []


def test_preview_table_names_the_kinds_in_words(env: str) -> None:
    out = run("reminders", "preview", "--from", "2026-11-01", "--to", "2027-01-31")
    assert "termiņa atgādinājums" in out and "gada atskaites pieprasījums" in out
    assert "koordinatoru kopsavilkums" in out
    words = set(re.findall(r"[\w-]+", out))
    assert not words & {"deadline", "request", "reminder", "overdue", "digest"}, words


def test_preview_table_and_bad_dates(env: str) -> None:
    out = run("reminders", "preview", "--from", "2026-12-20", "--to", "2026-12-31", "--no-digests")
    assert "2026-12-23 09:00" in out and "Līga Ozola" in out and "2.5.1" in out
    # LM's contact on the 23rd, 29th and 30th; never the TM coordinator (not a reporter, gets the digest)
    assert "Ziņu skaits: 3." in out and "2.5.1" in out
    bad = runner.invoke(app, ["reminders", "preview", "--from", "1.12.2026", "--to", "2026-12-31"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output
    backwards = runner.invoke(app, ["reminders", "preview", "--from", "2026-12-31", "--to", "2026-12-01"])
    assert backwards.exit_code != 0


def test_send_now_needs_a_token(env: str) -> None:
    result = runner.invoke(app, ["reminders", "send-now"])
    assert result.exit_code == 2 and "TELEGRAM_BOT_TOKEN" in result.output


@pytest.fixture
def fake_server() -> Iterator[FakeBotAPI]:
    """The fake Bot API in a thread of its own (the CLI runs its own event loop)."""
    with served_in_thread() as server:
        yield server


def test_send_now_then_log(env: str, fake_server: FakeBotAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", fake_server.token)
    monkeypatch.setenv("TELEGRAM_API_BASE", fake_server.base_url)
    fake_server.block(4001)  # the coordinator blocked the bot
    with time_machine.travel(dt.datetime(2026, 12, 1, 8, 30, tzinfo=RIGA), tick=True):
        out = run("reminders", "send-now")  # before 09:00: today's reminders go out now anyway
    # the LM contact's reminder; the coordinator (blocked) gets only the digest, no reminder
    assert "Reminders: 1 planned: 1 added" in out and "Digest: 1 planned: 1 added" in out
    assert "Sent 1," in out and "blocked 1" in out
    (message,) = fake_server.sent_to(3001)
    assert "Lūdzam iesniegt atskaiti" in message.text
    with time_machine.travel(dt.datetime(2026, 12, 1, 8, 40, tzinfo=RIGA), tick=True):
        again = run("reminders", "send-now")
    assert "0 added" in again and "Sent 0," in again and len(fake_server.sent_to(3001)) == 1

    table = run("reminders", "log")
    assert "Līga Ozola" in table and "nosūtīts" in table and "bloķēts" in table and "2.5.1" in table
    assert "atgādinājums" in table and not {"sent", "reminder", "digest"} & set(re.findall(r"\w+", table))
    only = run("reminders", "log", "--recipient", "līga", "--json")
    records = [json.loads(line) for line in only.splitlines()]
    assert {r["recipient"] for r in records} == {"Līga Ozola"}
    (record,) = records
    assert record["status"] == "sent" and record["telegram_message_id"] == message.message_id
    assert record["send_at"] == "2026-12-01T09:00:00+02:00"


def test_mutes_lists_what_contacts_silenced_and_why(env: str) -> None:
    from storage.outbox import ReminderRepo

    assert "No reminders are muted." in run("reminders", "mutes")

    async def mute() -> None:
        db = Database(env)
        async with db.session() as s:
            liga = next(c for c in await Repos(s).people.contacts() if c.display_name == "Līga Ozola")
            repo = ReminderRepo(s)
            await repo.add_mute(
                contact_id=liga.id, measure_code="2.5.1", until=dt.date(2099, 1, 1), reason="Dati būs janvārī"
            )
            await repo.add_mute(
                contact_id=liga.id, measure_code="2.6.1", until=dt.date(2020, 1, 1), reason="Sen beidzies"
            )
        await db.dispose()

    asyncio.run(mute())
    table = run("reminders", "mutes")
    assert "2.5.1" in table and "Dati būs janvārī" in table and "01.01.2099" in table
    assert "Sen beidzies" not in table, "only mutes still in force by default"
    lines = [json.loads(x) for x in run("reminders", "mutes", "--all", "--json").splitlines()]
    assert {(r["measure"], r["institution"], r["contact"]) for r in lines} == {
        ("2.5.1", "LM", "Līga Ozola"),
        ("2.6.1", "LM", "Līga Ozola"),
    }
