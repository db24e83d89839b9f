"""Report forms: specs derived from catalog measures, drafts as plain data, a pure step engine.

The engine knows nothing of Telegram or the database. Every step takes a draft and returns
``(new_draft, step)``; the bot renders the step (``Ask``, ``Summary``, ``Rejected``) and stores
the draft (``Draft.to_dict()`` is JSON-serialisable). Nothing invalid ever enters
``Draft.answers``: each answer is parsed first and stored in one canonical JSON form.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, TypeAlias

from reporting_forms.answers import (
    DEFAULT_MAX_LENGTH,
    InvalidAnswer,
    MilestoneStatus,
    parse_comment,
    parse_count,
    parse_date,
    parse_milestone_status,
    parse_percent,
)
from reporting_forms.catalog import Indicator, Measure, MetricKind

FORM_VERSION = 1
SUMMARY: Literal["summary"] = "summary"
COMMENT_KEY = "comment"
DATE_SUFFIX = ".date"
TEXT_MAX_LENGTH = 1000
COMMENT_MAX_LENGTH = 1000
# A milestone date (done on / expected by) must fall within these years around the report year.
DATE_YEARS_BEFORE = 1
DATE_YEARS_AFTER = 3

# Codes the engine itself produces (the parsers add answers.PARSER_ERROR_CODES).
ENGINE_ERROR_CODES: tuple[str, ...] = (
    "required",
    "use_buttons",
    "nothing_reported",
    "not_finished",
    "unknown_field",
    "missing_dependency",
    "invalid_value",
)

JSONValue: TypeAlias = int | str
AnswerValue: TypeAlias = int | Decimal | MilestoneStatus | dt.date | str
Cursor: TypeAlias = int | Literal["summary"]


class FieldKind(StrEnum):
    COUNT = "count"
    PERCENT = "percent"
    MILESTONE_STATUS = "milestone_status"
    DATE = "date"
    TEXT = "text"
    COMMENT = "comment"


@dataclasses.dataclass(frozen=True)
class FormField:
    """One question. ``depends_on``: asked only once that key has an answer."""

    key: str
    kind: FieldKind
    indicator_id: str | None = None
    metric_kind: MetricKind | None = None
    optional: bool = True
    max_length: int | None = None
    depends_on: str | None = None

    @property
    def buttons(self) -> tuple[str, ...]:
        """Answer codes offered as buttons (the bot labels them via answers.status_<code>)."""
        return FIELD_TYPES[self.kind].buttons


@dataclasses.dataclass(frozen=True)
class FormSpec:
    measure_id: str
    fields: tuple[FormField, ...]
    version: int = FORM_VERSION

    def index(self, key: str) -> int:
        for i, f in enumerate(self.fields):
            if f.key == key:
                return i
        raise KeyError(key)

    def field(self, key: str) -> FormField:
        return self.fields[self.index(key)]


# ---------------------------------------------------------------- field kinds as data

Parser: TypeAlias = Callable[[str, FormField, int | None], AnswerValue]


@dataclasses.dataclass(frozen=True)
class FieldType:
    """How a field kind parses raw text, stores the value as JSON, and which buttons it offers."""

    parse: Parser
    dump: Callable[[Any], JSONValue]
    json_type: type
    buttons: tuple[str, ...] = ()


def date_window(year: int | None) -> tuple[dt.date, dt.date]:
    """Dates accepted for a report of ``year``; any date when the year is unknown."""
    if year is None:
        return dt.date.min, dt.date.max
    return dt.date(year - DATE_YEARS_BEFORE, 1, 1), dt.date(year + DATE_YEARS_AFTER, 12, 31)


def _parse_date_field(raw: str, _field: FormField, year: int | None) -> dt.date:
    earliest, latest = date_window(year)
    return parse_date(raw, earliest=earliest, latest=latest)


def _parse_text_field(raw: str, field: FormField, _year: int | None) -> str:
    return parse_comment(raw, field.max_length or DEFAULT_MAX_LENGTH)


FIELD_TYPES: dict[FieldKind, FieldType] = {
    FieldKind.COUNT: FieldType(lambda raw, _f, _y: parse_count(raw), int, int),
    FieldKind.PERCENT: FieldType(lambda raw, _f, _y: parse_percent(raw), str, str),
    FieldKind.MILESTONE_STATUS: FieldType(
        lambda raw, _f, _y: parse_milestone_status(raw),
        lambda status: status.value,
        str,
        buttons=tuple(s.value for s in MilestoneStatus),
    ),
    FieldKind.DATE: FieldType(_parse_date_field, lambda day: day.isoformat(), str),
    FieldKind.TEXT: FieldType(_parse_text_field, str, str),
    FieldKind.COMMENT: FieldType(_parse_text_field, str, str),
}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The fields an indicator row of some metric kind turns into."""

    kind: FieldKind
    max_length: int | None = None
    followups: tuple[tuple[str, FieldKind], ...] = ()  # (key suffix, kind), asked after an answer


METRIC_RECIPES: dict[MetricKind, Recipe] = {
    MetricKind.PEOPLE_TRAINED: Recipe(FieldKind.COUNT),
    MetricKind.PARTICIPANTS: Recipe(FieldKind.COUNT),
    MetricKind.EVENTS_HELD: Recipe(FieldKind.COUNT),
    MetricKind.CONSULTATIONS: Recipe(FieldKind.COUNT),
    MetricKind.SESSIONS: Recipe(FieldKind.COUNT),
    MetricKind.COUNT: Recipe(FieldKind.COUNT),
    MetricKind.PERCENT: Recipe(FieldKind.PERCENT),
    MetricKind.MILESTONE: Recipe(FieldKind.MILESTONE_STATUS, followups=((DATE_SUFFIX, FieldKind.DATE),)),
    MetricKind.TEXT: Recipe(FieldKind.TEXT, max_length=TEXT_MAX_LENGTH),
}


def _indicator_fields(indicator: Indicator) -> tuple[FormField, ...]:
    recipe = METRIC_RECIPES[indicator.kind]
    main = FormField(
        key=indicator.id,
        kind=recipe.kind,
        indicator_id=indicator.id,
        metric_kind=indicator.kind,
        max_length=recipe.max_length,
    )
    followups = tuple(
        FormField(
            key=indicator.id + suffix,
            kind=kind,
            indicator_id=indicator.id,
            metric_kind=indicator.kind,
            depends_on=indicator.id,
        )
        for suffix, kind in recipe.followups
    )
    return (main, *followups)


@functools.lru_cache(maxsize=1024)
def form_for(measure: Measure) -> FormSpec:
    """Indicator rows in catalog order (all optional), then an optional comment.

    Cached: a measure is a frozen (hashable) model and the spec a frozen dataclass; a step of
    the report form asks for it several times."""
    fields = [f for indicator in measure.indicators for f in _indicator_fields(indicator)]
    fields.append(FormField(key=COMMENT_KEY, kind=FieldKind.COMMENT, max_length=COMMENT_MAX_LENGTH))
    keys = [f.key for f in fields]
    if len(set(keys)) != len(keys):
        raise ValueError(f"measure {measure.id}: duplicate form keys {sorted(keys)}")
    return FormSpec(measure_id=measure.id, fields=tuple(fields))


# ---------------------------------------------------------------- values


def parse_answer(field: FormField, raw: str, year: int | None) -> AnswerValue:
    """Parse raw text for ``field``; raises InvalidAnswer."""
    return FIELD_TYPES[field.kind].parse(raw, field, year)


def dump_answer(field: FormField, value: AnswerValue) -> JSONValue:
    """The canonical JSON form of a parsed value."""
    return FIELD_TYPES[field.kind].dump(value)


def _keyed(exc: InvalidAnswer, key: str) -> InvalidAnswer:
    exc.key = key
    return exc


def load_answer(field: FormField, stored: Any, year: int | None) -> AnswerValue:
    """The typed value of a stored answer; InvalidAnswer unless it is exactly what the engine stores."""
    if isinstance(stored, bool) or not isinstance(stored, FIELD_TYPES[field.kind].json_type):
        raise _keyed(InvalidAnswer("invalid_value", key=field.key), field.key)
    try:
        return _stored_value(field, stored, year)
    except InvalidAnswer as exc:
        raise _keyed(exc, field.key) from None


@functools.lru_cache(maxsize=512)
def _stored_value(field: FormField, stored: JSONValue, year: int | None) -> AnswerValue:
    """A stored answer (of the field's JSON type) parsed again and checked to be exactly what
    the engine stores. Every step loads a draft's answers again; each distinct one is parsed
    once (a text answer is read character by character). The values are immutable; a refusal
    is raised every time, never kept."""
    value = parse_answer(field, str(stored), year)
    if dump_answer(field, value) != stored:
        raise InvalidAnswer("invalid_value", key=field.key)
    return value


def _applicable(field: FormField, answers: Mapping[str, Any]) -> bool:
    return field.depends_on is None or field.depends_on in answers


def validate_answers(
    spec: FormSpec, answers: Mapping[str, Any], *, year: int | None = None
) -> dict[str, AnswerValue]:
    """Re-validate stored answers (before storing a submitted report); typed values in form order.

    Dates are checked against the report year's window when ``year`` is given.
    Raises InvalidAnswer (``.key`` names the offending field).
    """
    known = {f.key for f in spec.fields}
    for key in answers:
        if key not in known:
            raise _keyed(InvalidAnswer("unknown_field", key=str(key)), str(key))
    values: dict[str, AnswerValue] = {}
    for field in spec.fields:
        if field.key not in answers:
            if not field.optional and _applicable(field, answers):
                raise _keyed(InvalidAnswer("required", key=field.key), field.key)
            continue
        if not _applicable(field, answers):
            exc = InvalidAnswer("missing_dependency", key=field.key, depends_on=field.depends_on)
            raise _keyed(exc, field.key)
        values[field.key] = load_answer(field, answers[field.key], year)
    return values


# ---------------------------------------------------------------- drafts


class DraftError(ValueError):
    """A stored draft cannot be read (malformed, or from a newer form version)."""


@dataclasses.dataclass(frozen=True)
class Draft:
    """A report being filled in. Plain data: treat ``answers`` as read-only."""

    measure_id: str
    year: int
    answers: dict[str, JSONValue] = dataclasses.field(default_factory=dict)
    cursor: Cursor = 0
    return_to_summary: bool = False
    version: int = FORM_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "measure_id": self.measure_id,
            "year": self.year,
            "answers": dict(self.answers),
            "cursor": self.cursor,
            "return_to_summary": self.return_to_summary,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Draft:
        """Load a stored draft, migrating older versions first. Raises DraftError."""
        d = migrate_draft(data)
        if not isinstance(d.get("answers"), Mapping):
            raise DraftError("malformed draft: answers must be a mapping")
        try:
            draft = cls(
                measure_id=d["measure_id"],
                year=d["year"],
                answers=dict(d["answers"]),
                cursor=d["cursor"],
                return_to_summary=d["return_to_summary"],
                version=d["version"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DraftError(f"malformed draft: {exc!r}") from None
        _check_shape(draft)
        return draft


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_shape(draft: Draft) -> None:
    problems = [
        ("measure_id", isinstance(draft.measure_id, str)),
        ("year", _is_int(draft.year)),
        ("answers", all(isinstance(k, str) and isinstance(v, int | str) for k, v in draft.answers.items())),
        ("cursor", draft.cursor == SUMMARY or (_is_int(draft.cursor) and draft.cursor >= 0)),
        ("return_to_summary", isinstance(draft.return_to_summary, bool)),
    ]
    bad = [name for name, ok in problems if not ok]
    if bad:
        raise DraftError(f"malformed draft: bad {', '.join(bad)}")


def _v0_to_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v0 drafts (before drafts were versioned) had no version and no return_to_summary flag."""
    return {**data, "version": 1, "return_to_summary": bool(data.get("return_to_summary", False))}


# Keyed by the version a function migrates *from*; each returns the next version's dict.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _v0_to_v1}


def migrate_draft(data: Mapping[str, Any]) -> dict[str, Any]:
    """Bring a stored draft dict up to FORM_VERSION. Raises DraftError."""
    if not isinstance(data, Mapping):
        raise DraftError(f"a draft must be a mapping, not {type(data).__name__}")
    d = dict(data)
    version = d.get("version", 0)
    if not _is_int(version) or version > FORM_VERSION:
        raise DraftError(f"unsupported draft version {version!r}")
    while version < FORM_VERSION:
        migration = MIGRATIONS.get(version)
        if migration is None:
            raise DraftError(f"no migration from draft version {version}")
        d = migration(d)
        version = d["version"]
    return d


# ---------------------------------------------------------------- steps


@dataclasses.dataclass(frozen=True)
class Ask:
    """Ask ``field``; ``current_value`` is its typed answer so far (None if none)."""

    field: FormField
    current_value: AnswerValue | None
    position: int
    total: int


@dataclasses.dataclass(frozen=True)
class SummaryRow:
    field: FormField
    value: AnswerValue | None


@dataclasses.dataclass(frozen=True)
class Summary:
    """Every field that applies, with its typed value (None when skipped)."""

    rows: tuple[SummaryRow, ...]


@dataclasses.dataclass(frozen=True)
class Rejected:
    """The answer was refused; ask ``field`` again with message ``error_<code>``."""

    field: FormField | None
    code: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Step: TypeAlias = Ask | Summary | Rejected


def _normalise(spec: FormSpec, draft: Draft) -> Draft:
    """Fit a (possibly older) draft to ``spec``: drop answers that no longer validate, fix the cursor."""
    if draft.measure_id != spec.measure_id:
        raise ValueError(f"draft is for measure {draft.measure_id}, form is for {spec.measure_id}")
    answers: dict[str, JSONValue] = {}
    for field in spec.fields:
        stored = draft.answers.get(field.key)
        if stored is None or not _applicable(field, answers):
            continue
        try:
            load_answer(field, stored, draft.year)
        except InvalidAnswer:
            continue
        answers[field.key] = stored
    cursor = draft.cursor
    if cursor != SUMMARY:
        cursor = _next_applicable(spec, answers, max(cursor, 0))
    normal = dataclasses.replace(
        draft,
        answers=answers,
        cursor=cursor,
        return_to_summary=draft.return_to_summary and cursor != SUMMARY,
    )
    return draft if normal == draft else normal


def _next_applicable(spec: FormSpec, answers: Mapping[str, Any], start: int) -> Cursor:
    for i in range(start, len(spec.fields)):
        if _applicable(spec.fields[i], answers):
            return i
    return SUMMARY


def _value_of(field: FormField, draft: Draft) -> AnswerValue | None:
    stored = draft.answers.get(field.key)
    return None if stored is None else load_answer(field, stored, draft.year)


def _summary(spec: FormSpec, draft: Draft) -> Summary:
    return Summary(
        tuple(
            SummaryRow(field, _value_of(field, draft))
            for field in spec.fields
            if _applicable(field, draft.answers)
        )
    )


def _current(spec: FormSpec, draft: Draft) -> Ask | Summary:
    if draft.cursor == SUMMARY:
        return _summary(spec, draft)
    field = spec.fields[draft.cursor]
    return Ask(field, _value_of(field, draft), draft.cursor + 1, len(spec.fields))


def _go(spec: FormSpec, draft: Draft, cursor: Cursor, return_to_summary: bool) -> tuple[Draft, Ask | Summary]:
    moved = dataclasses.replace(
        draft, cursor=cursor, return_to_summary=return_to_summary and cursor != SUMMARY
    )
    return moved, _current(spec, moved)


def _advance(spec: FormSpec, draft: Draft, index: int) -> tuple[Draft, Ask | Summary]:
    """After answering or skipping field ``index``: the next field, or the summary.

    When editing from the summary, only a newly applicable follow-up (a milestone's date)
    is asked before returning to the summary.
    """
    key = spec.fields[index].key
    later = range(index + 1, len(spec.fields))
    if draft.return_to_summary:
        nxt = next(
            (
                i
                for i in later
                if spec.fields[i].depends_on == key
                and spec.fields[i].key not in draft.answers
                and _applicable(spec.fields[i], draft.answers)  # a skipped milestone has no date
            ),
            None,
        )
    else:
        nxt = next((i for i in later if _applicable(spec.fields[i], draft.answers)), None)
    return _go(spec, draft, SUMMARY if nxt is None else nxt, draft.return_to_summary)


def start(spec: FormSpec, year: int) -> tuple[Draft, Ask]:
    """A fresh draft and its first question."""
    draft = Draft(measure_id=spec.measure_id, year=year)
    step = _current(spec, draft)
    assert isinstance(step, Ask), "a form has at least one field"
    return draft, step


def resume(spec: FormSpec, draft: Draft) -> tuple[Draft, Ask | Summary]:
    """The current step of a stored draft (after fitting it to the current spec)."""
    draft = _normalise(spec, draft)
    return draft, _current(spec, draft)


def answer(spec: FormSpec, draft: Draft, raw: str) -> tuple[Draft, Step]:
    """Answer the current question with raw text."""
    draft = _normalise(spec, draft)
    if draft.cursor == SUMMARY:
        return draft, Rejected(None, "use_buttons")
    field = spec.fields[draft.cursor]
    try:
        value = parse_answer(field, raw, draft.year)
    except InvalidAnswer as exc:
        return draft, Rejected(field, exc.code, exc.params)
    answered = dataclasses.replace(draft, answers={**draft.answers, field.key: dump_answer(field, value)})
    return _advance(spec, answered, draft.cursor)


def skip(spec: FormSpec, draft: Draft) -> tuple[Draft, Step]:
    """Skip the current question ("Izlaist"): clears its answer and its follow-ups' answers."""
    draft = _normalise(spec, draft)
    if draft.cursor == SUMMARY:
        return draft, Rejected(None, "use_buttons")
    field = spec.fields[draft.cursor]
    if not field.optional:
        return draft, Rejected(field, "required")
    answers = {
        k: v for k, v in draft.answers.items() if k != field.key and not _depends_on(spec, k, field.key)
    }
    return _advance(spec, dataclasses.replace(draft, answers=answers), draft.cursor)


def _depends_on(spec: FormSpec, key: str, parent: str) -> bool:
    return any(f.key == key and f.depends_on == parent for f in spec.fields)


def back(spec: FormSpec, draft: Draft) -> tuple[Draft, Ask | Summary]:
    """The previously asked question (fields skipped automatically are passed over).

    From the summary: the last question. While editing from the summary: back to the summary.
    On the first question: stays there.
    """
    draft = _normalise(spec, draft)
    if draft.return_to_summary:
        return _go(spec, draft, SUMMARY, False)
    before = len(spec.fields) if draft.cursor == SUMMARY else draft.cursor
    previous = next(
        (i for i in reversed(range(before)) if _applicable(spec.fields[i], draft.answers)),
        draft.cursor,
    )
    return _go(spec, draft, previous, False)


def edit(spec: FormSpec, draft: Draft, key: str) -> tuple[Draft, Ask | Summary]:
    """Ask one field again; after the answer the summary returns (if we came from it).

    An unknown or not applicable key (a stale button) leaves the draft as it is.
    """
    draft = _normalise(spec, draft)
    try:
        index = spec.index(key)
    except KeyError:
        return draft, _current(spec, draft)
    if not _applicable(spec.fields[index], draft.answers):
        return draft, _current(spec, draft)
    return _go(spec, draft, index, draft.cursor == SUMMARY or draft.return_to_summary)


def confirm_errors(spec: FormSpec, draft: Draft) -> list[tuple[str, dict[str, Any]]]:
    """Why the draft cannot be submitted yet; empty when it can."""
    errors: list[tuple[str, dict[str, Any]]] = []
    if draft.cursor != SUMMARY:
        errors.append(("not_finished", {}))
    try:
        validate_answers(spec, draft.answers, year=draft.year)
    except InvalidAnswer as exc:
        errors.append((exc.code, dict(exc.params)))
    if not any(f.indicator_id is not None and f.key in draft.answers for f in spec.fields):
        errors.append(("nothing_reported", {}))
    return errors
