"""Planning and scheduling: the planner against storage (SQLite and PostgreSQL), the APScheduler
jobs in the database, and 2026 + January 2027 simulated day by day with time-machine."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
import time_machine
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import create_engine, text

import bot.scheduler as scheduler_module
from bot.config import Settings
from bot.offline import RecordingSession
from bot.scheduler import (
    JOB_COMPILE,
    JOB_DIGEST,
    JOB_DRAIN,
    JOB_PLAN,
    ReminderRuntime,
    build_scheduler,
    install_jobs,
    jobstore_engine,
    sync_database_url,
)
from bot.services_container import Services
from reporting_forms.catalog import Catalog
from reporting_forms.payloads import ReminderPayload
from reporting_forms.reminder_policy import (
    MeasureDue,
    Mute,
    ReminderKind,
    due_items,
    load_policy,
    measures_due,
    plan_messages,
)
from reporting_forms.workdays import is_working_day
from services.reminder_planner import ReminderPlanner
from storage.db import Database
from storage.jobs import JobRunRepo
from storage.outbox import KIND_DIGEST, KIND_REMINDER, KIND_SNOOZE, NewMessage, OutboxRepo, ReminderRepo
from storage.repositories import Repos
from storage.tables import OutboxStatus
from tests.chat_harness import prepare_database

RIGA = ZoneInfo("Europe/Riga")
D = dt.date.fromisoformat
S = OutboxStatus
POLICY = load_policy()


def riga(day: dt.date, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=RIGA)


async def add_contact(db: Database, name: str, inst: str, tg: int, role: str = "contact") -> int:
    async with db.session() as s:
        repos = Repos(s)
        institution = await repos.people.institution(inst)
        c = await repos.people.add_contact(
            display_name=name, institution_id=institution.id, role=role, telegram_user_id=tg
        )
        return c.id


async def submit(db: Database, measure: str, inst: str, year: int, answers: dict) -> None:
    async with db.session() as s:
        repos = Repos(s)
        m = await repos.catalog.measure(measure)
        i = await repos.people.institution(inst)
        await repos.reports.submit(
            measure_id=m.id, institution_id=i.id, year=year, answers=answers, contact_id=None
        )


async def outbox(db: Database, *kinds: str) -> list:
    async with db.session() as s:
        return await OutboxRepo(s).for_period(
            kinds or (KIND_REMINDER, KIND_SNOOZE, KIND_DIGEST), riga(D("2024-01-01")), riga(D("2029-01-01"))
        )


@pytest.fixture
async def db(db_url: str, catalog: Catalog) -> AsyncIterator[Database]:
    await prepare_database(db_url, catalog)
    database = Database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
def planner(db: Database, catalog: Catalog) -> ReminderPlanner:
    return ReminderPlanner.from_catalog(db, catalog, POLICY)


# ---------------------------------------------------------------- the planner on storage


async def test_planning_is_idempotent_and_follows_reported_values(
    db: Database, planner: ReminderPlanner
) -> None:
    anna = await add_contact(db, "Anna", "LM", 3001)
    day = D("2026-12-01")  # request for 2026 + the 30-day reminder of 2.5.1 (deadline 31.12.2026)
    first = await planner.plan_reminders(day)
    assert (first.messages, first.added) == (1, 1)
    again = await planner.plan_reminders(day)
    assert (again.added, again.unchanged, again.refreshed) == (0, 1, 0)
    (row,) = await outbox(db)
    assert row.contact_id == anna and row.send_at.replace(tzinfo=dt.UTC) == riga(day)
    assert set(row.payload["kinds"]) == {"request", "deadline"}

    await submit(db, "2.6.1", "LM", 2026, {"2.6.1.1": "done"})  # one measure reported before 09:00
    refreshed = await planner.plan_reminders(day)
    assert refreshed.refreshed == 1
    (row,) = await outbox(db)
    assert "2.6.1" not in ReminderPayload.from_json(row.payload).measures and row.status == S.PENDING

    async with db.session() as s:  # once it went out, a later change does not send a second one
        repo = OutboxRepo(s)
        await repo.claim(row.id)
        await repo.mark_sent(row.id, 1, riga(day))
    await submit(db, "4.5.1", "LM", 2026, {"4.5.1.1": 3})
    late = await planner.plan_reminders(day)
    assert (late.added, late.refreshed, late.unchanged) == (0, 0, 1)
    assert len(await outbox(db)) == 1


async def test_a_row_is_dropped_when_everything_was_reported(db: Database, planner: ReminderPlanner) -> None:
    await add_contact(db, "Anna", "LM", 3001)
    day = D("2026-12-23")  # only 2.5.1's 7/8-day deadline reminder
    assert (await planner.plan_reminders(day)).added == 1
    await submit(db, "2.5.1", "LM", 2026, {"2.5.1.1": "done", "2.5.1.2": 1})
    result = await planner.plan_reminders(day)
    assert (result.messages, result.cancelled) == (0, 1)
    assert await outbox(db) == []


async def test_mutes_and_blocked_contacts_are_respected(db: Database, planner: ReminderPlanner) -> None:
    anna = await add_contact(db, "Anna", "LM", 3001)
    await add_contact(db, "Blocked", "LM", 3002)
    async with db.session() as s:
        await ReminderRepo(s).add_mute(
            contact_id=anna, measure_code="2.5.1", until=D("2026-12-24"), reason="x"
        )
        for c in await Repos(s).people.contacts():
            c.blocked = c.display_name == "Blocked"
    assert (await planner.plan_reminders(D("2026-12-23"))).messages == 0  # 2.5.1 only, muted
    assert (await planner.plan_reminders(D("2026-12-30"))).messages == 1  # the mute ended on the 24th


async def mark_sent(db: Database, row_id: int) -> None:
    async with db.session() as s:
        repo = OutboxRepo(s)
        assert await repo.claim(row_id)
        assert await repo.mark_sent(row_id, 1, riga(D("2026-12-01")))


async def test_a_snooze_is_folded_into_the_days_message_minus_what_was_reported(
    db: Database, planner: ReminderPlanner
) -> None:
    anna = await add_contact(db, "Anna", "LM", 3001)
    await planner.plan_reminders(D("2026-12-01"))
    (row,) = await outbox(db)
    await mark_sent(db, row.id)
    snooze = ReminderPayload.from_json(row.payload).snoozed(D("2026-12-02"), row.id)
    assert snooze.snoozed_from == D("2026-12-01")
    async with db.session() as s:
        await OutboxRepo(s).add(NewMessage("snooze", anna, 3001, KIND_SNOOZE, snooze, riga(D("2026-12-02"))))
    await submit(db, "2.6.1", "LM", 2026, {"2.6.1.1": "done"})
    result = await planner.plan_reminders(D("2026-12-02"))
    assert (result.messages, result.added) == (1, 1)
    rows = [r for r in await outbox(db) if r.send_at.replace(tzinfo=dt.UTC) >= riga(D("2026-12-02"), 0)]
    by_kind = {r.kind: r for r in rows}
    assert by_kind[KIND_SNOOZE].status == S.CANCELLED and "carried" in by_kind[KIND_SNOOZE].last_error
    assert by_kind[KIND_REMINDER].status == S.PENDING
    listed = str(by_kind[KIND_REMINDER].payload["tasks"])
    assert "2.6.1" not in listed and "2.5.1" in listed
    again = await planner.plan_reminders(D("2026-12-02"))  # a re-plan keeps the folded lines
    assert (again.added, again.unchanged) == (0, 1)
    (still,) = [r for r in await outbox(db) if r.status == S.PENDING]
    assert "2.5.1" in str(still.payload["tasks"])


async def test_a_snooze_on_a_reminder_day_gives_one_message_not_two(
    db: Database, planner: ReminderPlanner
) -> None:
    anna = await add_contact(db, "Anna", "LM", 3001)
    await planner.plan_reminders(D("2026-12-14"))
    snooze_day = D("2026-12-15")  # the yearly reminder day: LM gets a reminder anyway
    payload = {
        "institution": "LM",
        "language": "lv",
        "send_date": "2026-12-15",
        "snoozed_from": "2026-12-14",
        "kinds": ["deadline"],
        "tasks": [
            {
                "task_id": "2.5",
                "task_title": "t",
                "items": [
                    {
                        "measure_id": "2.5.1",
                        "measure_name": "m",
                        "kind": "deadline",
                        "deadline": "2026-12-31",
                        "period_year": 2026,
                        "missing": ["2.5.1.1"],
                        "offset_days": 30,
                    }
                ],
            }
        ],
    }
    async with db.session() as s:
        await OutboxRepo(s).add(
            NewMessage(
                "snooze", anna, 3001, KIND_SNOOZE, ReminderPayload.from_json(payload), riga(snooze_day)
            )
        )
    await planner.plan_reminders(snooze_day)
    day_rows = [
        r
        for r in await outbox(db)
        if r.send_at.replace(tzinfo=dt.UTC) >= riga(snooze_day, 0) and r.status == S.PENDING
    ]
    assert [r.kind for r in day_rows] == [KIND_REMINDER], "one message for the contact that day"
    items = [i for g in day_rows[0].payload["tasks"] for i in g["items"]]
    assert {i["kind"] for i in items} == {"reminder", "deadline"}
    assert sum(1 for i in items if i["measure_id"] == "2.5.1" and i["kind"] == "deadline") == 1


async def test_days_the_bot_missed_are_caught_up_once(db: Database, planner: ReminderPlanner) -> None:
    await add_contact(db, "Anna", "LM", 3001)
    await planner.plan_reminders(D("2026-12-01"))
    (first,) = await outbox(db)
    await mark_sent(db, first.id)
    # the bot is down from 2 to 15 December: the yearly reminder of the 15th was never planned
    result = await planner.plan_reminders(D("2026-12-16"))
    assert (result.messages, result.added) == (1, 1)
    late = (await outbox(db))[-1]
    assert late.send_at.replace(tzinfo=dt.UTC) == riga(D("2026-12-16"))
    assert "reminder" in late.payload["kinds"]
    assert (await planner.plan_reminders(D("2026-12-16"))).added == 0
    await mark_sent(db, late.id)
    await planner.plan_reminders(D("2026-12-17"))  # 2.5.1's 14-day reminder only
    (next_day,) = [r for r in await outbox(db) if r.status == S.PENDING]
    assert next_day.payload["kinds"] == ["deadline"], "the 15th was caught up once, not again"


async def test_a_fresh_install_does_not_replay_the_past(db: Database, planner: ReminderPlanner) -> None:
    await add_contact(db, "Anna", "LM", 3001)
    assert (await planner.plan_reminders(D("2026-12-16"))).messages == 0  # 15th is history here


async def test_an_unsent_reminder_of_a_past_day_is_folded_into_the_next(
    db: Database, planner: ReminderPlanner
) -> None:
    await add_contact(db, "Anna", "LM", 3001)
    await planner.plan_reminders(D("2026-12-15"))
    (stuck,) = await outbox(db)  # never delivered (network down all day, say)
    result = await planner.plan_reminders(D("2026-12-16"))
    assert result.messages == 1
    rows = {r.id: r for r in await outbox(db)}
    assert rows[stuck.id].status == S.CANCELLED and "carried" in rows[stuck.id].last_error
    (today,) = [r for r in rows.values() if r.status == S.PENDING]
    assert today.send_at.replace(tzinfo=dt.UTC) == riga(D("2026-12-16"))
    assert "reminder" in today.payload["kinds"]


async def test_digest_once_per_working_day_for_coordinators(db: Database, planner: ReminderPlanner) -> None:
    coordinator = await add_contact(db, "Koordinatore", "TM", 4001, role="coordinator")
    await add_contact(db, "Admin (en)", "TM", 4002, role="admin")
    async with db.session() as s:
        (await Repos(s).people.contact(coordinator)).language = "lv"
        for c in await Repos(s).people.contacts():
            if c.role == "admin":
                c.language = "en"
    assert (await planner.plan_digest(D("2026-12-26"))).messages == 0  # Saturday
    first = await planner.plan_digest(D("2027-01-15"))
    assert first.added == first.messages >= 2
    assert (await planner.plan_digest(D("2027-01-15"))).added == 0
    rows = await outbox(db, KIND_DIGEST)
    by_contact = Counter(r.contact_id for r in rows)
    assert set(by_contact) == {coordinator, coordinator + 1}
    for r in rows:
        assert r.payload["parts"] == by_contact[r.contact_id]
        assert r.payload["language"] == ("lv" if r.contact_id == coordinator else "en")


async def test_preview_lists_messages_and_digests(db: Database, planner: ReminderPlanner) -> None:
    await add_contact(db, "Anna", "LM", 3001)
    await add_contact(db, "Koordinatore", "TM", 4001, role="coordinator")
    rows = await planner.preview(D("2026-12-20"), D("2026-12-31"))
    reminders = [r for r in rows if r.kind == KIND_REMINDER and r.institution == "LM"]
    assert [r.send_at.date() for r in reminders] == [D("2026-12-23"), D("2026-12-29"), D("2026-12-30")]
    digests = {r.send_at.date() for r in rows if r.kind == KIND_DIGEST}
    assert digests == {d for d in (D("2026-12-20") + dt.timedelta(n) for n in range(12)) if is_working_day(d)}
    assert rows[0].as_json()["send_at"].endswith("+02:00")
    assert await outbox(db) == [], "a preview writes nothing"


# ---------------------------------------------------------------- APScheduler in the database


def test_sync_database_url() -> None:
    assert sync_database_url("sqlite+aiosqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert (
        sync_database_url("postgresql+asyncpg://u:p%40ss@db:5432/resobot")
        == "postgresql+psycopg://u:p%40ss@db:5432/resobot"
    )
    assert (
        sync_database_url("postgresql+asyncpg://db/r?ssl=require")
        == "postgresql+psycopg://db/r?sslmode=require"
    )
    with pytest.raises(ValueError):
        sync_database_url("mysql+aiomysql://x/y")


def _jobs_in_table(url: str) -> dict[str, float]:
    engine = create_engine(sync_database_url(url))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, next_run_time FROM apscheduler_jobs")).all()
    engine.dispose()
    return dict(rows)


async def test_jobs_live_in_the_database_with_stable_ids(db_url: str) -> None:
    settings = Settings(_env_file=None, database_url=db_url)
    with time_machine.travel(riga(D("2026-12-01"), 7, 0), tick=True):
        for _ in range(3):  # three start-ups: still one copy of each job
            engine = jobstore_engine(db_url)
            scheduler = build_scheduler(settings, engine)
            scheduler.start(paused=True)
            install_jobs(scheduler, settings)
            jobs = {j.id: j for j in scheduler.get_jobs()}
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0.05)
            engine.dispose()
    assert set(_jobs_in_table(db_url)) == {JOB_PLAN, JOB_DIGEST, JOB_DRAIN, JOB_COMPILE}
    plan, digest = jobs[JOB_PLAN], jobs[JOB_DIGEST]
    assert jobs[JOB_COMPILE].next_run_time == riga(D("2026-12-01"), 8, 0)
    assert plan.coalesce and plan.misfire_grace_time == settings.scheduler_misfire_grace_seconds
    assert plan.next_run_time == riga(D("2026-12-01"), 8, 55)
    assert digest.next_run_time == riga(D("2026-12-01"), 8, 56)
    assert str(plan.trigger.timezone) == "Europe/Riga"

    quiet = Settings(_env_file=None, database_url=db_url, reminders_enabled=False, compile_enabled=False)
    engine = jobstore_engine(db_url)
    scheduler = build_scheduler(quiet, engine)
    scheduler.start(paused=True)
    install_jobs(scheduler, quiet)
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0.05)
    engine.dispose()
    assert set(_jobs_in_table(db_url)) == {JOB_DRAIN}


class _CountingRuntime:
    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()

    async def plan_reminders(self) -> None:
        self.runs["plan"] += 1

    async def plan_digest(self) -> None:
        self.runs["digest"] += 1

    def ensure_sender(self) -> None:
        self.runs["drain"] += 1


@pytest.mark.parametrize(
    ("down_until", "plan_runs", "why"),
    [
        (riga(D("2026-12-01"), 8, 0), 0, "restarted before 08:55: nothing missed yet"),
        (riga(D("2026-12-01"), 11, 0), 1, "08:55 missed by two hours: run once, late"),
        (riga(D("2026-12-04"), 10, 0), 1, "three 08:55s missed: coalesced into one run"),
        (
            riga(D("2026-12-01"), 23, 0),
            0,
            "missed by more than the grace time: skipped (start-up planning covers it)",
        ),
    ],
)
async def test_downtime_neither_loses_nor_multiplies_runs(
    sqlite_url: str, down_until: dt.datetime, plan_runs: int, why: str
) -> None:
    settings = Settings(_env_file=None, database_url=sqlite_url)
    with time_machine.travel(riga(D("2026-12-01"), 7, 0), tick=True):
        engine = jobstore_engine(sqlite_url)
        scheduler = build_scheduler(settings, engine)
        scheduler.start(paused=True)
        install_jobs(scheduler, settings)
        scheduler.shutdown(wait=False)  # the bot goes down
        await asyncio.sleep(0.05)
        engine.dispose()
    counting = _CountingRuntime()
    scheduler_module._current = counting  # type: ignore[assignment]
    try:
        with time_machine.travel(down_until, tick=True):
            engine = jobstore_engine(sqlite_url)
            scheduler = build_scheduler(settings, engine)
            scheduler.start(paused=True)
            install_jobs(scheduler, settings)  # replaces the jobs, keeps their stored next_run_time
            scheduler.resume()
            await asyncio.sleep(0.3)
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0.05)
            engine.dispose()
    finally:
        scheduler_module._current = None
    assert counting.runs["plan"] == plan_runs, why
    assert counting.runs["digest"] == plan_runs, why
    # the minute job missed ~60 times: never run 60 times (at most the coalesced run + one regular)
    assert counting.runs["drain"] <= 2


# ---------------------------------------------------------------- a year in seconds

SIM_START, SIM_END = D("2026-01-01"), D("2027-01-31")
# Deadline 2 January 2027: 7 days before is Saturday 26 December 2026 → Wednesday 23 December
# (24–25 December are holidays); 1 day before is 1 January (holiday) → 30 December (31st is off).
EXTRA = MeasureDue(
    measure_id="9.9.9",
    task_id="9.9",
    task_title="Simulācijas uzdevums",
    measure_name="Simulācijas pasākums",
    institutions=("VPD",),
    indicator_deadlines=(("9.9.9.1", D("2027-01-02")),),
    indicator_ids=("9.9.9.1",),
)
NOT_WORKING = {
    D("2026-11-18"),
    D("2026-12-24"),
    D("2026-12-25"),
    D("2026-12-26"),
    D("2026-12-31"),
    D("2027-01-01"),
}


async def test_simulate_2026_and_january_2027(sqlite_url: str, catalog: Catalog) -> None:
    await prepare_database(sqlite_url, catalog)
    db = Database(sqlite_url)
    settings = Settings(
        _env_file=None,
        database_url=sqlite_url,
        telegram_bot_token="42:offline",
        outbox_global_rate=100_000.0,
        outbox_per_chat_rate=100_000.0,
    )
    vpd = await add_contact(db, "VPD kontakts", "VPD", 5001)
    lm = await add_contact(db, "LM kontakts", "LM", 5002)
    tm = await add_contact(db, "Koordinators", "TM", 5003, role="coordinator")  # the digest, no reminders
    async with db.session() as s:
        await ReminderRepo(s).add_mute(
            contact_id=vpd, measure_code="1.1.3", until=D("2026-12-20"), reason="vēlāk"
        )
    mutes = [Mute(vpd, "1.1.3", D("2026-12-20"))]
    measures = (*measures_due(catalog), EXTRA)
    session = RecordingSession()
    bot = Bot("42:offline", session=session, default=DefaultBotProperties(parse_mode="HTML"))
    runtime = ReminderRuntime(Services(db=db, catalog=catalog, settings=settings), bot)
    runtime.planner = ReminderPlanner(
        db, POLICY, measures, digest_institutions=runtime.planner.digest_institutions
    )
    scheduler_module._current = runtime
    report_day = D("2026-12-10")  # VPD reports 1.1.1 for 2026 in full: later reminders drop it
    trigger = CronTrigger(hour=8, minute=55, timezone=RIGA)  # the plan job's trigger
    runs: list[dt.datetime] = []
    fire = trigger.get_next_fire_time(None, riga(SIM_START, 0, 0))
    try:
        with time_machine.travel(fire, tick=False) as clock:
            while fire.date() <= SIM_END:
                runs.append(fire)
                clock.move_to(fire)
                if fire.date() == report_day:
                    await submit(db, "1.1.1", "VPD", 2026, {"1.1.1.1": 2, "1.1.1.2": 3})
                await scheduler_module.plan_job()
                await scheduler_module.digest_job()
                if fire.date() == D("2026-12-15"):  # a restart: start-up planning again, nothing doubles
                    await runtime.plan_reminders()
                    await runtime.plan_digest()
                clock.move_to(riga(fire.date(), 9, 0))
                await runtime.sender.drain_once()
                fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
    finally:
        scheduler_module._current = None
        await bot.session.close()

    assert len(runs) == (SIM_END - SIM_START).days + 1
    assert {r.astimezone(RIGA).time() for r in runs} == {dt.time(8, 55)}
    assert {r.utcoffset() for r in runs} == {dt.timedelta(hours=2), dt.timedelta(hours=3)}  # DST

    rows = await outbox(db)
    sent = [r for r in rows if r.status == S.SENT]
    assert len(sent) == len(rows) == len(session.of_type(__import__("aiogram").methods.SendMessage))
    reminders = defaultdict(set)
    for r in sent:
        local = r.sent_at.replace(tzinfo=dt.UTC).astimezone(RIGA)
        assert local.date() == r.send_at.replace(tzinfo=dt.UTC).astimezone(RIGA).date()
        assert is_working_day(local.date()) and local.date() not in NOT_WORKING
        if r.kind == KIND_REMINDER:
            items = {
                (i["measure_id"], i["kind"], i["deadline"]) for g in r.payload["tasks"] for i in g["items"]
            }
            assert not reminders[(r.contact_id, local.date())], "one reminder per contact per day"
            reminders[(r.contact_id, local.date())] = items

    # the same policy computed directly (pure), before and after VPD's report
    def expected(start: dt.date, end: dt.date, missing: dict) -> dict:
        from reporting_forms.reminder_policy import ContactRef

        contacts = [ContactRef(vpd, 5001, "VPD"), ContactRef(lm, 5002, "LM")]  # reporters only
        msgs = plan_messages(POLICY, due_items(POLICY, measures, start, end), contacts, mutes, missing)
        return {
            (m.contact_id, m.send_date): {
                (i.measure_id, i.kind.value, i.deadline.isoformat()) for i in m.items
            }
            for m in msgs
        }

    want = expected(SIM_START, report_day - dt.timedelta(days=1), {})
    want |= expected(report_day, SIM_END, {("1.1.1", "VPD", 2026): ()})
    assert dict(reminders) == want

    assert not any(contact == tm for contact, _day in reminders)  # the coordinator is not a reporter
    days = {day for _c, day in reminders}
    assert D("2026-12-23") in days and D("2026-12-30") in days
    assert ("9.9.9", ReminderKind.DEADLINE.value, "2027-01-02") in reminders[(vpd, D("2026-12-23"))]
    assert not any(d in NOT_WORKING for d in days)
    assert ("1.1.3", "request", "2026-12-31") not in reminders[(vpd, D("2026-12-01"))]  # muted
    assert ("1.1.3", "reminder", "2026-12-31") in reminders[(vpd, D("2026-12-29"))]  # the mute ended
    assert ("1.1.1", "request", "2026-12-31") in reminders[(vpd, D("2026-12-01"))]
    assert not any(
        m == "1.1.1" and y.startswith("2026-12-31") for m, _k, y in reminders[(vpd, D("2026-12-15"))]
    )

    digest_days = Counter(
        r.sent_at.replace(tzinfo=dt.UTC).astimezone(RIGA).date()
        for r in sent
        if r.kind == KIND_DIGEST and r.payload["part"] == 1
    )
    working = {SIM_START + dt.timedelta(n) for n in range((SIM_END - SIM_START).days + 1)}
    # 2025 is overdue until it closes on 31 March 2026 (then it is not chased); 3.4.2's row is
    # overdue from 2 April (deadline 1 April); only 1 April itself has nothing overdue
    assert set(digest_days) == {d for d in working if is_working_day(d)} - {D("2026-04-01")}
    assert set(digest_days.values()) == {1}
    await db.dispose()


async def test_runtime_plans_at_start_up_and_delivers(sqlite_url: str, catalog: Catalog, tmp_path) -> None:
    """What ``resobot run`` starts next to polling: jobs in the database, start-up planning, the
    due compilation, the sender (messages and documents)."""
    from aiogram.methods import SendDocument, SendMessage

    from bot.scheduler import running_reminders

    await prepare_database(sqlite_url, catalog)
    db = Database(sqlite_url)
    await add_contact(db, "LM kontakts", "LM", 6001)
    await add_contact(db, "Koordinators", "TM", 6002, role="coordinator")
    settings = Settings(
        _env_file=None, database_url=sqlite_url, telegram_bot_token="42:offline", compiled_dir=tmp_path
    )
    session = RecordingSession()
    bot = Bot("42:offline", session=session, default=DefaultBotProperties(parse_mode="HTML"))
    services = Services(db=db, catalog=catalog, settings=settings)
    # 1 December 2026 is the first working day of the month: 08:00 was the monthly compilation
    with time_machine.travel(riga(D("2026-12-01"), 9, 30), tick=True):
        async with running_reminders(services, bot) as runtime:
            assert scheduler_module._current is runtime
            for _ in range(200):
                if len(session.of_type(SendMessage)) >= 3 and len(session.of_type(SendDocument)) >= 3:
                    break
                await asyncio.sleep(0.05)
        assert scheduler_module._current is None
    messages = session.of_type(SendMessage)
    chats = sorted(m.chat_id for m in messages)
    # LM's reminder; the coordinator's digest and monthly summary (a coordinator is not a reporter)
    assert chats == [6001, 6002, 6002]
    assert any("Mēneša kopsavilkums" in m.text and "2026" in m.text for m in messages if m.chat_id == 6002)
    documents = session.of_type(SendDocument)
    assert {d.chat_id for d in documents} == {6002}
    names = sorted(d.document.filename for d in documents)
    assert any(n.endswith(".xlsx") for n in names) and any(n.endswith(".png") for n in names), names
    assert set(_jobs_in_table(sqlite_url)) == {JOB_PLAN, JOB_DIGEST, JOB_DRAIN, JOB_COMPILE}
    assert {r.status for r in await outbox(db)} == {S.SENT}
    async with db.session() as s:
        assert await JobRunRepo(s).done("compile.monthly", D("2026-12-01"))
    await bot.session.close()
    await db.dispose()
