"""evaluate_timeline: evaluating a timeline built beforehand gives what evaluate gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla.calendar import BusinessCalendar
from sla.evaluate import evaluate, evaluate_timeline
from sla.events import TicketEvent
from sla.policy import load_policies
from sla.timeline import build_timeline

CALENDARS = {
    "berlin": BusinessCalendar.from_config(
        {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-17:00"]}}, name="berlin"
    )
}
POLICIES = load_policies(
    [
        {
            "id": "p",
            "metrics": {
                m: {"calendar": "berlin", "targets": {"high": "4h", "normal": "8h"}}
                for m in ("first_response", "next_reply", "resolution")
            },
            "escalations": [
                {"name": "w", "metric": "resolution", "at": "50%", "actions": [{"tag": "warn"}]},
                {"name": "b", "metric": "next_reply", "at": "breach", "actions": [{"comment": "{ticket}"}]},
            ],
        }
    ],
    CALENDARS,
)
BASE = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday

step = st.tuples(
    st.integers(min_value=1, max_value=60 * 24 * 5),
    st.sampled_from(["agent", "requester"]),
    st.sampled_from([None, "pending", "open", "solved"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=12), st.integers(min_value=0, max_value=60 * 24 * 7), st.booleans())
def test_evaluating_a_prebuilt_timeline_is_evaluating_the_events(
    steps: list[tuple[int, str, str | None]], minute: int, deleted: bool
) -> None:
    events = [TicketEvent("c", "T", "created", BASE, "requester", {"status": "new", "priority": "high"})]
    for i, (offset, actor, status) in enumerate(steps):
        at = BASE + timedelta(minutes=offset)
        if status is None:
            events.append(TicketEvent(f"e{i}", "T", "commented", at, actor, public=True))
        else:
            events.append(TicketEvent(f"e{i}", "T", "changed", at, actor, {"status": status}))
    if deleted:
        events.append(TicketEvent("d", "T", "deleted", BASE + timedelta(days=3), "other"))
    now = BASE + timedelta(minutes=minute)
    tl = build_timeline(events, now)
    assert tl is not None
    keys = ["comment:p/next_reply#0123456789:b"]
    assert evaluate_timeline(POLICIES, CALENDARS, tl, now, applied_keys=keys) == evaluate(
        POLICIES, CALENDARS, events, now, applied_keys=keys
    )
