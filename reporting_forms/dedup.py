"""The one way a dedup key is made: sha256 (hex) of canonical JSON (keys sorted, UTF-8, no
spaces). Outbox rows, planned reminders, snoozes and digests all use it; stored keys are
recomputed to deduplicate, so its output must never change (tests/test_one_each.py pins it)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical(value: Any) -> str:
    """``value`` as canonical JSON: keys sorted, non-ASCII kept, no spaces."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def outbox_key(value: Any) -> str:
    """A ``dedup_key``: sha256 of ``value`` as canonical JSON (recipient, kind, day, content…)."""
    return sha256_hex(canonical(value))


__all__ = ["canonical", "outbox_key", "sha256_hex"]
