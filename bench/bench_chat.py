"""Updates per second: complete report flows (drafts persisted) vs their floor, on SQLite and PostgreSQL.

Everything runs in this process through ``Dispatcher.feed_update`` with a session that intercepts
the API calls (RecordingSession). Target (issue 12, item 7): flows ÷ floor ≥ 0.6 on each backend.
The ratio to a bare aiogram echo is printed for information.

Every flow is a real, distinct report: one per (measure, institution, year) for every measure
VPD and IeVP report on, in both open years (the clock is set to February 2027, when 2027 and
2026 are open), filed by several contacts per institution whose flows interleave. A flow is
``/report <id>`` → the year button → an answer to every question (counts, percentages,
milestone statuses and dates, texts, the comment) → confirm.

The floor bounds what any implementation on this stack can reach: one bare handler that per
update writes one row on the loop (raw sqlite3 on SQLite; asyncpg, one transaction, on
PostgreSQL) and makes exactly the Bot API calls the report flow made for that update (the same
texts and keyboards) — no routers, middlewares, FSM, forms, validation or templates.

For information, a third lane splits the distance between the two: the bot's own stack — its
dispatcher, middlewares, unit of work (duplicate check, the sender's contact and conversation,
the commit) and FSM in the database, ``RequireContact`` — with one handler that stores the
update's text in the FSM data and makes the same Bot API calls, and no report domain (forms,
validation, templates, keyboards, reports). flows ÷ floor = (stack ÷ floor) × (flows ÷ stack).

Every timed lane starts from a settled heap, as the bot does once it has started
(``bot.app.settle_heap``): a collection, then what is alive frozen, so that the collector walks
only what the lane itself makes, not what the lanes timed before it left behind.

PostgreSQL: a fresh database on ``RESOBOT_BENCH_PG`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``, trust) is created, migrated and dropped by the
run; when the server does not answer, the PostgreSQL lines say so and the SQLite ones still print.

Only the ``feed_update`` calls are timed. Between them, untimed, a second database connection
checks that the update's effect was committed: after every answer the stored draft holds it,
after confirm the report exists. At the end the numbers of reports, revisions, values and
open drafts are asserted.

    .venv/bin/python bench/bench_chat.py [contacts-per-institution]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import io
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
import time_machine
from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.methods import TelegramMethod
from aiogram.types import CallbackQuery, Message, Update
from rich.console import Console

from bot.access import RequireContact
from bot.app import build_dispatcher
from bot.config import Settings
from bot.console import ConsoleChat
from bot.context import ContactCtx
from bot.offline import RecordingSession, html_to_rich
from bot.services_container import Services
from reporting_forms import forms
from reporting_forms.catalog import Catalog, MetricKind, load_catalog
from reporting_forms.texts import text
from storage.db import Database, upgrade
from storage.repositories import Repos

INSTITUTIONS = ("VPD", "IeVP")
CONTACTS_PER_INSTITUTION = 6
NOW = dt.datetime(2027, 2, 10, 9, 0, tzinfo=dt.UTC)  # 2027 and 2026 are both open
YEARS = (2027, 2026)
BOT_TOKEN = "42:bench"  # the flows' bot
STACK_STATE = "ReportFlow:answering"  # the state the stack lane's handler sets, as a form step does
STACK_TOKEN = "43:bench"  # the stack lane's: the duplicate check is per bot, the flows' update ids new to it
PG_ADMIN_DSN = os.environ.get("RESOBOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@dataclass
class Step:
    kind: str  # report | year | answer | confirm
    line: str  # the text typed (for "year": the year whose button is clicked)
    key: str | None = None  # the form key an answer fills


@dataclass
class Flow:
    institution: str
    measure_id: str
    year: int
    steps: list[Step] = field(default_factory=list)


def _answer(f: forms.FormField, year: int, n: int) -> str:
    kind = f.kind
    if kind is forms.FieldKind.COUNT:
        return f"{1 + n % 900}"
    if kind is forms.FieldKind.PERCENT:
        return f"{n % 100},5"
    if kind is forms.FieldKind.MILESTONE_STATUS:
        return ("procesā", "izpildīts", "nav uzsākts")[n % 3]
    if kind is forms.FieldKind.DATE:
        return f"{1 + n % 28:02d}.{1 + n % 12:02d}.{year}"
    return f"Piezīme {n}: darbs turpinās."


def plan_flows(catalog: Catalog) -> list[Flow]:
    flows: list[Flow] = []
    n = 0
    for abbr in INSTITUTIONS:
        for *_, measure in catalog.measures_for(abbr):
            spec = forms.form_for(measure)
            for year in YEARS:
                flow = Flow(abbr, measure.id, year)
                flow.steps.append(Step("report", f"/report {measure.id}"))
                flow.steps.append(Step("year", str(year)))
                for f in spec.fields:
                    n += 1
                    flow.steps.append(Step("answer", _answer(f, year, n), f.key))
                flow.steps.append(Step("confirm", "apstiprināt"))
                flows.append(flow)
    return flows


def settle() -> None:
    """The heap as the bot's start leaves it (bot.app.settle_heap), before each timed lane:
    what the lanes before left behind is collected, what is alive is frozen."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def _chat(dp: Dispatcher, user_id: int, token: str = BOT_TOKEN) -> ConsoleChat:
    bot = Bot(token, session=RecordingSession(), default=DefaultBotProperties(parse_mode="HTML"))
    user = {"id": user_id, "first_name": "Bench", "language_code": "lv"}
    return ConsoleChat(
        dp,
        bot,
        user=user,
        console=Console(file=io.StringIO()),
        input_fn=lambda _p: "",
        first_update_id=user_id * 1_000_000,
    )


def interleave(per_user: dict[int, list[Flow]]) -> Iterator[tuple[int, Flow, Step]]:
    """One step of each user's current flow in turn (each user works through their flows)."""
    queues = {uid: [(flow, step) for flow in flows for step in flow.steps] for uid, flows in per_user.items()}
    while queues:
        for uid in list(queues):
            flow, step = queues[uid].pop(0)
            yield uid, flow, step
            if not queues[uid]:
                del queues[uid]


@dataclass
class Timing:
    seconds: float = 0.0
    updates: int = 0
    duplicates: int = 0  # fed again, untimed, and dropped
    by_kind: dict[str, list[float]] = field(default_factory=dict)

    def add(self, kind: str, elapsed: float) -> None:
        self.seconds += elapsed
        self.updates += 1
        self.by_kind.setdefault(kind, []).append(elapsed)

    @property
    def rate(self) -> float:
        return self.updates / self.seconds


async def _round_robin(router: Router, updates: int, users: int, kind: str) -> Timing:
    """``updates`` messages from ``users`` chats in turn to a dispatcher of ``router``, each
    ``feed_update`` timed (the updates are built outside the clock, as for the report flows)."""
    dp = Dispatcher()
    dp.include_router(router)
    chats = [_chat(dp, 1000 + i) for i in range(users)]
    timing = Timing()
    settle()
    for n in range(updates):
        chat = chats[n % users]
        update = chat.message_update(f"ziņa {n}")
        started = time.perf_counter()
        await chat.feed(update)
        timing.add(kind, time.perf_counter() - started)
    errors = [e for c in chats for e in c.errors]
    if errors:
        raise SystemExit(f"{kind} handler errors: {errors[:1]}")
    return timing


async def bare_echo(updates: int, users: int) -> Timing:
    router = Router()

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    return await _round_robin(router, updates, users, "echo")


def _replayed(replies: list[list[TelegramMethod]]) -> Iterator[list[tuple[type, dict]]]:
    # each call is built again from its fields, as a handler builds its message and keyboard
    return iter([[(type(m), m.model_dump(exclude_unset=True)) for m in calls] for calls in replies])


async def floor(workdir: Path, replies: list[list[TelegramMethod]], users: int) -> Timing:
    """The least a persisted form can do per update: one row read and written by raw sqlite3 on
    the loop thread (WAL, synchronous=NORMAL, as storage/db.py sets them), then the report
    flow's own Bot API calls for that update, replayed."""
    conn = sqlite3.connect(workdir / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE processed (update_id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE draft (chat_id INTEGER PRIMARY KEY, answers TEXT NOT NULL)")
    pending = _replayed(replies)
    router = Router()

    @router.message()
    async def step(message: Message, event_update: Update) -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO processed VALUES (?)", (event_update.update_id,))
        row = conn.execute("SELECT answers FROM draft WHERE chat_id = ?", (message.chat.id,)).fetchone()
        answers = {**json.loads(row[0] if row else "{}"), str(message.message_id): message.text}
        conn.execute(
            "INSERT INTO draft VALUES (?, ?) ON CONFLICT (chat_id) DO UPDATE SET answers = excluded.answers",
            (message.chat.id, json.dumps(answers)),
        )
        conn.execute("COMMIT")
        for method, fields in next(pending):
            await message.bot(method(**fields))  # type: ignore[union-attr]

    try:
        return await _round_robin(router, len(replies), users, "floor")
    finally:
        conn.close()


async def floor_pg(dsn: str, replies: list[list[TelegramMethod]], users: int) -> Timing:
    """The same least work on PostgreSQL: one asyncpg connection on the loop, one transaction
    per update (the update's row, the chat's draft read and upserted), then the replayed calls."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE floor_processed (update_id BIGINT PRIMARY KEY)")
    await conn.execute("CREATE TABLE floor_draft (chat_id BIGINT PRIMARY KEY, answers TEXT NOT NULL)")
    pending = _replayed(replies)
    router = Router()

    @router.message()
    async def step(message: Message, event_update: Update) -> None:
        async with conn.transaction():
            await conn.execute("INSERT INTO floor_processed VALUES ($1)", event_update.update_id)
            row = await conn.fetchrow("SELECT answers FROM floor_draft WHERE chat_id = $1", message.chat.id)
            answers = {**json.loads(row[0] if row else "{}"), str(message.message_id): message.text}
            await conn.execute(
                "INSERT INTO floor_draft VALUES ($1, $2) "
                "ON CONFLICT (chat_id) DO UPDATE SET answers = excluded.answers",
                message.chat.id,
                json.dumps(answers),
            )
        for method, fields in next(pending):
            await message.bot(method(**fields))  # type: ignore[union-attr]

    try:
        return await _round_robin(router, len(replies), users, "floor")
    finally:
        await conn.close()


class Checker:
    """A second connection to the database: sees only what was committed. SQL is written with
    ``?`` placeholders; on PostgreSQL they become ``$1``, ``$2`` … (asyncpg)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite: sqlite3.Connection | None = None
        self.pg: asyncpg.Connection | None = None

    async def open(self) -> Checker:
        if self.url.startswith("sqlite"):
            self.sqlite = sqlite3.connect(self.url.split("///", 1)[1])
        else:
            self.pg = await asyncpg.connect(self.url.replace("postgresql+asyncpg://", "postgresql://"))
        return self

    async def row(self, sql: str, *args: object) -> tuple | None:
        if self.sqlite is not None:
            return self.sqlite.execute(sql, args).fetchone()
        numbered = iter(range(1, len(args) + 1))
        row = await self.pg.fetchrow(re.sub(r"\?", lambda _m: f"${next(numbered)}", sql), *args)  # type: ignore[union-attr]
        return None if row is None else tuple(row)

    async def execute(self, sql: str) -> None:
        if self.sqlite is not None:
            self.sqlite.execute(sql)
            self.sqlite.commit()
        else:
            await self.pg.execute(sql)  # type: ignore[union-attr]

    async def draft(self, user_id: int) -> tuple[str | None, dict]:
        row = await self.row(
            "SELECT state, data FROM conversation_state WHERE key LIKE ?", f"%:{user_id}:{user_id}:%"
        )
        if row is None:
            return None, {}
        return row[0], json.loads(row[1]) if isinstance(row[1], str) else row[1]

    async def scalar(self, sql: str, *args: object) -> int:
        row = await self.row(sql, *args)
        assert row is not None
        return row[0]

    async def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.pg is not None:
            await self.pg.close()


@dataclass
class FlowsRun:
    timing: Timing
    flows: list[Flow]
    replies: list[list[TelegramMethod]]  # the Bot API calls each timed update made
    fed: list[tuple[int, dict]]  # each timed update: its sender and its payload


async def _contacts(
    db: Database, catalog: Catalog, flows: list[Flow], contacts: int
) -> dict[int, list[Flow]]:
    """The bench's contacts (``contacts`` per institution), each with the flows they file."""
    per_user: dict[int, list[Flow]] = {}
    async with db.session() as s:
        repos = Repos(s)
        await repos.catalog.sync(catalog)
        for i_pos, abbr in enumerate(INSTITUTIONS):
            inst = await repos.people.institution(abbr)
            mine = [f for f in flows if f.institution == abbr]
            for i in range(contacts):
                uid = 2000 + 100 * i_pos + i
                await repos.people.add_contact(
                    display_name=f"{abbr} {i}", institution_id=inst.id, telegram_user_id=uid
                )
                per_user[uid] = mine[i::contacts]
    return per_user


def _services(db: Database, catalog: Catalog, url: str) -> Services:
    return Services(db=db, catalog=catalog, settings=Settings(database_url=url, _env_file=None))


async def report_flows(url: str, contacts: int) -> FlowsRun:
    await asyncio.to_thread(upgrade, url)
    catalog = load_catalog()
    db = Database(url)
    flows = plan_flows(catalog)
    kinds = {i.kind for f in flows for i in catalog.measure(f.measure_id).indicators}
    assert kinds == set(MetricKind), set(MetricKind) - kinds
    per_user = await _contacts(db, catalog, flows, contacts)
    dp = build_dispatcher(_services(db, catalog, url))
    chats = {uid: _chat(dp, uid) for uid in per_user}
    check = await Checker(url).open()
    timing = Timing()
    replies: list[list[TelegramMethod]] = []
    fed: list[tuple[int, dict]] = []
    settle()  # what the dispatcher's startup does in production
    for n, (uid, flow, step) in enumerate(interleave(per_user)):
        chat = chats[uid]
        if step.kind == "year":
            number = next(n for n, b in chat.session.buttons(uid).items() if step.line in b.label)
            update = chat.callback_update(chat.session.buttons(uid)[number])
        else:
            update = chat.message_update(step.line)
        made = len(chat.session.requests)
        started = time.perf_counter()
        await chat.feed(update)
        timing.add(step.kind, time.perf_counter() - started)
        replies.append(chat.session.requests[made:])
        fed.append((uid, update.model_dump(mode="json", by_alias=True, exclude_unset=True)))
        # untimed: the effect of this update is committed and visible to another connection
        state, data = await check.draft(uid)
        if step.kind == "confirm":
            assert state is None and not data.get("draft"), (flow.measure_id, state)
        elif step.kind == "report":
            assert state == "ReportFlow:choosing_year" and data["measure_id"] == flow.measure_id, state
        else:
            assert state == "ReportFlow:answering", (flow.measure_id, step, state)
            draft = data["draft"]
            assert (draft["measure_id"], draft["year"]) == (flow.measure_id, flow.year)
            if step.key is not None:
                assert step.key in draft["answers"], (flow.measure_id, step, draft)
        if n % 7 == 0:  # untimed: Telegram delivers the same update again; it changes nothing
            calls = len(chat.session.calls)
            await chat.feed(update)
            assert len(chat.session.calls) == calls and await check.draft(uid) == (state, data), step
            timing.duplicates += 1
    errors = [e for c in chats.values() for e in c.errors]
    if errors:
        raise SystemExit(f"{len(errors)} handler errors: {errors[:1]}")
    indicators = sum(len(catalog.measure(f.measure_id).indicators) for f in flows)
    expected = {
        "SELECT count(*) FROM report": len(flows),
        "SELECT count(*) FROM report WHERE revision = 1 AND status = 'submitted'": len(flows),
        "SELECT count(*) FROM report_revision": len(flows),
        "SELECT count(*) FROM report_value": indicators,
        "SELECT count(*) FROM report WHERE comment IS NULL": 0,
        "SELECT count(*) FROM conversation_state WHERE state IS NOT NULL": 0,
        "SELECT count(*) FROM processed_update": timing.updates,  # the duplicates added none
    }
    for sql, count in expected.items():
        found = await check.scalar(sql)
        assert found == count, (sql, found, count)
    # untimed: a contact deactivated by another process (the CLI) is refused at their next update
    uid = next(iter(per_user))
    await check.execute(f"UPDATE contact SET active = FALSE WHERE telegram_user_id = {int(uid)}")
    await chats[uid].send_text(f"/report {flows[0].measure_id}")
    refused = chats[uid].session.calls[-1].text
    assert refused is not None and refused.plain == html_to_rich(text("lv", "common.deactivated")).plain
    assert (await check.draft(uid))[0] is None
    await check.close()
    await db.dispose()
    return FlowsRun(timing, flows, replies, fed)


async def stack(url: str, run: FlowsRun) -> Timing:
    """The flows' updates, in their order, through the bot's own dispatcher, middlewares, unit
    of work and FSM (build_dispatcher) to one router behind RequireContact, as the report
    router is, whose handler sets the form's state, adds the update's text to the FSM data
    and makes the Bot API calls the flows made for it. On the flows' database, as another bot
    (STACK_TOKEN), whose update ids are its own; the conversations are the flows' contacts',
    ended as the flows left them."""
    catalog = load_catalog()
    db = Database(url)
    check = await Checker(url).open()
    await check.execute("UPDATE contact SET active = TRUE")  # the one report_flows deactivated at its end
    calls = {
        p["update_id"]: replayed for (_, p), replayed in zip(run.fed, _replayed(run.replies), strict=True)
    }

    async def step(event: Message | CallbackQuery, ctx: ContactCtx, event_update: Update) -> None:
        if isinstance(event, Message):
            key, value = str(event.message_id), event.text
        else:
            key, value = event.id, event.data
        await ctx.state.set_state(STACK_STATE)
        data = await ctx.state.get_data()
        await ctx.state.set_data({**data, "stack": {**data.get("stack", {}), key: value}})
        for method, fields in calls.pop(event_update.update_id):
            await event.bot(method(**fields))  # type: ignore[union-attr]

    def router() -> Router:
        r = Router(name="stack")
        for observer in (r.message, r.callback_query):
            observer.middleware(RequireContact())
            observer.register(step)
        return r

    dp = build_dispatcher(_services(db, catalog, url), routers=[router])
    chats = {uid: _chat(dp, uid, STACK_TOKEN) for uid, _ in run.fed}
    updates = [(chats[uid], Update.model_validate(p, context={"bot": chats[uid].bot})) for uid, p in run.fed]
    timing = Timing()
    settle()
    for chat, update in updates:
        started = time.perf_counter()
        await chat.feed(update)
        timing.add("stack", time.perf_counter() - started)
    errors = [e for c in chats.values() for e in c.errors]
    if errors:
        raise SystemExit(f"{len(errors)} stack handler errors: {errors[:1]}")
    assert not calls, f"{len(calls)} updates not handled"
    bot_id = int(STACK_TOKEN.split(":")[0])
    handled = await check.scalar("SELECT count(*) FROM processed_update WHERE bot_id = ?", bot_id)
    assert handled == len(updates), (handled, len(updates))
    stored = 0
    for uid in chats:
        state, data = await check.draft(uid)
        assert state == STACK_STATE, (uid, state)
        stored += len(data["stack"])
    assert stored == len(updates), (stored, len(updates))  # every update's text, committed
    await check.close()
    await db.dispose()
    return timing


def _breakdown(timing: Timing) -> str:
    parts = []
    for kind, times in timing.by_kind.items():
        parts.append(f"{kind} {1000 * sum(times) / len(times):.2f} ms ×{len(times)}")
    return ", ".join(parts)


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class Lane:
    backend: str
    run: FlowsRun
    least: Timing  # the floor
    stack: Timing


FloorOf = Callable[[FlowsRun], Awaitable[Timing]]


async def _lane(backend: str, url: str, contacts: int, floor_of: FloorOf) -> Lane:
    run = await report_flows(url, contacts)
    least = await floor_of(run)
    return Lane(backend, run, least, await stack(url, run))


async def sqlite_lane(workdir: Path, contacts: int) -> Lane:
    return await _lane(
        "SQLite",
        f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        contacts,
        lambda run: floor(workdir, run.replies, 2 * contacts),
    )


async def postgres_lane(contacts: int) -> Lane | str:
    """A fresh database for the run, dropped after; the reason instead when there is no server."""
    try:
        await _pg_admin("SELECT 1")
    except (OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_DSN}: {type(exc).__name__}: {exc}"
    name = f"resobot_bench_{uuid.uuid4().hex[:8]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    dsn = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    try:
        return await _lane(
            "PostgreSQL",
            dsn.replace("postgresql://", "postgresql+asyncpg://"),
            contacts,
            lambda run: floor_pg(dsn, run.replies, 2 * contacts),
        )
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main(contacts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, time_machine.travel(NOW, tick=True):
        await bare_echo(200, 4)  # warm up imports and pydantic models
        lanes: list[Lane | str] = [await sqlite_lane(Path(tmp), contacts)]
        echo = await bare_echo(lanes[0].run.timing.updates, 2 * contacts)  # type: ignore[union-attr]
        lanes.append(await postgres_lane(contacts))
    for lane in lanes:
        if isinstance(lane, str):
            print(f"PostgreSQL lane skipped: {lane}")
            continue
        flow, least, own = lane.run.timing, lane.least, lane.stack
        print(
            f"report flows ({lane.backend}, drafts persisted): {flow.rate:8.1f} updates/s  "
            f"({len(lane.run.flows)} reports by {2 * contacts} contacts, {flow.updates} updates; "
            f"{flow.duplicates} re-deliveries dropped, untimed)"
        )
        print(f"  per update: {_breakdown(flow)}")
        print(
            f"  floor ({lane.backend}: the flows' own Bot API calls + one raw row per update, nothing else): "
            f"{least.rate:.1f} updates/s"
        )
        print(f"  flows / floor ({lane.backend}): {flow.rate / least.rate:.2f}  (target ≥ 0.6)")
        print(
            f"  for information, the bot's stack without the report domain (its dispatcher, middlewares, "
            f"unit of work and FSM; one handler making the same calls): {own.rate:.1f} updates/s; "
            f"stack / floor {own.rate / least.rate:.2f}, flows / stack {flow.rate / own.rate:.2f}"
        )
        print(
            f"  for information, ratios to the bare echo: flows {flow.rate / echo.rate:.2f}, "
            f"floor {least.rate / echo.rate:.2f}"
        )
    print(f"bare aiogram echo (for information):     {echo.rate:8.1f} updates/s  ({echo.updates} updates)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else CONTACTS_PER_INSTITUTION))
