"""SQLModel tables. Portable between SQLite and PostgreSQL: JSON columns, no vendor types.

Catalog rows keep stable integer ids: the loader upserts by natural key (plan, code) and
never deletes, it marks vanished entries ``active = False`` so reports keep their references.
All datetimes are stored in UTC.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stamp() -> Any:
    """A required UTC timestamp column defaulting to now (a new Column per table)."""
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


def _when(required: bool = False) -> Any:
    """A UTC timestamp column without a default."""
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=not required))


class Role(StrEnum):
    CONTACT = "contact"
    COORDINATOR = "coordinator"
    ADMIN = "admin"


# Who sees every institution, reviews reports and gets the digest and the compilations.
COORDINATOR_ROLES = frozenset({Role.COORDINATOR, Role.ADMIN})


class ReportStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class ReviewState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    RETURNED = "returned"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by the sender, request in flight (see bot/sender.py)
    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"  # never sent: superseded, expired or the contact left


# ------------------------------------------------------------------ people


class Institution(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    abbr: str = Field(unique=True, index=True, max_length=64)
    name: str
    name_en: str
    reports: bool = False


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # Telegram ids need 64 bits (user ids exceed 2^31).
    telegram_user_id: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True, index=True))
    display_name: str
    institution_id: int = Field(foreign_key="institution.id", index=True)
    role: str = Field(default=Role.CONTACT, max_length=16)
    language: str = Field(default="lv", max_length=2)
    active: bool = True
    blocked: bool = False
    created_at: dt.datetime = _stamp()
    deactivated_at: dt.datetime | None = _when()  # personal data is erased N days after (purge)


class Invite(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(unique=True, index=True, max_length=64)
    institution_id: int = Field(foreign_key="institution.id")
    role: str = Field(default=Role.CONTACT, max_length=16)
    display_name: str | None = None
    created_at: dt.datetime = _stamp()
    expires_at: dt.datetime = _when(required=True)
    used_at: dt.datetime | None = _when()
    used_by_contact_id: int | None = Field(default=None, foreign_key="contact.id")


class RegistrationAttempt(SQLModel, table=True):
    """Each /start with a code; wrong codes from one user are slowed down from these rows."""

    __tablename__ = "registration_attempt"
    id: int | None = Field(default=None, primary_key=True)
    telegram_user_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    ok: bool
    at: dt.datetime = _stamp()


# ------------------------------------------------------------------ catalog


class Plan(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)
    title: str
    short_title: str
    source: str


class Direction(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("plan_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: str = Field(foreign_key="plan.id", index=True)
    code: str = Field(max_length=32)
    title: str
    position: int
    active: bool = True


class Task(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("plan_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: str = Field(foreign_key="plan.id", index=True)
    direction_id: int = Field(foreign_key="direction.id", index=True)
    code: str = Field(max_length=32)
    title: str
    position: int
    active: bool = True


class Measure(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("plan_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: str = Field(foreign_key="plan.id", index=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    code: str = Field(max_length=32, index=True)
    name: str
    result: str | None = None
    responsible: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    co_responsible: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # The designated reporters: the YAML's list, and an admin's replacement (``resobot plan
    # reporters``), which ``resobot init`` never touches. The effective list is the override, if any.
    reporters: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reporters_override: list[str] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    deadline: dt.date | None = None
    deadline_text: str | None = None
    funding: str | None = None
    achieved_note: str | None = None
    position: int
    active: bool = True


class Indicator(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("measure_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    measure_id: int = Field(foreign_key="measure.id", index=True)
    code: str = Field(max_length=40, index=True)
    text: str
    kind: str = Field(max_length=32)
    target: float | None = None
    unit: str | None = None
    deadline: dt.date | None = None
    deadline_text: str | None = None
    note: str | None = None
    position: int
    active: bool = True


class PolicyIndicator(SQLModel, table=True):
    __tablename__ = "policy_indicator"
    __table_args__ = (UniqueConstraint("plan_id", "code"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: str = Field(foreign_key="plan.id", index=True)
    code: str = Field(max_length=32)
    text: str
    kind: str = Field(max_length=32)
    unit: str | None = None
    targets: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    active: bool = True


class PolicyActual(SQLModel, table=True):
    """A coordinator-entered actual value of a PR indicator (data from outside the bot)."""

    __tablename__ = "policy_actual"
    __table_args__ = (UniqueConstraint("policy_indicator_id", "year"),)
    id: int | None = Field(default=None, primary_key=True)
    policy_indicator_id: int = Field(foreign_key="policy_indicator.id", index=True)
    year: int
    value: float
    source: str | None = None
    entered_by_contact_id: int | None = Field(default=None, foreign_key="contact.id")
    entered_at: dt.datetime = _stamp()


# ------------------------------------------------------------------ reports


class ReportingPeriod(SQLModel, table=True):
    __tablename__ = "reporting_period"
    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(unique=True, index=True)
    starts: dt.date
    ends: dt.date


class AppSetting(SQLModel, table=True):
    """A value fixed once for an installation, e.g. ``reporting_from_year`` (set at the first init)."""

    __tablename__ = "app_setting"
    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=255)
    set_at: dt.datetime = _stamp()


class PeriodReopening(SQLModel, table=True):
    """A closed reporting year opened again for one institution by a coordinator, until a day."""

    __tablename__ = "period_reopening"
    __table_args__ = (UniqueConstraint("institution_id", "year"),)
    id: int | None = Field(default=None, primary_key=True)
    institution_id: int = Field(foreign_key="institution.id", index=True)
    year: int
    until: dt.date
    reopened_by_contact_id: int | None = Field(default=None, foreign_key="contact.id")
    reopened_at: dt.datetime = _stamp()


class Report(SQLModel, table=True):
    """One report per measure × institution × period; every submit is a new revision."""

    __table_args__ = (UniqueConstraint("measure_id", "institution_id", "period_id"),)
    id: int | None = Field(default=None, primary_key=True)
    measure_id: int = Field(foreign_key="measure.id", index=True)
    institution_id: int = Field(foreign_key="institution.id", index=True)
    period_id: int = Field(foreign_key="reporting_period.id", index=True)
    status: str = Field(default=ReportStatus.DRAFT, max_length=16)
    revision: int = 0
    review_state: str = Field(default=ReviewState.PENDING, max_length=16)
    review_comment: str | None = None
    risk_flag: bool = False
    comment: str | None = None
    created_by_contact_id: int | None = Field(default=None, foreign_key="contact.id")
    created_at: dt.datetime = _stamp()
    submitted_at: dt.datetime | None = _when()


class ReportValue(SQLModel, table=True):
    """The current value of one indicator row in a report (the latest revision)."""

    __tablename__ = "report_value"
    __table_args__ = (UniqueConstraint("report_id", "indicator_id"),)
    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True)
    indicator_id: int = Field(foreign_key="indicator.id", index=True)
    value_num: float | None = None
    value_text: str | None = None
    status: str | None = Field(default=None, max_length=16)
    value_date: dt.date | None = None


class ReportRevision(SQLModel, table=True):
    """Immutable audit row: who submitted which revision when, the snapshot and old → new."""

    __tablename__ = "report_revision"
    __table_args__ = (UniqueConstraint("report_id", "revision"),)
    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True)
    revision: int
    submitted_by_contact_id: int | None = Field(default=None, foreign_key="contact.id")
    submitted_at: dt.datetime = _stamp()
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    changes: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


# ------------------------------------------------------------------ conversation, outbox


class ConversationState(SQLModel, table=True):
    """aiogram FSM storage row: one per storage key (bot, chat, user, ...)."""

    __tablename__ = "conversation_state"
    key: str = Field(primary_key=True, max_length=255)
    state: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_at: dt.datetime = _stamp()


class ProcessedUpdate(SQLModel, table=True):
    """Telegram may deliver one update twice; handled update ids are remembered here, per bot
    (update ids are a bot's own sequence; the bot id is its token's numeric prefix)."""

    __tablename__ = "processed_update"
    bot_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )


class InterruptedUpdate(SQLModel, table=True):
    """An update a stop left unhandled: cut off after STOP_GRACE_SECONDS, or still held for
    replay (bot/replay.py). Telegram counts it delivered and never sends it again, so it is kept
    here, as Telegram sent it, and handled at the next start (bot/app.py), then deleted. Its
    unit of work rolled back; should it have committed after all, the duplicate check drops it."""

    __tablename__ = "interrupted_update"
    bot_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )


class Outbox(SQLModel, table=True):
    """Every outgoing reminder/digest/document: unique key makes enqueueing idempotent."""

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(unique=True, index=True, max_length=128)
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: str = Field(max_length=32)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    send_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=True))
    status: str = Field(default=OutboxStatus.PENDING, max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: dt.datetime | None = _when()
    last_error: str | None = None
    sent_at: dt.datetime | None = _when()
    telegram_message_id: int | None = None
    created_at: dt.datetime = _stamp()
    # The lease of a row in ``sending``: which instance claimed it and until when its request
    # may still be running. Only an expired claim is recovered (bot/sender.py).
    claimed_by: str | None = Field(default=None, max_length=128)
    claim_expires_at: dt.datetime | None = _when()


class ReminderMute(SQLModel, table=True):
    __tablename__ = "reminder_mute"
    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    measure_id: int = Field(foreign_key="measure.id", index=True)
    until: dt.date
    reason: str
    created_at: dt.datetime = _stamp()


class JobRun(SQLModel, table=True):
    """One day of a scheduled job that is done (reminder planning, a compilation). A restart
    reads these to see which days it covered and which it must catch up."""

    __tablename__ = "job_run"
    job: str = Field(primary_key=True, max_length=64)
    day: dt.date = Field(primary_key=True)
    at: dt.datetime = _stamp()
    detail: str | None = Field(default=None, max_length=500)
