"""End to end: the real bot, polling the fake Bot API, scripted users."""

from __future__ import annotations

import datetime as dt

import time_machine

from reporting_forms.catalog import Catalog
from storage.db import Database
from storage.repositories import Repos
from tests.chat_harness import CHAT_NOW, Harness, prepare_database, running_bot
from tests.fakebotapi import FakeBotAPI

NOW = CHAT_NOW


async def reports(db: Database):
    async with db.session() as s:
        return await Repos(s).reports.views()


async def test_registration_with_a_good_code(harness: Harness) -> None:
    code = await harness.invite("VPD")
    user = harness.server.user(501, first_name="Līga")
    user.send(f"/start {code}")
    (reply,) = await user.replies(1)
    assert "Sveicināti, Līga" in reply.text and "VPD" in reply.text
    # no masculine-only "reģistrēts", no "kā VPD (…) kontaktpersona" needing a genitive
    assert "Reģistrācija pabeigta." in reply.text and "reģistrēts" not in reply.text
    assert "Iestāde: Valsts probācijas dienests (VPD); loma: kontaktpersona." in reply.text
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
    assert "Datums 31.13.2026 neeksistē: mēnesis var būt no 1 līdz 12" in notice.text
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
    assert "Cik cilvēku ir apmācīts 2026. gadā?" in q6.text
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
    # one button per task, with its number of measures; a task leads to its measures
    assert picker.button_texts[0].startswith("1.1 ") and picker.button_texts[0].endswith("(6)")
    assert "6 pasākumi" in picker.text and "1 pasākums" in picker.text
    assert "1.1.1" not in " ".join(picker.button_texts)
    user.click_text(picker.button_texts[0])
    (task,) = await user.replies(1)
    assert task.is_edit and "1.1. uzdevums." in task.text and "1.2. uzdevums." not in task.text
    assert [b.split(" ")[0] for b in task.button_texts[:6]] == [
        "1.1.1",
        "1.1.2",
        "1.1.3",
        "1.1.4",
        "1.1.7",
        "1.1.9",
    ]
    assert task.button_texts[6:] == ["◀ Uzdevumi", "✖ Atcelt"]
    user.click_text("◀ Uzdevumi")
    (tasks_again,) = await user.replies(1)
    assert tasks_again.is_edit and tasks_again.text == picker.text
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
    notice, again = await user.replies(2)
    assert "/nonsense nav pieejama" in notice.text and again.text == q1.text
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
    # labels and values as on the summary card, local time (09:30 UTC is 11:30 in Riga)
    assert (
        "Psihoterapeita konsultācijas 60 probācijas klientiem (dzimumnoziedzniekiem): 10 → 12" in history.text
    )
    assert "Inese" in history.text and "Redakcija 2 — 20.11.2026 11:30" in history.text
    assert "1.3.3.2" not in history.text
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


# ------------------------------------------------------------------ audit: every metric kind, earlier years


async def submit_directly(
    harness: Harness, institution: str, measure: str, year: int, answers: dict, name: str = "Vecais"
) -> int:
    """A report stored as the repository stores a confirmed one (earlier years are closed in chat)."""
    async with harness.db.session() as s:
        repos = Repos(s)
        inst = await repos.people.institution(institution)
        who = await repos.people.add_contact(display_name=name, institution_id=inst.id)
        m = await repos.catalog.measure(measure)
        report = await repos.reports.submit(
            measure_id=m.id, institution_id=inst.id, year=year, answers=answers, contact_id=who.id
        )
        return report.id


async def test_full_report_events_held_and_sessions(harness: Harness) -> None:
    """VPD's 2.1.1: a count, people trained, four events_held rows and two sessions rows."""
    user = await harness.register(1101, "VPD")
    user.send("/report 2.1.1")
    (q1,) = await user.replies(1)
    assert "jautājums 1 no 10" in q1.text and "Mērķis 2027. gadā: 7 mācību kursi" in q1.text
    values = {"2.1.1.1": 3, "2.1.1.2": 40, "2.1.1.3": 60, "2.1.1.4": 1, "2.1.1.5": 0}
    for key, value in values.items():
        user.send(str(value))
        (question,) = await user.replies(1)
        if key == "2.1.1.3":  # the next one is the first events_held row
            assert "Cik aktivitāšu notika 2026. gadā? (konferences)" in question.text
    assert "Mērķis 2027. gadā: 1 konference" in question.text  # 2.1.1.6: one, in the singular
    assert "jautājums 6 no 10" in question.text
    user.send("1")
    await user.replies(1)
    user.send("2")
    (sessions,) = await user.replies(1)
    assert "Cik sesiju notika 2026. gadā? (sesijas)" in sessions.text
    assert "Mērķis 2027. gadā: 318 sesijas" in sessions.text
    user.send("1 200")  # 318 is the 2027 target; more than three times it: a warning, not a block
    await user.replies(1)
    user.send("321")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    (summary,) = await user.replies(1)
    assert "Atskaites kopsavilkums" in summary.text
    assert "kopējā vērtība 1 200 vairāk nekā 3 reizes pārsniedz mērķi (318)" in summary.text.replace(
        "\xa0", " "
    )
    user.click_text("✅ Apstiprināt")
    (receipt,) = await user.replies(1)
    assert "Atskaite iesniegta" in receipt.text
    (view,) = await reports(harness.db)
    assert view.answers() == {
        **values,
        "2.1.1.6": 1,
        "2.1.1.7": 2,
        "2.1.1.8": 1200,
        "2.1.1.9": 321,
    }


async def test_full_report_participants(harness: Harness) -> None:
    """IeVP's 1.3.8: events held and participants."""
    user = await harness.register(1102, "IeVP")
    user.send("/report 1.3.8")
    (q1,) = await user.replies(1)
    assert "Cik aktivitāšu notika 2026. gadā? (pasākumi)" in q1.text and "27 pasākumi" in q1.text
    user.send("12")
    (q2,) = await user.replies(1)
    assert "Cik dalībnieku piedalījās 2026. gadā? (ieslodzītie)" in q2.text
    user.send("1,5")  # participants are whole people
    notice, again = await user.replies(2)
    assert "veselu skaitli" in notice.text and again.text == q2.text
    user.send("140")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    await user.replies(1)
    user.click_text("✅ Apstiprināt")
    await user.replies(1)
    (view,) = await reports(harness.db)
    assert (view.institution, view.answers()) == ("IeVP", {"1.3.8.1": 12, "1.3.8.2": 140})


async def test_question_shows_what_earlier_years_reported(harness: Harness) -> None:
    await submit_directly(harness, "VPD", "1.3.3", 2025, {"1.3.3.1": 30, "1.3.3.2": 1200})
    await submit_directly(harness, "IeVP", "1.3.9", 2025, {"1.3.9.1": 999})  # another institution's
    user = await harness.register(1103, "VPD")
    user.send("/report 1.3.3")
    (q1,) = await user.replies(1)
    assert "Iepriekš ziņots: 2025. g. — 30 (kopā 30, 17 % no mērķa)" in q1.text
    user.send("40")
    (q2,) = await user.replies(1)
    assert "Iepriekš ziņots: 2025. g. — 1 200" in q2.text.replace("\xa0", " ")
    user.send("5")
    (q3,) = await user.replies(1)
    assert "Iepriekš ziņots" not in q3.text  # nothing reported on 1.3.3.3 before


# ------------------------------------------------------------------ audit: /cancel, /help, /language mid-form


async def test_cancel_mid_question(harness: Harness) -> None:
    user = await harness.register(1104, "VPD")
    user.send("/report 1.1.1")
    await user.replies(1)
    user.click_text("procesā")
    (date_question,) = await user.replies(1)
    assert "DD.MM.GGGG" in date_question.text
    user.send("/cancel")
    (bye,) = await user.replies(1)
    assert "pārtraukta" in bye.text and "Melnraksts dzēsts" in bye.text
    user.send("30.06.2026")  # no longer an answer to anything
    (reply,) = await user.replies(1)
    assert "nesapratu" in reply.text
    user.send("/report 1.1.1")  # a fresh form, not the old draft
    (q1,) = await user.replies(1)
    assert "jautājums 1 no 4" in q1.text and "Pašreizējā atbilde" not in q1.text
    assert await reports(harness.db) == []


async def test_help_mid_form_explains_the_step_and_asks_it_again(harness: Harness) -> None:
    user = await harness.register(1105, "VPD")
    user.send("/report 1.1.1")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    (question,) = await user.replies(1)
    assert "Cik cilvēku ir apmācīts 2026. gadā?" in question.text
    user.send("/help")
    step_help, again = await user.replies(2)
    assert "Palīdzība šajā solī" in step_help.text and "veselu skaitli" in step_help.text
    assert again.text == question.text and again.button_texts == question.button_texts
    user.send("45")  # the question is still the one to answer
    (comment,) = await user.replies(1)
    assert "Komentārs" in comment.text
    user.send("/help")
    step_help, again = await user.replies(2)
    assert "līdz 1000 rakstzīmēm" in step_help.text and again.text == comment.text
    user.send("/cancel")
    await user.replies(1)
    user.send("/help")  # outside a report: the general help, nothing asked again
    (general,) = await user.replies(1)
    assert "/myreports" in general.text
    await user.assert_no_replies(0.3)


async def test_language_mid_form_switches_and_asks_the_same_question(harness: Harness) -> None:
    user = await harness.register(1106, "VPD")
    user.send("/report 1.1.1")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    await user.replies(1)
    user.send("/language")
    switched, question = await user.replies(2)
    assert "English" in switched.text
    assert "question 3 of 4" in question.text and "How many people were trained in 2026?" in question.text
    assert question.button_texts == ["◀ Back", "Skip ▶", "✖ Cancel"]
    user.send("45")
    (comment,) = await user.replies(1)
    assert "A comment on the measure" in comment.text
    user.send("/language")
    switched, again = await user.replies(2)
    assert "latviešu" in switched.text and "Komentārs" in again.text


# ------------------------------------------------------------------ audit: long messages, the error path


async def file_report(user, measure: str, answers: list[str], comment: str | None = None) -> None:
    """/report MEASURE, type the answers, the comment (or skip it), confirm."""
    user.send(f"/report {measure}")
    await user.replies(1)
    for answer in answers:
        user.send(answer)
        await user.replies(1)
    if comment is None:
        user.click_text("Izlaist ▶")
    else:
        user.send(comment)
    await user.replies(1)
    user.click_text("✅ Apstiprināt")
    (receipt,) = await user.replies(1)
    assert "Atskaite iesniegta" in receipt.text


async def test_long_history_comes_in_parts(harness: Harness) -> None:
    user = await harness.register(1107, "VPD")
    await file_report(user, "1.3.11", ["4"], "a" * 1000)
    for letter in "bc":  # two corrections of the comment, 1000 characters each
        user.send("/report 1.3.11")
        await user.replies(2)  # "you are correcting", the summary
        user.click_text("✏️ 2")
        await user.replies(1)
        user.send(letter * 1000)
        await user.replies(1)
        user.click_text("✅ Apstiprināt")
        await user.replies(1)
    user.send("/myreports")
    await user.replies(1)
    report_id = (await reports(harness.db))[0].id
    user.click_text(f"Vēsture Nr. {report_id}")
    first, second = await user.replies(2)
    assert all(len(part.text) <= 4096 for part in (first, second))
    whole = first.text + "\n" + second.text
    assert all(f"Redakcija {n}" in whole for n in (1, 2, 3))
    assert whole.count("a" * 1000) == 2 and whole.count("b" * 1000) == 2 and whole.count("c" * 1000) == 1
    await user.assert_no_replies(0.3)


async def test_a_failing_button_still_gets_the_failure_message(harness: Harness) -> None:
    user = await harness.register(1108, "VPD")
    await file_report(user, "1.3.11", ["4"])
    user.send("/myreports")
    await user.replies(1)
    report_id = (await reports(harness.db))[0].id
    harness.server.fail_next("sendMessage", 400, description="Bad Request: message is too long")
    user.click_text(f"Vēsture Nr. {report_id}")  # the button is answered, then sending fails
    (failure,) = await user.replies(1)
    assert "Diemžēl radās kļūda" in failure.text


# ------------------------------------------------------------------ audit: drafts are never lost or misfiled


async def test_correct_from_myreports_offers_the_open_draft_first(harness: Harness) -> None:
    user = await harness.register(1109, "VPD")
    await file_report(user, "1.3.11", ["4"])
    report_id = (await reports(harness.db))[0].id
    user.send("/report 1.1.1")  # a draft of another measure
    await user.replies(1)
    user.click_text("procesā")
    (date_question,) = await user.replies(1)
    user.send("/myreports")
    await user.replies(1)
    user.click_text(f"Labot Nr. {report_id}")
    (offer,) = await user.replies(1)
    assert "nepabeigts atskaites melnraksts" in offer.text and "1.1.1" in offer.text
    assert offer.button_texts == ["Turpināt melnrakstu", "Sākt no jauna"]
    user.click_text("Turpināt melnrakstu")
    (again,) = await user.replies(1)
    assert again.text == date_question.text  # the draft is as it was
    user.send("/myreports")
    await user.replies(1)
    user.click_text(f"Labot Nr. {report_id}")
    await user.replies(1)
    user.click_text("Sākt no jauna")
    deleted, correcting, summary = await user.replies(3)
    assert "Melnraksts dzēsts" in deleted.text and "labojat iesniegto atskaiti" in correcting.text
    assert "1.3.11" in summary.text and "Atskaites kopsavilkums" in summary.text


async def test_draft_of_the_former_institution_is_never_submitted(harness: Harness) -> None:
    user = await harness.register(1110, "VPD")
    user.send("/report 1.1.1")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    await user.replies(1)
    user.send("45")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    (summary,) = await user.replies(1)
    assert "Atskaites kopsavilkums" in summary.text
    user.send(f"/start {await harness.invite('IeVP')}")  # the contact moves to IeVP
    (welcome,) = await user.replies(1)
    assert "Ieslodzījuma vietu pārvalde" in welcome.text
    user.click_text("✅ Apstiprināt")  # the old card's button
    (refused,) = await user.replies(1)
    assert "citas iestādes vārdā" in refused.text and "IeVP" in refused.text and "dzēsts" in refused.text
    assert await reports(harness.db) == []
    user.send("45")  # the draft is gone: not an answer
    (reply,) = await user.replies(1)
    assert "nesapratu" in reply.text


async def test_draft_of_the_former_institution_is_dropped_on_resume(harness: Harness) -> None:
    user = await harness.register(1111, "VPD")
    user.send("/report 4.2.1")  # VPD and IeVP both report on 4.2.1
    await user.replies(1)
    user.send(f"/start {await harness.invite('IeVP')}")
    await user.replies(1)
    user.send("7")
    (refused,) = await user.replies(1)
    assert "citas iestādes vārdā" in refused.text
    user.send("/report 4.2.1")  # a fresh draft, now IeVP's
    (q1,) = await user.replies(1)
    assert "jautājums 1 no 2" in q1.text
    user.send("7")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    await user.replies(1)
    user.click_text("✅ Apstiprināt")
    await user.replies(1)
    (view,) = await reports(harness.db)
    assert (view.institution, view.answers()) == ("IeVP", {"4.2.1.1": 7})


async def test_text_at_the_draft_offer_gets_the_offer_again(harness: Harness) -> None:
    user = await harness.register(1112, "VPD")
    user.send("/report 1.1.1")
    (q1,) = await user.replies(1)
    user.send("/report")
    (offer,) = await user.replies(1)
    user.send("labdien")
    notice, again = await user.replies(2)
    assert "izvēlieties ar pogu" in notice.text and "teksta ziņu" not in notice.text
    assert again.text == offer.text and again.button_texts == ["Turpināt melnrakstu", "Sākt no jauna"]
    user.send_sticker()
    notice, again = await user.replies(2)
    assert "teksta ziņu" in notice.text and again.text == offer.text
    user.send("turpināt melnrakstu")  # the label typed works like the button
    (resumed,) = await user.replies(1)
    assert resumed.text == q1.text


async def test_text_at_the_year_choice_gets_the_choice_again(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog
) -> None:
    await prepare_database(sqlite_url, catalog)
    with time_machine.travel(dt.datetime(2027, 2, 10, 9, tzinfo=dt.UTC), tick=True):
        async with running_bot(server, sqlite_url, catalog) as h:
            user = await h.register(1113, "VPD")
            user.send("/report 1.1.1")
            (choose,) = await user.replies(1)
            user.send("pagājušais")
            notice, again = await user.replies(2)
            assert "izvēlieties gadu ar pogu vai ierakstiet" in notice.text
            assert again.text == choose.text and again.button_texts == choose.button_texts
            user.send("2026")  # a typed open year chooses it
            (q1,) = await user.replies(1)
            assert "2026. gads · jautājums 1 no 4" in q1.text


# ------------------------------------------------------------------ audit: dates, history, editing


async def test_dates_are_local_and_in_the_users_language(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog
) -> None:
    await prepare_database(sqlite_url, catalog)
    with time_machine.travel(dt.datetime(2026, 11, 20, 23, 30, tzinfo=dt.UTC), tick=True):
        async with running_bot(server, sqlite_url, catalog) as h:
            user = await h.register(1114, "VPD", name="Inese")
            await file_report(user, "1.3.11", ["4"])
            user.send("/myreports")
            (listing,) = await user.replies(1)
            assert "iesniedza Inese 21.11.2026 01:30" in listing.text  # 23:30 UTC is 01:30 in Riga
            user.send("/language")
            await user.replies(1)
            user.send("/myreports")
            (listing,) = await user.replies(1)
            assert "submitted by Inese on 21 Nov 2026, 01:30" in listing.text
            report_id = (await reports(h.db))[0].id
            user.click_text(f"History No. {report_id}")
            (history,) = await user.replies(1)
            assert "Revision 1 — 21 Nov 2026, 01:30, Inese" in history.text


async def test_history_shows_labels_and_values_as_the_summary_does(harness: Harness) -> None:
    user = await harness.register(1115, "VPD")
    user.send("/report 1.1.1")
    await user.replies(1)
    user.click_text("procesā")
    await user.replies(1)
    user.send("30.06.2027")
    await user.replies(1)
    user.send("1200")
    await user.replies(1)
    user.send("Sākts")
    await user.replies(1)
    user.click_text("✅ Apstiprināt")
    await user.replies(1)
    user.send("/report 1.1.1")
    await user.replies(2)
    user.click_text("✏️ 1")
    await user.replies(1)
    user.click_text("izpildīts")
    await user.replies(1)  # the date has an answer already: back to the card
    user.click_text("✏️ 2")
    await user.replies(1)
    user.send("15.10.2026")
    await user.replies(1)
    user.click_text("✅ Apstiprināt")
    await user.replies(1)
    user.send("/myreports")
    await user.replies(1)
    user.click_text(f"Vēsture Nr. {(await reports(harness.db))[0].id}")
    (history,) = await user.replies(1)
    body = history.text.replace("\xa0", " ")
    label = "Izstrādāts un ieviests jauns specializēts riska un vajadzību novērtēšanas instruments pie…"
    assert f"{label}: — → procesā" in body and f"{label}: procesā → izpildīts" in body
    assert "— datums: — → 30.06.2027" in body and "30.06.2027 → 15.10.2026" in body
    assert "Apmācīti līdz 120 darbinieki: — → 1 200" in body and "Komentārs: — → Sākts" in body
    assert "in_progress" not in body and "1.1.1.1" not in body and "comment" not in body


async def test_back_from_editing_the_first_field_returns_to_the_summary_unchanged(harness: Harness) -> None:
    user = await harness.register(1116, "VPD")
    user.send("/report 1.3.11")
    await user.replies(1)
    user.send("4")
    await user.replies(1)
    user.click_text("Izlaist ▶")
    (summary,) = await user.replies(1)
    user.click_text("✏️ 1")
    (edit,) = await user.replies(1)
    assert "jautājums 1 no 2" in edit.text and "◀ Atpakaļ" in edit.button_texts
    user.click_text("◀ Atpakaļ")
    (back,) = await user.replies(1)
    assert back.text == summary.text and "4" in back.text
    user.click_text("✅ Apstiprināt")
    await user.replies(1)
    (view,) = await reports(harness.db)
    assert view.answers() == {"1.3.11.1": 4}


# ------------------------------------------------------------------ audit: another institution's data


async def test_other_institution_cannot_use_history_or_reminder_buttons(harness: Harness) -> None:
    from bot.keyboards import ReminderCb
    from reporting_forms.payloads import ReminderPayload
    from storage.outbox import KIND_REMINDER, NewMessage, OutboxRepo

    ievp = await harness.register(1117, "IeVP")
    await file_report(ievp, "1.3.9", ["100"])
    ievp.send("/myreports")
    (listing,) = await ievp.replies(1)
    vpd = await harness.register(1118, "VPD")
    vpd.send("/myreports")
    (mine,) = await vpd.replies(1)
    assert "vēl nav iesniegtu" in mine.text and "1.3.9" not in mine.text
    history_button = listing.callback_data[1]  # IeVP's "Vēsture" button, pressed by VPD
    update = harness.server._queue_callback(vpd, ievp.message(listing.message_id), history_button)
    await harness.server.idle()
    query_id = update["callback_query"]["id"]
    answers = [c for m, c in harness.server.calls if m == "answerCallbackQuery"]
    assert any(
        c.get("callback_query_id") == query_id and "vairs nav aktīva" in c.get("text", "") for c in answers
    )
    await vpd.assert_no_replies(0.3)  # no history of another institution's report
    async with harness.db.session() as s:
        contact = await Repos(s).people.contact_by_telegram(1118)
        await OutboxRepo(s).add(
            NewMessage(
                dedup_key="test-reminder-1118",
                contact_id=contact.id,
                chat_id=1118,
                kind=KIND_REMINDER,
                payload=ReminderPayload(dt.date(2026, 11, 20)),
                send_at=NOW,
            )
        )
        row_id = (await OutboxRepo(s).by_key("test-reminder-1118")).id
    # "Ziņot tagad" for IeVP's 1.3.9 under VPD's own reminder: not theirs, nothing of it shown
    vpd_message = vpd.message(mine.message_id)
    harness.server._queue_callback(vpd, vpd_message, ReminderCb(a="r", o=row_id, m="1.3.9").pack())
    notice, picker = await vpd.replies(2)
    assert "nav atrasts" in notice.text and "Izvēlieties pasākumu" in picker.text
    assert "1.3.9" not in picker.text


async def test_a_command_with_a_space_before_it_is_a_command_mid_form_not_an_answer(harness: Harness) -> None:
    """The form's typed-text handlers are checked first (bot/routers/report.py): a text whose
    first word starts with "/" never reaches them, as aiogram's Command reads it."""
    user = await harness.register(1107, "VPD")
    user.send("/report 1.1.1")
    (question,) = await user.replies(1)
    user.send("  /summary")
    notice, again = await user.replies(2)
    assert "/summary nav pieejama, kamēr aizpildāt atskaiti" in notice.text
    assert again.text == question.text
    user.send(" /cancel")
    (bye,) = await user.replies(1)
    assert "pārtraukta" in bye.text and "Melnraksts dzēsts" in bye.text


async def test_another_command_mid_form_says_why_and_asks_again(harness: Harness) -> None:
    user = await harness.register(1106, "VPD")
    user.send("/report 1.1.1")
    (question,) = await user.replies(1)
    user.send("/summary")
    notice, again = await user.replies(2)
    assert "/summary nav pieejama, kamēr aizpildāt atskaiti" in notice.text and "/cancel" in notice.text
    assert again.text == question.text and again.button_texts == question.button_texts
    user.click_text("procesā")  # the form goes on where it was
    (date_question,) = await user.replies(1)
    assert "DD.MM.GGGG" in date_question.text
