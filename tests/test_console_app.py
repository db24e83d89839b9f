"""The offline console runs the real dispatcher: a newcomer registers as the demo contact and
files, reviews, corrects and sees a report — the acceptance path of `make run` without a token."""

from __future__ import annotations

import asyncio
import gc
import io
import json

import time_machine
from rich.console import Console
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import run_console, settle_heap
from bot.cli import app
from bot.config import Settings
from bot.console import scripted_input
from bot.services_container import Services
from reporting_forms.catalog import Catalog
from storage.compile_inputs import CompileInputsRepo
from storage.db import Database
from storage.repositories import Repos
from storage.tables import Contact, ConversationState, Role
from tests.chat_harness import HARNESS_RATE, prepare_database

# the console bot passes the rate limits of bot/throttle.py; a script types faster than a person
FAST = {"outbox_global_rate": HARNESS_RATE, "outbox_per_chat_rate": HARNESS_RATE}

LINES = [
    "/report",  # the picker: measures of VPD, grouped by task
    "1.1.1",  # typed id jumps to the measure
    "2",  # [2] procesā
    "30.06.2026",
    "45",
    "I",  # [I] Izlaist ▶ (no comment)
    "5",  # [5] ✅ Apstiprināt on the summary card (4 edit buttons, then confirm; [A] back, [X] cancel)
    "/myreports",
    "1",  # [1] Labot Nr. 1
    "3",  # [3] ✏️ 3 — people trained
    "50",
    "5",  # confirm again: revision 2
    "/myreports",
    "2",  # [2] Vēsture Nr. 1
    "/quit",
]


async def test_console_newcomer_files_and_corrects_a_report(
    sqlite_url: str, catalog: Catalog, tmp_path
) -> None:
    await prepare_database(sqlite_url, catalog)
    settings = Settings(**FAST, database_url=sqlite_url, console_files_dir=tmp_path / "files", _env_file=None)
    db = Database(sqlite_url)
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None)
    with time_machine.travel("2026-11-20 10:00 +02:00", tick=True):
        await run_console(
            Services(db=db, catalog=catalog, settings=settings),
            input_fn=scripted_input(LINES),
            console=console,
        )
        async with db.session() as s:
            (view,) = await Repos(s).reports.views()
    await db.dispose()
    screen = out.getvalue()
    assert "Sveicināti, Demo kontaktpersona!" in screen and "(VPD) (VPD)" not in screen
    assert "Kopsavilkums un faili: /summary" not in screen  # coordinators' commands: not for a contact
    # the how-to line comes first, before the registration line typed for the newcomer
    assert -1 < screen.find("Bezsaistes resobot konsole") < screen.find("Demo VPD › /start ")
    assert "Izvēlieties pasākumu" in screen and "Atskaite iesniegta" in screen
    assert "redakcija 2" in screen and "Apmācīti līdz 120 darbinieki: 45 → 50" in screen
    assert (view.institution, view.revision, view.answers()["1.1.1.2"]) == ("VPD", 2, 50)


async def test_second_console_run_is_already_registered(sqlite_url: str, catalog: Catalog, tmp_path) -> None:
    await prepare_database(sqlite_url, catalog)
    settings = Settings(**FAST, database_url=sqlite_url, console_files_dir=tmp_path, _env_file=None)
    for expected in ("Sveicināti", "Lietotājs: Demo kontaktpersona; iestāde: VPD; loma: kontaktpersona."):
        db = Database(sqlite_url)
        out = io.StringIO()
        await run_console(
            Services(db=db, catalog=catalog, settings=settings),
            input_fn=scripted_input(["/quit"]),
            console=Console(file=out, width=120, color_system=None),
        )
        await db.dispose()
        assert expected in out.getvalue()


async def test_the_demo_coordinator_is_a_user_of_its_own(sqlite_url: str, catalog: Catalog, tmp_path) -> None:
    await prepare_database(sqlite_url, catalog)
    settings = Settings(**FAST, database_url=sqlite_url, console_files_dir=tmp_path, _env_file=None)
    screens = []
    for minute, role in enumerate((Role.CONTACT, Role.COORDINATOR)):
        db = Database(sqlite_url)
        out = io.StringIO()
        # update ids count from the clock (ms): the second run starts later, as it would
        with time_machine.travel(f"2026-11-20 10:0{minute} +02:00", tick=True):
            await run_console(
                Services(db=db, catalog=catalog, settings=settings),
                institution="TM",
                role=role,
                input_fn=scripted_input(["/overdue", "/quit"]),
                console=Console(file=out, width=120, color_system=None),
            )
        async with db.session() as s:
            contacts = (await s.exec(select(Contact).order_by(Contact.id))).all()
        await db.dispose()
        screens.append(out.getvalue())
    assert [(c.display_name, c.role) for c in contacts] == [
        ("Demo kontaktpersona", Role.CONTACT),
        ("Demo koordinators", Role.COORDINATOR),
    ]
    assert contacts[0].telegram_user_id != contacts[1].telegram_user_id
    contact, coordinator = screens
    assert "loma: kontaktpersona" in contact and "Neiesniegtās atskaites" not in contact
    assert "loma: koordinators" in coordinator and "Kopsavilkums un faili: /summary" in coordinator
    assert "Neiesniegtās atskaites (stāvoklis 20.11.2026)" in coordinator
    assert coordinator.count("Demo TM › /start ") == 1  # the registration line is shown once


def test_console_role_is_not_combined_with_as(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    result = CliRunner().invoke(app, ["console", "--as", "1", "--role", "coordinator"])
    assert result.exit_code == 1 and "--role is for the demo user" in result.output


def test_reports_list_json_shows_values_revision_and_author(tmp_path, monkeypatch, catalog: Catalog) -> None:
    import asyncio

    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0

    async def file_report() -> None:
        db = Database(url)
        async with db.session() as s:
            repos = Repos(s)
            ievp = await repos.people.institution("IeVP")
            who = await repos.people.add_contact(display_name="Pēteris", institution_id=ievp.id)
            m = await repos.catalog.measure("1.3.9")
            await repos.reports.submit(
                measure_id=m.id,
                institution_id=ievp.id,
                year=2026,
                answers={"1.3.9.1": 120},
                contact_id=who.id,
            )
        await db.dispose()

    asyncio.run(file_report())
    result = runner.invoke(app, ["reports", "list", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row | {"submitted_at": None} == {
        "id": 1,
        "measure": "1.3.9",
        "institution": "IeVP",
        "year": 2026,
        "status": "submitted",
        "revision": 1,
        "review_state": "pending",
        "author": "Pēteris",
        "submitted_at": None,
        "values": {"1.3.9.1": 120},
    }
    table = runner.invoke(app, ["reports", "list"], env={"COLUMNS": "200"})
    assert "1.3.9" in table.output and "Pēteris" in table.output


async def test_console_numbers_answer_a_count_question_and_hash_picks_buttons(
    sqlite_url: str, catalog: Catalog, tmp_path
) -> None:
    """On a count question with [A] Atpakaļ [I] Izlaist [X] Atcelt, "1" is the answer 1 and "#A" goes
    back; where no number is expected (a milestone) a bare number presses the button."""
    await prepare_database(sqlite_url, catalog)
    settings = Settings(**FAST, database_url=sqlite_url, console_files_dir=tmp_path, _env_file=None)
    db = Database(sqlite_url)
    out = io.StringIO()
    lines = [
        "/report 1.1.1",
        "2",  # [2] procesā: the milestone question expects a button
        "I",  # [I] Izlaist ▶ at the date question
        "1",  # the count question: 1 is the answer
        "A",  # the comment question: [A] ◀ Atpakaļ
        "#9",  # no such button: said, nothing sent
        "#A",  # on the count question again, [A] ◀ Atpakaļ
        "/quit",
    ]
    with time_machine.travel("2026-11-20 10:00 +02:00", tick=True):
        await run_console(
            Services(db=db, catalog=catalog, settings=settings),
            input_fn=scripted_input(lines),
            console=Console(file=out, width=120, color_system=None),
        )
        async with db.session() as s:
            rows = (await s.exec(select(ConversationState))).all()
    await db.dispose()
    screen = out.getvalue()
    assert "Pogu izvēlas ar tās numuru kvadrātiekavās: 1 vai #1" in screen  # the intro says how
    assert "Ierakstītais skaitlis ir atbilde uz jautājumu; pogu izvēlieties ar burtu: A, I, X." in screen
    assert "Pogas: ierakstiet 1–4 (vai #1) vai burtu: I, X." in screen  # the milestone question
    assert "Pašreizējā atbilde: 1" in screen  # back from the comment: the count kept the answer 1
    assert "Pogas [9] šobrīd nav." in screen
    (row,) = [r for r in rows if r.state]
    draft = row.data["draft"]
    assert draft["answers"] == {"1.1.1.1": "in_progress", "1.1.1.2": 1}
    assert draft["cursor"] == 1  # "#A" went back to the date question


def test_the_heap_is_settled_once_per_process() -> None:
    settle_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    later = [[object()] for _ in range(1000)]  # objects of a later start (a test's bot, say)
    settle_heap()
    assert gc.get_freeze_count() == frozen and later


async def _console(
    sqlite_url: str, catalog: Catalog, tmp_path, lines: list[str], input_fn=None, **identity
) -> tuple[str, Database]:
    """Run the console with ``lines`` typed (prepared database); returns the screen and the db."""
    settings = Settings(**FAST, database_url=sqlite_url, console_files_dir=tmp_path, _env_file=None)
    db = Database(sqlite_url)
    out = io.StringIO()
    await run_console(
        Services(db=db, catalog=catalog, settings=settings),
        input_fn=input_fn or scripted_input(lines),
        console=Console(file=out, width=120, color_system=None),
        **identity,
    )
    return out.getvalue(), db


async def test_coordinator_console_indicator_takes_a_typed_1_as_the_value(
    sqlite_url: str, catalog: Catalog, tmp_path
) -> None:
    """/indicator in the console: at the value question "1" is the value, not a button."""
    await prepare_database(sqlite_url, catalog)
    lines = ["/indicator PR1.RR1", "2025", "1", "VID", "/quit"]
    with time_machine.travel("2026-11-20 10:00 +02:00", tick=True):
        screen, db = await _console(
            sqlite_url, catalog, tmp_path, lines, institution="TM", role=Role.COORDINATOR
        )
        async with db.session() as s:
            actuals = await CompileInputsRepo(s).policy_actuals()
    await db.dispose()
    assert "Darbība pārtraukta" not in screen
    assert "Ierakstītais skaitlis ir atbilde uz jautājumu" in screen  # the rule said at the value question
    assert "Saglabāts: PR1.RR1 2025. gadā = 1 (avots: VID)" in screen
    assert [(a.indicator_id, a.year, a.value, a.source) for a in actuals] == [("PR1.RR1", 2025, 1, "VID")]


async def _outbox_drained(url: str, timeout: float = 5.0) -> None:
    """Wait until the console's sender has delivered every queued outbox row."""
    from sqlmodel import select

    from storage.tables import Outbox, OutboxStatus

    db = Database(url)
    try:
        for _ in range(int(timeout / 0.05)):
            async with db.session() as s:
                rows = (await s.exec(select(Outbox))).all()
            if rows and all(r.status == OutboxStatus.SENT for r in rows):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the outbox was not delivered")
    finally:
        await db.dispose()


async def test_coordinator_console_labels_the_contacts_notification(
    sqlite_url: str, catalog: Catalog, tmp_path
) -> None:
    """Returning a report tells the institution's contact — in the contact's chat. The
    coordinator's console shows that message as sent to another user, named, with no buttons to
    press; the coordinator's own messages are shown as before."""

    await prepare_database(sqlite_url, catalog)
    db = Database(sqlite_url)
    async with db.session() as s:
        repos = Repos(s)
        vpd = await repos.people.institution("VPD")
        anna = await repos.people.add_contact(display_name="Anna Bērziņa", institution_id=vpd.id)
        anna.telegram_user_id = 555_001
        m = await repos.catalog.measure("1.3.3")
        await repos.reports.submit(
            measure_id=m.id, institution_id=vpd.id, year=2026, answers={"1.3.3.1": 30}, contact_id=anna.id
        )
    await db.dispose()
    lines = iter(["/review", "#2", "Lūdzu, precizējiet skaitu", "/quit"])

    async def read(prompt: str) -> str:
        line = next(lines)
        if line == "/quit":  # the notice goes out through the outbox once the decision is committed
            await _outbox_drained(sqlite_url)
        return line

    with time_machine.travel("2026-11-20 10:00 +02:00", tick=True):
        screen, db = await _console(
            sqlite_url, catalog, tmp_path, [], input_fn=read, institution="TM", role=Role.COORDINATOR
        )
    await db.dispose()
    assert "Atskaite Nr. 1 atgriezta labošanai. Paziņots 1" in screen
    assert "Jūsu atskaite Nr. 1" in screen  # the contact's notice is shown ...
    head = screen[: screen.index("Jūsu atskaite Nr. 1")]
    title = head[head.rindex("╭") :]
    # ... under a title that names its recipient and says it is not for the console's user
    assert "resobot → Anna Bērziņa (VPD)" in title and "citam lietotājam" in title


async def test_console_navigation_buttons_keep_their_letters_on_every_question(
    sqlite_url: str, catalog: Catalog, tmp_path
) -> None:
    """Atpakaļ, Izlaist and Atcelt are [A], [I] and [X] on every question (English: B, S, X);
    numbers are only for the answers' own buttons, so "#2" is never Cancel on one question and
    Skip on the next."""
    await prepare_database(sqlite_url, catalog)
    lines = [
        "/report 1.1.1",
        "#2",  # [2] procesā
        "#I",  # the date question: skip
        "#a",  # the count question: back (letters in either case)
        "i",  # the date question again: a bare letter presses its button too
        "1",  # the count question: 1 is the answer
        "#2",  # the comment question has no numbered buttons: said, nothing sent
        "/language",
        "#B",  # English: Back to the count question
        "#X",  # Cancel
        "/quit",
    ]
    with time_machine.travel("2026-11-20 10:00 +02:00", tick=True):
        screen, db = await _console(sqlite_url, catalog, tmp_path, lines)
        async with db.session() as s:
            rows = [r for r in (await s.exec(select(ConversationState))).all() if r.state]
    await db.dispose()
    assert "[I] Izlaist ▶" in screen and "[X] ✖ Atcelt" in screen and "[A] ◀ Atpakaļ" in screen
    assert "[B] ◀ Back" in screen and "[S] Skip ▶" in screen
    for numbered in ("] Izlaist", "] ✖ Atcelt", "] ◀ Atpakaļ"):  # never under a number
        assert not any(f"[{n}{numbered}" in screen for n in range(1, 10))
    assert "Pogas [2] šobrīd nav." in screen
    assert "Pašreizējā atbilde: 1" not in screen  # "#a" went back before any count was given
    assert "Current answer: 1" in screen  # "#B" went back to the count question answered with 1
    assert "Report cancelled. The draft was deleted." in screen
    assert rows == []
