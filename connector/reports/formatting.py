"""Numbers as people read them: durations, shares, money. Shared by the table and the HTML page."""

from __future__ import annotations

MISSING = "–"  # shown wherever the report says None (unknown, or nothing to measure)

METRIC_NAMES = {"first_response": "first response", "next_reply": "next reply", "resolution": "resolution"}


def duration(seconds: float | None) -> str:
    """4h 30m, 45m, 30s. Hours never roll into days: a business "day" is 8 hours or 24 (see
    docs/sla-semantics.md), so 52h stays 52h. Rounded to the minute from one minute up."""
    if seconds is None:
        return MISSING
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {seconds!r} seconds")
    if seconds < 59.5:
        return f"{round(seconds)}s"
    hours, minutes = divmod(round(seconds / 60), 60)
    if not hours:
        return f"{minutes}m"
    return f"{hours}h {minutes}m" if minutes else f"{hours}h"


def percent(share: float | None, digits: int = 1) -> str:
    """A fraction 0..1 as a percentage: 0.964 -> 96.4%."""
    if share is None:
        return MISSING
    return f"{share * 100:.{digits}f}%"


def money(amount: float | None, currency: str) -> str:
    return MISSING if amount is None else f"{amount:,.2f} {currency}"


def number(value: float | None) -> str:
    """A percentage of a fee or other plain number without trailing zeros: 5, 12.5."""
    if value is None:
        return MISSING
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def metric(name: str) -> str:
    return METRIC_NAMES.get(name, name)
