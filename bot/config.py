"""Typed settings from the environment and ``.env`` (pydantic-settings).

A missing or malformed setting is reported as one clear line by ``load_settings`` —
the CLI prints it and exits, no traceback.
"""

from __future__ import annotations

import json
import re
import zoneinfo
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Self

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reporting_forms.calendar import DEFAULT_TIMEZONE, default_calendar
from reporting_forms.reminder_policy import PolicyError, ReminderPolicy, load_policy

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "var"
DEFAULT_SQLITE = DEFAULT_DATA_DIR / "resobot.db"
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_OFF = ("", "off", "none", "no", "false", "0")


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message is one line for the user."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: str | None = Field(default=None, description="Bot API token; none → offline console")
    telegram_api_base: str = Field(default="https://api.telegram.org", description="Bot API server base URL")
    telegram_bot_username: str | None = Field(default=None, description="For invite deep links")
    # The data folder: the default SQLite file, compiled files and console files live under it
    # (each can still be set on its own). Outside the package in a deployment (/data in Docker).
    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="Data folder (DATA_DIR)")
    database_url: str = Field(default=f"sqlite+aiosqlite:///{DEFAULT_SQLITE}")
    timezone: str = Field(
        default=DEFAULT_TIMEZONE, description="The one time zone of reminders, compilations, report dates"
    )
    default_language: str = "lv"
    console_files_dir: Path = DEFAULT_DATA_DIR / "console-files"
    compiled_dir: Path = Field(
        default=DEFAULT_DATA_DIR / "compiled", description="Files of the scheduled compilations"
    )
    retention_days: int = Field(
        default=90, ge=1, description="resobot purge: what is older than this many days goes"
    )
    # Webhook mode (bot/webhook.py) and the health/metrics endpoints (bot/health.py).
    webhook_url: str | None = Field(default=None, description="Public HTTPS URL Telegram posts updates to")
    webhook_secret: str | None = Field(
        default=None, description="X-Telegram-Bot-Api-Secret-Token checked on every webhook request"
    )
    webhook_listen: str = Field(default="0.0.0.0:8080", description="HOST:PORT of the webhook server")
    health_listen: str | None = Field(
        default="127.0.0.1:8081", description="HOST:PORT of /healthz, /readyz, /metrics; off disables"
    )
    health_db_timeout: float = Field(default=2.0, gt=0, description="/readyz: seconds for SELECT 1")
    metrics_stuck_minutes: int = Field(default=10, ge=1, description="/metrics: sending rows older = stuck")
    # Reminders and the outbox (bot/scheduler.py, bot/sender.py).
    reminders_enabled: bool = Field(default=True, description="Plan reminders and digests")
    reporting_from_year: int | None = Field(
        default=None,
        description="First plan year the bot chases (kept by `resobot init`; default: its first year)",
    )
    compile_enabled: bool = Field(
        default=True, description="Monthly and annual compilations sent to coordinators"
    )
    reminder_policy_overrides: str | None = Field(
        default=None, description='JSON merged into reminder_policy.yaml, e.g. {"cycle.last_year": 2028}'
    )
    reminder_plan_lead_minutes: int = Field(default=5, ge=1, le=120, description="Plan before send_time")
    scheduler_misfire_grace_seconds: int = Field(default=6 * 3600, ge=1)
    outbox_global_rate: float = Field(default=25.0, gt=0, description="Messages/s, all chats")
    outbox_per_chat_rate: float = Field(default=1.0, gt=0, description="Messages per second to one chat")
    outbox_max_attempts: int = Field(default=5, ge=1)
    outbox_backoff_seconds: float = Field(default=2.0, gt=0, description="First retry delay, doubling")
    outbox_backoff_max_seconds: float = Field(default=300.0, gt=0)
    outbox_poll_seconds: float = Field(default=5.0, gt=0)
    outbox_request_timeout: float = Field(default=20.0, gt=0)
    # Several instances on one PostgreSQL database (bot/leader.py, bot/sender.py).
    outbox_claim_lease_seconds: float = Field(
        default=120.0, gt=0, description="A claimed row's lease; only an expired claim is sent again"
    )
    leader_poll_seconds: float = Field(
        default=15.0, gt=0, description="How often a follower tries the leader lock (PostgreSQL)"
    )
    instance_id: str | None = Field(default=None, description="This process in claims; default host:pid")
    stop_grace_seconds: float = Field(
        default=10.0, gt=0, description="On SIGTERM (polling): how long updates being handled may finish"
    )

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        head, sep, tail = v.partition(":")
        if not sep or not head.isdigit() or not tail:
            raise ValueError("expected the form 123456789:ABC... from @BotFather")
        return v

    @field_validator("telegram_api_base")
    @classmethod
    def _api_base(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, v: str) -> str:
        v = v.strip()
        if v.startswith("postgresql://") or v.startswith("postgres://"):
            v = "postgresql+asyncpg://" + v.split("://", 1)[1]
        if v.startswith("sqlite://"):
            v = "sqlite+aiosqlite://" + v.removeprefix("sqlite://")
        if not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        if v.startswith("sqlite+aiosqlite://") and _sqlite_in_memory(v):
            raise ValueError(
                "an in-memory SQLite database is lost when the bot stops, and drafts, reports and "
                "invites must survive restarts: use a file, e.g. sqlite+aiosqlite:///var/resobot.db"
            )
        return v

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        if not v.startswith(("https://", "http://")):  # http: only a local Bot API server takes it
            raise ValueError("must start with https:// (Telegram posts updates only over HTTPS)")
        return v

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not _WEBHOOK_SECRET.fullmatch(v.strip()):
            raise ValueError("1-256 characters A-Z, a-z, 0-9, _ and - (Telegram's secret_token)")
        return v.strip()

    @field_validator("webhook_listen")
    @classmethod
    def _webhook_listen(cls, v: str) -> str:
        parse_listen(v)
        return v.strip()

    @field_validator("health_listen")
    @classmethod
    def _health_listen(cls, v: str | None) -> str | None:
        if v is None or v.strip().lower() in _OFF:
            return None
        parse_listen(v)
        return v.strip()

    @model_validator(mode="after")
    def _data_dir_defaults(self) -> Self:
        """Paths not set on their own follow DATA_DIR."""
        given = self.model_fields_set
        if "database_url" not in given:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'resobot.db'}"
        if "console_files_dir" not in given:
            self.console_files_dir = self.data_dir / "console-files"
        if "compiled_dir" not in given:
            self.compiled_dir = self.data_dir / "compiled"
        return self

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("reporting_from_year")
    @classmethod
    def _plan_year(cls, v: int | None) -> int | None:
        calendar = default_calendar()
        if v is not None and not calendar.in_plan(v):
            raise ValueError(f"must be a year of the plan, {calendar.first_year}–{calendar.last_year}")
        return v

    @field_validator("default_language")
    @classmethod
    def _lang(cls, v: str) -> str:
        if v not in ("lv", "en"):
            raise ValueError("must be lv or en")
        return v

    @field_validator("reminder_policy_overrides")
    @classmethod
    def _policy_overrides(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        _policy(v)  # raises ValueError with one readable line
        return v

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def reminder_policy(self) -> ReminderPolicy:
        """reporting_forms/reminder_policy.yaml with REMINDER_POLICY_OVERRIDES applied, in the
        TIMEZONE setting's zone (the one time zone of everything)."""
        return _policy(self.reminder_policy_overrides, self.timezone)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) → (host, port); ValueError with one readable line."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, e.g. 0.0.0.0:8080, not {text!r}")
    return host, int(port)


def _sqlite_in_memory(url: str) -> bool:
    """``sqlite+aiosqlite://``, ``…///:memory:``, ``…///file::memory:?cache=shared``, ``?mode=memory``."""
    rest = url.removeprefix("sqlite+aiosqlite://")
    path, _, query = rest.partition("?")
    path = path.removeprefix("/")
    return path in ("", ":memory:") or path.startswith("file::memory:") or "mode=memory" in query


@lru_cache(maxsize=16)
def _policy(overrides: str | None, timezone: str = DEFAULT_TIMEZONE) -> ReminderPolicy:
    data: Any = {}
    if overrides:
        try:
            data = json.loads(overrides)
        except ValueError as exc:
            raise ValueError(f"not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object of policy fields")
    try:
        return load_policy(overrides={**data, "timezone": timezone})
    except PolicyError as exc:
        raise ValueError(str(exc)) from None


class WebhookConfigError(RuntimeError):
    """Webhook mode cannot start as configured; one line for the CLI."""


def webhook_url_and_secret(settings: Settings) -> tuple[str, str]:
    """(url, secret), or WebhookConfigError naming what is missing."""
    missing = [
        name
        for name, value in (
            ("WEBHOOK_URL", settings.webhook_url),
            ("WEBHOOK_SECRET", settings.webhook_secret),
        )
        if not value
    ]
    if missing:
        raise WebhookConfigError(
            f"Webhook mode needs {' and '.join(missing)} (see README, Deployment); "
            "without --webhook the bot long-polls."
        )
    assert settings.webhook_url and settings.webhook_secret
    return settings.webhook_url, settings.webhook_secret


def load_settings() -> Settings:
    """Settings from env/.env; a bad value raises SettingsError with one readable line."""
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"Configuration error: {name}: {msg}") from None


@cache
def settings() -> Settings:
    return load_settings()
