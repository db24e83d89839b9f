"""What an outbox row carries: one typed class per outbox kind, and the only place their JSON is
written (``to_json``) and read (``from_json`` / :func:`load_payload`).

The JSON is what ``outbox.payload`` has always stored (same keys), so rows written before these
classes existed still load: optional keys that old rows may lack have defaults.

=============  ====================  ======================================================
kind           class                 content
=============  ====================  ======================================================
``reminder``   :class:`ReminderPayload`  a planned reminder (tasks → measures due)
``snooze``     :class:`ReminderPayload`  the same again on the next working day
``digest``     :class:`DigestPayload`    one part of the coordinators' escalation digest
``summary``    :class:`SummaryPayload`   one part of a scheduled compilation's text
``document``   :class:`DocumentPayload`  a file of a scheduled compilation (sendDocument)
``notice``     :class:`NoticePayload`    a text already rendered in the recipient's language
=============  ====================  ======================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from reporting_forms.reminder_policy import (
    CarriedItem,
    PlannedItem,
    PlannedMessage,
    ReminderKind,
    TaskGroup,
)

KIND_REMINDER = "reminder"  # a planned reminder (one per contact per working day)
KIND_SNOOZE = "snooze"  # "Atgādināt rīt": the same content again on the next working day
KIND_DIGEST = "digest"  # the coordinators' escalation digest (one or more parts per day)
KIND_SUMMARY = "summary"  # a scheduled compilation's text summary (one or more parts)
KIND_DOCUMENT = "document"  # a file of a scheduled compilation (sendDocument)
KIND_NOTICE = "notice"  # a review decision, a reopened year: rendered in the recipient's language when queued
KIND_FILE = "file"  # a file answering a coordinator's command (/summary, /export): sendDocument at once
DOCUMENT_KINDS = frozenset({KIND_DOCUMENT, KIND_FILE})  # payload: DocumentPayload
REMINDER_KINDS = frozenset({KIND_REMINDER, KIND_SNOOZE})

_date = dt.date.fromisoformat


# ---------------------------------------------------------------- reminder / snooze


def _item_of(raw: Mapping[str, Any]) -> PlannedItem:
    return PlannedItem(
        measure_id=raw["measure_id"],
        measure_name=raw["measure_name"],
        kind=ReminderKind(raw["kind"]),
        deadline=_date(raw["deadline"]),
        period_year=int(raw["period_year"]),
        missing=tuple(raw.get("missing", ())),
        offset_days=raw.get("offset_days"),
    )


@dataclass(frozen=True)
class ReminderPayload:
    """A reminder (kind ``reminder``) or its snooze (kind ``snooze``: ``snoozed_from`` and
    ``original_id`` set)."""

    send_date: dt.date
    tasks: tuple[TaskGroup, ...] = ()
    institution: str = ""
    language: str = "lv"
    kinds: tuple[str, ...] = ()
    snoozed_from: dt.date | None = None
    original_id: int | None = None  # the outbox row a snooze was made from

    @classmethod
    def of_message(cls, message: PlannedMessage) -> ReminderPayload:
        return cls(
            send_date=message.send_date,
            tasks=message.tasks,
            institution=message.institution,
            language=message.language,
            kinds=tuple(sorted(k.value for k in message.kinds)),
        )

    @property
    def measures(self) -> tuple[str, ...]:
        """Measure codes the message lists, in order, without repeats."""
        return tuple(dict.fromkeys(item.measure_id for group in self.tasks for item in group.items))

    def measure_names(self) -> dict[str, str]:
        return {item.measure_id: item.measure_name for group in self.tasks for item in group.items}

    def carried(self) -> list[CarriedItem]:
        """The message's lines, to be listed again in a later message of the contact."""
        return [CarriedItem(g.task_id, g.task_title, item) for g in self.tasks for item in g.items]

    def snoozed(self, day: dt.date, original_id: int | None) -> ReminderPayload:
        """The same content for ``day``; ``snoozed_from`` keeps the first day it was meant for."""
        return replace(
            self, send_date=day, snoozed_from=self.snoozed_from or self.send_date, original_id=original_id
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "institution": self.institution,
            "language": self.language,
            "send_date": self.send_date.isoformat(),
            "kinds": list(self.kinds),
            "tasks": [g.as_dict() for g in self.tasks],
        }
        if self.snoozed_from is not None:
            out["snoozed_from"] = self.snoozed_from.isoformat()
        if self.original_id is not None:
            out["original_id"] = self.original_id
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReminderPayload:
        return cls(
            send_date=_date(data["send_date"]),
            tasks=tuple(
                TaskGroup(g["task_id"], g["task_title"], tuple(_item_of(i) for i in g.get("items", ())))
                for g in data.get("tasks", ())
            ),
            institution=data.get("institution", ""),
            language=data.get("language") or "lv",
            kinds=tuple(data.get("kinds", ())),
            snoozed_from=_date(data["snoozed_from"]) if data.get("snoozed_from") else None,
            original_id=data.get("original_id"),
        )


# ---------------------------------------------------------------- digest


@dataclass(frozen=True)
class DigestGroup:
    """Overdue measures of one institution with the same source, deadline and year."""

    source: str  # OverdueSource value
    deadline: dt.date
    period_year: int
    days_overdue: int
    measures: tuple[str, ...]
    more: int = 0  # measures left out to fit one message ("un vēl N")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "deadline": self.deadline.isoformat(),
            "period_year": self.period_year,
            "days_overdue": self.days_overdue,
            "measures": list(self.measures),
        }
        if self.more:
            out["more"] = self.more
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DigestGroup:
        return cls(
            source=data["source"],
            deadline=_date(data["deadline"]),
            period_year=int(data["period_year"]),
            days_overdue=int(data["days_overdue"]),
            measures=tuple(data.get("measures", ())),
            more=int(data.get("more", 0)),
        )


@dataclass(frozen=True)
class DigestReminded:
    """Who was reminded, and on which days."""

    name: str
    dates: tuple[dt.date, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "dates": [d.isoformat() for d in self.dates]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DigestReminded:
        return cls(data["name"], tuple(_date(d) for d in data.get("dates", ())))


@dataclass(frozen=True)
class DigestInstitution:
    abbr: str
    groups: tuple[DigestGroup, ...]
    reminded: tuple[DigestReminded, ...] = ()
    nobody: bool = False  # no contact can be reminded
    continued: bool = False  # the rest of an institution cut over several parts

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "abbr": self.abbr,
            "groups": [g.to_json() for g in self.groups],
            "reminded": [r.to_json() for r in self.reminded],
            "nobody": self.nobody,
        }
        if self.continued:
            out["continued"] = True
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DigestInstitution:
        return cls(
            abbr=data["abbr"],
            groups=tuple(DigestGroup.from_json(g) for g in data.get("groups", ())),
            reminded=tuple(DigestReminded.from_json(r) for r in data.get("reminded", ())),
            nobody=bool(data.get("nobody", False)),
            continued=bool(data.get("continued", False)),
        )


@dataclass(frozen=True)
class DigestMute:
    contact: str
    institution: str
    measure_id: str
    until: dt.date
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "contact": self.contact,
            "institution": self.institution,
            "measure_id": self.measure_id,
            "until": self.until.isoformat(),
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DigestMute:
        return cls(
            data["contact"], data["institution"], data["measure_id"], _date(data["until"]), data["reason"]
        )


@dataclass(frozen=True)
class DigestBlocked:
    name: str
    institution: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "institution": self.institution}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DigestBlocked:
        return cls(data["name"], data["institution"])


@dataclass(frozen=True)
class DigestPayload:
    """One part of the coordinators' escalation digest of ``day``."""

    day: dt.date
    institutions: tuple[DigestInstitution, ...] = ()
    mutes: tuple[DigestMute, ...] = ()
    blocked: tuple[DigestBlocked, ...] = ()
    overdue_total: int = 0
    part: int = 1
    parts: int = 1
    language: str = "lv"

    @property
    def is_empty(self) -> bool:
        return not (self.institutions or self.mutes or self.blocked)

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "overdue_total": self.overdue_total,
            "institutions": [i.to_json() for i in self.institutions],
            "mutes": [m.to_json() for m in self.mutes],
            "blocked": [b.to_json() for b in self.blocked],
            "part": self.part,
            "parts": self.parts,
            "language": self.language,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DigestPayload:
        return cls(
            day=_date(data["day"]),
            institutions=tuple(DigestInstitution.from_json(i) for i in data.get("institutions", ())),
            mutes=tuple(DigestMute.from_json(m) for m in data.get("mutes", ())),
            blocked=tuple(DigestBlocked.from_json(b) for b in data.get("blocked", ())),
            overdue_total=int(data.get("overdue_total", 0)),
            part=int(data.get("part", 1)),
            parts=int(data.get("parts", 1)),
            language=data.get("language") or "lv",
        )


# ---------------------------------------------------------------- compilations and notices


@dataclass(frozen=True)
class SummaryPayload:
    """One part of a scheduled compilation's text, already in the recipient's language."""

    text: str
    part: int = 1
    parts: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "part": self.part, "parts": self.parts}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SummaryPayload:
        return cls(data["text"], int(data.get("part", 1)), int(data.get("parts", 1)))


@dataclass(frozen=True)
class DocumentPayload:
    """A file to send with sendDocument; ``caption`` is optional."""

    path: str
    filename: str | None = None
    caption: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.filename is not None:
            out["filename"] = self.filename
        if self.caption:
            out["caption"] = self.caption
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DocumentPayload:
        return cls(str(data.get("path", "")), data.get("filename"), data.get("caption") or "")


@dataclass(frozen=True)
class NoticePayload:
    """A message rendered in the recipient's language when it was queued (a review decision,
    a reopened year)."""

    text: str

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NoticePayload:
        return cls(data["text"])


OutboxPayload = ReminderPayload | DigestPayload | SummaryPayload | DocumentPayload | NoticePayload

PAYLOAD_TYPES: dict[str, type[OutboxPayload]] = {
    KIND_REMINDER: ReminderPayload,
    KIND_SNOOZE: ReminderPayload,
    KIND_DIGEST: DigestPayload,
    KIND_SUMMARY: SummaryPayload,
    KIND_DOCUMENT: DocumentPayload,
    KIND_FILE: DocumentPayload,
    KIND_NOTICE: NoticePayload,
}


def load_payload(kind: str, data: Mapping[str, Any]) -> OutboxPayload:
    """The stored JSON of an outbox row of ``kind`` as its class. ValueError for an unknown kind;
    KeyError/ValueError for content that is not that kind's."""
    cls = PAYLOAD_TYPES.get(kind)
    if cls is None:
        raise ValueError(f"no payload class for outbox kind {kind!r}")
    return cls.from_json(data)


def stored_language(data: Mapping[str, Any]) -> str:
    """The language a stored payload names (reminders and digests do), else Latvian."""
    return str(data.get("language") or "lv")
