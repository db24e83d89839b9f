"""``resobot purge``: each retention category deletes exactly what is older than N days, and a
deactivated contact's personal data is erased while their reports keep the author id."""

from __future__ import annotations

import datetime as dt
import os

from sqlmodel import select

from reporting_forms.catalog import Catalog
from reporting_forms.payloads import DocumentPayload, NoticePayload
from storage import tables as t
from storage.db import Database
from storage.outbox import NewMessage, OutboxRepo
from storage.repositories import Repos
from storage.retention import ANONYMOUS, purge

NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=100)
RECENT = NOW - dt.timedelta(days=10)


async def test_purge_deletes_old_rows_of_each_category(db: Database) -> None:
    async with db.session() as s:
        repos = Repos(s)
        await repos.mark_update(1, now=OLD)
        await repos.mark_update(2, now=RECENT)
        await repos.people.record_attempt(77, ok=False, now=OLD)
        await repos.people.record_attempt(77, ok=True, now=RECENT)
        outbox = OutboxRepo(s)
        for key, status, at in (
            ("sent-old", "sent", OLD),
            ("sent-new", "sent", RECENT),
            ("cancelled-old", "cancelled", OLD),
            ("failed-old", "failed", OLD),
            ("blocked-old", "blocked", OLD),
            ("pending-old", "pending", OLD),
        ):
            await outbox.add(NewMessage(key, None, 5, "notice", NoticePayload(key), at))
            row = await outbox.by_key(key)
            row.status = status
            if status == "sent":
                row.sent_at = at
    result = await purge(db, days=90, now=NOW)
    assert (result.processed_updates, result.registration_attempts, result.outbox_rows) == (1, 1, 2)
    async with db.session() as s:
        assert set((await s.exec(select(t.ProcessedUpdate.update_id))).all()) == {2}
        assert [a.ok for a in (await s.exec(select(t.RegistrationAttempt))).all()] == [True]
        keys = set((await s.exec(select(t.Outbox.dedup_key))).all())
    assert keys == {"sent-new", "failed-old", "blocked-old", "pending-old"}
    again = await purge(db, days=90, now=NOW)
    assert sum(again.counts().values()) == 0


async def test_purge_anonymises_long_deactivated_contacts(db: Database, catalog: Catalog) -> None:
    async with db.session() as s:
        repos = Repos(s)
        await repos.catalog.sync(catalog)
        vpd = await repos.people.institution("VPD")
        code = await repos.people.create_invite(
            institution_id=vpd.id,
            role="contact",
            expires_in=dt.timedelta(days=3),
            display_name="Anna",
            now=OLD,
        )
    async with db.session() as s:
        repos = Repos(s)
        anna = await repos.people.redeem_invite(
            code, telegram_user_id=555, display_name="A", language="lv", now=OLD
        )
        still = await repos.people.add_contact(
            display_name="Jānis", institution_id=vpd.id, telegram_user_id=556
        )
        lately = await repos.people.add_contact(
            display_name="Ilze", institution_id=vpd.id, telegram_user_id=557
        )
        measure = await repos.catalog.measure("1.1.1")
        indicators = await repos.catalog.indicators(measure.id)
        report = await repos.reports.submit(
            measure_id=measure.id, institution_id=vpd.id, year=2026, contact_id=anna.id, now=OLD,
            answers={i.code: ("done" if i.kind == "milestone" else "3") for i in indicators},
        )  # fmt: skip
        anna.active, anna.deactivated_at = False, OLD
        lately.active, lately.deactivated_at = False, RECENT
        s.add(t.ConversationState(key="fsm:1:555:555:default", state="x", data={}))
        s.add(t.ConversationState(key="fsm:1:556:556:default", state="x", data={}))
        ids = (anna.id, still.id, lately.id, report.id)
    result = await purge(db, days=90, now=NOW)
    assert result.contacts_anonymised == 1
    async with db.session() as s:
        anna, still, lately = [await s.get(t.Contact, i) for i in ids[:3]]
        assert (anna.display_name, anna.telegram_user_id) == (ANONYMOUS, None)
        assert (still.display_name, still.telegram_user_id) == ("Jānis", 556)
        assert (lately.display_name, lately.telegram_user_id) == ("Ilze", 557)
        invite = (await s.exec(select(t.Invite))).one()
        assert invite.display_name is None and invite.used_by_contact_id == anna.id
        report = await s.get(t.Report, ids[3])
        assert report.created_by_contact_id == anna.id
        revision = (await s.exec(select(t.ReportRevision))).one()
        assert revision.submitted_by_contact_id == anna.id
        states = set((await s.exec(select(t.ConversationState.key))).all())
    assert states == {"fsm:1:556:556:default"}
    assert (await purge(db, days=90, now=NOW)).contacts_anonymised == 0


async def test_purge_removes_old_compiled_files_not_waiting_in_the_outbox(db: Database, tmp_path) -> None:
    root = tmp_path / "compiled"
    old_run, new_run, waiting_run = (
        root / "20260801T080000",
        root / "20261120T080000",
        root / "20260802T080000",
    )
    files = {
        "old": old_run / "lv" / "a.xlsx",
        "new": new_run / "lv" / "b.xlsx",
        "waiting": waiting_run / "lv" / "c.xlsx",
    }
    for name, path in files.items():
        path.parent.mkdir(parents=True)
        path.write_bytes(b"x")
        when = (RECENT if name == "new" else OLD).timestamp()
        os.utime(path, (when, when))
    async with db.session() as s:
        await OutboxRepo(s).add(
            NewMessage("doc", None, 5, "document", DocumentPayload(str(files["waiting"]), "c.xlsx"), NOW)
        )
    result = await purge(db, days=90, now=NOW, compiled_dir=root)
    assert result.compiled_files == 1 and result.removed_files == [files["old"]]
    assert not old_run.exists()  # the emptied run folder goes too
    assert files["new"].exists() and files["waiting"].exists()
