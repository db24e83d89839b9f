"""Keyboards: the buttons copied from one validated button are the buttons pydantic validates."""

from __future__ import annotations

import pytest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from markupsafe import Markup

from bot.keyboards import FormCb, _btn, question_keyboard, summary_keyboard
from reporting_forms import forms
from reporting_forms.catalog import load_catalog


def _validated(markup: InlineKeyboardMarkup) -> InlineKeyboardMarkup:
    """The same keyboard built from plain data, every button validated by pydantic."""
    return InlineKeyboardMarkup.model_validate(markup.model_dump(exclude_unset=True))


@pytest.mark.parametrize("lang", ["lv", "en"])
def test_every_form_keyboard_equals_its_validated_build(lang: str) -> None:
    catalog = load_catalog()
    checked = 0
    for *_, measure in catalog.measures_for("VPD"):
        spec = forms.form_for(measure)
        for field in spec.fields:
            for back in (False, True):
                markup = question_keyboard(lang, "n0nce", field, can_go_back=back)
                assert markup == _validated(markup)
                for button in (b for row in markup.inline_keyboard for b in row):
                    assert type(button) is InlineKeyboardButton
                    assert button.model_fields_set == {"text", "callback_data"}
                    assert FormCb.unpack(button.callback_data).n == "n0nce"
                    checked += 1
        summary = summary_keyboard(lang, "n0nce", [f.key for f in spec.fields])
        assert summary == _validated(summary)
    assert checked > 100


def test_a_button_dumps_as_the_validated_one() -> None:
    copied = _btn("Atpakaļ", "f:n:b:k:")
    built = InlineKeyboardButton(text="Atpakaļ", callback_data="f:n:b:k:")
    assert copied == built
    assert copied.model_dump(exclude_unset=True) == built.model_dump(exclude_unset=True)
    assert copied.model_dump() == built.model_dump()
    assert _btn("Nākamā", "f:n:p:k:1") != copied  # copies share nothing


def test_a_label_that_is_not_a_plain_str_is_validated() -> None:
    button = _btn(Markup("<b>x</b>"), "d")
    assert button == InlineKeyboardButton(text=Markup("<b>x</b>"), callback_data="d")
