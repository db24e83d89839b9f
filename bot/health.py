"""Health and metrics over HTTP, in both modes: ``/healthz``, ``/readyz``, ``/metrics``.

- ``/healthz`` — the process is alive and its event loop answers: always 200.
- ``/readyz`` — the database answers ``SELECT 1`` within ``HEALTH_DB_TIMEOUT`` seconds (else
  503) and, as information, whether this instance holds the scheduler/outbox leadership
  (``leader``: true, false or "unknown").
- ``/metrics`` — Prometheus text exposition format 0.0.4, written here (no dependency):
  updates handled (counter, a dispatcher middleware), reports submitted and submissions (from
  the database), outbox rows per status and rows stuck in ``sending`` (gauges from the
  database), database errors (a counter fed by SQLAlchemy's ``handle_error`` event on the
  bot's engine, so the handlers', the sender's and the scheduler's errors all count).

In webhook mode these routes also sit on the webhook server (bot/webhook.py); in both modes a
small server of their own listens on ``HEALTH_LISTEN`` (default 127.0.0.1:8081; ``off``
disables). That one is plain asyncio: three GET routes, one request per connection, answered
and closed. A polling bot so never loads aiohttp's web server (~1.6 MB of its idle memory,
issue 12 item 6), which only webhook mode needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiogram import BaseMiddleware, Dispatcher
from aiogram.types import TelegramObject
from sqlalchemy import and_, event, func, or_, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from bot.config import parse_listen
from storage import tables as t
from storage.db import Database

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
PATHS = ("/healthz", "/readyz", "/metrics")
OUTBOX_STATUSES = tuple(s.value for s in t.OutboxStatus)
# The column that says since when a row is in ``sending``. Until the outbox carries a claim
# timestamp of its own (a lease), the time the row became due is the best bound there is: a
# row due N minutes ago and still ``sending`` has been in flight at most N minutes.


@dataclass(frozen=True, slots=True)
class Reply:
    """One endpoint's answer as plain data, served by either server."""

    status: HTTPStatus
    content_type: str
    body: str

    @classmethod
    def json(cls, status: HTTPStatus, body: dict[str, Any]) -> Reply:
        return cls(status, JSON_TYPE, json.dumps(body))


@dataclass
class Metrics:
    """The counters of one bot process (the gauges are read from the database per scrape)."""

    updates_handled: int = 0
    updates_failed: int = 0
    database_errors: int = 0
    webhook_rejected: int = 0
    started: float = field(default_factory=lambda: dt.datetime.now(dt.UTC).timestamp())


class CountUpdates(BaseMiddleware):
    """Innermost outer update middleware: counts updates that reached the handlers (inside the
    unit of work, so a duplicate update dropped there is not counted) and those that raised."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        try:
            result = await handler(event, data)
        except BaseException:
            self.metrics.updates_failed += 1
            raise
        self.metrics.updates_handled += 1
        return result


def leader_state(runtime: Any) -> bool | None:
    """``runtime.is_leader`` (a bool or a method returning one) of the reminder runtime;
    None when there is no runtime or it has no such attribute (no leader election)."""
    value = getattr(runtime, "is_leader", None)
    if callable(value):
        value = value()
    return value if isinstance(value, bool) else None


class Health:
    """The three endpoints of one bot process."""

    def __init__(self, db: Database, *, db_timeout: float = 2.0, stuck_minutes: int = 10) -> None:
        self.db = db
        self.db_timeout = db_timeout
        self.stuck_minutes = stuck_minutes
        self.metrics = Metrics()
        self.runtime: Any = None  # the ReminderRuntime once it runs (its is_leader)
        self._engine: Engine | None = None

    # -- wiring ---------------------------------------------------------------------------------
    def instrument(self, dp: Dispatcher) -> None:
        """Count the dispatcher's updates and the engine's database errors."""
        dp.update.outer_middleware(CountUpdates(self.metrics))
        if self._engine is None:
            self._engine = self.db.engine.sync_engine
            event.listen(self._engine, "handle_error", self._on_db_error)

    def close(self) -> None:
        if self._engine is not None:
            event.remove(self._engine, "handle_error", self._on_db_error)
            self._engine = None

    def _on_db_error(self, context: Any) -> None:
        self.metrics.database_errors += 1

    # -- probes ---------------------------------------------------------------------------------
    async def _select_one(self) -> None:
        async with self.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def database_ok(self) -> tuple[bool, str]:
        try:
            await asyncio.wait_for(self._select_one(), self.db_timeout)
        except TimeoutError:
            self.metrics.database_errors += 1  # no driver error to see: the wait was cut
            return False, f"no answer within {self.db_timeout:g} s"
        except Exception as exc:
            self._count_unseen(exc)
            return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        return True, "ok"

    def _count_unseen(self, exc: BaseException) -> None:
        """Count an error the engine's ``handle_error`` did not: a refused connection (asyncpg
        raises the bare OSError), a wait cut by the timeout."""
        if not isinstance(exc, DBAPIError):
            self.metrics.database_errors += 1

    async def answer(self, path: str) -> Reply:
        """The answer to ``GET path`` (one of :data:`PATHS`; anything else is 404)."""
        if path == "/healthz":
            return Reply.json(HTTPStatus.OK, {"status": "ok"})
        if path == "/readyz":
            ok, detail = await self.database_ok()
            leader = leader_state(self.runtime)
            body = {
                "status": "ok" if ok else "unavailable",
                "database": detail,
                "leader": "unknown" if leader is None else leader,
            }
            return Reply.json(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, body)
        if path == "/metrics":
            return Reply(HTTPStatus.OK, CONTENT_TYPE, await self.render())
        return Reply(HTTPStatus.NOT_FOUND, CONTENT_TYPE, "404: Not Found\n")

    # -- metrics --------------------------------------------------------------------------------
    def _stuck(self, now: dt.datetime) -> Any:
        """A row in ``sending`` whose claim has expired (its sender died mid-request; the next
        drain requeues it), or, without a claim, older than ``stuck_minutes``."""
        claim = col(t.Outbox.claim_expires_at)
        since = func.coalesce(col(t.Outbox.next_attempt_at), col(t.Outbox.send_at))
        old = now - dt.timedelta(minutes=self.stuck_minutes)
        return or_(and_(claim.is_not(None), claim < now), and_(claim.is_(None), since < old))

    async def _database_figures(self) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        async with self.db.engine.connect() as conn:
            outbox = dict(
                (await conn.execute(select(t.Outbox.status, func.count()).group_by(t.Outbox.status))).all()
            )
            stuck = (
                await conn.execute(
                    select(func.count())
                    .select_from(t.Outbox)
                    .where(t.Outbox.status == t.OutboxStatus.SENDING, self._stuck(now))
                )
            ).scalar_one()
            submitted = (
                await conn.execute(
                    select(func.count())
                    .select_from(t.Report)
                    .where(t.Report.status == t.ReportStatus.SUBMITTED)
                )
            ).scalar_one()
            revisions = (await conn.execute(select(func.count()).select_from(t.ReportRevision))).scalar_one()
        return {"outbox": outbox, "stuck": stuck, "submitted": submitted, "revisions": revisions}

    async def render(self) -> str:
        m = self.metrics
        out = Exposition()
        out.add(
            "resobot_updates_handled_total", "counter", "Updates the handlers processed", m.updates_handled
        )
        out.add("resobot_updates_failed_total", "counter", "Updates whose handler raised", m.updates_failed)
        out.add(
            "resobot_webhook_rejected_total",
            "counter",
            "Webhook requests refused for a wrong or missing secret token",
            m.webhook_rejected,
        )
        out.add("resobot_process_start_time_seconds", "gauge", "Start of this process (Unix time)", m.started)
        leader = leader_state(self.runtime)
        if leader is not None:
            out.add("resobot_leader", "gauge", "1 when this instance runs the scheduler and outbox", leader)
        try:
            figures = await asyncio.wait_for(self._database_figures(), self.db_timeout)
        except Exception as exc:
            self._count_unseen(exc)
            log.warning("metrics: the database did not answer (%s)", type(exc).__name__)
            figures = None
        out.add("resobot_database_up", "gauge", "1 when the metrics' queries answered", figures is not None)
        if figures is not None:
            out.add(
                "resobot_reports_submitted",
                "gauge",
                "Reports whose current state is submitted",
                figures["submitted"],
            )
            out.add(
                "resobot_report_submissions",
                "gauge",
                "Submitted revisions, corrections included",
                figures["revisions"],
            )
            out.family("resobot_outbox_messages", "gauge", "Outbox rows by status")
            for status in OUTBOX_STATUSES:
                out.sample("resobot_outbox_messages", figures["outbox"].get(status, 0), status=status)
            out.add(
                "resobot_outbox_stuck_sending",
                "gauge",
                f"Outbox rows in sending for more than {self.stuck_minutes} minutes",
                figures["stuck"],
            )
        # last: the queries above may have counted one more
        out.add(
            "resobot_database_errors_total", "counter", "Database errors seen by the bot", m.database_errors
        )
        return out.text()


class Exposition:
    """Prometheus text format 0.0.4: ``# HELP``, ``# TYPE`` and samples, one family at a time."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        help_text = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, value: float | bool, **labels: str) -> None:
        label_text = ""
        if labels:
            pairs = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            label_text = "{" + pairs + "}"
        self.lines.append(f"{name}{label_text} {_number(value)}")

    def add(self, name: str, kind: str, help_text: str, value: float | bool) -> None:
        self.family(name, kind, help_text)
        self.sample(name, value)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float | bool) -> str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() else repr(value)


# ------------------------------------------------------------------ serving

REQUEST_HEAD_LIMIT = 8192  # bytes: a request line and headers, as a probe or a scraper sends them
REQUEST_TIMEOUT = 10.0  # seconds for a client to send its request head


async def _answered(health: Health, path: str) -> Reply:
    """The endpoint's answer; a probe that fails unexpectedly is one logged error and a 500."""
    try:
        return await health.answer(path)
    except Exception:
        log.exception("health endpoint %s failed", path)
        return Reply(HTTPStatus.INTERNAL_SERVER_ERROR, CONTENT_TYPE, "500: Internal Server Error\n")


async def _serve_one(
    health: Health,
    clients: set[asyncio.StreamWriter],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Read one request head, answer it, close. ``GET`` and ``HEAD`` of :data:`PATHS`; a head
    that is malformed, too long or too slow is 400, another method 405, another path 404."""
    method = ""
    clients.add(writer)
    try:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            method, target, version = head.split(b"\r\n", 1)[0].decode("ascii").split(" ")
            if not version.startswith("HTTP/1."):
                raise ValueError(version)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            reply = Reply(HTTPStatus.BAD_REQUEST, CONTENT_TYPE, "400: Bad Request\n")
        else:
            if method not in ("GET", "HEAD"):
                reply = Reply(HTTPStatus.METHOD_NOT_ALLOWED, CONTENT_TYPE, "405: Method Not Allowed\n")
            else:
                reply = await _answered(health, target.partition("?")[0])
        body = reply.body.encode()
        writer.write(
            (
                f"HTTP/1.1 {reply.status.value} {reply.status.phrase}\r\n"
                f"Content-Type: {reply.content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            + (b"" if method == "HEAD" else body)
        )
        await writer.drain()
    except ConnectionError:
        pass  # the client went away: nothing to answer
    finally:
        clients.discard(writer)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def serving(health: Health, listen: str) -> AsyncIterator[bool]:
    """The endpoints listening on ``HOST:PORT`` for the duration of the block. A port that
    cannot be bound is one error line and the block runs without them (yields False): the bot
    itself keeps working. At the end, connections still open are cut."""
    host, port = parse_listen(listen)
    clients: set[asyncio.StreamWriter] = set()
    try:
        server = await asyncio.start_server(
            lambda r, w: _serve_one(health, clients, r, w), host, port, limit=REQUEST_HEAD_LIMIT
        )
    except OSError as exc:
        log.error("cannot listen on %s:%s (%s); no health endpoints there", host, port, exc)
        yield False
        return
    log.info("listening on %s:%s", host, port)
    try:
        yield True
    finally:
        server.close()
        for writer in list(clients):
            writer.transport.abort()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def observed(services: Any, dp: Dispatcher, runtime: Any = None) -> AsyncIterator[Health]:
    """Counters on ``dp`` and the database, and the endpoints on HEALTH_LISTEN unless it is off
    (webhook mode also routes them on its own server: bot/webhook.py)."""
    settings = services.settings
    health = Health(
        services.db, db_timeout=settings.health_db_timeout, stuck_minutes=settings.metrics_stuck_minutes
    )
    health.runtime = runtime
    health.instrument(dp)
    try:
        if settings.health_listen:
            async with serving(health, settings.health_listen):
                yield health
        else:
            yield health
    finally:
        health.close()


__all__ = [
    "CONTENT_TYPE",
    "PATHS",
    "CountUpdates",
    "Exposition",
    "Health",
    "Metrics",
    "Reply",
    "leader_state",
    "observed",
    "serving",
]
