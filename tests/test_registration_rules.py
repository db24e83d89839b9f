import datetime as dt

import pytest

from reporting_forms.registration import language_of, registration_wait

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def ago(minutes: float) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("failures", "expected_minutes"),
    [
        ([], 0),
        ([ago(1), ago(2)], 0),
        ([ago(0), ago(1), ago(2)], 1),  # third wrong code: wait a minute
        ([ago(0.5), ago(1), ago(2)], 0.5),
        ([ago(0), ago(1), ago(2), ago(3)], 2),
        ([ago(0)] * 9, 60),  # capped at an hour
        ([ago(400), ago(401), ago(402)], 0),  # outside the window
    ],
)
def test_wrong_codes_are_slowed_down(failures: list[dt.datetime], expected_minutes: float) -> None:
    assert registration_wait(failures, NOW) == dt.timedelta(minutes=expected_minutes)


@pytest.mark.parametrize(
    ("code", "lang"), [("lv", "lv"), ("en-GB", "en"), ("en", "en"), ("ru", "lv"), (None, "lv")]
)
def test_language_of(code: str | None, lang: str) -> None:
    assert language_of(code) == lang
