"""Rules for registering with an invite code: repeated wrong codes are slowed down."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

FREE_ATTEMPTS = 3
BASE_WAIT = dt.timedelta(minutes=1)
MAX_WAIT = dt.timedelta(hours=1)
WINDOW = dt.timedelta(hours=6)


def registration_wait(failures: Sequence[dt.datetime], now: dt.datetime) -> dt.timedelta:
    """How long a user must wait before the next code is even checked.

    The first FREE_ATTEMPTS wrong codes within WINDOW cost nothing; after that each further
    wrong code doubles the wait (1, 2, 4, ... minutes, at most an hour) from the latest one.
    """
    recent = sorted((f for f in failures if now - f < WINDOW), reverse=True)
    if len(recent) < FREE_ATTEMPTS:
        return dt.timedelta(0)
    wait = min(BASE_WAIT * 2 ** (len(recent) - FREE_ATTEMPTS), MAX_WAIT)
    return max(recent[0] + wait - now, dt.timedelta(0))


def language_of(telegram_language_code: str | None, default: str = "lv") -> str:
    """A new user's language from Telegram's language_code: English speakers get English."""
    if telegram_language_code and telegram_language_code.lower().startswith("en"):
        return "en"
    return default
