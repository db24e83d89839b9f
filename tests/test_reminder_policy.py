"""The reminder policy: tables of concrete Latvian dates, a property test and a year's simulation."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reporting_forms.payloads import ReminderPayload
from reporting_forms.reminder_policy import (
    ContactRef,
    DueItem,
    MeasureDue,
    Mute,
    OverdueSource,
    PolicyError,
    ReminderKind,
    ReminderPolicy,
    clamp_to_send_window,
    dedup_key,
    due_items,
    escalation_digest,
    load_policy,
    measures_due,
    plan_messages,
)
from reporting_forms.workdays import is_working_day

D = dt.date.fromisoformat
RIGA = ZoneInfo("Europe/Riga")
UTC = dt.UTC
K = ReminderKind


@pytest.fixture(scope="module")
def policy() -> ReminderPolicy:
    return load_policy()


def measure(
    measure_id: str,
    deadlines: dict[str, str],
    institutions: tuple[str, ...] = ("VPD",),
    task: tuple[str, str] = ("1.1", "Task one"),
    extra_rows: tuple[str, ...] = (),
) -> MeasureDue:
    rows = tuple((ind, D(d)) for ind, d in deadlines.items())
    return MeasureDue(
        measure_id=measure_id,
        task_id=task[0],
        task_title=task[1],
        measure_name=f"Measure {measure_id}",
        institutions=institutions,
        indicator_deadlines=rows,
        indicator_ids=tuple(deadlines) + extra_rows,
    )


def contact(cid: int, inst: str = "VPD", **kw: object) -> ContactRef:
    return ContactRef(contact_id=cid, chat_id=1000 + cid, institution=inst, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the policy file


def test_policy_file_values(policy: ReminderPolicy) -> None:
    assert policy.timezone == "Europe/Riga"
    assert policy.send_time == dt.time(9, 0)
    assert (policy.quiet_hours.start, policy.quiet_hours.end) == (dt.time(20), dt.time(8))
    assert policy.deadline_offsets_days == (90, 30, 14, 7, 1)
    assert list(policy.cycle.years) == [2025, 2026, 2027]
    assert policy.cycle.report_deadline(2026) == D("2026-12-31")
    assert policy.cycle.overdue_reminder_working_day == 10


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({"cycle": {"last_year": 2028}}, lambda p: list(p.cycle.years) == [2025, 2026, 2027, 2028]),
        ({"cycle.last_year": 2028}, lambda p: p.cycle.last_year == 2028 and p.cycle.first_year == 2025),
        ({"send_time": "10:30"}, lambda p: p.send_time == dt.time(10, 30)),
        ({"deadline_offsets_days": [1, 7, 7]}, lambda p: p.deadline_offsets_days == (7, 1)),
        ({"quiet_hours": {"start": "21:00"}}, lambda p: p.quiet_hours.end == dt.time(8)),
        ({"cycle": {"reminders": []}}, lambda p: p.cycle.reminders == ()),
    ],
)
def test_overrides_merge_field_by_field(overrides: dict, check) -> None:  # type: ignore[no-untyped-def]
    assert check(load_policy(overrides=overrides))


@pytest.mark.parametrize(
    ("overrides", "message_part"),
    [
        ({"send_time": 540}, "quoted"),  # what unquoted YAML 09:00 becomes
        ({"send_time": "21:00"}, "quiet hours"),
        ({"send_time": "07:59"}, "quiet hours"),
        ({"timezone": "Europe/Atlantis"}, "time zone"),
        ({"cycle": {"request": {"month": 2, "day": 30}}}, "cycle.request"),
        ({"cycle": {"first_year": 2028}}, "first_year"),
        ({"deadline_offsets_days": [0]}, "at least 1"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_policy_is_one_clear_error(overrides: dict, message_part: str) -> None:
    with pytest.raises(PolicyError, match=message_part):
        load_policy(overrides=overrides)


def test_policy_from_another_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("send_time: 09:00\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"p\.yaml"):
        load_policy(path)


# ---------------------------------------------------------------- quiet hours

CLAMP = [
    # (input, expected, why) — local Riga unless a zone is given
    ("2026-12-01T12:00+02:00", "2026-12-01T12:00+02:00", "daytime stays"),
    ("2026-12-01T19:59+02:00", "2026-12-01T19:59+02:00", "a minute before quiet hours stays"),
    ("2026-12-01T20:00+02:00", "2026-12-02T08:00+02:00", "20:00 is quiet (inclusive) → next morning"),
    ("2026-12-01T23:30+02:00", "2026-12-02T08:00+02:00", "late evening → next morning"),
    ("2026-12-02T00:00+02:00", "2026-12-02T08:00+02:00", "midnight → same morning"),
    ("2026-12-02T07:59:59+02:00", "2026-12-02T08:00+02:00", "just before 08:00 → 08:00"),
    ("2026-12-02T08:00+02:00", "2026-12-02T08:00+02:00", "08:00 is allowed (exclusive end)"),
    (
        "2026-12-31T22:00+02:00",
        "2027-01-01T08:00+02:00",
        "across the year end (working days are not its job)",
    ),
    ("2026-12-01T18:30+00:00", "2026-12-02T08:00+02:00", "18:30 UTC is 20:30 in Riga in winter"),
    ("2026-12-01T17:59+00:00", "2026-12-01T19:59+02:00", "17:59 UTC is 19:59 in Riga"),
    ("2026-07-01T05:30+00:00", "2026-07-01T08:30+03:00", "05:30 UTC is 08:30 in Riga in summer"),
    ("2026-12-01T05:30+00:00", "2026-12-01T08:00+02:00", "05:30 UTC is 07:30 in Riga in winter"),
    ("2026-03-29T01:30+00:00", "2026-03-29T08:00+03:00", "night of the spring DST change"),
    ("2026-10-25T00:30+00:00", "2026-10-25T08:00+02:00", "the repeated hour of the autumn DST change"),
]


@pytest.mark.parametrize(("moment", "expected", "why"), CLAMP)
def test_clamp_to_send_window(policy: ReminderPolicy, moment: str, expected: str, why: str) -> None:
    got = clamp_to_send_window(dt.datetime.fromisoformat(moment), policy)
    want = dt.datetime.fromisoformat(expected)
    assert got == want, why
    assert got.utcoffset() == want.utcoffset(), "returned in Riga local time"
    assert not policy.quiet_hours.contains(got.time())


def test_clamp_rejects_naive(policy: ReminderPolicy) -> None:
    with pytest.raises(ValueError, match="aware"):
        clamp_to_send_window(dt.datetime(2026, 12, 1, 21, 0), policy)


def test_clamp_with_quiet_hours_inside_one_day() -> None:
    p = load_policy(overrides={"quiet_hours": {"start": "00:00", "end": "06:00"}})
    assert clamp_to_send_window(dt.datetime(2026, 12, 1, 3, tzinfo=RIGA), p) == dt.datetime(
        2026, 12, 1, 6, tzinfo=RIGA
    )
    assert clamp_to_send_window(dt.datetime(2026, 12, 1, 23, tzinfo=RIGA), p).hour == 23


# ---------------------------------------------------------------- due items

DEADLINE_2026_04_01 = [
    # (offset, due date, send date)
    (90, "2026-01-01", "2025-12-30"),  # 1 January and 31 December are holidays
    (30, "2026-03-02", "2026-03-02"),
    (14, "2026-03-18", "2026-03-18"),
    (7, "2026-03-25", "2026-03-25"),
    (1, "2026-03-31", "2026-03-31"),
]


def test_deadline_offsets_2026_04_01(policy: ReminderPolicy) -> None:
    m = measure("1.1.1", {"1.1.1.a": "2026-04-01"})
    items = due_items(policy, [m], D("2025-06-01"), D("2026-06-01"))
    got = [(i.offset_days, i.due_date, i.send_date) for i in items if i.kind is K.DEADLINE]
    assert got == [(o, D(due), D(send)) for o, due, send in DEADLINE_2026_04_01]
    assert {i.deadline for i in items if i.kind is K.DEADLINE} == {D("2026-04-01")}
    assert {i.period_year for i in items if i.kind is K.DEADLINE} == {2026}


def test_window_is_about_send_dates(policy: ReminderPolicy) -> None:
    m = measure("1.1.1", {"1.1.1.a": "2026-04-01"})
    (item,) = due_items(policy, [m], D("2025-12-30"), D("2025-12-30"))
    assert (item.due_date, item.send_date, item.offset_days) == (D("2026-01-01"), D("2025-12-30"), 90)
    assert due_items(policy, [m], D("2026-01-01"), D("2026-01-01")) == []


CYCLE = [
    # (report year, kind, due date, send date)
    (2025, K.REQUEST, "2025-12-01", "2025-12-01"),
    (2025, K.REMINDER, "2025-12-15", "2025-12-15"),
    (2025, K.REMINDER, "2025-12-29", "2025-12-29"),
    (2025, K.OVERDUE, "2026-01-16", "2026-01-16"),  # 10th working day of January 2026
    (2026, K.REQUEST, "2026-12-01", "2026-12-01"),  # Tuesday
    (2026, K.REMINDER, "2026-12-15", "2026-12-15"),
    (2026, K.REMINDER, "2026-12-29", "2026-12-29"),  # Tuesday
    (2026, K.OVERDUE, "2027-01-15", "2027-01-15"),  # 10th working day of January 2027
    (2027, K.REQUEST, "2027-12-01", "2027-12-01"),
    (2027, K.REMINDER, "2027-12-15", "2027-12-15"),
    (2027, K.REMINDER, "2027-12-29", "2027-12-29"),
]


def test_yearly_cycle(policy: ReminderPolicy) -> None:
    m = measure("1.1.1", {}, extra_rows=("1.1.1.a", "1.1.1.b"))
    items = due_items(policy, [m], D("2025-01-01"), D("2027-12-31"))
    got = [(i.period_year, i.kind, i.due_date, i.send_date) for i in items]
    assert got == [(y, k, D(due), D(send)) for y, k, due, send in CYCLE]
    assert {i.deadline for i in items if i.period_year == 2026} == {D("2026-12-31")}
    assert all(i.indicator_ids == ("1.1.1.a", "1.1.1.b") for i in items)


def test_cycle_ends_with_last_year(policy: ReminderPolicy) -> None:
    m = measure("1.1.1", {}, extra_rows=("x",))
    later = due_items(policy, [m], D("2028-01-01"), D("2029-12-31"))
    assert [(i.kind, i.period_year) for i in later] == [(K.OVERDUE, 2027)]
    wider = load_policy(overrides={"cycle.last_year": 2028})
    assert len(due_items(wider, [m], D("2028-01-01"), D("2029-12-31"))) == 5


def test_request_on_1_december_2026_at_0900_riga_is_0700_utc(policy: ReminderPolicy) -> None:
    m = measure("1.1.1", {}, extra_rows=("1.1.1.a",))
    items = due_items(policy, [m], D("2026-12-01"), D("2026-12-01"))
    (msg,) = plan_messages(policy, items, [contact(1)], [], {})
    assert msg.kinds == {K.REQUEST}
    assert msg.send_at == dt.datetime(2026, 12, 1, 9, tzinfo=RIGA)
    assert msg.send_at.astimezone(UTC) == dt.datetime(2026, 12, 1, 7, tzinfo=UTC)


def test_saturday_26_december_2026_goes_out_wednesday_23rd(policy: ReminderPolicy) -> None:
    # 7 days before Saturday 2 January 2027 is Saturday 26 December 2026 (Second Day of Christmas);
    # 25 and 24 are holidays too → Wednesday 23 December. 1 day before → 1 January → 30 December.
    m = measure("1.1.1", {"1.1.1.a": "2027-01-02"})
    items = [i for i in due_items(policy, [m], D("2026-12-01"), D("2027-01-02")) if i.kind is K.DEADLINE]
    assert [(i.offset_days, i.due_date, i.send_date) for i in items] == [
        (30, D("2026-12-03"), D("2026-12-03")),
        (14, D("2026-12-19"), D("2026-12-18")),
        (7, D("2026-12-26"), D("2026-12-23")),
        (1, D("2027-01-01"), D("2026-12-30")),
    ]


def test_rows_sharing_a_deadline_give_one_item(policy: ReminderPolicy) -> None:
    m = measure("1.1.1", {"1.1.1.a": "2026-04-01", "1.1.1.b": "2026-04-01", "1.1.1.c": "2026-10-01"})
    items = [i for i in due_items(policy, [m], D("2026-03-31"), D("2026-03-31"))]
    (item,) = items
    assert item.indicator_ids == ("1.1.1.a", "1.1.1.b")
    assert item.offset_days == 1


def test_offsets_landing_on_one_send_date_collapse(policy: ReminderPolicy) -> None:
    p = load_policy(overrides={"deadline_offsets_days": [3, 2, 1]})
    # 27 December 2026 is a Sunday: 26, 25, 24 December are all off → all three go out on the 23rd.
    items = due_items(p, [measure("1.1.1", {"a": "2026-12-27"})], D("2026-12-01"), D("2026-12-27"))
    deadline_items = [i for i in items if i.kind is K.DEADLINE]
    assert [(i.offset_days, i.send_date) for i in deadline_items] == [(1, D("2026-12-23"))]


# ---------------------------------------------------------------- planning messages


def test_one_message_per_contact_per_day_grouped_by_task(policy: ReminderPolicy) -> None:
    measures = [
        measure("2.1.10", {"2.1.10.a": "2026-04-01"}, task=("2.1", "Second task")),
        measure("1.1.2", {"1.1.2.a": "2026-04-01"}, task=("1.1", "First task")),
        measure("2.1.2", {"2.1.2.a": "2026-04-01"}, task=("2.1", "Second task")),
        measure("1.1.3", {"1.1.3.a": "2026-04-08"}, task=("1.1", "First task")),  # 14 days before
        measure("1.1.4", {"1.1.4.a": "2026-04-09"}, task=("1.1", "First task")),  # not due that day
    ]
    items = due_items(policy, measures, D("2026-03-25"), D("2026-03-25"))
    msgs = plan_messages(policy, items, [contact(1), contact(2)], [], {})
    assert [(m.contact_id, m.send_date) for m in msgs] == [(1, D("2026-03-25")), (2, D("2026-03-25"))]
    msg = msgs[0]
    assert [(g.task_id, g.task_title) for g in msg.tasks] == [("1.1", "First task"), ("2.1", "Second task")]
    assert [[i.measure_id for i in g.items] for g in msg.tasks] == [["1.1.2", "1.1.3"], ["2.1.2", "2.1.10"]]
    assert [(i.kind, i.deadline, i.offset_days, i.missing) for i in msg.items] == [
        (K.DEADLINE, D("2026-04-01"), 7, ("1.1.2.a",)),
        (K.DEADLINE, D("2026-04-08"), 14, ("1.1.3.a",)),
        (K.DEADLINE, D("2026-04-01"), 7, ("2.1.2.a",)),
        (K.DEADLINE, D("2026-04-01"), 7, ("2.1.10.a",)),
    ]
    assert msg.kinds == {K.DEADLINE}
    json.dumps(ReminderPayload.of_message(msg).to_json())


def test_deadline_and_cycle_on_the_same_day_share_a_message(policy: ReminderPolicy) -> None:
    m = measure("1.1.1", {"1.1.1.a": "2026-12-08"})  # 7 days before = 1 December = request day
    items = due_items(policy, [m], D("2026-12-01"), D("2026-12-01"))
    (msg,) = plan_messages(policy, items, [contact(1)], [], {})
    assert msg.kinds == {K.DEADLINE, K.REQUEST}
    assert [i.kind for i in msg.items] == [K.DEADLINE, K.REQUEST]


RECIPIENTS = [
    # (contact, gets a message, why)
    (contact(1, "VPD"), True, "responsible"),
    (contact(2, "IeVP"), True, "co-responsible"),
    (contact(3, "TM"), False, "not an institution of the measure"),
    (contact(4, "VPD", active=False), False, "inactive"),
    (contact(5, "VPD", blocked=True), False, "blocked the bot"),
]


@pytest.mark.parametrize(("who", "gets", "why"), RECIPIENTS)
def test_recipients(policy: ReminderPolicy, who: ContactRef, gets: bool, why: str) -> None:
    m = measure("1.1.1", {"1.1.1.a": "2026-04-01"}, institutions=("VPD", "IeVP"))
    items = due_items(policy, [m], D("2026-03-31"), D("2026-03-31"))
    msgs = plan_messages(policy, items, [who], [], {})
    assert bool(msgs) is gets, why
    if gets:
        assert (msgs[0].chat_id, msgs[0].institution) == (who.chat_id, who.institution)


MISSING = [
    # (missing, expected missing ids or None for no message, why)
    ({}, ("1.1.1.a", "1.1.1.b"), "absent key: nothing reported yet, every row missing"),
    ({("1.1.1", "VPD", 2026): ("1.1.1.b",)}, ("1.1.1.b",), "only what is still missing"),
    ({("1.1.1", "VPD", 2026): ()}, None, "all filled in: no reminder"),
    ({("1.1.1", "VPD", 2026): ("1.1.1.c",)}, None, "missing rows with another deadline don't count"),
    ({("1.1.1", "VPD", 2025): ()}, ("1.1.1.a", "1.1.1.b"), "another period does not count"),
    ({("1.1.1", "IeVP", 2026): ()}, ("1.1.1.a", "1.1.1.b"), "another institution does not count"),
]


@pytest.mark.parametrize(("missing", "expected", "why"), MISSING)
def test_missing_rows(policy: ReminderPolicy, missing: dict, expected: tuple | None, why: str) -> None:
    m = measure("1.1.1", {"1.1.1.a": "2026-04-01", "1.1.1.b": "2026-04-01", "1.1.1.c": "2026-10-01"})
    items = due_items(policy, [m], D("2026-03-31"), D("2026-03-31"))
    msgs = plan_messages(policy, items, [contact(1)], [], missing)
    assert (msgs[0].items[0].missing if msgs else None) == expected, why


def test_missing_as_a_callable(policy: ReminderPolicy) -> None:
    calls: list[tuple[str, str, int]] = []

    def missing(measure_id: str, institution: str, year: int) -> tuple[str, ...]:
        calls.append((measure_id, institution, year))
        return ("1.1.1.b",) if institution == "VPD" else ()

    m = measure("1.1.1", {"1.1.1.a": "2026-04-01", "1.1.1.b": "2026-04-01"}, institutions=("VPD", "IeVP"))
    items = due_items(policy, [m], D("2026-01-01"), D("2026-12-31"))
    msgs = plan_messages(policy, items, [contact(1, "VPD"), contact(2, "IeVP")], [], missing)
    assert {m.contact_id for m in msgs} == {1}
    assert len(calls) == len(set(calls)), "memoised per (measure, institution, year)"


MUTES = [
    # (mute, day checked, muted?, why)
    (Mute(1, "1.1.1", D("2026-03-31"), "snooze"), "2026-03-25", True, "before `until`"),
    (Mute(1, "1.1.1", D("2026-03-31"), "snooze"), "2026-03-31", False, "reminders resume on `until`"),
    (Mute(1, None, D("2026-04-01"), "holiday"), "2026-03-31", True, "measure None mutes every measure"),
    (Mute(1, "9.9.9", D("2026-04-01"), "other"), "2026-03-31", False, "another measure"),
    (Mute(2, "1.1.1", D("2026-04-01"), "other"), "2026-03-31", False, "another contact"),
]


@pytest.mark.parametrize(("mute", "day", "muted", "why"), MUTES)
def test_mutes(policy: ReminderPolicy, mute: Mute, day: str, muted: bool, why: str) -> None:
    m = measure("1.1.1", {"1.1.1.a": "2026-04-01", "1.1.1.b": "2026-04-07"})
    items = due_items(policy, [m], D(day), D(day))
    assert items, "the table needs a due item that day"
    msgs = plan_messages(policy, items, [contact(1)], [mute], {})
    assert (not msgs) is muted, why


def test_a_mute_removes_one_measure_not_the_message(policy: ReminderPolicy) -> None:
    measures = [measure("1.1.1", {"a": "2026-04-01"}), measure("1.1.2", {"b": "2026-04-01"})]
    items = due_items(policy, measures, D("2026-03-31"), D("2026-03-31"))
    (msg,) = plan_messages(policy, items, [contact(1)], [Mute(1, "1.1.1", D("2026-06-01"), "")], {})
    assert [i.measure_id for i in msg.items] == ["1.1.2"]


def test_dedup_key_is_stable_and_order_free(policy: ReminderPolicy) -> None:
    measures = [
        measure(
            f"1.{t}.{n}", {f"1.{t}.{n}.a": "2026-04-01"}, institutions=("VPD", "IeVP"), task=(f"1.{t}", "T")
        )
        for t in range(1, 4)
        for n in range(1, 5)
    ]
    contacts = [contact(1, "VPD"), contact(2, "IeVP"), contact(3, "VPD")]
    items = due_items(policy, measures, D("2025-01-01"), D("2027-12-31"))
    first = plan_messages(policy, items, contacts, [], {})
    rng = random.Random(7)
    for _ in range(5):
        shuffled_items, shuffled_contacts = items[:], contacts[:]
        rng.shuffle(shuffled_items)
        rng.shuffle(shuffled_contacts)
        again = plan_messages(policy, shuffled_items, shuffled_contacts, [], {})
        assert [(m.contact_id, m.send_at, m.dedup_key, m.tasks) for m in again] == [
            (m.contact_id, m.send_at, m.dedup_key, m.tasks) for m in first
        ]
    keys = [m.dedup_key for m in first]
    assert all(m.dedup_key == dedup_key(m.contact_id, m.send_date, m.tasks) for m in first)
    assert len(set(keys)) == len(keys), "recipient and day are part of the key"
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in keys)
    less = plan_messages(policy, items, contacts, [], {("1.1.1", "VPD", 2026): ()})
    changed = {(m.contact_id, m.send_at): m.dedup_key for m in less}
    assert any(changed.get((m.contact_id, m.send_at)) not in (None, m.dedup_key) for m in first)


def test_plan_messages_100k_combinations_covers_every_one(policy: ReminderPolicy) -> None:
    # 2,000 measures x 10 contacts (of their institution) x 5 deadline offsets = 100,000
    institutions = ("VPD", "IeVP", "TM", "LM")
    measures = [
        MeasureDue(
            measure_id=f"{n // 50}.{n % 50}",
            task_id=str(n // 50),
            task_title=f"Task {n // 50}",
            measure_name=f"Measure {n}",
            institutions=(institutions[n % 4],),
            indicator_deadlines=((f"{n}.a", dt.date(2026, 3, 1) + dt.timedelta(days=n % 200)),),
        )
        for n in range(2000)
    ]
    contacts = [contact(i, institutions[i % 4]) for i in range(40)]
    items = [i for i in due_items(policy, measures, D("2025-06-01"), D("2026-11-30")) if i.kind is K.DEADLINE]
    combos = sum(sum(1 for c in contacts if c.institution in i.institutions) for i in items)
    assert combos >= 100_000
    # every contact has a mute (on a measure not due), so no contact takes the shared fast path
    mutes = [Mute(c.contact_id, "none", D("2027-01-01")) for c in contacts]
    msgs = plan_messages(policy, items, contacts, mutes, {})
    assert sum(len(m.items) for m in msgs) == combos  # speed is measured in bench/, not here


# ---------------------------------------------------------------- escalation


def test_escalation_digest(policy: ReminderPolicy) -> None:
    measures = [
        measure("1.1.1", {"1.1.1.a": "2026-04-01", "1.1.1.b": "2026-10-01"}, institutions=("VPD", "IeVP")),
        measure("1.1.2", {"1.1.2.a": "2026-04-01"}, institutions=("TM",)),
    ]
    contacts = [contact(1, "VPD"), contact(2, "IeVP", blocked=True), contact(3, "TM"), contact(4, "VPD")]
    missing = {
        ("1.1.1", "VPD", 2026): ("1.1.1.a",),
        ("1.1.1", "IeVP", 2026): ("1.1.1.a", "1.1.1.b"),
        ("1.1.2", "TM", 2026): (),
    }
    sent_log = [
        (1, "1.1.1", dt.datetime(2026, 3, 31, 7, tzinfo=UTC)),
        (1, "1.1.1", dt.datetime(2026, 3, 2, 7, tzinfo=UTC)),
        (4, "1.1.1", dt.datetime(2026, 4, 20, 7, tzinfo=UTC)),  # after the digest day: not shown
        (1, "1.1.1", dt.datetime(2025, 6, 1, 7, tzinfo=UTC)),  # before this obligation's reminders
        (3, "1.1.2", dt.datetime(2026, 3, 31, 7, tzinfo=UTC)),
        (99, "1.1.1", dt.datetime(2026, 3, 31, 7, tzinfo=UTC)),  # unknown contact
    ]
    digest = escalation_digest(policy, measures, contacts, missing, sent_log, D("2026-04-14"))
    rows = [
        (e.institution, e.measure_id, e.source, e.deadline, e.days_overdue, e.missing) for e in digest.entries
    ]
    assert rows == [
        # the yearly report for 2025 is overdue too (nothing was reported: absent key)
        ("IeVP", "1.1.1", OverdueSource.YEARLY_REPORT, D("2025-12-31"), 104, ("1.1.1.a", "1.1.1.b")),
        ("TM", "1.1.2", OverdueSource.YEARLY_REPORT, D("2025-12-31"), 104, ("1.1.2.a",)),
        ("VPD", "1.1.1", OverdueSource.YEARLY_REPORT, D("2025-12-31"), 104, ("1.1.1.a", "1.1.1.b")),
        ("IeVP", "1.1.1", OverdueSource.INDICATOR_DEADLINE, D("2026-04-01"), 13, ("1.1.1.a",)),
        ("VPD", "1.1.1", OverdueSource.INDICATOR_DEADLINE, D("2026-04-01"), 13, ("1.1.1.a",)),
    ]
    vpd = digest.entries[-1]
    assert [(r.contact_id, r.sent_at.date()) for r in vpd.reminded] == [
        (1, D("2026-03-02")),
        (1, D("2026-03-31")),
    ]
    assert vpd.reachable_contacts == (1, 4)
    ievp = digest.entries[-2]
    assert ievp.blocked_contacts == (2,) and ievp.nobody_to_remind and ievp.reminded == ()
    assert [c.contact_id for c in digest.blocked_contacts] == [2]
    assert list(digest.by_institution()) == ["IeVP", "TM", "VPD"]

    only_vpd = escalation_digest(policy, measures, contacts, missing, sent_log, D("2026-04-14"), {"VPD"})
    assert {e.institution for e in only_vpd.entries} == {"VPD"}
    before = escalation_digest(policy, measures, contacts, missing, sent_log, D("2025-12-31"))
    assert before.entries == (), "nothing is overdue on its deadline day"


# ---------------------------------------------------------------- properties

INSTS = ("VPD", "IeVP", "TM")


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[list[MeasureDue], list[ContactRef], list[Mute], dict, dt.date, dt.date]:
    dates = st.dates(dt.date(2025, 1, 1), dt.date(2028, 3, 31))
    measures = []
    for n in range(draw(st.integers(1, 8))):
        rows = draw(st.lists(dates, max_size=4))
        insts = tuple(draw(st.sets(st.sampled_from(INSTS), min_size=1)))
        measures.append(
            MeasureDue(
                measure_id=f"{n % 3}.{n}",
                task_id=str(n % 3),
                task_title=f"Task {n % 3}",
                measure_name=f"M{n}",
                institutions=insts,
                indicator_deadlines=tuple((f"{n}.{k}", d) for k, d in enumerate(rows)),
                indicator_ids=tuple(f"{n}.{k}" for k in range(max(len(rows), 1))),
            )
        )
    contacts = [
        ContactRef(i, 500 + i, draw(st.sampled_from(INSTS)), "lv", draw(st.booleans()), draw(st.booleans()))
        for i in range(draw(st.integers(0, 6)))
    ]
    mutes = [
        Mute(
            draw(st.integers(0, 6)),
            draw(st.sampled_from([None, *(m.measure_id for m in measures)])),
            draw(dates),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    missing = {
        (m.measure_id, inst, year): draw(st.lists(st.sampled_from(m.all_indicator_ids), max_size=2))
        for m in measures
        for inst in m.institutions
        for year in range(2025, 2029)
        if draw(st.booleans())
    }
    start = draw(dates)
    end = start + dt.timedelta(days=draw(st.integers(0, 400)))
    return measures, contacts, mutes, missing, start, end


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_planned_messages_properties(policy: ReminderPolicy, scenario: tuple) -> None:
    measures, contacts, mutes, missing, start, end = scenario
    msgs = plan_messages(policy, due_items(policy, measures, start, end), contacts, mutes, missing)
    reachable = {c.contact_id for c in contacts if c.active and not c.blocked}
    seen: set[tuple[int, dt.date]] = set()
    for msg in msgs:
        local = msg.send_at.astimezone(RIGA)
        assert msg.send_at.tzinfo is not None and msg.send_at.utcoffset() == local.utcoffset()
        assert local.time() == dt.time(9, 0)
        assert is_working_day(local.date())
        assert start <= local.date() <= end
        assert not policy.quiet_hours.contains(local.time())
        assert clamp_to_send_window(msg.send_at, policy) == msg.send_at
        assert (msg.contact_id, local.date()) not in seen
        seen.add((msg.contact_id, local.date()))
        assert msg.contact_id in reachable
        assert msg.items and all(i.missing for i in msg.items)
        assert msg.kinds == {i.kind for i in msg.items}
        for mute in mutes:
            if mute.contact_id == msg.contact_id and local.date() < mute.until:
                assert all(mute.measure_id not in (None, i.measure_id) for i in msg.items)


# ---------------------------------------------------------------- a year, simulated

SIM_MEASURES = [
    measure("1.1.1", {"1.1.1.a": "2026-04-01", "1.1.1.b": "2026-04-01"}, ("VPD",), ("1.1", "Probation")),
    measure(
        "1.1.2", {"1.1.2.a": "2026-06-30", "1.1.2.b": "2026-12-31"}, ("VPD", "IeVP"), ("1.1", "Probation")
    ),
    measure("1.2.1", {"1.2.1.a": "2027-01-02"}, ("IeVP",), ("1.2", "Prisons")),
    measure("1.2.2", {"1.2.2.a": "2026-11-19", "1.2.2.b": "2027-03-01"}, ("IeVP", "TM"), ("1.2", "Prisons")),
    measure("2.1.1", {}, ("TM",), ("2.1", "Coordination"), extra_rows=("2.1.1.a",)),
    measure("2.1.2", {"2.1.2.a": "2026-01-20"}, ("TM", "VPD"), ("2.1", "Coordination")),
]
SIM_CONTACTS = [
    contact(1, "VPD"),
    contact(2, "VPD", language="en"),
    contact(3, "IeVP"),
    contact(4, "IeVP", blocked=True),
    contact(5, "TM"),
]


def _brute_force_expected(policy: ReminderPolicy, start: dt.date, end: dt.date) -> dict:
    """Day by day, straight from the `holidays` package: (contact, day) -> {(measure, kind, deadline)}."""
    cal = holidays.country_holidays("LV", years=range(2024, 2029))

    def back(d: dt.date) -> dt.date:
        while not cal.is_working_day(d):
            d -= dt.timedelta(days=1)
        return d

    def tenth_january(year: int) -> dt.date:
        days = [dt.date(year, 1, n) for n in range(1, 32) if cal.is_working_day(dt.date(year, 1, n))]
        return days[9]

    expected: dict[tuple[int, dt.date], set] = defaultdict(set)
    for m in SIM_MEASURES:
        occasions = []
        for deadline in {d for _, d in m.indicator_deadlines}:
            occasions += [
                (K.DEADLINE, back(deadline - dt.timedelta(days=o)), deadline) for o in (90, 30, 14, 7, 1)
            ]
        for year in (2025, 2026, 2027):
            report_deadline = dt.date(year, 12, 31)
            occasions += [
                (K.REQUEST, back(dt.date(year, 12, 1)), report_deadline),
                (K.REMINDER, back(dt.date(year, 12, 15)), report_deadline),
                (K.REMINDER, back(dt.date(year, 12, 29)), report_deadline),
                (K.OVERDUE, tenth_january(year + 1), report_deadline),
            ]
        for c in SIM_CONTACTS:
            if c.institution not in m.institutions or c.blocked:
                continue
            for kind, day, deadline in occasions:
                if start <= day <= end:
                    expected[(c.contact_id, day)].add((m.measure_id, kind, deadline))
    return expected


def test_simulate_2026_and_january_2027(policy: ReminderPolicy) -> None:
    start, end = D("2026-01-01"), D("2027-01-31")
    items = due_items(policy, SIM_MEASURES, start, end)
    msgs = plan_messages(policy, items, SIM_CONTACTS, [], {})
    got = {(m.contact_id, m.send_date): {(i.measure_id, i.kind, i.deadline) for i in m.items} for m in msgs}
    assert got == _brute_force_expected(policy, start, end)

    for msg in msgs:
        assert msg.send_at == dt.datetime.combine(msg.send_date, dt.time(9), tzinfo=RIGA)
        assert is_working_day(msg.send_date) and msg.contact_id != 4
    by_contact_day = {(m.contact_id, m.send_date): m for m in msgs}
    # spot checks from the calendar
    assert by_contact_day[(3, D("2026-12-23"))].kinds == {K.DEADLINE}  # 2027-01-02 minus 7 days
    assert K.REQUEST in by_contact_day[(5, D("2026-12-01"))].kinds
    assert K.REMINDER in by_contact_day[(1, D("2026-12-29"))].kinds
    assert K.OVERDUE in by_contact_day[(5, D("2027-01-15"))].kinds
    assert K.OVERDUE in by_contact_day[(5, D("2026-01-16"))].kinds  # report year 2025
    assert (1, D("2025-12-30")) not in by_contact_day  # outside the window
    assert not any(m.send_date in {D("2026-11-18"), D("2026-12-24"), D("2026-12-31")} for m in msgs)


def test_catalog_measures_adapter(policy: ReminderPolicy) -> None:
    from reporting_forms.catalog import default_catalog

    measures = measures_due(default_catalog())
    assert measures and all(m.institutions and m.indicator_ids for m in measures)
    items = due_items(policy, measures, D("2025-01-01"), D("2027-12-31"))
    assert all(isinstance(i, DueItem) and is_working_day(i.send_date) for i in items)
