"""Splitting a long Telegram HTML message into parts that each fit one message, its length
counted as Telegram counts it (tags nothing, an entity one character, text in UTF-16 units)."""

from __future__ import annotations

import re

MESSAGE_LIMIT = 4000  # Telegram allows 4096 characters after entity parsing; leave some room
# The one limit and the one way of counting (message_length) for every message that is split or
# shortened to fit: chunks() here, the reminder and digest texts in services/reminder_messages.py.
_TOKENS = re.compile(r"<[^>]*>|&#?\w+;|\s+|[^<&\s]+|[<&]")


def _visible_length(token: str) -> int:
    """What a piece of Telegram HTML counts towards the limit: tags nothing, an entity one
    character, text its UTF-16 length (as Telegram counts)."""
    if token.startswith("<") and token.endswith(">") and len(token) > 1:
        return 0
    if token.startswith("&") and token.endswith(";") and len(token) > 2:
        return 1
    return len(token.encode("utf-16-le")) // 2


def _tokens(line: str, limit: int) -> list[str]:
    """Tags, entities, spaces and words; a word longer than a message comes in slices."""
    out: list[str] = []
    step = max(1, limit // 2)  # slices by code points; an astral character counts twice
    for token in _TOKENS.findall(line):
        if _visible_length(token) > limit:
            out.extend(token[i : i + step] for i in range(0, len(token), step))
        else:
            out.append(token)
    return out


def _pieces(line: str, limit: int) -> list[str]:
    """A line too long for one message, cut at its last space before the limit (or between
    slices of one long word); never inside a tag or an entity, nothing dropped."""
    pieces: list[str] = []
    current: list[str] = []
    for token in _tokens(line, limit):
        while current and sum(map(_visible_length, current)) + _visible_length(token) > limit:
            spaces = [i for i, t in enumerate(current) if t.isspace()]
            cut = spaces[-1] if spaces and spaces[-1] > 0 else len(current)
            pieces.append("".join(current[:cut]))
            current = current[cut + 1 :]
        current.append(token)
    pieces.append("".join(current))
    return pieces


def message_length(message: str) -> int:
    """A message's length as Telegram counts it against ``MESSAGE_LIMIT`` (tags nothing, an
    entity one character, text in UTF-16 units)."""
    return sum(_visible_length(t) for t in _TOKENS.findall(message))


def chunks(message: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split a long message at line ends so each part fits one Telegram message (its length
    counted as Telegram counts it); a line longer than a message is cut at spaces."""
    if len(message) <= limit // 2 or message_length(message) <= limit:  # a code point is ≤ 2 UTF-16 units
        return [message] if message else []
    parts: list[str] = []
    current, size = "", 0  # lengths add up: a part is its lines joined by one-unit newlines
    for line in message.split("\n"):
        line_size = message_length(line)
        for piece in _pieces(line, limit) if line_size > limit else [line]:
            piece_size = line_size if piece is line else message_length(piece)
            if current and size + 1 + piece_size > limit:
                parts.append(current)
                current, size = piece, piece_size
            elif current:
                current, size = f"{current}\n{piece}", size + 1 + piece_size
            else:
                current, size = piece, piece_size
    if current:
        parts.append(current)
    return parts
