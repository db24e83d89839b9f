"""End to end: the real bot, polling the fake Bot API, scripted users."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
import time_machine

from reporting_forms.catalog import Catalog
from storage.db import Database
from storage.repositories import Repos
from tests.chat_harness import Harness, prepare_database, running_bot
from tests.fakebotapi import FakeBotAPI

NOW = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def frozen_clock():
    with time_machine.travel(NOW, tick=True):
        yield


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def harness(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog, frozen_clock
) -> AsyncIterator[Harness]:
    await prepare_database(sqlite_url, catalog)
    async with running_bot(server, sqlite_url, catalog) as h:
        yield h


async def reports(db: Database):
    async with db.session() as s:
        return await Repos(s).reports.views()


async def test_registration_with_a_good_code(harness: Harness) -> None:
    code = await harness.invite("VPD")
    user = harness.server.user(501, first_name="Līga")
    user.send(f"/start {code}")
    (reply,) = await user.replies(1)
    assert "Sveicināti, Līga" in reply.text and "VPD" in reply.text
    await harness.server.idle()
    scoped = [
        c
        for m, c in harness.server.calls
        if m == "setMyCommands" and "scope" in c and c["scope"].get("type") == "chat"
    ]
    assert scoped and {"report", "myreports"} <= {c["command"] for c in scoped[-1]["commands"]}
    user.send(f"/start {code}")  # a used code, but the user is registered: says so, binds nothing new
    (again,) = await user.replies(1)
    assert "jau ir izmantots" in again.text


async def test_bad_codes_bind_nothing_and_are_slowed_down(harness: Harness) -> None:
    user = harness.server.user(502)
    for _ in range(3):
        user.send("/start WRONGCODE")
        (reply,) = await user.replies(1)
        assert "nav derīgs" in reply.text
    good = await harness.invite("VPD")
    user.send(f"/start {good}")  # even a good code waits after three wrong ones
    (reply,) = await user.replies(1)
    assert "Pārāk daudz nepareizu kodu" in reply.text
    async with harness.db.session() as s:
        assert await Repos(s).people.contact_by_telegram(502) is None


async def test_expired_code(harness: Harness) -> None:
    code = await harness.invite("IeVP", expires_in=dt.timedelta(days=1), now=NOW - dt.timedelta(days=2))
    user = harness.server.user(503)
    user.send(f"/start {code}")
    (reply,) = await user.replies(1)
    assert "derīguma termiņš ir beidzies" in reply.text


async def test_full_report_every_kind_with_back_skip_edit(harness: Harness) -> None:
    """IeVP reports on 1.1.5: a count, two milestones with dates, people trained, a comment."""
    user = await harness.register(601, "IeVP", name="Jānis")
    user.send("/report 1.1.5")
    (q1,) = await user.replies(1)
    assert "1.1.5" in q1.text and "jautājums 1 no 7" in q1.text
    assert "Mērķis 2027. gadā: 2" in q1.text and "Izlaist ▶" in q1.button_texts

    user.send("1,5")  # a count refuses decimals, asks again
    notice, again = await user.replies(2)
    assert "veselu skaitli" in notice.text and "jautājums 1 no 7" in again.text
    user.send("1")
    (q2,) = await user.replies(1)
    assert "jautājums 2 no 7" in q2.text and "procesā" in q2.button_texts
    user.click_text("procesā")
    (q3,) = await user.replies(1)
    assert "DD.MM.GGGG" in q3.text
    user.send("31.13.2026")
    notice, again = await user.replies(2)
    assert "formātā DD.MM.GGGG" in notice.text
    user.send("30.06.2027")
    (q4,) = await user.replies(1)
    assert "jautājums 4 no 7" in q4.text
    user.click_text("◀ Atpakaļ")  # back to the date
    (back,) = await user.replies(1)
    assert "Pašreizējā atbilde: 30.06.2027" in back.text
    user.send("30.06.2027")
    await user.replies(1)
    user.click_text("Izlaist ▶")  # 1.1.5.3 skipped: its date is not asked
    (q6,) = await user.replies(1)
    assert "jautājums 6 no 7" in q6.text and "273" in q6.text
    user.send("1 200")
    (q7,) = await user.replies(1)
    assert "Komentārs" in q7.text
    user.send("Apmācības <b>notiek</b> & turpinās")
    (summary,) = await user.replies(1)
    assert "Atskaites kopsavilkums" in summary.text
    assert "1 200" in summary.raw_text.replace("\xa0", " ")
    assert "&lt;b&gt;notiek&lt;/b&gt; &amp; turpinās" in summary.raw_text  # user text is escaped
    user.click_text("✏️ 1")  # edit the first field from the summary
    (edit,) = await user.replies(1)
    assert "jautājums 1 no 7" in edit.text
    user.send("2")
    (summary2,) = await user.replies(1)
    assert "Atskaites kopsavilkums" in summary2.text
    user.click_text("✅ Apstiprināt")
    (receipt,) = await user.replies(1)
    assert "Atskaite iesniegta" in receipt.text and "redakcija 1" in receipt.text
    (view,) = await reports(harness.db)
    assert view.institution == "IeVP" and view.revision == 1 and view.author == "Jānis"
    assert view.answers() == {
        "1.1.5.1": 2,
        "1.1.5.2": "in_progress",
        "1.1.5.2.date": "2027-06-30",
        "1.1.5.4": 1200,
        "comment": "Apmācības <b>notiek</b> & turpinās",
    }


async def test_percent_and_text_kinds(harness: Harness) -> None:
    user = await harness.register(602, "VPD")
    user.send("/report 3.1.5")  # two percent rows
    await user.replies(1)
    user.send("120")
    notice, _ = await user.replies(2)
    assert "no 0 līdz 100" in notice.text
    user.send("61,5 %")
    await user.replies(1)
    user.send("3,25")
    await user.replies(1)
    user.click_text("Izlaist ▶")  # no comment
    (summary,) = await user.replies(1)
    assert "61,5 %" in summary.text and "3,25 %" in summary.text
    user.click_text("✅ Apstiprināt")
    await user.replies(1)
    user.send("/report 3.1.3")  # an e-index text row
    await user.replies(1)
    user.send("x" * 1001)
    notice, _ = await user.replies(2)
    assert "pārāk garš" in notice.text
    user.send("E-indekss 2026. gadā: 58")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    await user.replies(1)
    user.click_text("✅ Apstiprināt")
    await user.replies(1)
    answers = {v.measure_code: v.answers() for v in await reports(harness.db)}
    assert answers == {
        "3.1.5": {"3.1.5.1": "61.5", "3.1.5.2": "3.25"},
        "3.1.3": {"3.1.3.1": "E-indekss 2026. gadā: 58"},
    }


async def test_cancel_and_nothing_reported(harness: Harness) -> None:
    user = await harness.register(603, "VPD")
    user.send("/report 1.1.1")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    await user.replies(1)
    user.click_text("✅ Apstiprināt")
    notice, again = await user.replies(2)
    assert "neviena rādītāja" in notice.text and "Atskaites kopsavilkums" in again.text
    user.send("/cancel")
    (bye,) = await user.replies(1)
    assert "pārtraukta" in bye.text
    assert await reports(harness.db) == []


async def test_measure_picker_groups_pages_and_typed_id(harness: Harness) -> None:
    user = await harness.register(604, "VPD")
    user.send("/report")
    (picker,) = await user.replies(1)
    assert "Izvēlieties pasākumu" in picker.text and "1.1. uzdevums." in picker.text
    assert "1. lapa no" in picker.text and "▶" in picker.button_texts
    user.click_text("▶")
    (page2,) = await user.replies(1)
    assert page2.is_edit and "2. lapa no" in page2.text
    user.send("1.1.5")  # IeVP's measure: not VPD's
    notice, _ = await user.replies(2)
    assert "nav atrasts" in notice.text
    user.send("1.3.3")
    (q1,) = await user.replies(1)
    assert "1.3.3" in q1.text and "180" in q1.text


async def test_bad_input_of_every_sort_gets_the_same_question(harness: Harness) -> None:
    user = await harness.register(605, "VPD")
    user.send("/report 1.1.1")
    (q1,) = await user.replies(1)
    for act in (user.send_sticker, user.send_photo, user.send_voice):
        act()
        notice, again = await user.replies(2)
        assert "teksta ziņu" in notice.text and again.text == q1.text
    user.edit(q1.message_id - 1, "labots")  # the user edits their /report message
    notice, again = await user.replies(2)
    assert "Labotas ziņas" in notice.text and again.text == q1.text
    user.send("/nonsense")
    (again,) = await user.replies(1)
    assert again.text == q1.text
    user.click_text("procesā")
    await user.replies(1)
    # a button on the old question message: stale, the current question is shown again
    old = next(o for o in user.transcript if o.message_id == q1.message_id)
    user.click(old.callback_data[0], message_id=q1.message_id)
    notice_or_q = await user.replies(1)
    assert "DD.MM.GGGG" in notice_or_q[0].text


async def test_duplicate_update_is_handled_once(harness: Harness) -> None:
    user = await harness.register(606, "VPD")
    user.send("/report 1.1.1")
    await user.replies(1)
    user.click_text("procesā")
    await user.replies(1)
    harness.server.duplicate_last_update()
    await user.assert_no_replies(0.5)


async def test_unregistered_user_gets_nothing_but_start_and_help(harness: Harness) -> None:
    user = harness.server.user(700, language_code="en")
    for command in ("/report", "/myreports", "/language", "/cancel", "1.1.5", "/report 1.1.5"):
        user.send(command)
        (reply,) = await user.replies(1)
        assert "not registered" in reply.text
        assert "1.1.5" not in reply.text
    user.send("/help")
    (help_,) = await user.replies(1)
    assert "invitation link" in help_.text


async def test_other_institution_cannot_see_or_correct(harness: Harness) -> None:
    ievp = await harness.register(801, "IeVP")
    ievp.send("/report 1.1.10")
    await ievp.replies(1)
    ievp.click_text("izpildīts")
    await ievp.replies(1)
    ievp.send("15.09.2026")
    await ievp.replies(1)
    ievp.send("150")
    await ievp.replies(1)
    ievp.click_text("Izlaist ▶")
    await ievp.replies(1)
    ievp.click_text("✅ Apstiprināt")
    await ievp.replies(1)
    vpd = await harness.register(802, "VPD")
    vpd.send("/myreports")
    (mine,) = await vpd.replies(1)
    assert "vēl nav iesniegtu" in mine.text
    vpd.send("/report 1.1.10")
    notice, _ = await vpd.replies(2)
    assert "nav atrasts" in notice.text
    ievp.send("/myreports")
    (listing,) = await ievp.replies(1)
    vpd_click = listing.callback_data[0]  # VPD presses IeVP's correction button
    update = harness.server._queue_callback(vpd, ievp.message(listing.message_id), vpd_click)
    await harness.server.idle()
    query_id = update["callback_query"]["id"]
    calls = [
        c
        for m, c in harness.server.calls
        if m == "answerCallbackQuery" and c.get("callback_query_id") == query_id
    ]
    assert calls and "vairs nav aktīva" in calls[-1].get("text", "")


async def test_language_switch(harness: Harness) -> None:
    user = await harness.register(803, "VPD")
    user.send("/language")
    (reply,) = await user.replies(1)
    assert "English" in reply.text
    user.send("/report 1.1.1")
    (q,) = await user.replies(1)
    assert "question 1 of" in q.text and "Skip ▶" in q.button_texts


async def test_restart_mid_form_resumes_where_the_user_left_off(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog, frozen_clock
) -> None:
    await prepare_database(sqlite_url, catalog)
    async with running_bot(server, sqlite_url, catalog) as first:
        user = await first.register(901, "VPD")
        user.send("/report 1.1.1")
        await user.replies(1)
        user.click_text("procesā")
        await user.replies(1)
        user.send("01.10.2026")
        (q3,) = await user.replies(1)
        assert "jautājums 3 no 4" in q3.text
    # the process is gone: new Database, new Dispatcher, nothing in memory
    async with running_bot(server, sqlite_url, catalog) as second:
        user.send("45")  # the answer to question 3, typed after the restart
        (q4,) = await user.replies(1)
        assert "jautājums 4 no 4" in q4.text
        user.send("/report")  # /report offers to continue the open draft
        (offer,) = await user.replies(1)
        assert "nepabeigts atskaites melnraksts" in offer.text and "1.1.1" in offer.text
        user.click_text("Turpināt melnrakstu")
        (again,) = await user.replies(1)
        assert "jautājums 4 no 4" in again.text
        user.send("izlaist")  # typing a button's label works like pressing it
        (summary,) = await user.replies(1)
        assert "procesā" in summary.text and "01.10.2026" in summary.text and "45" in summary.text
        user.click_text("✅ Apstiprināt")
        await user.replies(1)
        (view,) = await reports(second.db)
        assert view.answers() == {"1.1.1.1": "in_progress", "1.1.1.1.date": "2026-10-01", "1.1.1.2": 45}


async def test_correction_makes_a_new_revision_with_history(harness: Harness) -> None:
    user = await harness.register(902, "VPD", name="Inese")
    user.send("/report 1.3.3")
    await user.replies(1)
    for value in ("30", "10", "20", "40"):
        user.send(value)
        await user.replies(1)
    user.click_text("Izlaist ▶")
    await user.replies(1)
    user.click_text("✅ Apstiprināt")
    (receipt,) = await user.replies(1)
    assert "redakcija 1" in receipt.text
    user.send("/myreports")
    (listing,) = await user.replies(1)
    assert "1.3.3" in listing.text and "redakcija 1" in listing.text and "gaida pārskatīšanu" in listing.text
    report_id = (await reports(harness.db))[0].id
    user.click_text(f"Labot Nr. {report_id}")
    notice, summary = await user.replies(2)
    assert "labojat iesniegto atskaiti" in notice.text and "Atskaites kopsavilkums" in summary.text
    user.click_text("✏️ 2")
    await user.replies(1)
    user.send("12")
    await user.replies(1)
    user.click_text("✅ Apstiprināt")
    (receipt2,) = await user.replies(1)
    assert "redakcija 2" in receipt2.text
    user.send("/myreports")
    await user.replies(1)
    user.click_text(f"Vēsture Nr. {report_id}")
    (history,) = await user.replies(1)
    assert "Redakcija 1" in history.text and "Redakcija 2" in history.text
    assert "1.3.3.2: 10 → 12" in history.text and "Inese" in history.text
    (view,) = await reports(harness.db)
    assert view.revision == 2 and view.answers()["1.3.3.2"] == 12


async def test_report_with_the_same_period_again_opens_the_correction(harness: Harness) -> None:
    user = await harness.register(903, "IeVP")
    user.send("/report 1.3.9")
    await user.replies(1)
    user.send("100")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    await user.replies(1)
    user.click_text("✅ Apstiprināt")
    await user.replies(1)
    user.send("/report 1.3.9")
    notice, summary = await user.replies(2)
    assert "redakcija 1" in notice.text and "100" in summary.text


async def test_previous_year_stays_open_until_31_march(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog
) -> None:
    await prepare_database(sqlite_url, catalog)
    with time_machine.travel(dt.datetime(2027, 2, 10, 9, tzinfo=dt.UTC), tick=True):
        async with running_bot(server, sqlite_url, catalog) as h:
            user = await h.register(904, "VPD")
            user.send("/report 1.1.1")
            (choose,) = await user.replies(1)
            assert "Par kuru gadu ziņojat?" in choose.text
            assert choose.button_texts[:2] == ["2027. gads", "2026. gads"]
            user.click_text("2026. gads")
            (q1,) = await user.replies(1)
            assert "2026. gads · jautājums 1 no 4" in q1.text
    with time_machine.travel(dt.datetime(2027, 4, 1, 9, tzinfo=dt.UTC), tick=True):
        async with running_bot(server, sqlite_url, catalog) as h:
            user = await h.register(905, "VPD")
            user.send("/report 1.1.1")
            (q1,) = await user.replies(1)
            assert "2027. gads · jautājums 1 no 4" in q1.text  # only one period open: no question


async def test_groups_get_no_report_data(harness: Harness) -> None:
    member = await harness.register(906, "VPD")
    harness.server.queue_raw(
        {
            "message": {
                "message_id": 1,
                "date": 1795000000,
                "text": "/report 1.1.1",
                "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
                "chat": {"id": -1001, "type": "supergroup", "title": "TM darba grupa"},
                "from": member.as_dict,
            }
        }
    )
    await harness.server.idle()
    (reply,) = [o for o in harness.server.outputs if o.chat_id == -1001]
    assert "privātā sarakstē" in reply.text and "1.1.1" not in reply.text
