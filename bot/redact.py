"""Ids in logs: a chat or user id is personal data, so log lines carry a short keyed hash of it
(the same id gives the same reference, so one chat's lines can still be followed).

The key is ``LOG_HASH_KEY`` from the environment when set (references then stay the same across
restarts and instances); otherwise a random key of this process.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

_KEY = (os.environ.get("LOG_HASH_KEY") or secrets.token_hex(16)).encode()


def chat_ref(value: int | str | None) -> str:
    """``c:`` and 10 hex digits of HMAC-SHA256(key, id); ``-`` for no id."""
    if value is None:
        return "-"
    digest = hmac.new(_KEY, str(value).encode(), hashlib.sha256).hexdigest()
    return f"c:{digest[:10]}"
