"""The outbox repository and the reminder reads, on SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError

from reporting_forms.catalog import Catalog
from reporting_forms.payloads import DigestPayload, OutboxPayload, ReminderPayload
from reporting_forms.reminder_policy import MeasureDue
from storage.db import Database
from storage.outbox import (
    KIND_DIGEST,
    KIND_REMINDER,
    KIND_SNOOZE,
    NewMessage,
    OutboxRepo,
    ReminderRepo,
    missing_from_reported,
)
from storage.repositories import Repos
from storage.tables import Contact, Outbox, OutboxStatus
from tests.chat_harness import prepare_database

UTC = dt.UTC
T0 = dt.datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # 09:00 in Riga
S = OutboxStatus


def payload(*measures: str) -> dict:
    return {
        "institution": "VPD",
        "language": "lv",
        "send_date": "2026-12-01",
        "kinds": ["request"],
        "tasks": [
            {
                "task_id": "1.1",
                "task_title": "Task",
                "items": [
                    {
                        "measure_id": m,
                        "measure_name": f"Measure {m}",
                        "kind": "request",
                        "deadline": "2026-12-31",
                        "period_year": 2026,
                        "missing": [f"{m}.1"],
                        "offset_days": None,
                    }
                    for m in measures
                ],
            }
        ],
    }


def msg(
    key: str, contact_id: int, chat_id: int = 1001, at: dt.datetime = T0, kind: str = KIND_REMINDER
) -> NewMessage:
    content: OutboxPayload = ReminderPayload.from_json(payload("1.1.1", "1.1.2"))
    if kind == KIND_DIGEST:
        content = DigestPayload(at.date())
    return NewMessage(key, contact_id, chat_id, kind, content, at)


@pytest.fixture
async def db(db_url: str, catalog: Catalog):
    await prepare_database(db_url, catalog)
    database = Database(db_url)
    yield database
    await database.dispose()


async def add_contact(
    db: Database, name: str, inst: str = "VPD", tg: int = 1001, role: str = "contact"
) -> int:
    async with db.session() as s:
        repos = Repos(s)
        institution = await repos.people.institution(inst)
        contact = await repos.people.add_contact(
            display_name=name, institution_id=institution.id, role=role, telegram_user_id=tg
        )
        return contact.id


async def status(db: Database, row_id: int) -> Outbox:
    async with db.session() as s:
        row = await s.get(Outbox, row_id)
        assert row is not None
        return row


async def test_enqueue_is_idempotent_by_key(db: Database) -> None:
    anna = await add_contact(db, "Anna")
    async with db.session() as s:
        repo = OutboxRepo(s)
        assert await repo.add_many([msg("k1", anna), msg("k2", anna), msg("k1", anna)]) == 2
    async with db.session() as s:
        repo = OutboxRepo(s)
        assert await repo.add_many([msg("k1", anna), msg("k3", anna)]) == 1
        assert await repo.existing_keys(["k1", "k2", "k3", "nope"]) == {"k1", "k2", "k3"}
        assert (await repo.counts()) == {S.PENDING: 3}


async def test_a_racing_duplicate_key_fails_on_the_unique_index(db: Database) -> None:
    anna = await add_contact(db, "Anna")
    async with db.session() as s:
        await OutboxRepo(s).add(msg("same", anna))
    with pytest.raises(IntegrityError):
        async with db.session() as s:
            s.add(
                Outbox(dedup_key="same", contact_id=anna, chat_id=1, kind="reminder", payload={}, send_at=T0)
            )
            await s.flush()


async def test_claim_send_mark(db: Database) -> None:
    anna = await add_contact(db, "Anna")
    async with db.session() as s:
        await OutboxRepo(s).add(msg("k", anna))
        row_id = (await OutboxRepo(s).by_key("k")).id
    async with db.session() as s:
        repo = OutboxRepo(s)
        assert await repo.claim(row_id)
        assert not await repo.claim(row_id), "a row is claimed once"
    async with db.session() as s:
        assert await OutboxRepo(s).mark_sent(row_id, 77, T0 + dt.timedelta(seconds=1))
        assert not await OutboxRepo(s).mark_sent(row_id, 78, T0), "only a row in flight can become sent"
    row = await status(db, row_id)
    assert (row.status, row.telegram_message_id, row.attempts) == (S.SENT, 77, 1)


async def test_due_respects_send_at_retry_time_and_until(db: Database) -> None:
    anna = await add_contact(db, "Anna")
    async with db.session() as s:
        repo = OutboxRepo(s)
        await repo.add_many(
            [msg("now", anna), msg("later", anna, at=T0 + dt.timedelta(hours=2)), msg("retry", anna)]
        )
        retry = await repo.by_key("retry")
        await repo.claim(retry.id)
        await repo.retry_later(retry.id, T0 + dt.timedelta(minutes=5), "502")
    async with db.session() as s:
        repo = OutboxRepo(s)
        assert [r.dedup_key for r in await repo.due(T0)] == ["now"]
        assert [r.dedup_key for r in await repo.due(T0 + dt.timedelta(minutes=5))] == ["now", "retry"]
        until = T0 + dt.timedelta(hours=3)
        assert {r.dedup_key for r in await repo.due(T0, until=until)} == {"now", "later"}
        assert await repo.next_due_at() == T0
        row = (await repo.due(T0))[0]
        assert row.language == "lv" and row.contact_active and not row.contact_blocked
        assert row.send_at == T0 and row.payload["tasks"][0]["items"][0]["measure_id"] == "1.1.1"


async def test_retry_after_429_does_not_use_an_attempt(db: Database) -> None:
    anna = await add_contact(db, "Anna")
    async with db.session() as s:
        await OutboxRepo(s).add(msg("k", anna))
        row_id = (await OutboxRepo(s).by_key("k")).id
    for count in (False, True):
        async with db.session() as s:
            repo = OutboxRepo(s)
            assert await repo.claim(row_id)
            await repo.retry_later(row_id, T0, "x", count_attempt=count)
    row = await status(db, row_id)
    assert (row.status, row.attempts, row.last_error) == (S.PENDING, 1, "x")


async def test_blocked_closes_every_unsent_row_of_the_contact(db: Database) -> None:
    anna = await add_contact(db, "Anna")
    bob = await add_contact(db, "Bob", tg=1002)
    async with db.session() as s:
        repo = OutboxRepo(s)
        await repo.add_many([msg("a1", anna), msg("a2", anna), msg("b1", bob, chat_id=1002)])
        a1 = await repo.by_key("a1")
        await repo.claim(a1.id)
    async with db.session() as s:
        assert await OutboxRepo(s).mark_blocked(a1.id, anna, "403: blocked") == 2
    async with db.session() as s:
        assert (await s.get(Contact, anna)).blocked
        assert not (await s.get(Contact, bob)).blocked
        statuses = {
            r.dedup_key: r.status
            for r in await OutboxRepo(s).for_period([KIND_REMINDER], T0, T0 + dt.timedelta(1))
        }
    assert statuses == {"a1": S.BLOCKED, "a2": S.BLOCKED, "b1": S.PENDING}


async def test_recover_in_flight(db: Database) -> None:
    anna = await add_contact(db, "Anna")
    async with db.session() as s:
        repo = OutboxRepo(s)
        await repo.add_many([msg("a", anna), msg("b", anna)])
        a, b = await repo.by_key("a"), await repo.by_key("b")
        await repo.claim(a.id)
        await repo.claim(b.id)
        b.attempts = 5  # used up
    async with db.session() as s:
        assert await OutboxRepo(s).recover_in_flight(max_attempts=5) == (1, 1)
    assert (await status(db, a.id)).status == S.PENDING
    assert (await status(db, b.id)).status == S.FAILED


async def test_expire_cancel_replace_and_delete_only_touch_unsent_rows(db: Database) -> None:
    anna = await add_contact(db, "Anna")
    yesterday = T0 - dt.timedelta(days=1)
    async with db.session() as s:
        repo = OutboxRepo(s)
        await repo.add_many([msg("old", anna, at=yesterday), msg("today", anna), msg("sent", anna)])
        sent = await repo.by_key("sent")
        await repo.claim(sent.id)
        await repo.mark_sent(sent.id, 1, T0)
    async with db.session() as s:
        repo = OutboxRepo(s)
        assert await repo.expire([KIND_REMINDER], T0 - dt.timedelta(hours=7)) == 1
        today = await repo.by_key("today")
        assert await repo.replace_pending(today.id, msg("today2", anna))
        assert not await repo.replace_pending(sent.id, msg("sent2", anna))
        assert await repo.delete_unsent([today.id, sent.id]) == 1
    async with db.session() as s:
        rows = await OutboxRepo(s).for_period([KIND_REMINDER], yesterday, T0 + dt.timedelta(days=1))
        assert {r.dedup_key: r.status for r in rows} == {"old": S.CANCELLED, "sent": S.SENT}


async def test_log_and_sent_log(db: Database) -> None:
    anna = await add_contact(db, "Anna Bērziņa")
    bob = await add_contact(db, "Bob", inst="IeVP", tg=1002)
    eriks = await add_contact(db, "Ēriks", tg=1003)
    async with db.session() as s:
        repo = OutboxRepo(s)
        await repo.add_many(
            [
                msg("a", anna),
                msg("b", bob, chat_id=1002),
                msg("d", bob, chat_id=1002, kind=KIND_DIGEST),
                msg("e", eriks, chat_id=1003),
            ]
        )
        for key in ("a", "d"):
            row = await repo.by_key(key)
            await repo.claim(row.id)
            await repo.mark_sent(row.id, 5, T0 + dt.timedelta(minutes=1))
    async with db.session() as s:
        repo = OutboxRepo(s)
        assert [r.recipient for r in await repo.log("bērz")] == ["Anna Bērziņa"]
        assert [r.recipient for r in await repo.log("BĒRZ")] == ["Anna Bērziņa"]
        assert [r.recipient for r in await repo.log("ēriks")] == ["Ēriks"], "Latvian capitals fold"
        assert await repo.log("nobody") == []
        rows = await repo.log(str(bob))
        assert {r.kind for r in rows} == {KIND_REMINDER, KIND_DIGEST} and rows[0].institution == "IeVP"
        assert [r.measures for r in await repo.log("1001")] == [("1.1.1", "1.1.2")]
        log = await repo.sent_log()
    at = T0 + dt.timedelta(minutes=1)
    assert sorted(log) == [(anna, "1.1.1", at), (anna, "1.1.2", at)]  # digests are not reminders


async def test_recipients_reported_and_mutes(db: Database, catalog: Catalog) -> None:
    anna = await add_contact(db, "Anna")
    await add_contact(db, "Coordinator", inst="TM", tg=2001, role="coordinator")
    async with db.session() as s:
        repos = Repos(s)
        measure = await repos.catalog.measure("1.1.5")
        ievp = await repos.people.institution("IeVP")
        await repos.reports.submit(
            measure_id=measure.id, institution_id=ievp.id, year=2026, answers={"1.1.5.1": 2}, contact_id=None
        )
        reminders = ReminderRepo(s)
        await reminders.add_mute(
            contact_id=anna, measure_code="1.1.1", until=dt.date(2026, 12, 15), reason="vēlāk"
        )
        with pytest.raises(LookupError):
            await reminders.add_mute(
                contact_id=anna, measure_code="9.9.9", until=dt.date(2026, 12, 15), reason="x"
            )
    async with db.session() as s:
        repo = ReminderRepo(s)
        recipients = await repo.recipients()
        assert [(r.name, r.ref.institution, r.role, r.ref.chat_id) for r in recipients] == [
            ("Anna", "VPD", "contact", 1001),
            ("Coordinator", "TM", "coordinator", 2001),
        ]
        reported = await repo.reported()
        assert reported == {("1.1.5", "IeVP", 2026): {"1.1.5.1"}}
        assert [m.measure_id for m in await repo.mutes(active_on=dt.date(2026, 12, 14))] == ["1.1.1"]
        assert await repo.mutes(active_on=dt.date(2026, 12, 15)) == []  # reminders resume on ``until``
        (mute,) = await repo.mutes()
        assert (mute.contact_name, mute.institution, mute.reason) == ("Anna", "VPD", "vēlāk")
        assert mute.as_mute().until == dt.date(2026, 12, 15)


def test_missing_from_reported() -> None:
    m = MeasureDue("1.1.5", "1.1", "T", "M", ("IeVP",), (), ("1.1.5.1", "1.1.5.2", "1.1.5.3"))
    missing = missing_from_reported([m], {("1.1.5", "IeVP", 2026): {"1.1.5.1"}, ("1.1.5", "TM", 2026): set()})
    assert missing == {
        ("1.1.5", "IeVP", 2026): ("1.1.5.2", "1.1.5.3"),
        ("1.1.5", "TM", 2026): ("1.1.5.1", "1.1.5.2", "1.1.5.3"),
    }


def test_payload_measures() -> None:
    p = ReminderPayload.from_json(payload("1.1.1", "1.1.2", "1.1.1"))
    assert p.measures == ("1.1.1", "1.1.2")
    assert ReminderPayload.from_json({"send_date": "2026-12-01"}).measures == ()
    assert KIND_SNOOZE != KIND_REMINDER
