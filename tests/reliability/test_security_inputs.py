"""Issue 11, defect 7: bidi overrides and zero-width characters do not reach stored comments
(a right-to-left override makes a comment read differently in the exports and chat)."""

from __future__ import annotations

import pytest

from reporting_forms.answers import InvalidAnswer, parse_comment

INVISIBLE = (
    [chr(c) for c in range(0x202A, 0x202F)]  # LRE RLE PDF LRO RLO
    + [chr(c) for c in range(0x2066, 0x206A)]  # LRI RLI FSI PDI
    + [chr(c) for c in range(0x200B, 0x2010)]  # ZWSP ZWNJ ZWJ LRM RLM
    + ["\ufeff", "\u2060", "\u061c"]  # BOM/ZWNBSP, word joiner, Arabic letter mark
)


@pytest.mark.parametrize("ch", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_invisible_and_bidi_characters_are_dropped(ch: str) -> None:
    assert parse_comment(f"Rēķins{ch} 2026{ch}.pdf") == "Rēķins 2026.pdf"


def test_a_comment_of_only_invisible_characters_is_empty() -> None:
    with pytest.raises(InvalidAnswer) as exc:
        parse_comment("\u202e\u200b\ufeff \u2066")
    assert exc.value.code == "empty"


def test_a_joiner_inside_an_emoji_sequence_is_kept() -> None:
    assert parse_comment("👩\u200d💻 ok") == "👩\u200d💻 ok"
    assert parse_comment("a\u200db 👩\u200d") == "ab 👩"


def test_ordinary_text_is_kept() -> None:
    text = "Ģimenes atbalsts — 12 klienti 🙂\nOtrā rinda\tar tabulu; עברית un العربية"
    assert parse_comment(text) == text


def test_mute_reasons_are_cleaned_too() -> None:
    from services.reminder_messages import parse_reason

    assert parse_reason("Atvaļinājums\u202e līdz\u200b janvārim") == "Atvaļinājums līdz janvārim"
