"""Outcome records from evaluated tickets, pinned by value, and their compact rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sla.evaluate import evaluate
from sla.outcomes import Outcome, ended_outcomes, open_outcomes
from tests.sla.report_tickets import CALENDARS, POLICIES, Ticket, at, by_cycle


def test_met_first_response_and_breached_resolution_are_ended_records() -> None:
    t = Ticket("T-1", group="42", brand="7").reply("2026-11-23 11:30").solve("2026-11-30 15:00")
    rows = by_cycle(t.outcomes("2026-12-01 10:00"))
    fr, res = rows[("T-1", "first_response")], rows[("T-1", "resolution")]
    assert (fr.outcome, fr.business_s, fr.target_s, fr.stopped_at) == (
        "met",
        5400,
        4 * 3600,
        at("2026-11-23 11:30").astimezone(UTC),
    )
    assert (fr.instance, fr.policy_id, fr.policy_version, fr.priority) == ("acme", "standard", 1, "normal")
    assert (fr.group, fr.brand, fr.organisation, fr.display_key, fr.calendar) == (
        "42",
        "7",
        None,
        None,
        "berlin",
    )
    # 40h target: Mon 7h + Tue..Fri 32h = 39h by Fri 17:00, due Mon 30 Nov 10:00; solved 15:00 = 45h.
    assert (res.outcome, res.business_s, res.levels_reached) == (
        "breached",
        45 * 3600,
        ("warning", "breach", "late"),
    )
    assert res.started_at == at("2026-11-23 10:00").astimezone(UTC)


def test_paused_resolution_is_open_and_counts_only_its_running_time() -> None:
    t = Ticket("T-2").reply("2026-11-23 11:00").status("2026-11-23 12:00", "pending")
    (res,) = [o for o in t.outcomes("2026-11-25 12:00") if o.metric == "resolution"]
    assert (res.outcome, res.stopped_at, res.business_s, res.levels_reached) == ("open", None, 2 * 3600, ())


def test_a_running_clock_past_its_deadline_is_open_and_breached() -> None:
    (fr,) = [o for o in Ticket("T-3").outcomes("2026-11-23 15:00") if o.metric == "first_response"]
    assert (fr.outcome, fr.stopped_at, fr.business_s) == ("breached", None, 5 * 3600)


def test_solved_before_any_reply_cancels_the_first_response() -> None:
    rows = by_cycle(Ticket("T-4").solve("2026-11-23 11:00").outcomes("2026-11-23 12:00"))
    assert rows[("T-4", "first_response")].outcome == "cancelled"
    assert rows[("T-4", "resolution")].outcome == "met"


def test_every_next_reply_cycle_is_a_record_of_its_own() -> None:
    t = (
        Ticket("T-5")
        .reply("2026-11-23 10:30")
        .reply("2026-11-23 11:00", "requester")  # cycle 1
        .reply("2026-11-23 13:00")  # met after 2h
        .reply("2026-11-23 14:00", "requester")  # cycle 2
        .reply("2026-11-24 16:00")  # breached after 10h (target 8h)
        .reply("2026-11-25 09:30", "requester")  # cycle 3, open
    )
    cycles = [o for o in t.outcomes("2026-11-25 10:00") if o.metric == "next_reply"]
    assert [(o.outcome, o.business_s) for o in cycles] == [("met", 7200), ("breached", 36000), ("open", 1800)]
    assert all(o.cycle.startswith("next_reply#") and len(o.cycle) == 21 for o in cycles)
    assert len({o.cycle for o in cycles}) == 3


def test_a_reopened_ticket_resolution_runs_again_under_the_same_key() -> None:
    t = Ticket("T-6").reply("2026-11-23 10:30").solve("2026-11-23 12:00")
    solved = by_cycle(t.outcomes("2026-11-23 13:00"))[("T-6", "resolution")]
    t.status("2026-11-24 10:00", "open")
    reopened = by_cycle(t.outcomes("2026-11-24 11:00"))[("T-6", "resolution")]
    assert (solved.outcome, solved.business_s) == ("met", 2 * 3600)
    assert (reopened.outcome, reopened.stopped_at, reopened.business_s) == ("open", None, 3 * 3600)


def test_a_deleted_ticket_has_only_cancelled_records_without_a_policy() -> None:
    t = Ticket("T-7").reply("2026-11-23 11:00").delete("2026-11-23 12:00")
    rows = t.outcomes("2026-11-23 13:00")
    assert {(o.metric, o.outcome, o.policy_id) for o in rows} == {
        ("first_response", "cancelled", None),
        ("resolution", "cancelled", None),
    }


def test_display_key_and_organisation_come_from_the_caller_and_the_attributes() -> None:
    t = Ticket("10042", key="SUP-42")
    evaluation = evaluate(POLICIES, CALENDARS, t.events, at("2026-11-23 11:00"))
    attrs = {**t.timeline("2026-11-23 11:00").attrs, "organization": 123}
    (fr, _) = open_outcomes(evaluation, attrs, "acme-jira", "SUP-42")
    assert (fr.display_key, fr.organisation, fr.instance, fr.ticket_id) == (
        "SUP-42",
        "123",
        "acme-jira",
        "10042",
    )
    assert ended_outcomes(evaluation, attrs, "acme-jira") == []


def test_row_round_trip_is_exact_to_the_millisecond_and_small() -> None:
    t = (
        Ticket("1234567", key="SUPPORT-12345", group="360001234567", brand="360000123456")
        .reply("2026-11-23 11:30")
        .reply("2026-11-23 12:00", "requester")
        .reply("2026-11-24 16:00")
        .solve("2026-11-30 15:00")
    )
    records = t.outcomes("2026-12-01 10:00")
    assert len(records) == 3
    for o in records:
        row = json.loads(json.dumps(o.to_row()))
        assert Outcome.from_row(row) == o
        assert len(json.dumps(row, separators=(",", ":"))) < 260


def test_rows_truncate_to_the_millisecond() -> None:
    o = Ticket("T-8").outcomes("2026-11-23 11:00")[0]
    fine = Outcome(**{**_fields(o), "started_at": datetime(2026, 11, 23, 9, 0, 0, 123999, tzinfo=UTC)})
    assert Outcome.from_row(fine.to_row()).started_at == datetime(2026, 11, 23, 9, 0, 0, 123000, tzinfo=UTC)


def _fields(o: Outcome) -> dict:
    return {name: getattr(o, name) for name in Outcome._fields}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"a": 1}, "expected a list of 18 values"),
        (["acme"] * 3, "expected a list of 18 values"),
        (["i", "t", None, "p", 1, "high", None, None, None, "speed", "c", "speed", 0, 1, 0, 0, "met", []],
         "unknown metric 'speed'"),
        (["i", "t", None, "p", 1, "high", None, None, None, "resolution", "c", "resolution", 0, None, 0, 0,
          "met", []], "outcome 'met' does not fit stop None"),
        (["i", "t", None, "p", 1, "high", None, None, None, "resolution", "c", "resolution", "0", 1, 0, 0,
          "met", []], "must be integers"),
    ],
)  # fmt: skip
def test_a_row_that_is_not_a_record_is_refused_by_name(row: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Outcome.from_row(row)  # type: ignore[arg-type]
