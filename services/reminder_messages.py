"""Reminder and digest messages: how an outbox row reads, how the digest is cut into messages,
and the snooze and mute rules behind a reminder's buttons. No aiogram: the buttons themselves
are ``bot/keyboards.py``'s, the handlers ``bot/routers/reminders.py``'s.

Rendering is pure (typed payload → text, reporting_forms/payloads.py); the sender renders at
send time in the contact's current language.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from reporting_forms.answers import clean_text
from reporting_forms.catalog import natural_key
from reporting_forms.messages import MESSAGE_LIMIT, message_length
from reporting_forms.payloads import (
    KIND_SNOOZE,
    REMINDER_KINDS,
    DigestBlocked,
    DigestGroup,
    DigestInstitution,
    DigestMute,
    DigestPayload,
    DigestReminded,
    DocumentPayload,
    NoticePayload,
    OutboxPayload,
    ReminderPayload,
    SummaryPayload,
)
from reporting_forms.reminder_policy import EscalationDigest, OverdueEntry, ReminderPolicy
from reporting_forms.texts import Refused, shorten, text
from reporting_forms.workdays import next_working_day
from storage.outbox import MuteView, NewMessage, outbox_key
from storage.repositories import Repos

NAME_WIDTH = 90
TASK_WIDTH = 120
MISSING_SHOWN = 8
REASON_MIN, REASON_MAX = 3, 300


# ------------------------------------------------------------------ rendering: reminders


def _reminder_tasks(payload: ReminderPayload) -> list[dict[str, Any]]:
    """The template's view of the tasks: shortened names, days left, the first missing rows."""
    tasks = []
    for group in payload.tasks:
        items = []
        for item in group.items:
            missing = list(item.missing)
            items.append(
                {
                    "measure_id": item.measure_id,
                    "measure_name": shorten(item.measure_name, NAME_WIDTH),
                    "kind": item.kind.value,
                    "deadline": item.deadline,
                    "period_year": item.period_year,
                    "days_left": (item.deadline - payload.send_date).days,
                    "missing": missing[:MISSING_SHOWN],
                    "missing_more": max(0, len(missing) - MISSING_SHOWN),
                    "missing_count": len(missing),
                }
            )
        title = shorten(group.task_title, TASK_WIDTH)
        tasks.append({"task_id": group.task_id, "task_title": title, "measures": items})
    return tasks


def _cut(tasks: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    out, left = [], keep
    for task in tasks:
        if left <= 0:
            break
        out.append({**task, "measures": task["measures"][:left]})
        left -= len(out[-1]["measures"])
    return out


def reminder_text(payload: ReminderPayload, lang: str) -> str:
    """The reminder message; shorter forms when the full one would not fit one message."""
    tasks = _reminder_tasks(payload)
    params = {
        "institution": payload.institution,
        "kinds": list(payload.kinds),
        "snoozed_from": payload.snoozed_from,
    }
    for compact in (False, True):
        body = text(lang, "reminders.reminder", tasks=tasks, compact=compact, more=0, **params)
        if message_length(body) <= MESSAGE_LIMIT:
            return body
    total = sum(len(t["measures"]) for t in tasks)
    keep = total
    while keep > 1:
        keep = max(1, keep * 3 // 4)
        body = text(
            lang, "reminders.reminder", tasks=_cut(tasks, keep), compact=True, more=total - keep, **params
        )
        if message_length(body) <= MESSAGE_LIMIT:
            return body
    return body


# ------------------------------------------------------------------ the digest


def _digest_institution(
    abbr: str, entries: Sequence[OverdueEntry], names: dict[int, str], tz: dt.tzinfo
) -> DigestInstitution:
    groups: dict[tuple[str, dt.date, int], tuple[OverdueEntry, list[str]]] = {}
    reminded: dict[int, set[dt.date]] = defaultdict(set)
    for e in entries:
        _, measures = groups.setdefault((e.source.value, e.deadline, e.period_year), (e, []))
        if e.measure_id not in measures:
            measures.append(e.measure_id)
        for r in e.reminded:
            reminded[r.contact_id].add(r.sent_at.astimezone(tz).date())
    ordered = sorted(
        (
            DigestGroup(
                source=first.source.value,
                deadline=first.deadline,
                period_year=first.period_year,
                days_overdue=first.days_overdue,
                measures=tuple(sorted(measures, key=natural_key)),
            )
            for first, measures in groups.values()
        ),
        key=lambda g: (-g.days_overdue, g.source, g.deadline),
    )
    return DigestInstitution(
        abbr=abbr,
        groups=tuple(ordered),
        reminded=tuple(
            DigestReminded(names.get(cid, f"#{cid}"), tuple(sorted(days)))
            for cid, days in sorted(reminded.items(), key=lambda kv: names.get(kv[0], ""))
        ),
        nobody=all(e.nobody_to_remind for e in entries),
    )


def digest_payloads(
    digest: EscalationDigest,
    mutes: Sequence[MuteView],
    names: dict[int, str],
    lang: str,
    tz: dt.tzinfo,
) -> list[DigestPayload]:
    """The digest as one or more message payloads, each fitting one Telegram message.

    Usually one. Otherwise institutions are packed whole into parts (an institution too long for
    one message is split by its deadline groups, "(turpinājums)"), then the mutes and the blocked
    contacts fill the last part and spill into more parts when they must."""
    institutions = [
        _digest_institution(abbr, entries, names, tz) for abbr, entries in digest.by_institution().items()
    ]
    mute_rows = [
        DigestMute(m.contact_name, m.institution, m.measure_id, m.until, shorten(m.reason, 200))
        for m in mutes
    ]
    blocked = [
        DigestBlocked(names.get(c.contact_id, f"#{c.contact_id}"), c.institution)
        for c in digest.blocked_contacts
    ]
    # parts=9: a placeholder of the same width while packing
    empty = DigestPayload(day=digest.day, overdue_total=len(digest.entries), part=1, parts=9, language=lang)

    def fits(part: DigestPayload) -> bool:
        return message_length(digest_text(part, lang)) <= MESSAGE_LIMIT

    whole = replace(empty, institutions=tuple(institutions), mutes=tuple(mute_rows), blocked=tuple(blocked))
    if fits(whole):
        parts = [whole]
    else:
        parts = [empty]
        for block in _institution_blocks(empty, institutions, fits):
            _pack(parts, "institutions", block, fits, empty)
        for key, rows in (("mutes", mute_rows), ("blocked", blocked)):
            for row in rows:
                _pack(parts, key, row, fits, empty)
    return [replace(p, part=i, parts=len(parts)) for i, p in enumerate(parts, start=1)]


def _pack(
    parts: list[DigestPayload],
    key: str,
    value: Any,
    fits: Callable[[DigestPayload], bool],
    empty: DigestPayload,
) -> None:
    """Append ``value`` to ``parts[-1].<key>``, or start a new part when it would not fit."""
    last = parts[-1]
    candidate = replace(last, **{key: (*getattr(last, key), value)})
    if last.is_empty or fits(candidate):
        parts[-1] = candidate
    else:
        parts.append(replace(empty, **{key: (value,)}))


def _institution_blocks(
    empty: DigestPayload, institutions: list[DigestInstitution], fits: Callable[[DigestPayload], bool]
) -> list[DigestInstitution]:
    """Institutions as blocks that each fit a message: a long one is cut into its deadline groups,
    and a group longer than a message keeps its first measures ("un vēl N")."""
    blocks = []
    for inst in institutions:
        if fits(replace(empty, institutions=(inst,))):
            blocks.append(inst)
            continue
        for i, group in enumerate(inst.groups):
            piece = replace(inst, groups=(group,), continued=i > 0, reminded=inst.reminded if i == 0 else ())
            while not fits(replace(empty, institutions=(piece,))) and len(group.measures) > 1:
                shown = group.measures[: max(1, len(group.measures) * 3 // 4)]
                group = replace(group, measures=shown, more=group.more + len(group.measures) - len(shown))
                piece = replace(piece, groups=(group,))
            blocks.append(piece)
    return blocks


def digest_text(payload: DigestPayload, lang: str) -> str:
    return text(
        lang,
        "reminders.digest",
        day=payload.day,
        part=payload.part,
        parts=payload.parts,
        institutions=payload.institutions,
        mutes=payload.mutes,
        blocked=payload.blocked,
        overdue_total=payload.overdue_total,
    )


def outbox_text(payload: OutboxPayload, lang: str) -> str:
    """The text of an outbox row (a document's caption), in ``lang`` where it is rendered now."""
    if isinstance(payload, ReminderPayload):
        return reminder_text(payload, lang)
    if isinstance(payload, DigestPayload):
        return digest_text(payload, lang)
    if isinstance(payload, SummaryPayload | NoticePayload):  # in the recipient's language when queued
        return payload.text
    if isinstance(payload, DocumentPayload):  # the file is the message; a caption is optional
        return payload.caption
    raise ValueError(f"no renderer for {type(payload).__name__}")


# ------------------------------------------------------------------ snooze and mute rules


def snooze_key(contact_id: int, day: dt.date, original_key: str) -> str:
    return outbox_key([contact_id, KIND_SNOOZE, day.isoformat(), original_key])


def add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def mute_until(option: str, today: dt.date, deadline: dt.date | None) -> dt.date:
    """The first day reminders come again. ValueError for an unknown or past option."""
    if option == "2w":
        return today + dt.timedelta(days=14)
    if option == "1m":
        return add_months(today, 1)
    if option == "dl" and deadline is not None and deadline > today:
        return deadline
    raise ValueError(option)


class ReasonError(Refused):
    """Why a typed mute reason is refused: ``code`` names the message ``reminders.<code>``,
    ``params`` fill it."""

    TEMPLATE = "reminders."


def parse_reason(raw: str | None) -> str:
    """A mute reason: one line of 3–300 characters (inner whitespace collapsed)."""
    reason = " ".join(clean_text(raw or "").split())
    if len(reason) < REASON_MIN:
        raise ReasonError("mute_reason_too_short")
    if len(reason) > REASON_MAX:
        raise ReasonError("mute_reason_too_long", length=len(reason))
    return reason


def measure_deadline(payload: ReminderPayload, code: str, today: dt.date) -> dt.date | None:
    """The nearest future deadline the reminder names for this measure."""
    future = [
        item.deadline
        for group in payload.tasks
        for item in group.items
        if item.measure_id == code and item.deadline > today
    ]
    return min(future) if future else None


# ------------------------------------------------------------------ a contact's reminder rows


@dataclass(frozen=True)
class ReminderRow:
    """A reminder or snooze outbox row, as its buttons see it."""

    id: int
    chat_id: int
    dedup_key: str
    payload: ReminderPayload


async def own_reminder(repos: Repos, row_id: int, contact_id: int | None) -> ReminderRow | None:
    """The reminder row ``row_id`` if it is the contact's, else None."""
    row = await repos.outbox.get(row_id)
    if row is None or row.id is None or row.contact_id != contact_id or row.kind not in REMINDER_KINDS:
        return None
    return ReminderRow(row.id, row.chat_id, row.dedup_key, ReminderPayload.from_json(row.payload))


async def snooze(
    repos: Repos, row: ReminderRow, contact_id: int, policy: ReminderPolicy, today: dt.date
) -> tuple[bool, dt.date]:
    """ "Atgādināt rīt": the same content again on the next working day at the send time, as a
    ``snooze`` row with its own dedup key (pressing twice adds nothing). Returns (added, day)."""
    day = next_working_day(today, policy.country)
    added = await repos.outbox.add(
        NewMessage(
            dedup_key=snooze_key(contact_id, day, row.dedup_key),
            contact_id=contact_id,
            chat_id=row.chat_id,
            kind=KIND_SNOOZE,
            payload=row.payload.snoozed(day, row.id),
            send_at=policy.send_at(day),
        )
    )
    return added, day
