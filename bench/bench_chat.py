"""Updates per second: complete report flows (SQLite, drafts persisted) vs a bare aiogram echo.

Both run in this process through ``Dispatcher.feed_update`` with a session that intercepts the
API calls (RecordingSession). Prints both figures and the ratio (target: ratio ≥ 0.5).

Every flow is a real, distinct report: one per (measure, institution, year) for every measure
VPD and IeVP report on, in both open years (the clock is set to February 2027, when 2027 and
2026 are open), filed by several contacts per institution whose flows interleave. A flow is
``/report <id>`` → the year button → an answer to every question (counts, percentages,
milestone statuses and dates, texts, the comment) → confirm.

A third figure bounds what any implementation on this stack can reach: the floor, one bare
handler that per update writes one row with raw sqlite3 on the loop thread and makes exactly the
Bot API calls the report flow made for that update (the same texts and keyboards) — no routers,
middlewares, FSM, forms, validation or templates. Its ratio to the echo is printed, and the
flows' ratio to it.

Only the ``feed_update`` calls are timed. Between them, untimed, a second SQLite connection
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
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import time_machine
from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.methods import TelegramMethod
from aiogram.types import Message, Update
from rich.console import Console

from bot.app import Services, build_dispatcher, settle_heap
from bot.config import Settings
from bot.console import ConsoleChat, RecordingSession, html_to_rich
from reporting_forms import forms
from reporting_forms.catalog import Catalog, MetricKind, load_catalog
from reporting_forms.texts import text
from storage.db import Database, upgrade
from storage.repositories import Repos

INSTITUTIONS = ("VPD", "IeVP")
CONTACTS_PER_INSTITUTION = 6
NOW = dt.datetime(2027, 2, 10, 9, 0, tzinfo=dt.UTC)  # 2027 and 2026 are both open
YEARS = (2027, 2026)


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


async def floor(workdir: Path, replies: list[list[TelegramMethod]], users: int) -> Timing:
    """The least a persisted form can do per update: one row read and written by raw sqlite3 on
    the loop thread (WAL, synchronous=NORMAL, as storage/db.py sets them), then the report
    flow's own Bot API calls for that update, replayed."""
    conn = sqlite3.connect(workdir / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE processed (update_id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE draft (chat_id INTEGER PRIMARY KEY, answers TEXT NOT NULL)")
    # each call is built again from its fields, as a handler builds its message and keyboard
    pending = iter([[(type(m), m.model_dump(exclude_unset=True)) for m in calls] for calls in replies])
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


class Checker:
    """A second connection to the database file: sees only what was committed."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)

    def draft(self, user_id: int) -> tuple[str | None, dict]:
        row = self.conn.execute(
            "SELECT state, data FROM conversation_state WHERE key LIKE ?", (f"%:{user_id}:{user_id}:%",)
        ).fetchone()
        if row is None:
            return None, {}
        return row[0], json.loads(row[1]) if isinstance(row[1], str) else row[1]

    def scalar(self, sql: str, *args: object) -> int:
        return self.conn.execute(sql, args).fetchone()[0]


async def report_flows(workdir: Path, contacts: int) -> tuple[Timing, list[Flow], list[list[TelegramMethod]]]:
    path = workdir / "bench.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(upgrade, url)
    catalog = load_catalog()
    db = Database(url)
    per_user: dict[int, list[Flow]] = {}
    flows = plan_flows(catalog)
    kinds = {i.kind for f in flows for i in catalog.measure(f.measure_id).indicators}
    assert kinds == set(MetricKind), set(MetricKind) - kinds
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
    services = Services(db=db, catalog=catalog, settings=Settings(database_url=url, _env_file=None))
    dp = build_dispatcher(services)
    settle_heap()  # what the dispatcher's startup does in production
    chats = {uid: _chat(dp, uid) for uid in per_user}
    check = Checker(path)
    timing = Timing()
    replies: list[list[TelegramMethod]] = []  # the Bot API calls each timed update made
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
        # untimed: the effect of this update is committed and visible to another connection
        state, data = check.draft(uid)
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
            assert len(chat.session.calls) == calls and check.draft(uid) == (state, data), step
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
        assert check.scalar(sql) == count, (sql, check.scalar(sql), count)
    # untimed: a contact deactivated by another process (the CLI) is refused at their next update
    uid = next(iter(per_user))
    check.conn.execute("UPDATE contact SET active = 0 WHERE telegram_user_id = ?", (uid,))
    check.conn.commit()
    await chats[uid].send_text(f"/report {flows[0].measure_id}")
    refused = chats[uid].session.calls[-1].text
    assert refused is not None and refused.plain == html_to_rich(text("lv", "common.deactivated")).plain
    assert check.draft(uid)[0] is None
    check.conn.close()
    await db.dispose()
    return timing, flows, replies


def _breakdown(timing: Timing) -> str:
    parts = []
    for kind, times in timing.by_kind.items():
        parts.append(f"{kind} {1000 * sum(times) / len(times):.2f} ms ×{len(times)}")
    return ", ".join(parts)


async def main(contacts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, time_machine.travel(NOW, tick=True):
        await bare_echo(200, 4)  # warm up imports and pydantic models
        flow, flows, replies = await report_flows(Path(tmp), contacts)
        gc.collect()  # untimed: each run starts without the garbage of the one before
        echo = await bare_echo(flow.updates, 2 * contacts)
        gc.collect()
        least = await floor(Path(tmp), replies, 2 * contacts)
    print(
        f"report flows (SQLite, drafts persisted): {flow.rate:8.1f} updates/s  "
        f"({len(flows)} reports by {2 * contacts} contacts, {flow.updates} updates; "
        f"{flow.duplicates} re-deliveries dropped, untimed)"
    )
    print(f"  per update: {_breakdown(flow)}")
    print(f"bare aiogram echo (baseline):           {echo.rate:8.1f} updates/s  ({echo.updates} updates)")
    print(f"ratio: {flow.rate / echo.rate:.2f}  (target ≥ 0.5)")
    print(
        f"floor (the flows' own Bot API calls + one raw sqlite3 row per update, nothing else): "
        f"{least.rate:.1f} updates/s, ratio {least.rate / echo.rate:.2f}"
    )
    print(f"flows / floor: {flow.rate / least.rate:.2f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else CONTACTS_PER_INSTITUTION))
