"""Updates a stop left unhandled (``interrupted_update``): saved as the process stops, handed
to the replay at the next start, deleted once handled (bot/app.py, bot/replay.py); kept in a
file of the data folder when the database is unreachable at the stop. The updates the replay
holds during an outage are also written down as it holds them (a journal, ``JOURNAL_GLOB``), so
that a process killed before the database is back leaves them to the next start."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import tables as t


class InterruptedUpdateRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def save(self, bot_id: int, updates: Iterable[tuple[int, dict[str, Any]]]) -> int:
        """Keep each (update id, the update as Telegram sent it) of bot ``bot_id``; one kept
        already (a stop during the replay of an earlier stop's) is left as it is. The number saved."""
        saved = 0
        for update_id, payload in updates:
            if await self.session.get(t.InterruptedUpdate, (bot_id, update_id)) is None:
                self.session.add(t.InterruptedUpdate(bot_id=bot_id, update_id=update_id, payload=payload))
                saved += 1
        await self.session.flush()
        return saved

    async def pending(self, bot_id: int) -> list[tuple[int, dict[str, Any]]]:
        """Bot ``bot_id``'s kept updates, in Telegram's order (by update id)."""
        stmt = (
            select(t.InterruptedUpdate.update_id, t.InterruptedUpdate.payload)
            .where(col(t.InterruptedUpdate.bot_id) == bot_id)
            .order_by(col(t.InterruptedUpdate.update_id))
        )
        return [(int(update_id), payload) for update_id, payload in (await self.session.exec(stmt)).all()]

    async def forget(self, bot_id: int, update_id: int) -> None:
        """The update was handled (or dropped as a duplicate): no longer kept."""
        row = await self.session.get(t.InterruptedUpdate, (bot_id, update_id))
        if row is not None:
            await self.session.delete(row)
            await self.session.flush()


# When the database cannot take them (a stop during an outage), the updates go to a file in the
# data folder instead, one JSON object a line; the next start moves them into the table.
FALLBACK_FILE = "interrupted-updates.jsonl"
# The updates the replay holds, in the same format, while it holds them (bot/replay.py): one file
# per process (instances may share a data folder), removed once they were handled or a stop kept
# them; one left behind (a process killed during an outage) joins FALLBACK_FILE at a next start.
JOURNAL_GLOB = "held-updates.*.jsonl"


def new_journal(data_dir: Path) -> Path:
    """A journal name of this process's own in ``data_dir`` (the file is made at its first line)."""
    return data_dir / JOURNAL_GLOB.replace("*", f"{os.getpid()}-{uuid.uuid4().hex[:8]}")


def journals(data_dir: Path) -> list[Path]:
    """The journals in ``data_dir``: of processes that ended without removing theirs, or of
    another instance running on the same data folder."""
    return sorted(data_dir.glob(JOURNAL_GLOB))


def _append(path: Path, lines: Iterable[dict[str, Any]], *, durable: bool) -> None:
    """Append ``lines`` to ``path``, one JSON object a line, in a file readable by its owner
    only (the updates hold the users' messages); ``durable``: flushed to disk before returning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        if durable:
            out.flush()
            os.fsync(out.fileno())


def keep_in_file(path: Path, bot_id: int, updates: Iterable[tuple[int, dict[str, Any]]]) -> None:
    """Append bot ``bot_id``'s (update id, update) pairs to ``path``, flushed to disk."""
    lines = ({"bot_id": bot_id, "update_id": update_id, "payload": payload} for update_id, payload in updates)
    _append(path, lines, durable=True)


def mark_handled(path: Path, bot_id: int, update_id: int) -> None:
    """A journal's update was handled: a line saying so, after its own (not fsynced: a mark lost
    with the machine only leaves the update to the duplicate check of a next start)."""
    _append(path, [{"bot_id": bot_id, "update_id": update_id, "handled": True}], durable=False)


def read_file(path: Path) -> dict[int, list[tuple[int, dict[str, Any]]]]:
    """Bot id → its (update id, update) pairs kept in ``path`` and not marked handled after
    (:func:`mark_handled`); a line that is not one (cut short by a crash while it was written)
    is skipped. Nothing when there is no file."""
    kept: dict[tuple[int, int], dict[str, Any]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    for line in lines:
        try:
            item = json.loads(line)
            key = (int(item["bot_id"]), int(item["update_id"]))
            if item.get("handled") is True:
                kept.pop(key, None)
            else:
                kept[key] = dict(item["payload"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    by_bot: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for (bot_id, update_id), payload in kept.items():
        by_bot.setdefault(bot_id, []).append((update_id, payload))
    return by_bot


def move_file(source: Path, target: Path) -> int:
    """Append ``source``'s updates to ``target`` (as :func:`keep_in_file`), then remove
    ``source``; the number moved (0 when there is no ``source``)."""
    kept = read_file(source)
    for bot_id, updates in kept.items():
        keep_in_file(target, bot_id, updates)
    source.unlink(missing_ok=True)
    return sum(len(updates) for updates in kept.values())
