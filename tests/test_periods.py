import datetime as dt

import pytest

from reporting_forms.periods import open_years


@pytest.mark.parametrize(
    ("today", "years"),
    [
        (dt.date(2026, 11, 22), [2026]),
        (dt.date(2026, 1, 5), [2026, 2025]),
        (dt.date(2026, 3, 31), [2026, 2025]),
        (dt.date(2026, 4, 1), [2026]),
        (dt.date(2028, 2, 1), [2027]),  # the plan's last year stays open after it ends
        (dt.date(2028, 4, 1), []),
        (dt.date(2024, 12, 1), []),
        (dt.date(2025, 2, 1), [2025]),
    ],
)
def test_open_years(today: dt.date, years: list[int]) -> None:
    assert open_years(today) == years
