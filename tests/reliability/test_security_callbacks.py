"""Issue 11, defect 7: forged button data with ids beyond a database integer (``r:h:99999999999``
overflowed int32 on PostgreSQL) is refused with a clear alert, on both backends; every button
model with an id accepts only ids a database integer holds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import time_machine

from bot.keyboards import MAX_ID, MeasureCb, MyReportCb, ReminderCb, ReviewCb, ReviewPageCb, YearCb
from reporting_forms.catalog import Catalog
from tests.chat_harness import CHAT_NOW, Harness, prepare_database, running_bot
from tests.fakebotapi import FakeBotAPI

FORGED = [
    "r:h:99999999999",
    "r:c:-1",
    "r:h:2147483648",
    "rem:r:99999999999:1.1.1",
    "rv:a:1:99999999999:0",
    "rvp:-5",
]


@pytest.fixture
async def any_backend(server: FakeBotAPI, db_url: str, catalog: Catalog) -> AsyncIterator[Harness]:
    with time_machine.travel(CHAT_NOW, tick=True):
        await prepare_database(db_url, catalog)
        async with running_bot(server, db_url, catalog) as h:
            yield h


async def test_forged_ids_in_buttons_get_an_alert(any_backend: Harness) -> None:
    harness = any_backend
    contact = await harness.register(2201, "VPD")
    coordinator = await harness.register(2202, "TM", role="coordinator")
    contact.send("/myreports")
    (listing,) = await contact.replies(1)
    for user, data in [(contact, d) for d in FORGED[:4]] + [(coordinator, d) for d in FORGED[4:]]:
        update = harness.server._queue_callback(user, contact.message(listing.message_id), data)
        await harness.server.idle()
        query_id = update["callback_query"]["id"]
        answers = [
            c
            for m, c in harness.server.calls
            if m == "answerCallbackQuery" and c.get("callback_query_id") == query_id
        ]
        assert len(answers) == 1, data
        assert answers[0].get("show_alert") in (True, "true"), (data, answers)
        assert "vairs nav aktīva" in answers[0].get("text", ""), (data, answers)
    # the bot is still fine
    contact.send("/myreports")
    (again,) = await contact.replies(1)
    assert again.text == listing.text


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (MyReportCb, {"a": "h", "rid": MAX_ID + 1}),
        (YearCb, {"n": "x", "year": MAX_ID + 1}),
        (MeasureCb, {"n": "x", "page": -1}),
        (ReminderCb, {"a": "r", "o": MAX_ID + 1}),
        (ReviewCb, {"a": "a", "rid": 1, "rev": MAX_ID + 1, "p": 0}),
        (ReviewPageCb, {"page": -1}),
    ],
)
def test_button_models_refuse_ids_out_of_range(model: type, fields: dict) -> None:
    with pytest.raises(ValueError):
        model(**fields)
    ok = {k: (1 if isinstance(v, int) else v) for k, v in fields.items()}
    assert model.unpack(model(**ok).pack()) == model(**ok)


async def test_button_alerts_are_plain_text(harness: Harness) -> None:
    """Callback answers are not parsed as HTML: an unregistered user's button alert shows
    ``/start KODS``, not ``<code>/start KODS</code>``."""
    stranger = harness.server.user(2301, first_name="X", language_code="lv")
    update = stranger.send("/help")
    await stranger.replies(1)
    update = harness.server._queue_callback(stranger, update["message"], "r:h:1")
    await harness.server.idle()
    query_id = update["callback_query"]["id"]
    (answer,) = [
        c
        for m, c in harness.server.calls
        if m == "answerCallbackQuery" and c.get("callback_query_id") == query_id
    ]
    assert "/start KODS" in answer["text"]
    assert "<" not in answer["text"] and "&lt;" not in answer["text"] and "&amp;" not in answer["text"]


@pytest.mark.parametrize("lang", ["lv", "en"])
def test_alert_texts_have_no_markup(lang: str) -> None:
    from reporting_forms.texts import alert

    assert alert(lang, "common.not_registered") == alert(lang, "common.not_registered").strip()
    for name, params in [
        ("common.not_registered", {}),
        ("common.deactivated", {}),
        ("common.forbidden", {}),
        ("common.private_only", {}),
        ("common.stale_button", {}),
        ("reminders.reminder_gone", {}),
        ("coordinator.review_error_already", {"by": "Bērziņa & <Co>"}),
    ]:
        shown = alert(lang, name, **params)
        assert "<code>" not in shown and "&amp;" not in shown and "&lt;" not in shown, (name, shown)
    assert "Bērziņa & <Co>" in alert(lang, "coordinator.review_error_already", by="Bērziņa & <Co>")
