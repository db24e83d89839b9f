"""End to end, the real bot polling the fake Bot API: a coordinator reviews, summarises, exports
and enters policy actuals; a contact is notified, corrects, sees only their own status."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from pathlib import Path

from docx import Document
from openpyxl import load_workbook

from storage.compile_inputs import CompileInputsRepo
from storage.db import Database
from storage.outbox import KIND_FILE, OutboxRepo
from storage.repositories import Repos
from storage.tables import Outbox, OutboxStatus
from tests.chat_harness import CHAT_NOW, Harness
from tests.fakebotapi import FakeUser

NOW = CHAT_NOW


async def file_1_3_3(user: FakeUser, values: tuple[str, ...] = ("30", "10", "20", "40")) -> None:
    """A VPD contact reports on 1.3.3 (four consultation counts, no comment)."""
    user.send("/report 1.3.3")
    await user.replies(1)
    for value in values:
        user.send(value)
        await user.replies(1)
    user.click_text("Izlaist ▶")
    await user.replies(1)
    user.click_text("✅ Apstiprināt")
    (receipt,) = await user.replies(1)
    assert "Atskaite iesniegta" in receipt.text


async def report_ids(harness: Harness) -> list[int]:
    async with harness.db.session() as s:
        return [v.id for v in await Repos(s).reports.views()]


async def test_review_return_notify_correct_accept(harness: Harness) -> None:
    coordinator = await harness.register(1001, "TM", role="coordinator", name="Koordinators")
    anna = await harness.register(1002, "VPD", name="Anna")
    await file_1_3_3(anna)
    (rid,) = await report_ids(harness)

    coordinator.send("/review")
    (listing,) = await coordinator.replies(1)
    assert "gaida pārskatīšanu: 1" in listing.text
    assert f"Nr. {rid}" in listing.text and "1.3.3" in listing.text and "VPD" in listing.text
    assert "redakcija 1" in listing.text and "Iesniedza Anna" in listing.text and "ziņots: 10" in listing.text
    assert listing.button_texts == [f"✅ Pieņemt Nr. {rid}", f"↩️ Atgriezt Nr. {rid}"]

    coordinator.click_text(f"↩️ Atgriezt Nr. {rid}")
    (ask,) = await coordinator.replies(1)
    assert "tiks atgriezta labošanai" in ask.text and "komentāru" in ask.text
    coordinator.send_sticker()  # bad input: a clear message and the same question
    notice, again = await coordinator.replies(2)
    assert "teksta ziņu" in notice.text and again.text == ask.text
    coordinator.send("x" * 1001)
    notice, again = await coordinator.replies(2)
    assert "pārāk garš" in notice.text and again.text == ask.text
    coordinator.send("Lūdzu, precizējiet 1.3.3.2 <skaits>")
    (done,) = await coordinator.replies(1)
    assert f"Atskaite Nr. {rid} atgriezta labošanai" in done.text and "Paziņots 1" in done.text

    (notice,) = await anna.replies(1)
    assert f"Nr. {rid}" in notice.text and "1.3.3" in notice.text and "atgriezta labošanai" in notice.text
    assert "Lūdzu, precizējiet 1.3.3.2 <skaits>" in notice.text and "/myreports" in notice.text

    anna.send("/myreports")
    (mine,) = await anna.replies(1)
    assert "atgriezta labošanai" in mine.text and "precizējiet" in mine.text
    anna.click_text(f"Labot Nr. {rid}")
    await anna.replies(2)
    anna.click_text("✏️ 2")
    await anna.replies(1)
    anna.send("12")
    await anna.replies(1)
    anna.click_text("✅ Apstiprināt")
    (receipt,) = await anna.replies(1)
    assert "redakcija 2" in receipt.text
    async with harness.db.session() as s:
        view = await Repos(s).reports.view(rid)
    assert (view.revision, view.review_state) == (2, "pending")

    # the old "Atgriezt" button was for revision 1: stale now
    coordinator.click_text(f"↩️ Atgriezt Nr. {rid}", message_id=listing.message_id)
    await harness.server.idle()
    assert "jauna atskaites redakcija" in coordinator.callback_answers[-1]["text"]

    coordinator.send("/review")
    (listing2,) = await coordinator.replies(1)
    assert "redakcija 2" in listing2.text and "ziņots: 12 (mainīts: 10 → 12)" in listing2.text
    coordinator.click_text(f"✅ Pieņemt Nr. {rid}")
    done, refreshed = await coordinator.replies(2)
    assert f"Atskaite Nr. {rid} pieņemta" in done.text
    assert refreshed.is_edit and "Nav iesniegtu atskaišu, kas gaidītu" in refreshed.text
    (accepted,) = await anna.replies(1)
    assert f"Nr. {rid}" in accepted.text and "pieņemta" in accepted.text
    async with harness.db.session() as s:
        assert (await Repos(s).reports.view(rid)).review_state == "accepted"


async def test_review_list_is_paged(harness: Harness) -> None:
    coordinator = await harness.register(1051, "TM", role="coordinator")
    async with harness.db.session() as s:
        repos = Repos(s)
        ievp = await repos.people.institution("IeVP")
        for i, code in enumerate(("1.1.5", "1.1.6", "1.1.8", "1.1.10", "1.3.1", "1.3.5", "1.3.6")):
            m = await repos.catalog.measure(code)
            ind = (await repos.catalog.indicators(m.id))[0]
            answer = "done" if ind.kind == "milestone" else 1
            await repos.reports.submit(
                measure_id=m.id,
                institution_id=ievp.id,
                year=2026,
                answers={ind.code: answer},
                contact_id=None,
                now=NOW - dt.timedelta(days=10 - i),
            )
    coordinator.send("/review")
    (page1,) = await coordinator.replies(1)
    assert "gaida pārskatīšanu: 7" in page1.text and "1. lapa no 2" in page1.text
    assert "1.1.5" in page1.text and "1.3.5" not in page1.text
    assert page1.button_texts[-1] == "▶" and len(page1.button_texts) == 11
    coordinator.click_text("▶")
    (page2,) = await coordinator.replies(1)
    assert page2.is_edit and "2. lapa no 2" in page2.text and "1.3.6" in page2.text
    assert page2.button_texts[-1] == "◀"
    coordinator.click_text("✅ Pieņemt Nr. 7")
    done, refreshed = await coordinator.replies(2)
    assert "pieņemta" in done.text and "Institūcijai nav aktīvu kontaktpersonu" in done.text
    assert "gaida pārskatīšanu: 6" in refreshed.text and "1. lapa" not in refreshed.text


async def test_summary_sends_text_and_documents(harness: Harness) -> None:
    coordinator = await harness.register(1101, "TM", role="coordinator")
    anna = await harness.register(1102, "VPD", name="Anna")
    await file_1_3_3(anna)
    coordinator.send("/summary 2026")
    summary, xlsx, docx, png = await coordinator.replies(4, timeout=20)
    assert "Īstenošanas plāns 2025.–2027." in summary.text and "2026. gads" in summary.text
    assert "VPD: 1/30" in summary.text and "gaida 1" in summary.text
    assert "Lielākie riski" in summary.text
    assert [o.method for o in (xlsx, docx, png)] == ["sendDocument"] * 3
    assert xlsx.document_name == "RPP-2025-2027_2026.xlsx"
    assert docx.document_name == "RPP-2025-2027_2026.docx"
    assert png.document_bytes.startswith(b"\x89PNG")

    wb = load_workbook(io.BytesIO(xlsx.document_bytes))
    ws = wb["1. rīcības virziens"]
    row = next(r for r in range(1, ws.max_row + 1) if str(ws.cell(r, 4).value).startswith("Narkologa"))
    assert ws.cell(row, 1).value == "3."  # measure 1.3.3
    assert (ws.cell(row, 9).value, ws.cell(row, 15).value) == (30, "gaida pārskatīšanu")
    doc = Document(io.BytesIO(docx.document_bytes))
    cells = [[c.text for c in row.cells] for t in doc.tables for row in t.rows]
    assert any(r[3].startswith("Narkologa") and r[8] == "30" for r in cells if len(r) > 8)

    coordinator.send("/summary VPD 1")  # direction 1, VPD's measures
    (scoped, *_files) = await coordinator.replies(4, timeout=20)
    assert "VPD · 1" in scoped.text and "TM:" not in scoped.text

    coordinator.send("/summary NH")
    (nh, *_files) = await coordinator.replies(4, timeout=20)
    assert "NH-2024" in nh.text and _files[0].document_name == "NH-2024_2025-2027.xlsx"

    coordinator.send("/summary 2031")
    (error,) = await coordinator.replies(1)
    assert "2031. gads nav plāna periodā" in error.text and "/summary" in error.text


async def test_export_every_revision(harness: Harness) -> None:
    coordinator = await harness.register(1201, "TM", role="coordinator")
    coordinator.send("/export")
    (empty,) = await coordinator.replies(1)
    assert "Vēl nav iesniegtu atskaišu" in empty.text
    anna = await harness.register(1202, "VPD", name="Anna")
    await file_1_3_3(anna)
    anna.send("/report 1.3.3")  # the same period again: a correction, opened at the summary card
    await anna.replies(2)
    anna.click_text("✏️ 1")
    await anna.replies(1)
    anna.send("31")
    await anna.replies(1)
    anna.click_text("✅ Apstiprināt")
    await anna.replies(1)
    (rid,) = await report_ids(harness)
    coordinator.send("/export")
    xlsx, csv_file = await coordinator.replies(2, timeout=10)
    assert xlsx.document_name.endswith(".xlsx") and csv_file.document_name.endswith(".csv")
    assert "2 redakcijas, 8 rindas" in csv_file.text
    ws = load_workbook(io.BytesIO(xlsx.document_bytes)).active
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0] == [
        "Atskaites Nr.",
        "Pasākums",
        "Institūcija",
        "Gads",
        "Redakcija",
        "Autors",
        "Iesniegts",
        "Lauks",
        "Vērtība",
        "Pārskatīšana",
    ]
    assert rows[1][:6] == [rid, "1.3.3", "VPD", 2026, 1, "Anna"]
    assert rows[1][7:] == ["1.3.3.1", 30, "aizstāta ar jaunāku redakciju"]
    assert rows[5][4:] == [2, "Anna", rows[5][6], "1.3.3.1", 31, "gaida pārskatīšanu"]
    assert isinstance(rows[5][6], dt.datetime)
    lines = list(csv.reader(io.StringIO(csv_file.document_bytes.decode("utf-8-sig"))))
    assert len(lines) == 9 and lines[5][7:] == ["1.3.3.1", "31", "gaida pārskatīšanu"]


async def test_indicator_entry_with_bad_input(harness: Harness) -> None:
    coordinator = await harness.register(1301, "TM", role="coordinator")
    coordinator.send("/indicator")
    (choose,) = await coordinator.replies(1)
    assert "PR1.RR2" in choose.text and "PR1.RR2" in choose.button_texts
    coordinator.send("PR7")
    notice, again = await coordinator.replies(2)
    assert "nav atrasts" in notice.text and again.text == choose.text
    coordinator.click_text("PR1.RR2")
    (card,) = await coordinator.replies(1)
    assert "2022: 12 (pase)" in card.text and "2024: 14 (pase)" in card.text
    assert "2025: mērķis 15%; fakts —" in card.text and "Par kuru gadu" in card.text
    coordinator.send("2030")
    notice, again = await coordinator.replies(2)
    assert "no 2022 līdz 2027" in notice.text and "Par kuru gadu" in again.text
    coordinator.click_text("2025")
    (ask_value,) = await coordinator.replies(1)
    assert "PR1.RR2" in ask_value.text and "2025. gadā" in ask_value.text
    coordinator.send("daudz")
    notice, again = await coordinator.replies(2)
    assert "nav skaitlis" in notice.text and again.text == ask_value.text
    coordinator.send("101")
    notice, _ = await coordinator.replies(2)
    assert "nevar pārsniegt 100" in notice.text
    coordinator.send("15,4")
    (ask_source,) = await coordinator.replies(1)
    assert "datu avotu" in ask_source.text
    coordinator.send("VID")
    (saved,) = await coordinator.replies(1)
    assert "Saglabāts: PR1.RR2 2025. gadā = 15,4 (avots: VID)" in saved.text
    assert "2025: mērķis 15%; fakts 15,4 (avots: VID) ✅" in saved.text
    async with harness.db.session() as s:
        (actual,) = await CompileInputsRepo(s).policy_actuals()
    assert (actual.indicator_id, actual.year, actual.value, actual.source) == ("PR1.RR2", 2025, 15.4, "VID")

    coordinator.send("/indicator pr3.rr4")  # the id as an argument; cancel with the button
    (card,) = await coordinator.replies(1)
    assert "PR3.RR4" in card.text
    coordinator.click_text("✖ Atcelt")
    (cancelled,) = await coordinator.replies(1)
    assert "pārtraukta" in cancelled.text


async def test_overdue_lists_missing_reports(harness: Harness) -> None:
    coordinator = await harness.register(1401, "TM", role="coordinator")
    anna = await harness.register(1402, "VPD", name="Anna")
    await file_1_3_3(anna)
    coordinator.send("/overdue")
    replies = await coordinator.replies(1)
    body = replies[0].text
    assert "Neiesniegtās atskaites" in body and "VPD" in body and "IeVP" in body
    assert "2025. gads" not in body  # closed since 31 March 2026: not chased (a coordinator can /reopen it)
    vpd_2026 = next(line for line in body.splitlines() if line.startswith("• 2026. gads, termiņš 31.12.2026"))
    assert "atlikusi 41 d." in vpd_2026  # 41 agrees like 1 (41 diena)


async def test_mystatus_shows_only_the_own_institution(harness: Harness) -> None:
    anna = await harness.register(1501, "VPD", name="Anna")
    janis = await harness.register(1502, "IeVP", name="Jānis")
    await file_1_3_3(anna)
    janis.send("/report 1.3.9")
    await janis.replies(1)
    janis.send("77")
    await janis.replies(1)
    janis.click_text("Izlaist ▶")
    await janis.replies(1)
    janis.click_text("✅ Apstiprināt")
    await janis.replies(1)

    anna.send("/mystatus")
    replies = await anna.replies(1)
    body = "\n".join(r.text for r in replies)
    assert "VPD" in body and "VPD: 1/30" in body
    assert "IeVP:" not in body and "TM:" not in body and "1.3.9" not in body and "77" not in body
    janis.send("/mystatus")
    (theirs,) = await janis.replies(1)
    assert "IeVP: 1/26" in theirs.text and "VPD:" not in theirs.text


async def test_contacts_and_strangers_cannot_use_coordinator_commands(harness: Harness) -> None:
    anna = await harness.register(1601, "VPD")
    for command in ("/summary", "/overdue", "/review", "/export", "/indicator"):
        anna.send(command)
        (reply,) = await anna.replies(1)
        assert "nav pieejama" in reply.text
    stranger = harness.server.user(1602)
    stranger.send("/summary")
    (reply,) = await stranger.replies(1)
    assert "neesat reģistrēts" in reply.text
    stranger.send("/mystatus")
    (reply,) = await stranger.replies(1)
    assert "neesat reģistrēts" in reply.text


async def test_coordinator_commands_in_the_menu(harness: Harness) -> None:
    await harness.register(1701, "TM", role="coordinator")
    await harness.register(1702, "VPD")
    await harness.server.idle()
    scoped = {
        c["scope"]["chat_id"]: [cmd["command"] for cmd in c["commands"]]
        for m, c in harness.server.calls
        if m == "setMyCommands" and c.get("scope", {}).get("type") == "chat"
    }
    assert {"summary", "overdue", "review", "export", "indicator", "mystatus"} <= set(scoped[1701])
    assert "mystatus" in scoped[1702] and "summary" not in scoped[1702]


async def test_validation_warning_on_the_summary_card_does_not_block(harness: Harness) -> None:
    anna = await harness.register(1801, "VPD")
    anna.send("/report 1.1.1")
    await anna.replies(1)
    anna.click_text("procesā")
    await anna.replies(1)
    anna.send("01.10.2026")
    await anna.replies(1)
    anna.send("400")  # 1.1.1.2: people trained, target 120; 400 > 3 × 120
    await anna.replies(1)
    anna.click_text("Izlaist ▶")
    (card,) = await anna.replies(1)
    assert "Lūdzu, pārbaudiet" in card.text
    assert "kopējā vērtība 400 vairāk nekā 3 reizes pārsniedz mērķi (120)" in card.text
    anna.click_text("✅ Apstiprināt")
    (receipt,) = await anna.replies(1)
    assert "Atskaite iesniegta" in receipt.text


async def test_summary_card_warning_counts_the_other_institutions_reports(harness: Harness) -> None:
    """TM reported 300 trained on 1.1.1 for 2025; VPD's 100 for 2026 takes the row (target 120)
    to 400 > 3 × 120 — the card says so, as the compiled summary would."""
    async with harness.db.session() as s:
        repos = Repos(s)
        m = await repos.catalog.measure("1.1.1")
        tm = await repos.people.institution("TM")
        await repos.reports.submit(
            measure_id=m.id, institution_id=tm.id, year=2025, answers={"1.1.1.2": 300}, contact_id=None
        )
    anna = await harness.register(1901, "VPD")
    anna.send("/report 1.1.1")
    await anna.replies(1)
    anna.click_text("procesā")
    await anna.replies(1)
    anna.send("01.10.2026")
    await anna.replies(1)
    anna.send("100")
    await anna.replies(1)
    anna.click_text("Izlaist ▶")
    (card,) = await anna.replies(1)
    assert "kopējā vērtība 400 " in card.text and "mērķi (120)" in card.text


async def _review_state(url: str, rid: int) -> str:
    """The review state as another connection sees it (what is committed)."""
    db = Database(url)
    try:
        async with db.session() as s:
            return (await Repos(s).reports.view(rid)).review_state
    finally:
        await db.dispose()


async def test_the_contact_is_told_only_after_the_review_is_committed(
    harness: Harness, sqlite_url: str
) -> None:
    coordinator = await harness.register(2001, "TM", role="coordinator")
    anna = await harness.register(2002, "VPD", name="Anna")
    await file_1_3_3(anna)
    (rid,) = await report_ids(harness)
    coordinator.send("/review")
    await coordinator.replies(1)
    harness.server.delay("sendMessage", 1.5)  # messages wait at the server: time to look at the database
    seen = len(harness.server.calls)
    coordinator.click_text(f"✅ Pieņemt Nr. {rid}")
    for _ in range(500):
        calls = harness.server.calls[seen:]
        if any(m == "sendMessage" and c.get("chat_id") == anna.id for m, c in calls):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the contact was never notified")
    assert await _review_state(sqlite_url, rid) == "accepted"  # committed before the notice went out
    harness.server.delay("sendMessage", None)
    (notice,) = await anna.replies(1)
    assert "pieņemta" in notice.text


async def test_a_contact_who_blocked_the_bot_does_not_undo_the_review(
    harness: Harness, sqlite_url: str
) -> None:
    coordinator = await harness.register(2101, "TM", role="coordinator")
    anna = await harness.register(2102, "VPD", name="Anna")
    await file_1_3_3(anna)
    (rid,) = await report_ids(harness)
    harness.server.block(anna.id)  # TelegramForbiddenError on the notice
    coordinator.send("/review")
    await coordinator.replies(1)
    coordinator.click_text(f"✅ Pieņemt Nr. {rid}")
    done, _ = await coordinator.replies(2)
    assert f"Atskaite Nr. {rid} pieņemta" in done.text
    assert await _review_state(sqlite_url, rid) == "accepted"


async def test_the_second_coordinator_hears_who_reviewed_first(harness: Harness) -> None:
    first = await harness.register(2201, "TM", role="coordinator", name="Ilze")
    second = await harness.register(2202, "TM", role="coordinator", name="Second", language_code="en")
    anna = await harness.register(2203, "VPD", name="Anna")
    await file_1_3_3(anna)
    (rid,) = await report_ids(harness)
    first.send("/review")
    await first.replies(1)
    second.send("/review")
    (listing,) = await second.replies(1)
    first.click_text(f"✅ Pieņemt Nr. {rid}")
    await first.replies(2)
    second.click_text(listing.button_texts[1], message_id=listing.message_id)  # "Return" on the old list
    await harness.server.idle()
    assert (
        second.callback_answers[-1]["text"]
        == "This revision of the report has already been reviewed by Ilze."
    )
    async with harness.db.session() as s:
        assert (await Repos(s).reports.view(rid)).review_state == "accepted"


async def _files_queued(harness: Harness, chat_id: int) -> list[Outbox]:
    async with harness.db.session() as s:
        day = dt.timedelta(days=1)
        rows = await OutboxRepo(s).for_period([KIND_FILE], NOW - day, NOW + day)
    return [r for r in rows if r.chat_id == chat_id]


async def test_summary_and_export_files_go_through_the_outbox(harness: Harness) -> None:
    coordinator = await harness.register(1301, "TM", role="coordinator")
    anna = await harness.register(1302, "VPD", name="Anna")
    await file_1_3_3(anna)
    coordinator.send("/export")
    first = await coordinator.replies(2, timeout=10)
    coordinator.send("/export")  # asked again: sent again
    second = await coordinator.replies(2, timeout=10)
    coordinator.send("/summary 2026")
    summary, *files = await coordinator.replies(4, timeout=20)
    assert summary.method == "sendMessage" and [o.method for o in files] == ["sendDocument"] * 3

    rows = await _files_queued(harness, 1301)
    assert len(rows) == 7 and len({r.dedup_key for r in rows}) == 7
    assert all(r.status == OutboxStatus.SENT for r in rows), [(r.status, r.last_error) for r in rows]
    # each file is the row the sender sent: same order, names and caption (on the last file)
    delivered = [*first, *second, *files]
    assert [r.telegram_message_id for r in rows] == [o.message_id for o in delivered]
    assert [r.payload["filename"] for r in rows] == [o.document_name for o in delivered]
    assert [bool(r.payload.get("caption")) for r in rows] == [False, True, False, True, False, False, True]
    assert "1 redakcija" in second[1].text
    assert files[-1].text == rows[-1].payload["caption"]
    for row in rows:  # the files wait where scheduled compilations keep theirs (resobot purge)
        assert Path(row.payload["path"]).is_relative_to(harness.services.settings.compiled_dir)


def test_routers_send_no_files_themselves() -> None:
    """Files go out through the outbox (KIND_FILE rows), never from a handler directly."""
    for path in Path("bot/routers").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "send_document" not in source and "BufferedInputFile" not in source, path
