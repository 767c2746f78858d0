from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("2h30m", timedelta(hours=2, minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("1h0m5s", timedelta(hours=1, seconds=5)),
        ("90m", timedelta(minutes=90)),
        ("120h", timedelta(hours=120)),
        (" 4h ", timedelta(hours=4)),
        ("PT4H", timedelta(hours=4)),
        ("PT4H30M", timedelta(hours=4, minutes=30)),
        ("PT45S", timedelta(seconds=45)),
        ("pt15m", timedelta(minutes=15)),
    ],
)
def test_parse_accepts_short_and_iso_forms(text: str, expected: timedelta) -> None:
    assert parse_duration(text, "x") == expected


@pytest.mark.parametrize(
    "text", ["4x", "", "h", "4", "4 h", "1.5h", "-1h", "30m4h", "PT", "P", "4H", "PT4h30"]
)
def test_parse_rejects_malformed_with_path(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_duration(text, "policies[0].metrics.resolution.targets.high")
    assert str(err.value) == (
        f"policies[0].metrics.resolution.targets.high: {text!r} is not a duration like 30m, 4h, 2h30m or PT4H"
    )


@pytest.mark.parametrize("text", ["1d", "2w", "3 days", "1week", "P1D", "P1W", "P1DT2H", "P1Y"])
def test_parse_refuses_days_and_weeks_and_says_to_write_hours(text: str) -> None:
    with pytest.raises(
        ValueError,
        match=r"^where: .* days or weeks, which are ambiguous in business time; "
        r"write hours instead, e\.g\. 8h or 40h$",
    ):
        parse_duration(text, "where")


@pytest.mark.parametrize("text", ["0m", "0h0m0s", "PT0S"])
def test_parse_refuses_zero(text: str) -> None:
    with pytest.raises(ValueError, match=r"^t: '.*' must be longer than zero$"):
        parse_duration(text, "t")


@pytest.mark.parametrize("value", [30, 4.5, None, True, ["4h"]])
def test_parse_refuses_non_strings(value: object) -> None:
    expected = r"^a\.b: .* is not a duration like 30m, 4h, 2h30m or PT4H \(write it as a string\)$"
    with pytest.raises(ValueError, match=expected):
        parse_duration(value, "a.b")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(hours=2, minutes=30), "2h30m"),
        (timedelta(hours=40), "40h"),
        (timedelta(days=2, seconds=1), "48h1s"),
        (timedelta(hours=-1), "-1h"),
    ],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


@given(st.integers(min_value=1, max_value=10**7))
def test_format_then_parse_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value), "x") == value
