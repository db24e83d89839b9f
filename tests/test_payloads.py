"""Typed outbox payloads (reporting_forms/payloads.py): every kind survives its JSON, the JSON
keeps the keys rows have always been stored with, and rows written before the classes existed
still load and render."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from bot.sender import render_outbox
from reporting_forms.payloads import (
    KIND_DIGEST,
    KIND_DOCUMENT,
    KIND_FILE,
    KIND_NOTICE,
    KIND_REMINDER,
    KIND_SNOOZE,
    KIND_SUMMARY,
    PAYLOAD_TYPES,
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
    load_payload,
)
from reporting_forms.reminder_policy import PlannedItem, PlannedMessage, ReminderKind, TaskGroup
from storage.outbox import NewMessage

D = dt.date.fromisoformat

ITEM = PlannedItem(
    measure_id="1.1.5",
    measure_name="Pasākums",
    kind=ReminderKind.DEADLINE,
    deadline=D("2026-12-31"),
    period_year=2026,
    missing=("1.1.5.1", "1.1.5.2"),
    offset_days=30,
)
REMINDER = ReminderPayload(
    send_date=D("2026-12-01"),
    tasks=(
        TaskGroup(
            "1.1",
            "Uzdevums",
            (ITEM, PlannedItem("1.1.10", "Cits", ReminderKind.REQUEST, D("2026-12-31"), 2026, ())),
        ),
    ),
    institution="VPD",
    language="en",
    kinds=("deadline", "request"),
)
DIGEST = DigestPayload(
    day=D("2027-01-14"),
    institutions=(
        DigestInstitution(
            "VPD",
            (DigestGroup("yearly_report", D("2026-12-31"), 2026, 14, ("1.1.5", "1.1.10"), more=3),),
            (DigestReminded("Līga", (D("2026-12-15"), D("2026-12-29"))),),
            nobody=False,
            continued=True,
        ),
        DigestInstitution(
            "LM", (DigestGroup("indicator_deadline", D("2026-06-01"), 2026, 200, ("2.6.1",)),), nobody=True
        ),
    ),
    mutes=(DigestMute("Anna", "LM", "2.6.1", D("2027-02-01"), "atvaļinājums"),),
    blocked=(DigestBlocked("Bruno", "VPD"),),
    overdue_total=4,
    part=2,
    parts=3,
    language="lv",
)
EXAMPLES: list[tuple[str, OutboxPayload]] = [
    (KIND_REMINDER, REMINDER),
    (KIND_SNOOZE, REMINDER.snoozed(D("2026-12-02"), 41)),
    (KIND_DIGEST, DIGEST),
    (KIND_SUMMARY, SummaryPayload("<b>Kopsavilkums</b>", 2, 3)),
    (KIND_DOCUMENT, DocumentPayload("/var/compiled/2026/lv/a.xlsx", "a.xlsx")),
    (KIND_FILE, DocumentPayload("/var/compiled/x/update-7/a.xlsx", "a.xlsx", "Kopsavilkums")),
    (KIND_NOTICE, NoticePayload("Atskaite pieņemta.")),
]


def test_every_kind_has_a_class_and_an_example() -> None:
    assert {kind for kind, _ in EXAMPLES} == set(PAYLOAD_TYPES)


@pytest.mark.parametrize(("kind", "payload"), EXAMPLES, ids=[k for k, _ in EXAMPLES])
def test_round_trip_through_stored_json(kind: str, payload: OutboxPayload) -> None:
    stored = json.loads(json.dumps(payload.to_json()))  # what the JSON column gives back
    assert load_payload(kind, stored) == payload
    assert load_payload(kind, stored).to_json() == payload.to_json()


def test_a_snooze_keeps_the_first_day_and_names_its_row() -> None:
    once = REMINDER.snoozed(D("2026-12-02"), 41)
    twice = once.snoozed(D("2026-12-03"), 42)
    assert (once.send_date, once.snoozed_from, once.original_id) == (D("2026-12-02"), D("2026-12-01"), 41)
    assert (twice.send_date, twice.snoozed_from, twice.original_id) == (D("2026-12-03"), D("2026-12-01"), 42)
    assert twice.tasks == REMINDER.tasks


def test_stored_keys_are_the_ones_rows_always_had() -> None:
    message = PlannedMessage(
        send_at=dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC),
        contact_id=1,
        chat_id=1,
        institution="VPD",
        language="lv",
        kinds=frozenset({ReminderKind.REQUEST, ReminderKind.DEADLINE}),
        tasks=REMINDER.tasks,
        dedup_key="k",
    )
    stored = ReminderPayload.of_message(message).to_json()
    assert list(stored) == ["institution", "language", "send_date", "kinds", "tasks"]
    assert stored["kinds"] == ["deadline", "request"] and stored["send_date"] == "2026-12-01"
    assert stored["tasks"][0]["items"][0] == {
        "measure_id": "1.1.5",
        "measure_name": "Pasākums",
        "kind": "deadline",
        "deadline": "2026-12-31",
        "period_year": 2026,
        "missing": ["1.1.5.1", "1.1.5.2"],
        "offset_days": 30,
    }
    snooze = REMINDER.snoozed(D("2026-12-02"), 41).to_json()
    assert (snooze["snoozed_from"], snooze["original_id"]) == ("2026-12-01", 41)
    assert set(DIGEST.to_json()) == {
        "day", "overdue_total", "institutions", "mutes", "blocked", "part", "parts", "language",
    }  # fmt: skip
    assert SummaryPayload("t", 1, 2).to_json() == {"text": "t", "part": 1, "parts": 2}
    assert DocumentPayload("/x/a.xlsx", "a.xlsx").to_json() == {"path": "/x/a.xlsx", "filename": "a.xlsx"}
    assert NoticePayload("t").to_json() == {"text": "t"}


# Rows as they were written before: optional keys missing (older planners wrote neither
# ``offset_days`` nor ``missing``; a digest part had no ``continued``/``more`` unless cut).
OLD_ROWS: list[tuple[str, dict[str, Any]]] = [
    (
        KIND_REMINDER,
        {
            "send_date": "2026-12-01",
            "tasks": [
                {
                    "task_id": "1.1",
                    "task_title": "Uzdevums",
                    "items": [
                        {
                            "measure_id": "1.1.5",
                            "measure_name": "Pasākums",
                            "kind": "request",
                            "deadline": "2026-12-31",
                            "period_year": 2026,
                        }
                    ],
                }
            ],
        },
    ),
    (
        KIND_SNOOZE,
        {
            "institution": "VPD",
            "language": "lv",
            "send_date": "2026-12-02",
            "snoozed_from": "2026-12-01",
            "original_id": 7,
            "kinds": ["request"],
            "tasks": [],
        },
    ),
    (
        KIND_DIGEST,
        {
            "day": "2027-01-14",
            "institutions": [
                {
                    "abbr": "VPD",
                    "groups": [
                        {
                            "source": "yearly_report",
                            "deadline": "2026-12-31",
                            "period_year": 2026,
                            "days_overdue": 14,
                            "measures": ["1.1.5"],
                        }
                    ],
                    "reminded": [{"name": "Līga", "dates": ["2026-12-15"]}],
                    "nobody": False,
                }
            ],
            "part": 1,
            "parts": 1,
        },
    ),
    (KIND_SUMMARY, {"text": "Kopsavilkums"}),
    (KIND_DOCUMENT, {"path": "/var/compiled/a.xlsx"}),
    (KIND_NOTICE, {"text": "Atskaite pieņemta."}),
]


@pytest.mark.parametrize(("kind", "data"), OLD_ROWS, ids=[k for k, _ in OLD_ROWS])
def test_an_old_format_row_still_loads_and_renders(kind: str, data: dict[str, Any]) -> None:
    payload = load_payload(kind, data)
    assert isinstance(payload, PAYLOAD_TYPES[kind])
    body, markup = render_outbox(payload, "lv", 7)
    assert (markup is not None) == (kind in (KIND_REMINDER, KIND_SNOOZE))
    if kind == KIND_REMINDER:
        assert isinstance(payload, ReminderPayload)
        (item,) = payload.tasks[0].items
        assert (item.missing, item.offset_days, payload.language, payload.kinds) == ((), None, "lv", ())
        assert "1.1.5" in body
    elif kind == KIND_DIGEST:
        assert isinstance(payload, DigestPayload)
        assert payload.mutes == () and payload.overdue_total == 0 and not payload.institutions[0].continued
        assert "VPD" in body and "Līga" in body
    elif kind == KIND_DOCUMENT:
        assert payload == DocumentPayload("/var/compiled/a.xlsx") and body == ""
    elif kind in (KIND_SUMMARY, KIND_NOTICE):
        assert body == data["text"]


def test_a_row_must_carry_its_kinds_class() -> None:
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    with pytest.raises(TypeError):
        NewMessage("k", 1, 1, KIND_DIGEST, REMINDER, at)
    with pytest.raises(TypeError):
        NewMessage("k", 1, 1, "unknown", NoticePayload("t"), at)
    with pytest.raises(ValueError):
        load_payload("unknown", {"text": "t"})
