"""Typed settings from the environment and ``.env`` (pydantic-settings).

A missing or malformed setting is reported as one clear line by ``load_settings`` —
the CLI prints it and exits, no traceback.
"""

from __future__ import annotations

import zoneinfo
from functools import cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE = PROJECT_ROOT / "var" / "resobot.db"


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message is one line for the user."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: str | None = Field(default=None, description="Bot API token; none → offline console")
    telegram_api_base: str = Field(default="https://api.telegram.org", description="Bot API server base URL")
    telegram_bot_username: str | None = Field(default=None, description="For invite deep links")
    database_url: str = Field(default=f"sqlite+aiosqlite:///{DEFAULT_SQLITE}")
    timezone: str = "Europe/Riga"
    default_language: str = "lv"
    console_files_dir: Path = PROJECT_ROOT / "var" / "console-files"

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
        if v.startswith("sqlite:///"):
            v = "sqlite+aiosqlite:///" + v.removeprefix("sqlite:///")
        if not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("default_language")
    @classmethod
    def _lang(cls, v: str) -> str:
        if v not in ("lv", "en"):
            raise ValueError("must be lv or en")
        return v

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


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
