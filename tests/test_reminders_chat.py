"""Reminders end to end: the real bot polling the fake Bot API, the planner and the sender in the
same process, scripted users pressing the reminder's buttons."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from aiogram import Bot
from sqlmodel import select

from bot.config import Settings
from bot.sender import Sender
from reporting_forms.catalog import Catalog
from reporting_forms.payloads import DigestPayload, ReminderPayload
from services.reminder_messages import ReasonError, add_months, mute_until, parse_reason
from services.reminder_planner import ReminderPlanner
from storage.outbox import KIND_DIGEST, KIND_SNOOZE, OutboxRepo
from storage.repositories import Repos
from storage.tables import Contact, ReminderMute
from tests.chat_harness import Harness, prepare_database, running_bot
from tests.fakebotapi import FakeBotAPI, FakeUser

RIGA = ZoneInfo("Europe/Riga")
D = dt.date.fromisoformat


def riga(day: str, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(D(day), dt.time(hour, minute), tzinfo=RIGA)


@dataclass
class World:
    harness: Harness
    planner: ReminderPlanner
    sender: Sender
    server: FakeBotAPI
    clock: time_machine.Traveller

    async def remind(self, day: str) -> None:
        """What the 08:55 jobs and the sender do on ``day`` (the clock moves to 09:00 that day)."""
        self.clock.move_to(riga(day))
        await self.planner.plan_reminders(D(day))
        await self.planner.plan_digest(D(day))
        await self.sender.drain_once()


@pytest.fixture
def clock():
    with time_machine.travel(riga("2026-12-01", 9, 0), tick=True) as traveller:
        yield traveller


@pytest.fixture
async def world(sqlite_url: str, catalog: Catalog, clock) -> AsyncIterator[World]:
    await prepare_database(sqlite_url, catalog)
    async with FakeBotAPI() as server, running_bot(server, sqlite_url, catalog) as harness:
        settings = Settings(
            _env_file=None,
            database_url=sqlite_url,
            telegram_bot_token=server.token,
            telegram_api_base=server.base_url,
            outbox_per_chat_rate=50.0,
            outbox_backoff_seconds=0.05,
        )
        bot: Bot = server.make_bot()
        planner = ReminderPlanner.from_catalog(harness.db, catalog, settings.reminder_policy)
        try:
            yield World(harness, planner, Sender(harness.db, bot, settings), server, clock)
        finally:
            await bot.session.close()


async def lm_contact(world: World, user_id: int = 701) -> FakeUser:
    return await world.harness.register(user_id, "LM", name="Līga")


async def test_report_now_opens_the_form_at_that_measure(world: World, clock) -> None:
    clock.move_to(riga("2026-12-23"))  # only 2.5.1 is due for LM (its deadline 31.12.2026)
    user = await lm_contact(world)
    await world.remind("2026-12-23")
    (reminder,) = await user.replies(1)
    assert "Atgādinājums: tuvojas termiņš" in reminder.text and "2.5.1" in reminder.text
    assert "pēc 8 dienām" in reminder.text and "Trūkst: 2.5.1.1" in reminder.text
    assert reminder.button_texts == ["Ziņot tagad", "Atgādināt rīt", "Apturēt atgādinājumus"]
    user.click_text("Ziņot tagad")
    (question,) = await user.replies(1)
    assert "2.5.1" in question.text and "2026. gads" in question.text and "jautājums 1 no" in question.text


async def test_a_reminder_of_several_measures_has_a_button_each(world: World) -> None:
    user = await lm_contact(world)
    await world.remind("2026-12-01")  # the yearly request: four LM measures
    (reminder,) = await user.replies(1)
    assert reminder.button_texts[:4] == [
        "Ziņot tagad: 2.5.1",
        "Ziņot tagad: 2.6.1",
        "Ziņot tagad: 4.5.1",
        "Ziņot tagad: 4.5.2",
    ]
    user.click_text("Ziņot tagad: 4.5.2")
    (question,) = await user.replies(1)
    assert "4.5.2" in question.text and "jautājums 1 no" in question.text


async def test_remind_me_tomorrow(world: World, clock) -> None:
    clock.move_to(riga("2026-12-23"))
    user = await lm_contact(world)
    await world.remind("2026-12-23")
    await user.replies(1)
    user.click_text("Atgādināt rīt")
    (ok,) = await user.replies(1)
    # 24–25 December are holidays, 26–27 a weekend: the next working day is Monday the 28th
    assert "atgādināšu vēlreiz 28.12.2026 plkst. 9.00" in ok.text
    user.click_text("Atgādināt rīt")  # the same reminder's button again: nothing new
    (again,) = await user.replies(1)
    assert "jau ir atlikts" in again.text
    async with world.harness.db.session() as s:
        (snooze,) = [r for r in await OutboxRepo(s).log() if r.kind == KIND_SNOOZE]
    assert snooze.send_at == riga("2026-12-28")
    await world.sender.drain_once()
    await user.assert_no_replies(0.2)  # not before its day

    clock.move_to(riga("2026-12-28"))
    await world.sender.drain_once()
    (snoozed,) = await user.replies(1)
    assert "Atlikts atgādinājums no 23.12.2026" in snoozed.text and "2.5.1" in snoozed.text
    assert "Ziņot tagad" in snoozed.button_texts


async def test_mute_flow_with_bad_input_and_the_digest(world: World) -> None:
    user = await lm_contact(world)
    coordinator = await world.harness.register(702, "TM", role="coordinator", name="Koordinatore")
    await world.remind("2026-12-01")
    await user.replies(1)
    (first,) = await coordinator.replies(1)  # the digest only: a coordinator is not a reporter
    assert first.text.startswith("Nokavētās atskaites")
    await coordinator.assert_no_replies()
    user.click_text("Apturēt atgādinājumus")
    (choose,) = await user.replies(1)
    assert "Par kuru pasākumu" in choose.text and choose.button_texts[:4] == [
        "2.5.1",
        "2.6.1",
        "4.5.1",
        "4.5.2",
    ]
    user.send("9.9")
    notice, again = await user.replies(2)
    assert "„9.9” nav šajā atgādinājumā" in notice.text and "Par kuru pasākumu" in again.text
    user.send("2.5.1")  # typing the number works like the button
    (period,) = await user.replies(1)
    assert period.button_texts == ["2 nedēļas", "1 mēnesi", "Līdz termiņam (31.12.2026)", "Atcelt"]
    user.send("ilgi")
    notice, again = await user.replies(2)
    assert "izvēlieties ar pogu" in notice.text and again.button_texts == period.button_texts
    user.click_text("Līdz termiņam (31.12.2026)")
    (ask,) = await user.replies(1)
    assert "apturēti līdz 31.12.2026" in ask.text and "iemeslu" in ask.text
    user.send("ok")
    notice, again = await user.replies(2)
    assert "par īsu" in notice.text and "iemeslu" in again.text
    user.send_sticker()
    notice, again = await user.replies(2)
    assert "teksta ziņu" in notice.text and "iemeslu" in again.text
    user.send("x" * 301)
    notice, _again = await user.replies(2)
    assert "par garu (301 rakstzīme)" in notice.text  # 301 takes the singular
    user.send("Dati būs  pieejami <janvārī>")
    (saved,) = await user.replies(1)
    assert "apturēti līdz 31.12.2026" in saved.text
    assert "Iemesls: Dati būs pieejami &lt;janvārī&gt;" in saved.raw_text

    async with world.harness.db.session() as s:
        (mute,) = (await s.exec(select(ReminderMute))).all()
        measure = await Repos(s).catalog.measure("2.5.1")
    assert (mute.measure_id, mute.until, mute.reason) == (
        measure.id,
        D("2026-12-31"),
        "Dati būs pieejami <janvārī>",
    )

    # the next days: LM's 2.5.1 reminders are silenced; the coordinator sees the mute in the digest
    await world.remind("2026-12-02")
    (digest,) = await coordinator.replies(1)
    assert "Nokavētās atskaites" in digest.text
    assert "Apturēti atgādinājumi" in digest.text and "Līga (LM), 2.5.1 līdz 31.12.2026" in digest.text
    assert "„Dati būs pieejami <janvārī>”" in digest.text
    # 23 December: 2.5.1's 8-day reminder is muted. The yearly reminder of 15 December, which
    # nobody planned in this test (the clock jumped), is caught up now — without 2.5.1.
    await world.remind("2026-12-23")
    (late,) = await user.replies(1)
    assert "2.6.1" in late.text and "2.5.1" not in late.text
    await user.assert_no_replies(0.2)


async def test_cancel_and_a_draft_survives_the_mute_flow(world: World, clock) -> None:
    clock.move_to(riga("2026-12-23"))
    user = await lm_contact(world)
    await world.remind("2026-12-23")
    await user.replies(1)
    user.send("/report 2.6.1")  # a report draft is open...
    await user.replies(1)
    user.click_text("Apturēt atgādinājumus", message_id=user.transcript[-2].message_id)
    (period,) = await user.replies(1)  # one measure in the reminder: straight to the period
    assert "2.5.1" in period.text
    user.send("/cancel")
    cancelled, waiting = await user.replies(2)
    assert "atcelta" in cancelled.text or "atcelta" in waiting.text
    assert any("melnraksts saglabāts" in m.text for m in (cancelled, waiting))
    user.send("/report")
    (open_draft,) = await user.replies(1)
    assert "nepabeigts" in open_draft.text and "2.6.1" in open_draft.text


async def test_blocked_user_is_flagged_and_unflagged_when_back(world: World) -> None:
    user = await lm_contact(world)
    world.server.block(user.id)
    await world.remind("2026-12-01")
    async with world.harness.db.session() as s:
        contact = (await s.exec(select(Contact).where(Contact.telegram_user_id == user.id))).one()
        assert contact.blocked
        statuses = [r.status for r in await OutboxRepo(s).log()]
    assert "blocked" in statuses
    world.server.unblock(user.id)
    user.send("/help")
    await user.replies(1)
    async with world.harness.db.session() as s:
        contact = (await s.exec(select(Contact).where(Contact.telegram_user_id == user.id))).one()
        assert not contact.blocked


async def test_coordinator_digest_lists_blocked_contacts(world: World) -> None:
    user = await lm_contact(world)
    coordinator = await world.harness.register(702, "TM", role="coordinator", name="Koordinatore")
    world.server.block(user.id)
    await world.remind("2026-12-01")
    await coordinator.replies(1)  # the digest (no reminder of its own)
    await world.remind("2026-12-02")
    (digest,) = await coordinator.replies(1)
    assert "Botu bloķējuši" in digest.text and "Līga (LM)" in digest.text
    async with world.harness.db.session() as s:
        assert {r.kind for r in await OutboxRepo(s).log(str(coordinator.id))} >= {KIND_DIGEST}


def test_mute_rules() -> None:
    today = D("2026-01-31")
    assert mute_until("2w", today, None) == D("2026-02-14")
    assert mute_until("1m", today, None) == D("2026-02-28") == add_months(today, 1)
    assert mute_until("dl", today, D("2026-04-01")) == D("2026-04-01")
    for option, deadline in (("dl", None), ("dl", today), ("3y", None)):
        with pytest.raises(ValueError):
            mute_until(option, today, deadline)
    assert parse_reason("  dati\n vēlāk ") == "dati vēlāk"
    for raw, code in (
        ("", "mute_reason_too_short"),
        ("ab", "mute_reason_too_short"),
        ("x" * 301, "mute_reason_too_long"),
    ):
        with pytest.raises(ReasonError) as info:
            parse_reason(raw)
        assert info.value.code == code


# ---------------------------------------------------------------- rendering limits (pure)


def _big_digest(institutions: int, measures: int) -> Any:
    from reporting_forms.reminder_policy import EscalationDigest, OverdueEntry, OverdueSource, Reminded

    entries = tuple(
        OverdueEntry(
            institution=f"INST{i}",
            task_id="1.1",
            task_title="T",
            measure_id=f"{i}.{m // 10}.{m % 10}",
            measure_name="M",
            source=OverdueSource.YEARLY_REPORT if m % 3 else OverdueSource.INDICATOR_DEADLINE,
            deadline=D("2026-12-31") if m % 3 else D("2026-06-01") + dt.timedelta(days=m),
            period_year=2026,
            days_overdue=14,
            missing=("x",),
            reminded=(Reminded(i * 10, riga("2026-12-15")),),
            reachable_contacts=(i * 10,),
            blocked_contacts=(),
        )
        for i in range(institutions)
        for m in range(measures)
    )
    return EscalationDigest(day=D("2027-01-14"), entries=entries, blocked_contacts=())


def test_a_long_digest_is_split_into_messages_that_fit() -> None:
    from reporting_forms.messages import MESSAGE_LIMIT, message_length
    from services.reminder_messages import digest_payloads, digest_text
    from storage.outbox import MuteView

    digest = _big_digest(institutions=6, measures=120)
    mutes = [
        MuteView(
            n, n, f"Kontakts {n}", "VPD", f"1.{n}.1", D("2027-02-01"), "iemesls " * 30, riga("2027-01-02")
        )
        for n in range(40)
    ]
    for lang in ("lv", "en"):
        parts = digest_payloads(digest, mutes, {i * 10: f"K{i}" for i in range(6)}, lang, RIGA)
        assert len(parts) > 2 and [p.part for p in parts] == list(range(1, len(parts) + 1))
        texts = [digest_text(p, lang) for p in parts]
        assert all(message_length(t) <= MESSAGE_LIMIT for t in texts), [message_length(t) for t in texts]
        assert sum(len(p.mutes) for p in parts) == 40
        shown = {i.abbr for p in parts for i in p.institutions}
        assert shown == {f"INST{i}" for i in range(6)}
        # what is stored is what is rendered: each part survives its JSON unchanged
        assert [DigestPayload.from_json(p.to_json()) for p in parts] == parts
        assert [digest_text(DigestPayload.from_json(p.to_json()), lang) for p in parts] == texts
    small = digest_payloads(_big_digest(2, 3), mutes[:2], {}, "lv", RIGA)
    assert len(small) == 1 and small[0].mutes and small[0].parts == 1


def test_a_reminder_of_many_measures_fits_one_message() -> None:
    from bot.keyboards import reminder_keyboard
    from reporting_forms.messages import MESSAGE_LIMIT, message_length
    from services.reminder_messages import reminder_text

    items = [
        {
            "measure_id": f"{n // 10 + 1}.{n % 10 + 1}.1",
            "measure_name": "Ļoti garš pasākuma nosaukums " * 5,
            "kind": "request",
            "deadline": "2026-12-31",
            "period_year": 2026,
            "missing": [f"x.{k}" for k in range(12)],
            "offset_days": None,
        }
        for n in range(150)
    ]
    payload = ReminderPayload.from_json(
        {
            "institution": "TM",
            "send_date": "2026-12-01",
            "kinds": ["request"],
            "tasks": [{"task_id": "1.1", "task_title": "Uzdevums " * 40, "items": items}],
        }
    )
    body = reminder_text(payload, "lv")
    assert message_length(body) <= MESSAGE_LIMIT and "un vēl" in body and "/report" in body
    rows = reminder_keyboard(7, payload, "lv").inline_keyboard
    labels = [b.text for row in rows for b in row]
    assert labels[-3:] == ["Citi pasākumi…", "Atgādināt rīt", "Apturēt atgādinājumus"]
    assert len(labels) == 6 + 3
    assert all(len(b.callback_data.encode()) <= 64 for row in rows for b in row)


def test_the_digest_says_who_was_reminded_when_with_the_year() -> None:
    from services.reminder_messages import digest_payloads, digest_text

    digest = _big_digest(institutions=1, measures=2)
    (part,) = digest_payloads(digest, [], {0: "Līga"}, "lv", RIGA)
    assert "Atgādināts: Līga (15.12.2026)" in digest_text(part, "lv")
    (part_en,) = digest_payloads(digest, [], {0: "Līga"}, "en", RIGA)
    assert "Reminded: Līga (15.12.2026)" in digest_text(part_en, "en")
