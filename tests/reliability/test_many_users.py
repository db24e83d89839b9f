"""500 users filing at once through the fake Bot API into one real bot process on PostgreSQL:
each answers the first two questions of a report (the draft is written after every answer).
Nothing may be lost and nobody may see an error."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from reporting_forms.catalog import Catalog
from reporting_forms.texts import text
from tests.chat_harness import prepare_database
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.reliability.procs import BotProcess, add_contacts, drafts

USERS = 500
FIRST_ID = 900_000


async def file(user: FakeUser, value: int) -> list[str]:
    user.send("/report 3.1.5")
    (q1,) = await user.replies(1, timeout=90)
    user.send(f"{value},5")
    (q2,) = await user.replies(1, timeout=90)
    user.send("3,25")
    (q3,) = await user.replies(1, timeout=90)
    return [q1.text, q2.text, q3.text]


async def test_500_users_filing_at_once_lose_nothing(
    server: FakeBotAPI, pg_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    await prepare_database(pg_url, catalog)
    ids = [FIRST_ID + i for i in range(USERS)]
    await add_contacts(pg_url, ids)
    # The fake Bot API takes any rate; this test is about the database under 500 concurrent
    # updates, so the bot's flood limits (bot/throttle.py, 25 messages/s by default) are lifted:
    # at 25/s the 1,500 answers alone take a minute, and handlers waiting for their turn inside
    # their unit of work would hold every pooled connection.
    bot = BotProcess(server, pg_url, tmp_path, "bot", OUTBOX_GLOBAL_RATE="10000")
    await bot.start()
    try:
        await bot.started()
        users = [server.user(uid, first_name=f"U{uid}") for uid in ids]
        transcripts = await asyncio.gather(*(file(u, u.id % 100) for u in users))
    finally:
        assert await bot.term() == 0, bot.logs()[-3000:]
    failure = text("lv", "common.failure")
    for uid, texts in zip(ids, transcripts, strict=True):
        assert [t.split(" · ")[-1].split("\n")[0] for t in texts] == [
            "jautājums 1 no 3",
            "jautājums 2 no 3",
            "jautājums 3 no 3",
        ], (uid, texts)
        assert failure not in texts
    rows = await drafts(pg_url)
    answers = {}
    for key, row in rows.items():
        data = row["data"] if isinstance(row["data"], dict) else json.loads(row["data"])
        answers[int(key.split(":")[2])] = data["draft"]["answers"]
    assert {uid: (a.get("3.1.5.1"), a.get("3.1.5.2")) for uid, a in answers.items()} == {
        uid: (f"{uid % 100}.5", "3.25") for uid in ids
    }
    assert " ERROR " not in bot.logs()
    assert not server.errors
