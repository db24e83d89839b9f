"""Real bot processes (``python -m bot run``) against the fake Bot API, and a TCP proxy in
front of PostgreSQL that a test can cut and restore (the database "unreachable")."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.fakebotapi import FakeBotAPI
from tests.test_exactly_once import quiet_hours_away_from_now


class BotProcess:
    """One instance of the bot; ``kill()`` is SIGKILL, ``term()`` SIGTERM (a clean stop)."""

    def __init__(self, server: FakeBotAPI, url: str, tmp: Path, name: str, **env: str) -> None:
        self.tmp, self.name = tmp, name
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OUTBOX_", "REMINDER"))},
            "DATABASE_URL": url,
            "TELEGRAM_BOT_TOKEN": server.token,
            "TELEGRAM_API_BASE": server.base_url,
            "REMINDERS_ENABLED": "false",
            "COMPILE_ENABLED": "false",
            "REMINDER_POLICY_OVERRIDES": quiet_hours_away_from_now(),
            "OUTBOX_POLL_SECONDS": "0.2",
            "OUTBOX_REQUEST_TIMEOUT": "5",
            "OUTBOX_CLAIM_LEASE_SECONDS": "3",
            "LEADER_POLL_SECONDS": "1",
            "COMPILED_DIR": str(tmp / "compiled"),
            "DATA_DIR": str(tmp / "data"),  # what a stop keeps in a file stays with this test
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.runs = 0

    async def start(self) -> None:
        self.runs += 1
        log = (self.tmp / f"{self.name}-{self.runs}.log").open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=self.tmp, env=self.env, stdout=log, stderr=log
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        if self.running:
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            await asyncio.wait_for(self.proc.wait(), 10)

    async def term(self, timeout: float = 30.0) -> int | None:
        if not self.running:
            return None
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            return None

    async def started(self, timeout: float = 60.0) -> None:
        """Until this run is polling (its signal handlers are in place from then on)."""
        log = self.tmp / f"{self.name}-{self.runs}.log"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while "Run polling" not in (log.read_text(errors="replace") if log.exists() else ""):
            assert loop.time() < deadline and self.running, self.logs()[-3000:]
            await asyncio.sleep(0.1)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob(f"{self.name}-*.log")))


class TcpProxy:
    """127.0.0.1:<port> → the database server. ``cut()`` closes the listener and every open
    connection (connecting is refused), ``restore()`` listens on the same port again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @classmethod
    def in_front_of(cls, url: str) -> TcpProxy:
        parsed = make_url(url)
        return cls(parsed.host or "127.0.0.1", parsed.port or 5432)

    def url_for(self, url: str) -> str:
        return make_url(url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except Exception:
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}


async def add_contacts(url: str, user_ids: list[int], institution: str = "VPD") -> None:
    """Registered contacts (as if each had redeemed an invite)."""
    from storage.db import Database
    from storage.repositories import Repos

    db = Database(url)
    try:
        async with db.session() as s:
            repos = Repos(s)
            inst = await repos.people.institution(institution)
            for uid in user_ids:
                await repos.people.add_contact(
                    display_name=f"U{uid}", institution_id=inst.id, telegram_user_id=uid
                )
    finally:
        await db.dispose()


async def report_answers(url: str) -> dict[tuple[str, str | None], dict]:
    """Submitted reports: (measure, author) → the answers."""
    from storage.db import Database
    from storage.repositories import Repos

    db = Database(url)
    try:
        async with db.session() as s:
            return {(v.measure_code, v.author): v.answers() for v in await Repos(s).reports.views()}
    finally:
        await db.dispose()


async def drafts(url: str) -> dict[str, dict]:
    """Conversation rows: FSM key → data (the drafts)."""
    from sqlalchemy import text

    from storage.db import Database

    db = Database(url)
    try:
        async with db.session() as s:
            rows = (await s.exec(text("SELECT * FROM conversation_state"))).mappings().all()
            return {str(r["key"]): r for r in rows}
    finally:
        await db.dispose()
