"""``resobot backup`` / ``resobot restore``: a dump of a live database restores into a fresh
one with every table's rows equal, ids kept (both backends)."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterator

import pytest
from sqlmodel import select

from reporting_forms.catalog import Catalog
from reporting_forms.payloads import NoticePayload
from storage import backup
from storage import tables as t
from storage.db import Database
from storage.outbox import NewMessage, OutboxRepo
from storage.repositories import Repos
from tests.conftest import PG_ADMIN_DSN, _pg_admin

NOW = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)


@pytest.fixture
def fresh_url(db_url: str, request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A second fresh migrated database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        path = tmp_path / "restored.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    name = f"resobot_r_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{request.getfixturevalue("pg_template")}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _init(db: Database, catalog: Catalog) -> None:
    """What ``resobot init`` loads: the catalog and the plan's reporting periods."""
    async with db.session() as s:
        repos = Repos(s)
        await repos.catalog.sync(catalog)
        for year in (2025, 2026, 2027):
            await repos.reports.period(year)


async def build_data(db: Database, catalog: Catalog) -> None:
    """Contacts (one deactivated), invites, reports with two revisions, policy actuals, mutes,
    job runs, outbox rows in several states, a draft and processed updates."""
    await _init(db, catalog)
    async with db.session() as s:
        repos = Repos(s)
        vpd = await repos.people.institution("VPD")
        tm = await repos.people.institution("TM")
        codes = [
            await repos.people.create_invite(
                institution_id=inst.id,
                role=role,
                expires_in=dt.timedelta(days=14),
                display_name=name,
                now=NOW,
            )
            for inst, role, name in (
                (vpd, "contact", "Anna Bērziņa"),
                (tm, "coordinator", None),
                (vpd, "contact", None),
            )
        ]
    async with db.session() as s:
        repos = Repos(s)
        anna = await repos.people.redeem_invite(
            codes[0], telegram_user_id=5_000_000_001, display_name="A", language="lv", now=NOW
        )
        coord = await repos.people.redeem_invite(
            codes[1], telegram_user_id=42, display_name="Koordinators 🙂", language="en", now=NOW
        )
        await repos.people.record_attempt(5_000_000_001, ok=True, now=NOW)
        await repos.people.record_attempt(77, ok=False, now=NOW)
        gone = await repos.people.add_contact(display_name="Bijušais", institution_id=anna.institution_id)
        gone.active = False
        measure = await repos.catalog.measure("1.1.1")
        indicators = await repos.catalog.indicators(measure.id)
        first = {i.code: ("in_progress" if i.kind == "milestone" else "5") for i in indicators}
        await repos.reports.submit(
            measure_id=measure.id, institution_id=anna.institution_id, year=2026,
            answers={**first, "comment": "Pirmā redakcija"}, contact_id=anna.id, now=NOW,
        )  # fmt: skip
        second = {i.code: ("done" if i.kind == "milestone" else "7") for i in indicators}
        await repos.reports.submit(
            measure_id=measure.id, institution_id=anna.institution_id, year=2026,
            answers={**second, "comment": "Otrā"}, contact_id=anna.id, now=NOW + dt.timedelta(days=1),
        )  # fmt: skip
        await repos.reports.submit(
            measure_id=measure.id, institution_id=anna.institution_id, year=2024,
            answers=first, contact_id=anna.id, now=NOW,
        )  # fmt: skip
        pi = (await s.exec(select(t.PolicyIndicator))).first()
        s.add(t.PolicyActual(policy_indicator_id=pi.id, year=2025, value=15.4, source="VID",
                             entered_by_contact_id=coord.id, entered_at=NOW))  # fmt: skip
        s.add(t.ReminderMute(contact_id=anna.id, measure_id=measure.id, until=dt.date(2026, 12, 31),
                             reason="Atvaļinājumā", created_at=NOW))  # fmt: skip
        s.add(t.JobRun(job="reminders", day=dt.date(2026, 11, 2), at=NOW, detail="12 planned"))
        s.add(
            t.ConversationState(
                key="bot:1:1", state="ReportFlow:asking", data={"draft": {"a": 1}}, updated_at=NOW
            )
        )
        await repos.mark_update(123456, now=NOW)
        outbox = OutboxRepo(s)
        for i, status in enumerate(("pending", "sent", "failed", "cancelled")):
            await outbox.add(
                NewMessage(f"k{i}", anna.id, 5_000_000_001, "notice", NoticePayload(f"m{i}"), NOW)
            )
            row = await outbox.by_key(f"k{i}")
            row.status, row.attempts = status, i
            if status == "sent":
                row.sent_at, row.telegram_message_id = NOW, 991
            if status == "failed":
                row.last_error = "400: Bad Request"


def _rows(data: dict) -> dict:
    return {name: block["rows"] for name, block in data["tables"].items()}


async def test_backup_restores_every_table_with_ids(
    db_url: str, fresh_url: str, catalog: Catalog, tmp_path
) -> None:
    source = Database(db_url)
    try:
        await build_data(source, catalog)
        original = await backup.dump(source, catalog=catalog)
        path = backup.write_file(original, tmp_path / "resobot-backup.json.gz")
    finally:
        await source.dispose()
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    counts = {name: len(rows) for name, rows in _rows(original).items()}
    assert counts["report_revision"] == 3 and counts["outbox"] == 4 and counts["contact"] == 3
    assert counts["invite"] == 3 and counts["policy_actual"] == 1 and counts["processed_update"] == 1
    assert original["catalog"]["plans"] and original["catalog"]["hash"] == backup.catalog_fingerprint(catalog)

    target = Database(fresh_url)
    try:
        await _init(target, catalog)  # `resobot init` ran on the new server first
        loaded = backup.read_file(path)
        result = await backup.restore(target, loaded, catalog=catalog)
        assert result.same_catalog is True
        assert result.counts["report_revision"] == 3
        again = await backup.dump(target, catalog=catalog)
        assert _rows(again) == _rows(original)
        # new rows after the restore get fresh ids (PostgreSQL sequences moved past the dump's)
        async with target.session() as s:
            repos = Repos(s)
            vpd = await repos.people.institution("VPD")
            new = await repos.people.add_contact(display_name="Jauns", institution_id=vpd.id)
            assert new.id == max(row[0] for row in _rows(original)["contact"]) + 1
    finally:
        await target.dispose()


async def test_restore_refuses_a_database_in_use(db_url: str, catalog: Catalog) -> None:
    db = Database(db_url)
    try:
        await build_data(db, catalog)
        data = await backup.dump(db, catalog=catalog)
        with pytest.raises(backup.BackupError, match="not empty") as refused:
            await backup.restore(db, data)
        assert "\n" not in str(refused.value)
        async with db.session() as s:  # nothing was touched
            assert len((await s.exec(select(t.Contact))).all()) == 3
    finally:
        await db.dispose()


def test_read_file_rejects_other_files(tmp_path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(backup.BackupError, match="not a resobot backup"):
        backup.read_file(bad)
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(backup.BackupError):
        backup.read_file(bad)


def test_cli_backup_restore_purge(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("COMPILED_DIR", str(tmp_path / "compiled"))

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    run("init")
    run("indicator", "set", "PR1.RR2", "2025", "15.4", "--source", "VID")
    run("invite", "--institution", "VPD", "--role", "contact", "--name", "Anna Bērziņa")
    written = run("backup", "dump.json.gz")
    assert "Backup written: dump.json.gz" in written and "1 invites" in written
    before = run("indicator", "list")

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    restored = run("restore", "dump.json.gz")
    assert "Restored from dump.json.gz" in restored and "another plan catalog" not in restored
    assert run("indicator", "list") == before
    refused = run("restore", "dump.json.gz", code=1)
    assert "Restore refused: the database is not empty" in refused and len(refused.strip().splitlines()) <= 2
    (tmp_path / "junk.json").write_text("[]")
    assert "not a resobot backup" in run("restore", "junk.json", code=1)
    purged = run("purge", "--days", "30")
    assert "0 processed updates" in purged and "0 deactivated contacts anonymised" in purged
