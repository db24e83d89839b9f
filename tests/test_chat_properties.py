"""Property: arbitrary text at every question kind, through the real dispatcher — no crash,
nothing invalid stored, valid Telegram HTML out, and either the same question again with an
explanation or the next step."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import SendMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from bot.app import build_dispatcher
from bot.config import Settings
from bot.console import ConsoleChat
from bot.fsm_storage import DatabaseStorage
from bot.offline import RecordingSession
from bot.services_container import Services
from reporting_forms import forms
from reporting_forms.catalog import load_catalog
from storage.db import Database, upgrade
from storage.repositories import Repos
from tests.fakebotapi import parse_html

USER_ID = 4242


@dataclass
class Rig:
    loop: asyncio.AbstractEventLoop
    db: Database
    chat: ConsoleChat
    session: RecordingSession
    storage: DatabaseStorage
    key: StorageKey

    def run(self, coro):
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('prop') / 'p.db'}"
    upgrade(url)
    loop = asyncio.new_event_loop()
    catalog = load_catalog()
    db = Database(url)

    async def setup() -> Rig:
        async with db.session() as s:
            repos = Repos(s)
            await repos.catalog.sync(catalog)
            vpd = await repos.people.institution("VPD")
            await repos.people.add_contact(
                display_name="Prop", institution_id=vpd.id, telegram_user_id=USER_ID
            )
        settings_ = Settings(database_url=url, _env_file=None)
        services = Services(db=db, catalog=catalog, settings=settings_)
        session = RecordingSession()
        bot = Bot("42:property", session=session, default=DefaultBotProperties(parse_mode="HTML"))
        dp = build_dispatcher(services)
        chat = ConsoleChat(
            dp,
            bot,
            user={"id": USER_ID, "first_name": "Prop", "language_code": "lv"},
            console=Console(file=io.StringIO()),
            input_fn=lambda _p: "",
        )
        storage = dp.storage
        key = StorageKey(bot_id=42, chat_id=USER_ID, user_id=USER_ID)
        return Rig(loop, db, chat, session, storage, key)

    r = loop.run_until_complete(setup())
    yield r
    loop.run_until_complete(r.chat.bot.session.close())
    loop.run_until_complete(db.dispose())
    loop.close()


def _at_field(rig: Rig, measure_id: str, answers: dict, cursor: int, year: int = 2026) -> None:
    """Put the user's draft on a given question directly (each example starts there)."""
    draft = forms.Draft(measure_id=measure_id, year=year, answers=answers, cursor=cursor)

    async def go() -> None:
        await rig.storage.set_state(rig.key, "ReportFlow:answering")
        await rig.storage.set_data(rig.key, {"nonce": "abc123", "draft": draft.to_dict()})

    rig.run(go())


# (measure, answers before, cursor): a question of each kind, on measures of the contact's VPD
QUESTIONS = {
    "count": ("3.1.4", {}, 0),
    "milestone_status": ("3.1.4", {"3.1.4.1": 2}, 1),
    "date": ("3.1.4", {"3.1.4.1": 2, "3.1.4.2": "done"}, 2),
    "people_trained": ("1.1.1", {}, 2),
    "participants": ("1.3.11", {}, 0),
    "events_held": ("2.1.1", {}, 3),
    "sessions": ("2.1.1", {}, 7),
    "comment": ("1.1.1", {}, 3),
    "percent": ("3.1.5", {}, 0),
    "text": ("3.1.3", {}, 0),
}

texts = st.one_of(
    st.text(max_size=60),
    st.text(max_size=1500),
    st.from_regex(r"\s*-?[0-9 .,\u00a0\u202f]{0,12}\s*%?\s*", fullmatch=True),
    st.sampled_from(
        [
            "<b>",
            "</i>",
            "&amp;",
            "<script>alert(1)</script>",
            "1\u202f200",
            "31.12.2026",
            "procesā",
            "/cancel",
            "/report",
            "izlaist",
            "😀" * 5,
            "\x00\x1b[31m",
            "ﷺ" * 300,
        ]
    ),
)


@pytest.mark.parametrize("kind", sorted(QUESTIONS))
def test_any_text_at_any_question(rig: Rig, kind: str) -> None:
    measure_id, answers, cursor = QUESTIONS[kind]
    spec = forms.form_for(load_catalog().measure(measure_id))

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(raw=texts)
    def check(raw: str) -> None:
        _at_field(rig, measure_id, answers, cursor)
        rig.session.clear()
        before = len(rig.chat.errors)
        rig.run(rig.chat.send_text(raw))
        assert len(rig.chat.errors) == before, rig.chat.errors[-1:]
        sent = rig.session.of_type(SendMessage)
        assert sent, "the bot always answers"
        for message in sent:
            parse_html(message.text)  # raises on HTML Telegram would refuse
        data = rig.run(rig.storage.get_data(rig.key))
        state = rig.run(rig.storage.get_state(rig.key))
        if state is None:  # /cancel or a typed "Atcelt"
            return
        draft = forms.Draft.from_dict(data["draft"])
        forms.validate_answers(spec, draft.answers, year=draft.year)  # nothing invalid stored
        if draft.cursor == cursor:
            assert draft.answers == answers or kind in {"comment", "text"}, "refused: nothing changed"
        # the last message is the question to answer next (the same one again, or the next)
        assert any(w in sent[-1].text for w in ("jautājums", "kopsavilkums", "melnraksts", "Izvēlieties"))

    check()
