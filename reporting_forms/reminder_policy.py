"""The reminder policy: who is reminded of what, and when. Pure: plain data in, plain data out.

Three steps, each testable alone:

1. ``due_items(policy, measures, start, end)`` – every reminder occasion of every measure
   whose send date falls in ``[start, end]``: offsets before each indicator deadline and the
   yearly cycle (request on 1 December, reminders on 15 and 29 December, overdue reminder on
   the 10th working day of January). A date that is not a working day moves to the previous one.
2. ``plan_messages(policy, items, contacts, mutes, missing)`` – one message per contact per
   send day, listing that contact's measures (grouped by task) that still miss indicator values.
3. ``escalation_digest(...)`` – for coordinators: what is overdue, who was reminded, who is blocked.

The bot's scheduler turns planned messages into outbox rows (``dedup_key`` makes that idempotent)
and renders them with the templates; nothing here talks to Telegram or the database.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cache, cached_property
from itertools import groupby
from operator import attrgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reporting_forms.calendar import DEFAULT_TIMEZONE, default_calendar
from reporting_forms.catalog import natural_key
from reporting_forms.dedup import canonical, outbox_key, sha256_hex
from reporting_forms.periods import ReportingWindow
from reporting_forms.workdays import nth_working_day, previous_working_day

POLICY_PATH = Path(__file__).parent / "reminder_policy.yaml"


class PolicyError(ValueError):
    """The reminder policy file or its overrides are malformed (one line, names the field)."""


class ReminderKind(StrEnum):
    DEADLINE = "deadline"  # n days before an indicator row's deadline
    REQUEST = "request"  # the yearly report is requested (1 December Y)
    REMINDER = "reminder"  # the yearly report is reminded (15, 29 December Y)
    OVERDUE = "overdue"  # the yearly report is overdue (10th working day of January Y+1)


KIND_ORDER = {k: i for i, k in enumerate(ReminderKind)}


# ---------------------------------------------------------------- policy as data


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_bare_int_time(v: Any) -> Any:
    # YAML 1.1 reads an unquoted 09:00 as the integer 540; pydantic would take that as seconds.
    if isinstance(v, int | float):
        raise ValueError('write times as quoted "HH:MM" strings')
    return v


class MonthDay(_Frozen):
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)

    @model_validator(mode="after")
    def _exists_every_year(self) -> MonthDay:
        dt.date(2001, self.month, self.day)  # a common year: rejects 30 February and 29 February
        return self

    def in_year(self, year: int) -> dt.date:
        return dt.date(year, self.month, self.day)


class QuietHours(_Frozen):
    start: dt.time  # inclusive
    end: dt.time  # exclusive

    _bare_int = field_validator("start", "end", mode="before")(_no_bare_int_time)

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours start and end must differ")
        return self

    @property
    def wraps_midnight(self) -> bool:
        return self.start > self.end

    def contains(self, t: dt.time) -> bool:
        t = t.replace(tzinfo=None)
        if self.wraps_midnight:
            return t >= self.start or t < self.end
        return self.start <= t < self.end


def _first_year() -> int:
    return default_calendar().first_year


def _last_year() -> int:
    return default_calendar().last_year


class YearlyCycle(_Frozen):
    """The yearly report cycle; its years default to the plan calendar's."""

    first_year: int = Field(default_factory=_first_year)
    last_year: int = Field(default_factory=_last_year)
    request: MonthDay
    reminders: tuple[MonthDay, ...] = ()
    overdue_from: MonthDay
    overdue_reminder_working_day: int = Field(ge=1, le=20)

    @model_validator(mode="after")
    def _years(self) -> YearlyCycle:
        if self.first_year > self.last_year:
            raise ValueError("first_year must not be after last_year")
        return self

    @property
    def years(self) -> range:
        return range(self.first_year, self.last_year + 1)

    def report_deadline(self, year: int) -> dt.date:
        """Last day to file the report for ``year``: the day before it becomes overdue."""
        return self.overdue_from.in_year(year + 1) - dt.timedelta(days=1)


class ReminderPolicy(_Frozen):
    timezone: str = DEFAULT_TIMEZONE  # the TIMEZONE setting replaces it (bot.config.Settings.reminder_policy)
    country: str = "LV"
    send_time: dt.time
    quiet_hours: QuietHours
    deadline_offsets_days: tuple[int, ...]
    cycle: YearlyCycle
    # A day the bot missed entirely is caught up on the next planning day, up to this many days back.
    catch_up_days: int = Field(default=14, ge=0, le=60)

    _bare_int = field_validator("send_time", mode="before")(_no_bare_int_time)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("deadline_offsets_days")
    @classmethod
    def _offsets(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(o < 1 for o in v):
            raise ValueError("offsets are whole days before the deadline, at least 1")
        return tuple(sorted(set(v), reverse=True))

    @model_validator(mode="after")
    def _send_time_outside_quiet_hours(self) -> ReminderPolicy:
        if self.quiet_hours.contains(self.send_time):
            raise ValueError(f"send_time {self.send_time:%H:%M} falls in quiet hours")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def send_at(self, day: dt.date) -> dt.datetime:
        """The aware local send moment of a reminder going out on ``day``."""
        return dt.datetime.combine(day, self.send_time, tzinfo=self.tz)

    def send_date(self, due: dt.date) -> dt.date:
        """A reminder due on a day off goes out on the previous working day."""
        return previous_working_day(due, self.country)


def _deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Nested dicts merge; dotted keys ("cycle.last_year") address nested fields; the rest replace."""
    merged = dict(base)
    for key, value in overrides.items():
        head, dot, rest = key.partition(".")
        if dot:
            value, key = {rest: value}, head
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_policy(path: Path | str | None = None, overrides: Mapping[str, Any] | None = None) -> ReminderPolicy:
    """Read the policy YAML (default: the packaged one) and apply ``overrides`` on top.

    ``overrides`` is merged field by field, so ``{"cycle": {"last_year": 2028}}`` or
    ``{"cycle.last_year": 2028}`` keeps the rest of the cycle. Raises PolicyError.
    """
    file = Path(path) if path is not None else POLICY_PATH
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{file.name}: {exc}".replace("\n", " ")) from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{file.name}: expected a mapping of policy fields")
    data = _deep_merge(raw, overrides or {})
    try:
        return ReminderPolicy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise PolicyError(f"{file.name}: {where}: {err['msg']}") from exc


@cache
def default_policy() -> ReminderPolicy:
    return load_policy()


def clamp_to_send_window(moment: dt.datetime, policy: ReminderPolicy | None = None) -> dt.datetime:
    """Move a moment that falls in quiet hours to the end of those quiet hours.

    With quiet hours 20:00–08:00 (local): 19:59 stays; 20:00 (inclusive) and 23:30 go to 08:00
    the next day; 00:00 and 07:59 go to 08:00 the same day; 08:00 (exclusive end) stays.
    The moment must be aware (a naive one is ambiguous: ValueError); it is judged in the
    policy's time zone and returned in it. Working days are not considered here.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("clamp_to_send_window needs an aware datetime")
    policy = policy or default_policy()
    quiet = policy.quiet_hours
    local = moment.astimezone(policy.tz)
    if not quiet.contains(local.time()):
        return local
    day = local.date()
    if quiet.wraps_midnight and local.time() >= quiet.start:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, quiet.end, tzinfo=policy.tz)


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class MeasureDue:
    """A measure as the reminder policy needs it (see ``measures_due`` for the catalog)."""

    measure_id: str
    task_id: str
    task_title: str
    measure_name: str
    institutions: tuple[str, ...]  # the designated reporters (Measure.reporters)
    indicator_deadlines: tuple[tuple[str, dt.date], ...]  # (indicator_id, deadline) per row
    indicator_ids: tuple[str, ...] = ()  # every row, in catalog order; default: rows with a deadline

    @property
    def all_indicator_ids(self) -> tuple[str, ...]:
        if self.indicator_ids:
            return self.indicator_ids
        return tuple(dict.fromkeys(i for i, _ in self.indicator_deadlines))


@dataclass(frozen=True, slots=True)
class ContactRef:
    contact_id: int
    chat_id: int
    institution: str
    language: str = "lv"
    active: bool = True
    blocked: bool = False  # the user blocked the bot: nothing can be delivered

    @property
    def reachable(self) -> bool:
        return self.active and not self.blocked


@dataclass(frozen=True, slots=True)
class Mute:
    """Silences reminders about ``measure_id`` (None: every measure) for ``contact_id`` on days
    strictly before ``until``; reminders resume on ``until`` itself."""

    contact_id: int
    measure_id: str | None
    until: dt.date
    reason: str = ""


# Which indicator ids of a measure still have no value from an institution for a report year
# (None: nothing reported yet, every indicator is missing).
MissingFn = Callable[[str, str, int], Iterable[str] | None]
# The same as a dict keyed (measure_id, institution, year). An absent key means nothing has
# been reported yet, i.e. every indicator of the measure is missing.
MissingMap = Mapping[tuple[str, str, int], Iterable[str]]

SentLogEntry = tuple[int, str, dt.datetime]  # (contact_id, measure_id, sent_at)


def measures_due(catalog: Any) -> tuple[MeasureDue, ...]:
    """Adapt a ``reporting_forms.catalog.Catalog``: a row without its own deadline takes the
    measure's deadline; rows with neither get no deadline reminders (the yearly cycle still applies)."""
    out = []
    for _plan, _direction, task, measure in catalog.measures():
        deadlines = tuple(
            (ind.id, ind.deadline or measure.deadline)
            for ind in measure.indicators
            if (ind.deadline or measure.deadline) is not None
        )
        out.append(
            MeasureDue(
                measure_id=measure.id,
                task_id=task.id,
                task_title=task.title,
                measure_name=measure.name,
                institutions=measure.reporters,
                indicator_deadlines=deadlines,
                indicator_ids=tuple(ind.id for ind in measure.indicators),
            )
        )
    return tuple(out)


# ---------------------------------------------------------------- step 1: due items


@dataclass(frozen=True, slots=True)
class DueItem:
    measure_id: str
    task_id: str
    task_title: str
    measure_name: str
    institutions: tuple[str, ...]
    kind: ReminderKind
    due_date: dt.date  # the date the policy names (may be a day off)
    send_date: dt.date  # due_date, or the previous working day
    period_year: int  # the report year whose values are asked for
    deadline: dt.date  # the indicator deadline, or the yearly report's last day
    indicator_ids: tuple[str, ...]  # the rows this reminder is about
    offset_days: int | None = None  # for kind "deadline"


@dataclass(frozen=True, slots=True)
class _Occasion:
    kind: ReminderKind
    due_date: dt.date
    send_date: dt.date
    period_year: int
    deadline: dt.date
    offset_days: int | None = None


def _cycle_occasions(policy: ReminderPolicy) -> tuple[_Occasion, ...]:
    cycle, out = policy.cycle, []
    for year in cycle.years:
        deadline = cycle.report_deadline(year)
        dated = [(ReminderKind.REQUEST, cycle.request.in_year(year))]
        dated += [(ReminderKind.REMINDER, md.in_year(year)) for md in cycle.reminders]
        month = cycle.overdue_from.month
        dated.append(
            (
                ReminderKind.OVERDUE,
                nth_working_day(year + 1, month, cycle.overdue_reminder_working_day, policy.country),
            )
        )
        for kind, due in dated:
            out.append(_Occasion(kind, due, policy.send_date(due), year, deadline))
    return tuple(out)


def _deadline_occasions(policy: ReminderPolicy, deadline: dt.date) -> tuple[_Occasion, ...]:
    """Offsets before one deadline. Two offsets that land on the same send date (a long holiday)
    collapse into one, keeping the smaller offset (the more urgent wording)."""
    by_send: dict[dt.date, _Occasion] = {}
    for offset in sorted(policy.deadline_offsets_days):
        due = deadline - dt.timedelta(days=offset)
        send = policy.send_date(due)
        by_send.setdefault(send, _Occasion(ReminderKind.DEADLINE, due, send, deadline.year, deadline, offset))
    return tuple(by_send.values())


def due_items(
    policy: ReminderPolicy, measures: Iterable[MeasureDue], start: dt.date, end: dt.date
) -> list[DueItem]:
    """Every reminder occasion whose SEND date is in ``[start, end]``, sorted by send date.

    Indicator rows sharing a deadline give one item per offset, listing all those rows.
    """
    cycle = [o for o in _cycle_occasions(policy) if start <= o.send_date <= end]
    deadline_cache: dict[dt.date, tuple[_Occasion, ...]] = {}
    items: list[DueItem] = []
    for m in measures:
        rows_by_deadline: dict[dt.date, list[str]] = defaultdict(list)
        for indicator_id, deadline in m.indicator_deadlines:
            if indicator_id not in rows_by_deadline[deadline]:
                rows_by_deadline[deadline].append(indicator_id)
        occasions: list[tuple[_Occasion, tuple[str, ...]]] = []
        for deadline, rows in rows_by_deadline.items():
            if deadline not in deadline_cache:
                deadline_cache[deadline] = _deadline_occasions(policy, deadline)
            occasions += [(o, tuple(rows)) for o in deadline_cache[deadline] if start <= o.send_date <= end]
        all_rows = m.all_indicator_ids
        occasions += [(o, all_rows) for o in cycle]
        for o, rows in occasions:
            items.append(
                DueItem(
                    measure_id=m.measure_id,
                    task_id=m.task_id,
                    task_title=m.task_title,
                    measure_name=m.measure_name,
                    institutions=m.institutions,
                    kind=o.kind,
                    due_date=o.due_date,
                    send_date=o.send_date,
                    period_year=o.period_year,
                    deadline=o.deadline,
                    indicator_ids=rows,
                    offset_days=o.offset_days,
                )
            )
    items.sort(key=lambda i: (i.send_date, natural_key(i.measure_id), KIND_ORDER[i.kind], i.deadline))
    return items


# ---------------------------------------------------------------- step 2: messages


@dataclass(frozen=True, slots=True)
class PlannedItem:
    measure_id: str
    measure_name: str
    kind: ReminderKind
    deadline: dt.date
    period_year: int
    missing: tuple[str, ...]  # indicator ids still without a value
    offset_days: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "measure_id": self.measure_id,
            "measure_name": self.measure_name,
            "kind": self.kind.value,
            "deadline": self.deadline.isoformat(),
            "period_year": self.period_year,
            "missing": list(self.missing),
            "offset_days": self.offset_days,
        }


@dataclass(frozen=True, slots=True)
class TaskGroup:
    task_id: str
    task_title: str
    items: tuple[PlannedItem, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "task_title": self.task_title,
            "items": [i.as_dict() for i in self.items],
        }


@dataclass(frozen=True)
class PlannedMessage:
    send_at: dt.datetime  # aware, policy time zone, policy send time
    contact_id: int
    chat_id: int
    institution: str
    language: str
    kinds: frozenset[ReminderKind]
    tasks: tuple[TaskGroup, ...]  # the measures due, grouped by task, in canonical order
    dedup_key: str  # sha256 hex of (recipient, "reminder", send date, content)

    @property
    def send_date(self) -> dt.date:
        return self.send_at.date()

    @cached_property
    def items(self) -> tuple[PlannedItem, ...]:
        return tuple(item for group in self.tasks for item in group.items)


def _item_sort_key(task_id: str, item: PlannedItem) -> tuple[Any, ...]:
    return (
        natural_key(task_id),
        natural_key(item.measure_id),
        KIND_ORDER[item.kind],
        item.deadline,
        item.period_year,
        item.offset_days or 0,
        item.missing,
    )


def _content_line(task_id: str, task_title: str, item: PlannedItem) -> str:
    return canonical([task_id, task_title, item.as_dict()])


def _content_digest(lines: Iterable[str]) -> str:
    return sha256_hex("\n".join(lines))


def _dedup_key_of(contact_id: int, send_date: dt.date, content_digest: str) -> str:
    return outbox_key([contact_id, "reminder", send_date.isoformat(), content_digest])


def dedup_key(contact_id: int, send_date: dt.date, tasks: tuple[TaskGroup, ...]) -> str:
    """sha256 of (recipient, "reminder", send date, content). The content is hashed as one
    canonical JSON line per item (task id, task title, item) in the message's canonical order,
    so the same items give the same key whatever order the inputs came in."""
    lines = (_content_line(g.task_id, g.task_title, item) for g in tasks for item in g.items)
    return _dedup_key_of(contact_id, send_date, _content_digest(lines))


def chased_only(missing: MissingMap, window: ReportingWindow, day: dt.date) -> MissingFn:
    """``missing`` as a function that finds nothing missing where the bot does not chase the
    (institution, year) on ``day`` — a year before the first reporting year, or one closed for
    filing (not reopened): such reports are neither reminded nor overdue in the digest."""

    def found(measure_id: str, institution: str, year: int) -> Iterable[str] | None:
        if not window.chased(institution, year, day):
            return ()
        return missing.get((measure_id, institution, year))

    return found


def _missing_lookup(missing: MissingFn | MissingMap) -> Callable[[str, str, int], frozenset[str] | None]:
    """A memoised view of ``missing``; None means "every indicator" (dict without that key)."""
    memo: dict[tuple[str, str, int], frozenset[str] | None] = {}

    def lookup(measure_id: str, institution: str, year: int) -> frozenset[str] | None:
        key = (measure_id, institution, year)
        if key not in memo:
            if isinstance(missing, Mapping):
                value = missing.get(key)
                memo[key] = None if value is None else frozenset(value)
            else:
                value = missing(measure_id, institution, year)
                memo[key] = None if value is None else frozenset(value)
        return memo[key]

    return lookup


def _still_missing(rows: tuple[str, ...], found: frozenset[str] | None) -> tuple[str, ...]:
    if found is None:
        return rows
    if not rows:
        return tuple(sorted(found, key=natural_key))
    return tuple(r for r in rows if r in found)


class _MuteIndex:
    """Latest ``until`` per (contact, measure) and per contact (measure None), O(1) lookups."""

    def __init__(self, mutes: Iterable[Mute]) -> None:
        self._until: dict[tuple[int, str | None], dt.date] = {}
        self._contacts: set[int] = set()
        for m in mutes:
            key = (m.contact_id, m.measure_id)
            if key not in self._until or m.until > self._until[key]:
                self._until[key] = m.until
            self._contacts.add(m.contact_id)

    def __contains__(self, contact_id: int) -> bool:
        return contact_id in self._contacts

    def muted(self, contact_id: int, measure_id: str, day: dt.date) -> bool:
        for key in ((contact_id, measure_id), (contact_id, None)):
            until = self._until.get(key)
            if until is not None and day < until:
                return True
        return False


def plan_messages(
    policy: ReminderPolicy,
    items: Iterable[DueItem],
    contacts: Iterable[ContactRef],
    mutes: Iterable[Mute],
    missing: MissingFn | MissingMap,
) -> list[PlannedMessage]:
    """One message per reachable contact per send day, listing every due item of their
    institution's measures that still misses values, minus muted measures.

    Recipients: active, non-blocked contacts of the measure's designated reporters. An item whose
    indicators are all filled in sends nothing.
    """
    by_institution: dict[str, list[ContactRef]] = defaultdict(list)
    for c in contacts:
        if c.reachable:
            by_institution[c.institution].append(c)
    mute_index = _MuteIndex(mutes)
    lookup = _missing_lookup(missing)

    # A contact belongs to one institution, so its message for a day is its institution's
    # entries for that day minus its mutes: collect per (institution, day), fan out at the end.
    slots: dict[tuple[str, dt.date], dict[tuple[Any, ...], _Entry]] = defaultdict(dict)
    for item in items:
        for institution in dict.fromkeys(item.institutions):
            if institution not in by_institution:
                continue
            still = _still_missing(item.indicator_ids, lookup(item.measure_id, institution, item.period_year))
            if not still:
                continue
            _keep_most_urgent(slots[(institution, item.send_date)], _entry(item, still))

    messages: list[PlannedMessage] = []
    for (institution, day), slot in slots.items():
        entries = sorted(slot.values(), key=lambda e: e.sort_key)
        shared = _Content.of(entries)
        for contact in by_institution[institution]:
            content = shared
            if contact.contact_id in mute_index:
                own = [e for e in entries if not mute_index.muted(contact.contact_id, e.item.measure_id, day)]
                if not own:
                    continue
                if len(own) != len(entries):
                    content = _Content.of(own)
            messages.append(content.message(policy, contact, day))
    messages.sort(key=lambda m: (m.send_at, m.contact_id))
    return messages


@dataclass(frozen=True, slots=True)
class _Entry:
    sort_key: tuple[Any, ...]
    task_id: str
    task_title: str
    item: PlannedItem
    line: str  # canonical JSON of (task, item) for the dedup hash

    @property
    def identity(self) -> tuple[Any, ...]:
        """What one line of a message is about: a measure's rows with one deadline of one report
        year. The yearly cycle's kinds (request, reminder, overdue) are one obligation."""
        item = self.item
        family = "cycle" if item.kind in CYCLE_KINDS else item.kind.value
        return (item.measure_id, family, item.deadline, item.period_year)

    @property
    def urgency(self) -> tuple[int, int]:
        """Smaller is more urgent: overdue over reminder over request, then the nearer offset."""
        return (-KIND_ORDER[self.item.kind], self.item.offset_days or 0)


CYCLE_KINDS = frozenset({ReminderKind.REQUEST, ReminderKind.REMINDER, ReminderKind.OVERDUE})


def _keep_most_urgent(slot: dict[tuple[Any, ...], _Entry], entry: _Entry) -> None:
    """One line per obligation: when two items name the same one (a measure listed twice, a
    caught-up day, a snooze), the more urgent wording stays."""
    previous = slot.get(entry.identity)
    if previous is None or entry.urgency < previous.urgency:
        slot[entry.identity] = entry


def _entry_of(task_id: str, task_title: str, planned: PlannedItem) -> _Entry:
    return _Entry(
        sort_key=_item_sort_key(task_id, planned),
        task_id=task_id,
        task_title=task_title,
        item=planned,
        line=_content_line(task_id, task_title, planned),
    )


def _entry(item: DueItem, missing: tuple[str, ...]) -> _Entry:
    planned = PlannedItem(
        measure_id=item.measure_id,
        measure_name=item.measure_name,
        kind=item.kind,
        deadline=item.deadline,
        period_year=item.period_year,
        missing=missing,
        offset_days=item.offset_days,
    )
    return _entry_of(item.task_id, item.task_title, planned)


@dataclass(frozen=True, slots=True)
class _Content:
    """What a message lists, independent of its recipient."""

    tasks: tuple[TaskGroup, ...]
    kinds: frozenset[ReminderKind]
    digest: str

    @classmethod
    def of(cls, entries: list[_Entry]) -> _Content:
        """``entries`` already in canonical order."""
        tasks = tuple(
            TaskGroup(task_id, group[0].task_title, tuple(e.item for e in group))
            for task_id, group in ((k, list(g)) for k, g in groupby(entries, key=attrgetter("task_id")))
        )
        return cls(tasks, frozenset(e.item.kind for e in entries), _content_digest(e.line for e in entries))

    def message(self, policy: ReminderPolicy, contact: ContactRef, day: dt.date) -> PlannedMessage:
        return PlannedMessage(
            send_at=policy.send_at(day),
            contact_id=contact.contact_id,
            chat_id=contact.chat_id,
            institution=contact.institution,
            language=contact.language,
            kinds=self.kinds,
            tasks=self.tasks,
            dedup_key=_dedup_key_of(contact.contact_id, day, self.digest),
        )


# ---------------------------------------------------------------- catch-up and carried items


def due_items_caught_up(
    policy: ReminderPolicy, measures: Iterable[MeasureDue], day: dt.date, since: dt.date | None = None
) -> list[DueItem]:
    """The items due on ``day``, plus those of the days ``since`` .. ``day − 1`` that nobody
    planned (the bot was down), re-dated to ``day``: a missed occasion is sent late, once,
    instead of never. ``since`` is the first unplanned day (None: nothing was missed)."""
    start = day if since is None else min(since, day)
    return [
        item if item.send_date == day else replace(item, send_date=day)
        for item in due_items(policy, measures, start, day)
    ]


@dataclass(frozen=True, slots=True)
class CarriedItem:
    """A line of an undelivered message (a snooze for this day, a reminder whose day passed
    before it could be sent): it is listed again in the contact's message of the day."""

    task_id: str
    task_title: str
    item: PlannedItem


def merge_carried(
    policy: ReminderPolicy,
    messages: Iterable[PlannedMessage],
    carried: Mapping[int, Iterable[CarriedItem]],
    contacts: Iterable[ContactRef],
    mutes: Iterable[Mute],
    missing: MissingFn | MissingMap,
    day: dt.date,
) -> list[PlannedMessage]:
    """Fold each contact's carried lines into their message of ``day``, so a contact still gets
    one message a day. A carried line is kept only while its rows still miss values and the
    measure is not muted; it gives way to a more urgent line about the same obligation."""
    by_contact = {m.contact_id: m for m in messages}
    refs = {c.contact_id: c for c in contacts if c.reachable}
    mute_index = _MuteIndex(mutes)
    lookup = _missing_lookup(missing)
    for contact_id, lines in carried.items():
        contact = refs.get(contact_id)
        if contact is None:
            continue
        slot: dict[tuple[Any, ...], _Entry] = {}
        planned = by_contact.get(contact_id)
        for group in planned.tasks if planned else ():
            for item in group.items:
                _keep_most_urgent(slot, _entry_of(group.task_id, group.task_title, item))
        added = False
        for line in lines:
            item = line.item
            if mute_index.muted(contact_id, item.measure_id, day):
                continue
            found = lookup(item.measure_id, contact.institution, item.period_year)
            still = item.missing if found is None else tuple(r for r in item.missing if r in found)
            if still:
                entry = _entry_of(line.task_id, line.task_title, replace(item, missing=still))
                _keep_most_urgent(slot, entry)
                added = True
        if added:
            entries = sorted(slot.values(), key=lambda e: e.sort_key)
            by_contact[contact_id] = _Content.of(entries).message(policy, contact, day)
    return sorted(by_contact.values(), key=lambda m: (m.send_at, m.contact_id))


# ---------------------------------------------------------------- step 3: escalation


class OverdueSource(StrEnum):
    INDICATOR_DEADLINE = "indicator_deadline"  # an indicator row's own deadline has passed
    YEARLY_REPORT = "yearly_report"  # the yearly report for period_year is overdue


@dataclass(frozen=True, slots=True)
class Reminded:
    contact_id: int
    sent_at: dt.datetime


@dataclass(frozen=True, slots=True)
class OverdueEntry:
    institution: str
    task_id: str
    task_title: str
    measure_id: str
    measure_name: str
    source: OverdueSource
    deadline: dt.date
    period_year: int
    days_overdue: int
    missing: tuple[str, ...]
    reminded: tuple[Reminded, ...]  # this institution's contacts reminded of this measure, oldest first
    reachable_contacts: tuple[int, ...]
    blocked_contacts: tuple[int, ...]

    @property
    def nobody_to_remind(self) -> bool:
        return not self.reachable_contacts


@dataclass(frozen=True, slots=True)
class EscalationDigest:
    day: dt.date
    entries: tuple[OverdueEntry, ...]  # most overdue first
    blocked_contacts: tuple[ContactRef, ...]  # every contact that blocked the bot

    @property
    def institutions(self) -> tuple[str, ...]:
        return tuple(sorted({e.institution for e in self.entries}))

    def by_institution(self) -> dict[str, tuple[OverdueEntry, ...]]:
        out: dict[str, list[OverdueEntry]] = defaultdict(list)
        for entry in self.entries:
            out[entry.institution].append(entry)
        return {k: tuple(v) for k, v in sorted(out.items())}


def _reminder_window_start(
    policy: ReminderPolicy, source: OverdueSource, deadline: dt.date, year: int
) -> dt.date:
    """The first send date of the reminders about this obligation (older log lines are unrelated)."""
    if source is OverdueSource.YEARLY_REPORT:
        return policy.send_date(policy.cycle.request.in_year(year))
    offsets = policy.deadline_offsets_days or (0,)
    return policy.send_date(deadline - dt.timedelta(days=max(offsets)))


def escalation_digest(
    policy: ReminderPolicy,
    measures: Iterable[MeasureDue],
    contacts: Iterable[ContactRef],
    missing: MissingFn | MissingMap,
    sent_log: Iterable[SentLogEntry],
    day: dt.date,
    institutions: Collection[str] | None = None,
) -> EscalationDigest:
    """What TM coordinators see on ``day``: every (institution, measure, deadline) whose
    deadline is before ``day`` and still misses values, days overdue, who of that institution
    was reminded when (from ``sent_log``, up to the end of ``day``), and blocked contacts.

    ``institutions`` limits the digest (e.g. to institutions that report in chat).
    """
    contacts = list(contacts)
    contact_by_id = {c.contact_id: c for c in contacts}
    reachable: dict[str, list[int]] = defaultdict(list)
    blocked: dict[str, list[int]] = defaultdict(list)
    for c in contacts:
        if c.blocked:
            blocked[c.institution].append(c.contact_id)
        elif c.active:
            reachable[c.institution].append(c.contact_id)

    # (measure_id, institution) -> reminders sent, local dates up to ``day``
    log: dict[tuple[str, str], list[Reminded]] = defaultdict(list)
    for contact_id, measure_id, sent_at in sent_log:
        contact = contact_by_id.get(contact_id)
        if contact is None or sent_at.astimezone(policy.tz).date() > day:
            continue
        log[(measure_id, contact.institution)].append(Reminded(contact_id, sent_at))
    for entries in log.values():
        entries.sort(key=lambda r: (r.sent_at, r.contact_id))

    lookup = _missing_lookup(missing)
    yearly = [
        (policy.cycle.report_deadline(y), y)
        for y in policy.cycle.years
        if policy.cycle.report_deadline(y) < day
    ]
    out: list[OverdueEntry] = []
    for m in measures:
        obligations: list[tuple[OverdueSource, dt.date, int, tuple[str, ...]]] = []
        rows_by_deadline: dict[dt.date, list[str]] = defaultdict(list)
        for indicator_id, deadline in m.indicator_deadlines:
            if deadline < day and indicator_id not in rows_by_deadline[deadline]:
                rows_by_deadline[deadline].append(indicator_id)
        obligations += [
            (OverdueSource.INDICATOR_DEADLINE, d, d.year, tuple(rows)) for d, rows in rows_by_deadline.items()
        ]
        obligations += [(OverdueSource.YEARLY_REPORT, d, y, m.all_indicator_ids) for d, y in yearly]
        for institution in dict.fromkeys(m.institutions):
            if institutions is not None and institution not in institutions:
                continue
            for source, deadline, year, rows in obligations:
                still = _still_missing(rows, lookup(m.measure_id, institution, year))
                if not still:
                    continue
                since = _reminder_window_start(policy, source, deadline, year)
                reminded = tuple(
                    r
                    for r in log.get((m.measure_id, institution), ())
                    if r.sent_at.astimezone(policy.tz).date() >= since
                )
                out.append(
                    OverdueEntry(
                        institution=institution,
                        task_id=m.task_id,
                        task_title=m.task_title,
                        measure_id=m.measure_id,
                        measure_name=m.measure_name,
                        source=source,
                        deadline=deadline,
                        period_year=year,
                        days_overdue=(day - deadline).days,
                        missing=still,
                        reminded=reminded,
                        reachable_contacts=tuple(sorted(reachable.get(institution, ()))),
                        blocked_contacts=tuple(sorted(blocked.get(institution, ()))),
                    )
                )
    out.sort(key=lambda e: (-e.days_overdue, e.institution, natural_key(e.measure_id), e.source.value))
    blocked_all = tuple(
        sorted((c for c in contacts if c.blocked), key=lambda c: (c.institution, c.contact_id))
    )
    return EscalationDigest(day=day, entries=tuple(out), blocked_contacts=blocked_all)
