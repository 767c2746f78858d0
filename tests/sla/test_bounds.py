"""Targets nobody can reach are refused, and no evaluation takes long (issue 9, item 4).

Before: `99999999h` loaded and every evaluation then raised (year 9999); `9999999h` took ~8 s per
evaluation, because `BusinessCalendar.add` built one year table after another (about 5,000 of them).
Now a target, and every instant a level is reached at, must lie within two years of the metric's
calendar's business time (104 weeks of its open hours), and the calendar looks for an instant at most
five years ahead. The time limits below are generous on purpose (2 shared cores): they catch seconds,
not milliseconds.

Berlin wall-clock times (CET, UTC+1); Mon-Fri 09:00-17:00; 2026-11-23 is a Monday.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla.calendar import BusinessCalendar
from sla.evaluate import evaluate
from sla.events import TicketEvent
from sla.policy import MetricPolicy, Policy, PolicySet, load_policies

BERLIN = ZoneInfo("Europe/Berlin")
BERLIN_CAL = {
    "timezone": "Europe/Berlin",
    "hours": {"mon-fri": ["09:00-17:00"]},
    "holidays": {"country": "DE"},
}
SPARSE_CAL = {"timezone": "Europe/Berlin", "hours": {"mon": ["09:00-10:00"]}}  # one hour a week
GENEROUS = 1.0  # seconds; an evaluation takes a few milliseconds


def calendars() -> dict[str, BusinessCalendar]:
    """Fresh calendars (empty year caches), so timings include building the years they use."""
    return {
        "berlin": BusinessCalendar.from_config(BERLIN_CAL, name="berlin"),
        "always": BusinessCalendar.from_config({"timezone": "UTC", "hours": "24x7"}, name="always"),
        "sparse": BusinessCalendar.from_config(SPARSE_CAL, name="sparse"),
    }


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def resolution(target: str, calendar: str = "berlin", **extra: Any) -> list[dict[str, Any]]:
    metrics = {"resolution": {"calendar": calendar, "targets": {"high": target}}}
    return [{"id": "p", "metrics": metrics, **extra}]


CREATED = [TicketEvent("c", "T-1", "created", at("2026-11-23 10:00"), "requester", {"priority": "high"})]


# --- loading ------------------------------------------------------------------------------------


def test_the_calendars_weekly_open_time() -> None:
    cals = calendars()
    assert [cals[n].weekly_open for n in ("berlin", "always", "sparse")] == [
        timedelta(hours=40),
        timedelta(hours=168),
        timedelta(hours=1),
    ]


@pytest.mark.parametrize("target", ["99999999h", "9999999h", "4160h1s"])
def test_a_target_past_two_years_of_business_time_is_refused_naming_its_path(target: str) -> None:
    with pytest.raises(ValueError) as info:
        load_policies(resolution(target), calendars())
    assert str(info.value) == (
        f"policies[0].metrics.resolution.targets.high: {target!r} is longer than 4160h, the most a target "
        "or a level may be: two years of business time on calendar 'berlin' (104 weeks of its 40h a week)"
    )


def test_the_bound_follows_the_calendar_and_is_itself_allowed() -> None:
    cals = calendars()
    assert load_policies(resolution("4160h"), cals).policies[0].metrics["resolution"].targets[
        "high"
    ] == timedelta(hours=4160)
    load_policies(resolution("17472h", "always"), cals)  # 104 weeks of 168h
    load_policies(resolution("104h", "sparse"), cals)
    with pytest.raises(
        ValueError, match=r"^policies\[0\]\.metrics\.resolution\.targets\.high: '105h' is longer"
    ):
        load_policies(resolution("105h", "sparse"), cals)


@pytest.mark.parametrize(
    ("level", "path", "shown"),
    [
        ({"after": "4000h"}, "after", "'4000h' puts the level at 4200h for priority high (target 200h)"),
        ({"at": "9999%"}, "at", "'9999%' puts the level at 19998h for priority high (target 200h)"),
        ({"before": "5000h"}, "before", "'5000h' is longer than 4160h"),
    ],
)
def test_a_level_past_the_bound_is_refused_naming_its_path(
    level: dict[str, str], path: str, shown: str
) -> None:
    cfg = resolution("200h")
    cfg[0]["escalations"] = [{"name": "l", "metric": "resolution", **level, "actions": [{"tag": "x"}]}]
    with pytest.raises(ValueError) as info:
        load_policies(cfg, calendars())
    assert str(info.value).startswith(f"policies[0].escalations[0].{path}: {shown}")
    assert str(info.value).endswith(
        "two years of business time on calendar 'berlin' (104 weeks of its 40h a week)"
    )


def test_a_level_at_the_bound_is_allowed() -> None:
    cfg = resolution("2080h")
    cfg[0]["escalations"] = [
        {"name": "l", "metric": "resolution", "at": "200%", "actions": [{"tag": "x"}]},
        {"name": "m", "metric": "resolution", "after": "2080h", "actions": [{"tag": "y"}]},
    ]
    load_policies(cfg, calendars())


@pytest.mark.parametrize("text", ["9" * 39 + "h", "PT" + "9" * 30 + "S", "9" * 30 + "m"])
def test_a_duration_too_long_for_any_clock_is_a_clear_error_not_an_overflow(text: str) -> None:
    with pytest.raises(
        ValueError, match=r"^policies\[0\]\.metrics\.resolution\.targets\.high: '9*.*' is too long"
    ):
        load_policies(resolution(text), calendars())


# --- evaluation time ----------------------------------------------------------------------------


def timed(policies: PolicySet, cals: dict[str, BusinessCalendar], now: str) -> tuple[Any, float]:
    start = time.perf_counter()
    ev = evaluate(policies, cals, CREATED, at(now))
    return ev, time.perf_counter() - start


@pytest.mark.parametrize(
    ("calendar", "target", "deadline"),
    [
        ("berlin", "4160h", "2028-12-06 10:00"),
        ("always", "17472h", "2028-11-20 10:00"),
        ("sparse", "104h", "2028-11-20 10:00"),
    ],
)
def test_the_longest_allowed_target_evaluates_in_milliseconds(
    calendar: str, target: str, deadline: str
) -> None:
    cals = calendars()
    policies = load_policies(resolution(target, calendar), cals)
    ev, took = timed(policies, cals, "2026-11-24 10:00")
    assert ev.metrics["resolution"].deadline == at(deadline)
    assert took < GENEROUS


def test_an_unreachable_target_given_directly_fails_fast_instead_of_taking_seconds() -> None:
    # Built without load_policies (which refuses it): the calendar still gives up after five years.
    cals = calendars()
    metric = MetricPolicy("resolution", "berlin", {"high": timedelta(hours=9999999)})
    policies = PolicySet((Policy("p", 1, {"resolution": metric}),))
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^calendar 'berlin': add .* reaches no instant within 5 years"):
        evaluate(policies, cals, CREATED, at("2026-11-24 10:00"))
    assert time.perf_counter() - start < GENEROUS


def test_a_calendar_closed_for_years_by_its_holidays_fails_fast() -> None:
    # Every date from 2026 to 2033 is a holiday: no deadline can be found, and saying so is quick.
    closed = [date(2026, 1, 1) + timedelta(days=d) for d in range(366 * 8)]
    cals = {"shut": BusinessCalendar.from_config({**BERLIN_CAL, "holidays": {"dates": closed}}, name="shut")}
    policies = load_policies(resolution("1h", "shut"), cals)
    start = time.perf_counter()
    with pytest.raises(
        ValueError, match=r"^calendar 'shut': add 1:00:00 from .* reaches no instant within 5 years"
    ):
        evaluate(policies, cals, CREATED, at("2026-11-24 10:00"))
    assert time.perf_counter() - start < GENEROUS
    with pytest.raises(
        ValueError, match=r"^calendar 'shut': next_open from .* finds no opening within 5 years"
    ):
        cals["shut"].next_open(at("2026-11-24 10:00"))
