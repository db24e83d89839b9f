"""Defect 6 of issue 11: after ``pg_terminate_backend`` the next unit of work failed although the
database was up (the pool handed out a dead connection)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text as sql

from reporting_forms.catalog import Catalog
from reporting_forms.texts import text
from storage.db import Database
from tests.chat_harness import prepare_database
from tests.fakebotapi import FakeBotAPI, FakeUser
from tests.reliability.procs import BotProcess, TcpProxy, add_contacts, drafts, report_answers

OUTAGE_SECONDS = 30


async def until_draft_has(url: str, value: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while value not in str(await drafts(url)):
        assert loop.time() < deadline, await drafts(url)
        await asyncio.sleep(0.1)


async def terminate_other_backends(url: str) -> int:
    """What a database restart or a failover does to the bot's pooled connections."""
    admin = Database(url)
    try:
        async with admin.session() as s:
            result = await s.exec(
                sql(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return int(result.scalar_one())
    finally:
        await admin.dispose()


async def test_a_terminated_pooled_connection_does_not_fail_the_next_unit(pg_url: str) -> None:
    db = Database(pg_url)
    try:
        async with db.unit() as unit:  # a connection is pooled
            await unit.session.exec(sql("SELECT 1"))
        assert await terminate_other_backends(pg_url) >= 1
        async with db.unit() as unit:  # the next update: a fresh connection, no error
            assert (await unit.session.exec(sql("SELECT 2"))).scalar_one() == 2
        async with db.session() as s:
            assert (await s.exec(sql("SELECT 3"))).scalar_one() == 3
    finally:
        await db.dispose()


async def _behind_proxy(
    server: FakeBotAPI, pg_url: str, catalog: Catalog, tmp_path: Path, user_id: int, name: str
) -> tuple[TcpProxy, BotProcess, FakeUser]:
    """A contact, and a bot process that reaches PostgreSQL through a TCP proxy (open)."""
    await prepare_database(pg_url, catalog)
    await add_contacts(pg_url, [user_id])
    proxy = TcpProxy.in_front_of(pg_url)
    await proxy.restore()
    bot = BotProcess(server, proxy.url_for(pg_url), tmp_path, "bot", LEADER_POLL_SECONDS="2")
    return proxy, bot, server.user(user_id, first_name=name)


async def test_the_database_unreachable_for_30_s_mid_report_nothing_is_lost(
    server: FakeBotAPI, pg_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    """A real bot process reaches PostgreSQL through a TCP proxy; mid report the proxy is cut
    for 30 s (connections dropped, new ones refused). The user is told once that the message
    is kept; when the database is back the held answers are handled in order and the report
    is completed; the process recovered by itself and logged the outage, not a traceback a poll."""
    proxy, bot, user = await _behind_proxy(server, pg_url, catalog, tmp_path, 700_001, "Ilze")
    await bot.start()
    try:
        user.send("/report 3.1.5")
        (q1,) = await user.replies(1, timeout=60)  # the process start, on a loaded machine
        assert "jautājums 1 no 3" in q1.text, q1.text
        user.send("61,5")
        (q2,) = await user.replies(1, timeout=10)
        assert "jautājums 2 no 3" in q2.text, q2.text
        await until_draft_has(pg_url, "61.5")  # the answer is committed (it is sent just before)
        await proxy.cut()
        user.send("3,25")
        (told,) = await user.replies(1, timeout=20)
        assert told.text == text("lv", "common.db_unavailable")
        user.send("Komentārs pēc pārtraukuma")  # the answer to the comment question, held too
        await user.assert_no_replies(1.0)  # told once per outage
        await asyncio.sleep(OUTAGE_SECONDS)
        await proxy.restore()
        _comment_q, summary = await user.replies(2, timeout=30)  # the held answers, in order
        assert "61,5 %" in summary.text and "3,25 %" in summary.text, summary.text
        assert "Komentārs pēc pārtraukuma" in summary.text
        user.click_text("✅ Apstiprināt")
        await user.replies(1, timeout=10)
    finally:
        assert await bot.term() == 0, bot.logs()
        await proxy.cut()
    answers = await report_answers(pg_url)
    assert [(code, a.get("3.1.5.1"), a.get("3.1.5.2")) for (code, _), a in answers.items()] == [
        ("3.1.5", "61.5", "3.25")
    ]
    logs = bot.logs()
    assert logs.count("the database is unavailable") <= 2, logs  # replay + sender: one line each
    assert logs.count("Traceback") <= 3, logs
    assert not server.errors


async def _answer_held(proxy: TcpProxy, user: FakeUser, pg_url: str) -> None:
    """/report 3.1.5 committed, then the database cut off and the first answer (44,5) sent: the
    bot holds it and tells the user so."""
    user.send("/report 3.1.5")
    (q1,) = await user.replies(1, timeout=60)
    assert "jautājums 1 no 3" in q1.text, q1.text
    await until_draft_has(pg_url, "3.1.5")  # the /report is committed (its question is sent just before)
    await proxy.cut()
    user.send("44,5")
    (told,) = await user.replies(1, timeout=20)
    assert told.text == text("lv", "common.db_unavailable")


async def _answer_handled_after_restart(
    proxy: TcpProxy, bot: BotProcess, user: FakeUser, pg_url: str
) -> None:
    """The database back, the bot started again: the held answer is handled first (the next
    question comes, the draft holds it), and the bot stops cleanly."""
    await proxy.restore()
    try:
        await bot.start()
        (q2,) = await user.replies(1, timeout=60)
        assert "jautājums 2 no 3" in q2.text, q2.text
        await until_draft_has(pg_url, "44.5")
        assert await bot.term() == 0, bot.logs()[-3000:]
    finally:
        await bot.term()
        await proxy.cut()


async def test_a_stop_during_the_outage_keeps_the_held_answers_for_the_next_start(
    server: FakeBotAPI, pg_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    """SIGTERM while the database is unreachable and the bot holds a user's answer: the stop
    cannot write it to the database, so it keeps it in the data folder's file; the next start
    (the database back) handles it before anything else — the next question comes, the draft
    holds the answer — and the file is gone."""
    proxy, bot, user = await _behind_proxy(server, pg_url, catalog, tmp_path, 700_002, "Inese")
    await bot.start()
    try:
        await _answer_held(proxy, user, pg_url)
        assert await bot.term(timeout=60) == 0, bot.logs()[-3000:]
    finally:
        await bot.term()
    kept = tmp_path / "data" / "interrupted-updates.jsonl"
    assert kept.exists() and "44,5" in kept.read_text(encoding="utf-8"), bot.logs()[-3000:]
    assert "are kept in" in bot.logs()

    await _answer_handled_after_restart(proxy, bot, user, pg_url)
    assert not kept.exists()
    assert "an earlier stop kept are handled first" in bot.logs()


async def test_a_process_killed_during_the_outage_leaves_the_held_answer_to_the_next_start(
    server: FakeBotAPI, pg_url: str, catalog: Catalog, tmp_path: Path
) -> None:
    """kill -9 while the database is unreachable and the bot holds a user's answer that Telegram
    counts as delivered: no stop ran, but the answer was written down in the data folder as it
    was held; the next start (the database back) handles it before anything else."""
    proxy, bot, user = await _behind_proxy(server, pg_url, catalog, tmp_path, 700_003, "Dace")
    await bot.start()
    try:
        await _answer_held(proxy, user, pg_url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while server.unconfirmed_updates:  # the bot's next poll confirms it: Telegram will not resend it
            assert loop.time() < deadline, "the held update was never confirmed"
            await asyncio.sleep(0.1)
        await bot.kill()
    finally:
        await bot.term()
    (journal,) = (tmp_path / "data").glob("held-updates.*.jsonl")  # the killed process's
    assert "44,5" in journal.read_text(encoding="utf-8")

    await _answer_handled_after_restart(proxy, bot, user, pg_url)
    assert not journal.exists() and not (tmp_path / "data" / "interrupted-updates.jsonl").exists()
    assert "held when the last process ended" in bot.logs()
