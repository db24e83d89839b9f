"""Coordinator and contact fixes of issue 10 (item 5), end to end: the real bot polling the fake
Bot API. The review card, /indicator with a typed number, the review comment after a
resubmission, an impossible date, /cancel without a draft, and the picker's example."""

from __future__ import annotations

import contextlib

from storage.compile_inputs import CompileInputsRepo
from storage.repositories import Repos
from tests.chat_harness import Harness
from tests.test_coordinator_chat import file_1_3_3, report_ids


async def _correct_1_3_3_2(anna, rid: int, value: str) -> None:
    """Anna corrects 1.3.3.2 of report ``rid`` through /myreports (a new revision)."""
    anna.send("/myreports")
    await anna.replies(1)
    anna.click_text(f"Labot Nr. {rid}")
    await anna.replies(2)
    anna.click_text("✏️ 2")
    await anna.replies(1)
    anna.send(value)
    await anna.replies(1)
    anna.click_text("✅ Apstiprināt")
    (receipt,) = await anna.replies(1)
    assert "Atskaite iesniegta" in receipt.text


async def test_review_card_shows_indicator_text_target_value_and_the_change(harness: Harness) -> None:
    coordinator = await harness.register(3001, "TM", role="coordinator", name="Koordinators")
    anna = await harness.register(3002, "VPD", name="Anna")
    await file_1_3_3(anna)
    (rid,) = await report_ids(harness)

    coordinator.send("/review")
    (card,) = await coordinator.replies(1)
    lines = card.text.splitlines()
    # each indicator row: its id and text, then the 2027 target with its unit and the value
    assert "• 1.3.3.1 Narkologa/atkarību speciālista konsultācijas 180 probācijas klientiem" in lines
    assert "  mērķis 2027. gadā: 180 probācijas klienti · ziņots: 30" in lines
    assert "  mērķis 2027. gadā: 60 probācijas klienti · ziņots: 10" in lines
    assert "mainīts" not in card.text  # the first revision: nothing to compare with

    coordinator.click_text(f"↩️ Atgriezt Nr. {rid}")
    await coordinator.replies(1)
    coordinator.send("Precizējiet 1.3.3.2")
    await coordinator.replies(1)
    await anna.replies(1)
    await _correct_1_3_3_2(anna, rid, "12")

    coordinator.send("/review")
    (card2,) = await coordinator.replies(1)
    lines = card2.text.splitlines()
    assert "redakcija 2" in card2.text
    assert "  mērķis 2027. gadā: 60 probācijas klienti · ziņots: 12 (mainīts: 10 → 12)" in lines
    assert "  mērķis 2027. gadā: 180 probācijas klienti · ziņots: 30" in lines  # unchanged row


async def test_review_card_in_english_and_a_long_page_fits_one_message(harness: Harness) -> None:
    coordinator = await harness.register(3011, "TM", role="coordinator", language_code="en")
    async with harness.db.session() as s:
        repos = Repos(s)
        ievp = await repos.people.institution("IeVP")
        for code in ("2.1.1", "2.1.3", "2.1.2", "1.2.1", "3.1.2"):  # the measures with most rows
            m = await repos.catalog.measure(code)
            answers = {
                ind.code: ("in_progress" if ind.kind == "milestone" else 1)
                for ind in await repos.catalog.indicators(m.id)
                if ind.kind != "text"
            }
            await repos.reports.submit(
                measure_id=m.id, institution_id=ievp.id, year=2026, answers=answers, contact_id=None
            )
    coordinator.send("/review")
    (card,) = await coordinator.replies(1)
    assert "Reports waiting for review: 5" in card.text and "2.1.1" in card.text
    assert "target 2027:" in card.text and "reported:" in card.text
    assert len(card.text) <= 4096


async def test_indicator_takes_a_typed_1_as_the_value(harness: Harness) -> None:
    coordinator = await harness.register(3101, "TM", role="coordinator")
    coordinator.send("/indicator PR1.RR1")
    await coordinator.replies(1)
    coordinator.click_text("2025")
    (ask,) = await coordinator.replies(1)
    assert "faktisko vērtību 2025. gadā" in ask.text
    coordinator.send("1")
    (ask_source,) = await coordinator.replies(1)
    assert "datu avotu" in ask_source.text and "pārtraukta" not in ask_source.text
    coordinator.click_text("Izlaist ▶")
    (saved,) = await coordinator.replies(1)
    assert "Saglabāts: PR1.RR1 2025. gadā = 1" in saved.text
    async with harness.db.session() as s:
        (actual,) = await CompileInputsRepo(s).policy_actuals()
    assert (actual.indicator_id, actual.year, actual.value) == ("PR1.RR1", 2025, 1)


async def test_the_old_return_comment_is_history_after_a_resubmission(harness: Harness) -> None:
    coordinator = await harness.register(3201, "TM", role="coordinator", name="Koordinators")
    anna = await harness.register(3202, "VPD", name="Anna")
    await file_1_3_3(anna)
    (rid,) = await report_ids(harness)
    coordinator.send("/review")
    await coordinator.replies(1)
    coordinator.click_text(f"↩️ Atgriezt Nr. {rid}")
    await coordinator.replies(1)
    coordinator.send("Precizējiet psihoterapeita konsultācijas")
    await coordinator.replies(1)
    await anna.replies(1)

    anna.send("/myreports")
    (returned,) = await anna.replies(1)
    assert "atgriezta labošanai" in returned.text and "Precizējiet psihoterapeita" in returned.text
    await _correct_1_3_3_2(anna, rid, "12")

    anna.send("/myreports")
    (mine,) = await anna.replies(1)
    assert "redakcija 2, gaida pārskatīšanu" in mine.text
    assert "Precizējiet" not in mine.text and "Koordinatora komentārs" not in mine.text
    async with harness.db.session() as s:
        view = await Repos(s).reports.view(rid)
    assert (view.review_state, view.review_comment) == ("pending", None)
    anna.send("/mystatus")
    await harness.server.idle()
    parts = []  # the status comes in as many messages as it needs
    with contextlib.suppress(AssertionError):
        while True:
            parts.append((await anna.reply(timeout=0.3)).text)
    status = "\n".join(parts)
    assert "ℹ️ VPD" in status and "Precizējiet" not in status

    anna.click_text(f"Vēsture Nr. {rid}", message_id=mine.message_id)
    (history,) = await anna.replies(1)
    assert "Precizējiet psihoterapeita konsultācijas" in history.text  # the comment: in history only
    assert (
        history.text.index("Redakcija 1")
        < history.text.index("Precizējiet")
        < history.text.index("Redakcija 2")
    )


async def test_an_impossible_date_is_named_and_nothing_is_stored(harness: Harness) -> None:
    user = await harness.register(3301, "VPD")
    user.send("/report 1.1.1")
    await user.replies(1)
    user.click_text("procesā")
    (ask_date,) = await user.replies(1)
    user.send("31.02.2026")
    notice, again = await user.replies(2)
    assert notice.text == (
        "Datums 31.02.2026 neeksistē: 2026. gada februārī ir 28 dienas. Lūdzu, ievadiet pareizu datumu."
    )
    assert again.text == ask_date.text
    user.send("/language")
    await user.replies(2)
    user.send("30.02.2027")
    notice, _ = await user.replies(2)
    assert notice.text.startswith("The date 30.02.2027 does not exist: February 2027 has 28 days.")
    user.send("28.02.2027")
    (next_question,) = await user.replies(1)
    assert "does not exist" not in next_question.text and "question 3 of 4" in next_question.text


async def test_cancel_without_a_draft_says_there_was_none(harness: Harness) -> None:
    user = await harness.register(3401, "VPD")
    user.send("/cancel")  # no flow at all
    (reply,) = await user.replies(1)
    assert reply.text == "Nav nekā, ko pārtraukt: jums nav atvērta atskaites melnraksta."
    user.send("/report")  # the picker: no draft exists yet
    await user.replies(1)
    user.send("/cancel")
    (reply,) = await user.replies(1)
    assert "Melnraksts dzēsts" not in reply.text and "melnraksta vēl nebija" in reply.text
    user.send("/report")
    await user.replies(1)
    user.click_text("✖ Atcelt")  # the picker's button says the same
    (reply,) = await user.replies(1)
    assert "Melnraksts dzēsts" not in reply.text and "melnraksta vēl nebija" in reply.text
    user.send("/report 1.3.3")  # now a draft exists: it is deleted, and said so
    await user.replies(1)
    user.send("/cancel")
    (reply,) = await user.replies(1)
    assert "Melnraksts dzēsts" in reply.text
    english = await harness.register(3402, "VPD", language_code="en")
    english.send("/cancel")
    (reply,) = await english.replies(1)
    assert reply.text == "There is nothing to cancel: you have no open report draft."


async def test_a_refused_measure_id_is_not_offered_back_as_the_example(harness: Harness) -> None:
    vpd = await harness.register(3501, "VPD")
    vpd.send("/report 1.3.5")  # IeVP's measure, the old fixed example
    notice, picker = await vpd.replies(2)
    assert "„1.3.5” nav atrasts" in notice.text
    assert "piemēram, 1.3.5" not in notice.text and "piemēram, 1.3.5" not in picker.text
    assert "piemēram, 1.1.1" in notice.text and "piemēram, 1.1.1" in picker.text  # VPD's first measure
    ievp = await harness.register(3502, "IeVP")
    ievp.send("/report 1.1.1")  # VPD's measure
    notice, _ = await ievp.replies(2)
    example = notice.text.rsplit("piemēram, ", 1)[1].rstrip(".")
    assert example != "1.1.1"
    assert harness.services.catalog.measure_of("IeVP", example) is not None
    ievp.send("/report 9.9.9")  # no such measure at all
    notice, _ = await ievp.replies(2)
    assert "9.9.9" not in notice.text.rsplit("piemēram, ", 1)[1]


async def test_review_card_shows_a_milestone_and_its_date_changing(harness: Harness) -> None:
    coordinator = await harness.register(3021, "TM", role="coordinator")
    async with harness.db.session() as s:
        repos = Repos(s)
        vpd = await repos.people.institution("VPD")
        m = await repos.catalog.measure("1.1.1")
        for answers in (
            {"1.1.1.1": "in_progress", "1.1.1.1.date": "2026-10-01", "1.1.1.2": 40},
            {"1.1.1.1": "done", "1.1.1.1.date": "2026-11-15", "1.1.1.2": 40, "comment": "Pabeigts"},
        ):
            await repos.reports.submit(
                measure_id=m.id, institution_id=vpd.id, year=2026, answers=answers, contact_id=None
            )
    coordinator.send("/review")
    (card,) = await coordinator.replies(1)
    lines = card.text.splitlines()
    assert (
        "  ziņots: izpildīts (15.11.2026) (mainīts: procesā → izpildīts)"
        " (datums mainīts: 01.10.2026 → 15.11.2026)"
    ) in lines
    assert "  mērķis 2027. gadā: 120 darbinieki · ziņots: 40" in lines  # not changed: no "mainīts"
    assert "Komentārs (mainīts): Pabeigts" in lines
