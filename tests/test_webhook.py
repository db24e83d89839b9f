"""Webhook mode and the health endpoints: the real bot (bot/webhook.py) serves a webhook that
the fake Bot API posts updates to, as Telegram does, with the secret it registered."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import run_polling
from bot.config import Settings, WebhookConfigError, webhook_url_and_secret
from bot.health import CONTENT_TYPE, Health, leader_state, serving
from bot.services_container import Services
from bot.webhook import run_webhook, webhook_path
from reporting_forms.catalog import Catalog
from storage import tables as t
from storage.db import Database
from storage.repositories import Repos
from tests.chat_harness import prepare_database
from tests.fakebotapi import FakeBotAPI
from tests.test_exactly_once import fan_out, quiet_hours_away_from_now

SECRET = "s3cret-Token_for-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    server: FakeBotAPI
    db: Database
    base: str  # http://127.0.0.1:PORT of the webhook server (health routes there too)
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def get(self, path: str, base: str | None = None) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get((base or self.base) + path) as resp:
            return resp.status, await resp.text()

    async def metrics(self) -> dict[str, float]:
        status, body = await self.get("/metrics")
        assert status == 200
        return samples(body)


def samples(body: str) -> dict[str, float]:
    """Prometheus' own parser (prometheus_client): name{labels} → value."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def webhook_settings(server: FakeBotAPI, url: str, port: int, **extra: object) -> Settings:
    values: dict[str, object] = {
        "database_url": url,
        "telegram_bot_token": server.token,
        "telegram_api_base": server.base_url,
        "webhook_url": f"http://127.0.0.1:{port}/tg/hook",
        "webhook_secret": SECRET,
        "webhook_listen": f"127.0.0.1:{port}",
        "health_listen": "off",
        "reminders_enabled": False,
        "compile_enabled": False,
        "reminder_policy_overrides": quiet_hours_away_from_now(),
        "outbox_poll_seconds": 0.2,
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def webhook_bot(
    server: FakeBotAPI, url: str, catalog: Catalog, **extra: object
) -> AsyncIterator[Running]:
    port = free_port()
    settings = webhook_settings(server, url, port, **extra)
    db = Database(url)
    stop = asyncio.Event()
    start = len(server.calls)
    task = asyncio.create_task(run_webhook(Services(db, catalog, settings), stop=stop))
    ok = await server._wait_until(
        lambda: task.done() or any(m == "setWebhook" for m, _ in server.calls[start:]), 15.0
    )
    try:
        if task.done():
            await task
        assert ok, "setWebhook was not called within 15 s"
        yield Running(server, db, f"http://127.0.0.1:{port}", task, stop)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await db.dispose()


async def invite(db: Database, institution: str = "VPD") -> str:
    async with db.session() as s:
        repos = Repos(s)
        inst = await repos.people.institution(institution)
        return await repos.people.create_invite(
            institution_id=inst.id, role="contact", expires_in=dt.timedelta(days=1)
        )


# ---------------------------------------------------------------- webhook mode


async def test_webhook_registers_and_handles_updates_with_the_secret(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog
) -> None:
    await prepare_database(sqlite_url, catalog)
    async with webhook_bot(server, sqlite_url, catalog) as bot:
        hook = server.webhook
        assert hook["url"].endswith("/tg/hook") and hook["secret_token"] == SECRET
        assert {"message", "callback_query"} <= set(hook["allowed_updates"])
        code = await invite(bot.db)
        before = await bot.metrics()
        user = server.user(7001, first_name="Līga")
        user.send(f"/start {code}")
        assert await server.deliver_webhook() == [200]
        (reply,) = await user.replies(1)
        assert "Sveicināti, Līga" in reply.text
        async with bot.db.session() as s:
            assert await Repos(s).people.contact_by_telegram(7001) is not None
        after = await bot.metrics()
        assert after["resobot_updates_handled_total"] == before["resobot_updates_handled_total"] + 1
        # the same update once more (Telegram retries): answered 200, dropped by its id
        server.duplicate_last_update()
        assert await server.deliver_webhook() == [200]
        await user.assert_no_replies()
        assert (await bot.metrics())["resobot_updates_handled_total"] == after[
            "resobot_updates_handled_total"
        ]


async def test_wrong_or_missing_secret_is_refused_and_not_handled(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog
) -> None:
    await prepare_database(sqlite_url, catalog)
    async with webhook_bot(server, sqlite_url, catalog) as bot:
        code = await invite(bot.db)
        user = server.user(7002)
        user.send(f"/start {code}")
        assert await server.deliver_webhook(secret="not-the-secret") == [401]
        update = {
            "update_id": 99,
            "message": {"message_id": 1, "date": 0, "chat": user.chat, "text": "/help"},
        }
        async with aiohttp.ClientSession() as http, http.post(bot.base + "/tg/hook", json=update) as resp:
            assert resp.status == 401  # no header at all
        await user.assert_no_replies(0.5)
        async with bot.db.session() as s:
            assert await Repos(s).people.contact_by_telegram(7002) is None
        m = await bot.metrics()
        assert m["resobot_webhook_rejected_total"] == 2
        assert m["resobot_updates_handled_total"] == 0
        # the same update with the right secret goes through: it was refused, not lost
        assert await server.deliver_webhook() == [200]
        assert "Sveicināti" in (await user.reply()).text


async def test_the_sender_runs_in_webhook_mode(server: FakeBotAPI, sqlite_url: str, catalog: Catalog) -> None:
    chats = await fan_out(sqlite_url, catalog, 3)  # three reminders planned and due now
    async with webhook_bot(server, sqlite_url, catalog, outbox_global_rate=50.0):
        ok = await server._wait_until(lambda: {o.chat_id for o in server.outputs} >= set(chats), 20)
        assert ok, f"the outbox was not drained: {[o.chat_id for o in server.outputs]}"


def test_webhook_needs_url_and_secret() -> None:
    settings = Settings(_env_file=None, telegram_bot_token="1:x", webhook_url="https://bot.example.lv/h")
    with pytest.raises(WebhookConfigError, match="WEBHOOK_SECRET"):
        webhook_url_and_secret(settings)
    with pytest.raises(ValueError, match="secret_token"):
        Settings(_env_file=None, webhook_secret="has spaces")
    with pytest.raises(ValueError, match="HOST:PORT"):
        Settings(_env_file=None, webhook_listen="8080")
    assert webhook_path("https://bot.example.lv") == "/webhook"
    assert webhook_path("https://bot.example.lv/a/b") == "/a/b"


# ---------------------------------------------------------------- health and metrics


async def test_health_endpoints_in_webhook_mode(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog
) -> None:
    await prepare_database(sqlite_url, catalog)
    async with webhook_bot(server, sqlite_url, catalog) as bot:
        assert (await bot.get("/healthz"))[0] == 200
        status, body = await bot.get("/readyz")
        # SQLite: one process, always the leader of its own scheduler and outbox
        assert status == 200 and '"database": "ok"' in body and '"leader": true' in body
        m = await bot.metrics()
        assert m["resobot_database_up"] == 1
        for status_ in ("pending", "sending", "sent", "failed", "blocked"):
            assert f"resobot_outbox_messages{{status={status_}}}" in m


async def test_metrics_read_the_outbox_and_reports(db_url: str, catalog: Catalog) -> None:
    """Gauges from the database: outbox rows per status, rows stuck in sending, reports."""
    await prepare_database(db_url, catalog)
    db = Database(db_url)
    now = dt.datetime.now(dt.UTC)
    health = Health(db, stuck_minutes=10)
    try:
        async with db.session() as s:
            repos = Repos(s)
            inst = await repos.people.institution("VPD")
            period = await repos.reports.period(2026)
            measure_ids = [m.id for m in (await s.exec(t.Measure.__table__.select().limit(2))).all()]
            rows = [
                ("pending", now),
                ("pending", now),
                ("sent", now),
                ("failed", now),
                ("blocked", now),
                ("sending", now - dt.timedelta(minutes=30)),  # stuck
                ("sending", now),  # in flight just now
            ]
            for i, (status, due) in enumerate(rows):
                s.add(t.Outbox(dedup_key=f"k{i}", chat_id=1, kind="reminder", send_at=due, status=status))
            for i, status in enumerate(("submitted", "draft")):
                s.add(
                    t.Report(
                        measure_id=measure_ids[i], institution_id=inst.id, period_id=period.id, status=status
                    )
                )
        m = samples(await health.render())
        assert m["resobot_outbox_messages{status=pending}"] == 2
        assert m["resobot_outbox_messages{status=sending}"] == 2
        assert m["resobot_outbox_messages{status=sent}"] == 1
        assert m["resobot_outbox_messages{status=blocked}"] == 1
        assert m["resobot_outbox_messages{status=cancelled}"] == 0
        assert m["resobot_outbox_stuck_sending"] == 1
        assert m["resobot_reports_submitted"] == 1
    finally:
        await db.dispose()


async def test_readyz_is_503_and_errors_count_when_the_database_is_unreachable() -> None:
    port = free_port()  # nothing listens there
    db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nothing")
    health = Health(db, db_timeout=5)
    from aiogram import Dispatcher

    health.instrument(Dispatcher())
    listen = f"127.0.0.1:{free_port()}"
    base = f"http://{listen}"
    try:
        async with serving(health, listen) as listening, aiohttp.ClientSession() as http:
            assert listening
            async with http.get(base + "/healthz") as resp:
                assert resp.status == 200 and await resp.json() == {"status": "ok"}
            async with http.get(base + "/readyz") as resp:
                body = await resp.json()
                assert resp.status == 503 and body["status"] == "unavailable" and body["leader"] == "unknown"
            async with http.get(base + "/metrics") as resp:
                assert resp.headers["Content-Type"] == CONTENT_TYPE
                m = samples(await resp.text())
            assert m["resobot_database_up"] == 0
            assert m["resobot_database_errors_total"] >= 2  # the probe and the metrics' queries
            assert "resobot_outbox_messages{status=pending}" not in m
    finally:
        health.close()
        await db.dispose()


async def _exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP exchange with the health server: (status, headers, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 10)  # the server closes after its answer
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    if not request.startswith(b"HEAD"):
        assert int(headers["Content-Length"]) == len(body)
    return int(status_line.split(" ")[1]), headers, body


@pytest.fixture
async def health(sqlite_url: str) -> AsyncIterator[Health]:
    """The endpoints of a bot on an SQLite database (disposed after the test)."""
    db = Database(sqlite_url)
    try:
        yield Health(db, db_timeout=5)
    finally:
        await db.dispose()


async def test_the_health_server_answers_http_and_refuses_what_is_not_a_probe(health: Health) -> None:
    """The polling mode's server (plain asyncio): GET and HEAD of the three paths, a query
    string ignored; 404, 405 and 400 for anything else; a client that never finishes its
    request neither blocks the others nor the server's end."""
    port = free_port()
    async with serving(health, f"127.0.0.1:{port}"):
        status, headers, body = await _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        assert json.loads(body) == {"status": "ok"} and headers["Connection"] == "close"
        status, _, body = await _exchange(port, b"GET /readyz?verbose=1 HTTP/1.0\r\n\r\n")
        assert status == 200 and json.loads(body)["database"] == "ok"
        status, headers, body = await _exchange(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 100
        assert (await _exchange(port, b"GET /nothing HTTP/1.1\r\n\r\n"))[0] == 404
        assert (await _exchange(port, b"POST /healthz HTTP/1.1\r\n\r\n"))[0] == 405
        assert (await _exchange(port, b"GET /healthz SPDY/3\r\n\r\n"))[0] == 400
        assert (await _exchange(port, b"\x16\x03\x01 not http\r\n\r\n"))[0] == 400
        assert (await _exchange(port, b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\n\r\n"))[0] == 400
        idle_reader, idle = await asyncio.open_connection("127.0.0.1", port)
        idle.write(b"GET /healthz HTTP/1.1\r\n")  # and never ends its head
        assert (await _exchange(port, b"GET /healthz HTTP/1.1\r\n\r\n"))[0] == 200
    # the block ended with that client still connected: cut, and the port is free again
    with contextlib.suppress(ConnectionResetError):
        assert await asyncio.wait_for(idle_reader.read(), 2) == b""
    idle.close()
    async with serving(health, f"127.0.0.1:{port}") as listening:
        assert listening


async def test_a_failing_probe_is_a_500_and_a_logged_error(
    health: Health, caplog: pytest.LogCaptureFixture
) -> None:

    def broken() -> bool:
        raise RuntimeError("runtime gone")

    health.runtime = type("Runtime", (), {"is_leader": staticmethod(broken)})()
    port = free_port()
    async with serving(health, f"127.0.0.1:{port}"):
        assert (await _exchange(port, b"GET /readyz HTTP/1.1\r\n\r\n"))[0] == 500
        assert (await _exchange(port, b"GET /healthz HTTP/1.1\r\n\r\n"))[0] == 200  # still serving
    assert any("health endpoint /readyz failed" in r.getMessage() for r in caplog.records)


async def test_a_taken_health_port_is_one_error_line_and_the_bot_goes_on(
    health: Health, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    listen = f"127.0.0.1:{port}"
    async with serving(health, listen) as first, serving(health, listen) as second:
        assert first is True and second is False
        assert (await _exchange(port, b"GET /healthz HTTP/1.1\r\n\r\n"))[0] == 200
    assert any("cannot listen on 127.0.0.1" in r.getMessage() for r in caplog.records)


def test_leader_state_reads_the_runtime() -> None:
    class Leader:
        is_leader = True

    class Follower:
        def is_leader(self) -> bool:
            return False

    assert leader_state(None) is None and leader_state(object()) is None
    assert leader_state(Leader()) is True and leader_state(Follower()) is False


async def test_health_server_in_polling_mode(server: FakeBotAPI, sqlite_url: str, catalog: Catalog) -> None:
    await prepare_database(sqlite_url, catalog)
    port = free_port()
    settings = Settings(
        _env_file=None,
        database_url=sqlite_url,
        telegram_bot_token=server.token,
        telegram_api_base=server.base_url,
        health_listen=f"127.0.0.1:{port}",
        reminders_enabled=False,
        compile_enabled=False,
    )
    db = Database(sqlite_url)
    task = asyncio.create_task(run_polling(Services(db, catalog, settings)))
    base = f"http://127.0.0.1:{port}"
    try:
        assert await server._wait_until(lambda: task.done() or server.stats["getUpdates"] > 0, 15)
        assert not task.done()
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/readyz") as resp:
                assert resp.status == 200 and (await resp.json())["database"] == "ok"
            async with http.get(base + "/metrics") as resp:
                before = samples(await resp.text())["resobot_updates_handled_total"]
            user = server.user(7003)
            user.send("/help")
            await user.replies(1)
            async with http.get(base + "/metrics") as resp:
                assert samples(await resp.text())["resobot_updates_handled_total"] == before + 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await db.dispose()


def test_cli_webhook_without_its_settings_is_one_line(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["run", "--webhook"])
    assert result.exit_code == 1
    assert "Webhook mode needs WEBHOOK_URL and WEBHOOK_SECRET" in result.output
    assert "Traceback" not in result.output
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.lv/hook")
    monkeypatch.setenv("WEBHOOK_SECRET", "abc")
    result = CliRunner().invoke(app, ["run", "--webhook", "--listen", "nowhere"])
    assert result.exit_code == 1 and "HOST:PORT" in result.output
    assert not (tmp_path / "x.db").exists()  # refused before anything started


async def test_stopping_finishes_the_update_in_progress(
    server: FakeBotAPI, sqlite_url: str, catalog: Catalog
) -> None:
    """SIGTERM while a handler waits for the Bot API: the server stops taking requests, the
    handler finishes, Telegram gets its 200 only then, and only then does the process stop.
    (With aiogram's default of handling in the background, the 200 goes out first and the
    reply is lost at the stop.)"""
    await prepare_database(sqlite_url, catalog)
    async with webhook_bot(server, sqlite_url, catalog) as bot:
        user = server.user(7004)
        server.delay("sendMessage", 1.0)  # the reply is answered a second late
        user.send("/help")
        posting = asyncio.create_task(server.deliver_webhook())
        assert await server._wait_until(lambda: server.stats["sendMessage"] > 0, 10)
        bot.stop.set()  # as SIGTERM does
        assert await posting == [200]
        await asyncio.wait_for(bot.task, 30)
        assert [o.chat_id for o in server.sent_to(7004)] == [7004]
        server.delay("sendMessage", None)
