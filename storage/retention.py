"""Retention (``resobot purge``): what the bot no longer needs after N days is deleted, and the
personal data of contacts deactivated N days ago is erased.

Deleted when older than the cut-off:

- processed update ids (the duplicate window is minutes to hours);
- delivered outbox rows — ``sent`` (by when they were sent) and ``cancelled`` (by when they
  were due); pending, in-flight, failed and blocked rows stay for the operator;
- registration attempts (the slow-down for wrong codes looks back six hours);
- files of the scheduled compilations under ``COMPILED_DIR``, unless a message still waiting in
  the outbox will send them; folders left empty go too.

Contacts deactivated more than N days ago keep their row and id — reports, revisions, reviews
and policy actuals still name their author by id — but their name becomes ``—``, their Telegram
id is removed, the name on the invite they used is cleared and their conversation state goes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncSession as SAAsyncSession
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from reporting_forms.payloads import DOCUMENT_KINDS, DocumentPayload, load_payload
from storage import tables as t
from storage.db import Database

DEFAULT_DAYS = 90
ANONYMOUS = "—"
UNFINISHED = (t.OutboxStatus.PENDING.value, t.OutboxStatus.SENDING.value)


@dataclass
class PurgeResult:
    cutoff: dt.datetime
    processed_updates: int = 0
    interrupted_updates: int = 0
    outbox_rows: int = 0
    registration_attempts: int = 0
    compiled_files: int = 0
    contacts_anonymised: int = 0
    removed_files: list[Path] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "processed_updates": self.processed_updates,
            "interrupted_updates": self.interrupted_updates,
            "outbox_rows": self.outbox_rows,
            "registration_attempts": self.registration_attempts,
            "compiled_files": self.compiled_files,
            "contacts_anonymised": self.contacts_anonymised,
        }


async def purge(
    db: Database,
    *,
    days: int = DEFAULT_DAYS,
    now: dt.datetime | None = None,
    compiled_dir: Path | None = None,
) -> PurgeResult:
    """Apply the retention policy once (one transaction for the rows, then the files)."""
    if days < 0:
        raise ValueError("days must not be negative")
    now = now or t.utcnow()
    result = PurgeResult(cutoff=now - dt.timedelta(days=days))
    cutoff = result.cutoff
    async with db.session() as s:
        done = await _run(s, delete(t.ProcessedUpdate).where(col(t.ProcessedUpdate.at) < cutoff))
        result.processed_updates = done.rowcount
        # kept by a stop and never handled since (the bot's token changed, or it never started again)
        done = await _run(s, delete(t.InterruptedUpdate).where(col(t.InterruptedUpdate.at) < cutoff))
        result.interrupted_updates = done.rowcount
        done = await _run(
            s,
            delete(t.Outbox).where(
                or_(
                    (col(t.Outbox.status) == t.OutboxStatus.SENT.value)
                    & (col(t.Outbox.sent_at).is_not(None))
                    & (col(t.Outbox.sent_at) < cutoff),
                    (col(t.Outbox.status) == t.OutboxStatus.CANCELLED.value)
                    & (col(t.Outbox.send_at) < cutoff),
                )
            ),
        )
        result.outbox_rows = done.rowcount
        done = await _run(s, delete(t.RegistrationAttempt).where(col(t.RegistrationAttempt.at) < cutoff))
        result.registration_attempts = done.rowcount
        result.contacts_anonymised = await _anonymise(s, cutoff)
        unfinished = select(t.Outbox.kind, t.Outbox.payload).where(
            col(t.Outbox.status).in_(UNFINISHED) & col(t.Outbox.kind).in_(DOCUMENT_KINDS)
        )
        waiting = {
            payload.path
            for kind, data in (await s.exec(unfinished)).all()
            if isinstance(payload := load_payload(kind, data or {}), DocumentPayload) and payload.path
        }
    if compiled_dir is not None:
        result.removed_files = _old_files(Path(compiled_dir), cutoff, waiting)
        result.compiled_files = len(result.removed_files)
    return result


async def _run(s: AsyncSession, statement: Any) -> Any:
    # SQLAlchemy's own execute (SQLModel's warns for anything but ORM selects)
    return await SAAsyncSession.execute(s, statement)


async def _anonymise(s: AsyncSession, cutoff: dt.datetime) -> int:
    gone = (
        await s.exec(
            select(t.Contact).where(
                col(t.Contact.active).is_(False),
                col(t.Contact.deactivated_at).is_not(None),
                col(t.Contact.deactivated_at) < cutoff,
                or_(col(t.Contact.display_name) != ANONYMOUS, col(t.Contact.telegram_user_id).is_not(None)),
            )
        )
    ).all()
    for contact in gone:
        if contact.telegram_user_id is not None:
            user = str(contact.telegram_user_id)
            # aiogram's storage keys: bot:chat:user[:thread][:destiny] (bot/fsm_storage.py)
            for pattern in (f"%:{user}:{user}:%", f"%:{user}:{user}"):
                await _run(s, delete(t.ConversationState).where(col(t.ConversationState.key).like(pattern)))
        contact.display_name, contact.telegram_user_id = ANONYMOUS, None
        await _run(
            s,
            update(t.Invite).where(col(t.Invite.used_by_contact_id) == contact.id).values(display_name=None),
        )
    await s.flush()
    return len(gone)


def _old_files(root: Path, cutoff: dt.datetime, keep: set[str]) -> list[Path]:
    if not root.is_dir():
        return []
    limit = cutoff.timestamp()
    kept = {str(Path(p).resolve()) for p in keep}
    removed = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.stat().st_mtime < limit and str(path.resolve()) not in kept:
            path.unlink()
            removed.append(path)
    for folder in sorted(
        (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
    ):
        if not any(folder.iterdir()):
            folder.rmdir()
    return removed


__all__ = ["ANONYMOUS", "DEFAULT_DAYS", "PurgeResult", "purge"]
