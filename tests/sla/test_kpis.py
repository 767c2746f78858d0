"""KPIs of a period computed by value from hand-built tickets run through sla.evaluate.

Berlin calendar Mon-Fri 09:00-17:00; normal targets: first response 4h, resolution 40h; urgent 30m
and 4h. November 2026 in Berlin: Sun 1 Nov 00:00 CET to Tue 1 Dec 00:00 CET.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla.kpis import RULE, counted_as, epoch_ms, kpi_tables
from sla.periods import ReportPeriod
from sla.policy import load_policies
from tests.sla.report_tickets import CALENDARS, Ticket, at, november_tickets, outcomes_of, policy

H = 3600
NOVEMBER = ReportPeriod("2026-11", "2026-11")


def rows_by_key(rows: list[dict]) -> dict[tuple, dict]:
    return {(r["instance"], r["policy"], r["priority"], r["metric"], r["organisation"]): r for r in rows}


def test_kpis_of_a_month_by_value() -> None:
    tables = kpi_tables(outcomes_of(november_tickets(), "2026-12-02 12:00"), NOVEMBER, CALENDARS)
    rows = rows_by_key(tables["kpis"])
    assert list(rows) == [
        ("acme", "standard", "normal", "first_response", None),
        ("acme", "standard", "normal", "resolution", None),
        ("acme", "standard", "urgent", "first_response", None),
        ("acme", "standard", "urgent", "resolution", None),
    ]
    fr = rows[("acme", "standard", "normal", "first_response", None)]
    # A met 1h30, C met 30m, B breached 5h; D open at the month's end; E ended in October; F deleted.
    assert fr == {
        "instance": "acme", "policy": "standard", "priority": "normal", "metric": "first_response",
        "organisation": None, "in_scope": 4, "met": 2, "breached": 1, "open": 1, "share_met": 2 / 3,
        "target_s": 4 * H, "mean_s": 8400.0, "median_s": 5400, "p90_s": 5 * H, "breaches_by_level": {},
    }  # fmt: skip
    res = rows[("acme", "standard", "normal", "resolution", None)]
    # A 8h, B 11h (paused two days), C 3h (reopened), E 8h; D still open.
    assert (res["met"], res["breached"], res["open"], res["in_scope"], res["share_met"]) == (4, 0, 1, 5, 1.0)
    assert (res["mean_s"], res["median_s"], res["p90_s"]) == (27000.0, 8 * H, 11 * H)
    urgent = rows[("acme", "standard", "urgent", "resolution", None)]
    assert (urgent["breached"], urgent["share_met"], urgent["p90_s"], urgent["target_s"]) == (
        1,
        0.0,
        9 * H,
        4 * H,
    )
    assert urgent["breaches_by_level"] == {"breach": 1, "late": 1, "warning": 1}


def test_the_weekly_series_has_every_week_of_the_period() -> None:
    tables = kpi_tables(outcomes_of(november_tickets(), "2026-12-02 12:00"), NOVEMBER, CALENDARS)
    series = [r for r in tables["weekly"] if (r["priority"], r["metric"]) == ("normal", "resolution")]
    # Sun 1 Nov lies in the week of Mon 26 Oct; Mon 30 Nov starts the last week.
    assert [(r["week_start"], r["met"], r["breached"], r["share_met"]) for r in series] == [
        ("2026-10-26", 0, 0, None),
        ("2026-11-02", 1, 0, 1.0),
        ("2026-11-09", 0, 0, None),
        ("2026-11-16", 0, 0, None),
        ("2026-11-23", 3, 0, 1.0),
        ("2026-11-30", 0, 0, None),
    ]
    fr = [r for r in tables["weekly"] if (r["priority"], r["metric"]) == ("normal", "first_response")]
    assert [(r["met"], r["breached"]) for r in fr if r["week_start"] == "2026-11-23"] == [(2, 1)]


def test_distributions_count_tenths_of_the_target_and_over() -> None:
    tables = kpi_tables(outcomes_of(november_tickets(), "2026-12-02 12:00"), NOVEMBER, CALENDARS)
    (fr,) = [
        d for d in tables["distributions"] if (d["priority"], d["metric"]) == ("normal", "first_response")
    ]
    assert fr["target_s"] == 4 * H
    assert [b["upto_s"] for b in fr["buckets"]] == [1440 * k for k in range(1, 11)]
    assert [b["count"] for b in fr["buckets"]] == [0, 1, 0, 1, 0, 0, 0, 0, 0, 0]  # 30m and 1h30
    assert fr["over"] == 1  # 5h


def test_a_dst_month_is_a_berlin_month() -> None:
    # October 2026 in Berlin: 1 Oct 00:00 CEST (Sep 30 22:00 UTC) to 1 Nov 00:00 CET (Oct 31 23:00 UTC).
    tickets = [
        Ticket("early", "2026-09-30 16:00").solve("2026-10-01 00:30"),  # Sep 30 22:30 UTC: October here
        Ticket("late", "2026-10-30 16:00").solve("2026-10-31 23:30"),  # Oct 31 22:30 UTC: October
        Ticket("after", "2026-10-30 16:00").solve("2026-11-01 00:30"),  # Oct 31 23:30 UTC: November here
    ]
    records = [o for o in outcomes_of(tickets, "2026-11-02 12:00") if o.metric == "resolution"]
    october = kpi_tables(records, ReportPeriod("2026-10", "2026-10"), CALENDARS)["kpis"]
    assert (october[0]["met"], october[0]["open"]) == (2, 1)  # "after" was still open at Berlin's month end
    utc_october = ReportPeriod(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    utc = kpi_tables(records, utc_october, CALENDARS)["kpis"]
    assert (utc[0]["met"], utc[0]["open"]) == (2, 0)  # "late" and "after"; "early" ended in UTC September


def test_a_policy_version_change_mid_period_judges_each_ticket_by_its_version() -> None:
    slower = {"resolution": {"normal": "40h"}, "first_response": {"normal": "4h"}}
    faster = {"resolution": {"normal": "8h"}, "first_response": {"normal": "4h"}}
    policies = load_policies(
        [policy(slower, version=1), policy(faster, version=2, effective_from="2026-11-16T00:00:00+01:00")],
        CALENDARS,
    )
    tickets = [
        Ticket("v1", "2026-11-09 10:00").reply("2026-11-09 10:30").solve("2026-11-11 12:00"),  # 18h of 40h
        Ticket("v2", "2026-11-16 10:00").reply("2026-11-16 10:30").solve("2026-11-18 12:00"),  # 18h of 8h
    ]
    records = outcomes_of(tickets, "2026-12-01 12:00", policies=policies)
    assert sorted(
        (o.ticket_id, o.policy_version, o.outcome) for o in records if o.metric == "resolution"
    ) == [
        ("v1", 1, "met"),
        ("v2", 2, "breached"),
    ]
    rows = rows_by_key(kpi_tables(records, NOVEMBER, CALENDARS)["kpis"])
    res = rows[("acme", "standard", "normal", "resolution", None)]
    assert (res["met"], res["breached"], res["share_met"], res["target_s"]) == (1, 1, 0.5, 8 * H)
    assert res["breaches_by_level"] == {"breach": 1, "late": 1, "warning": 1}


def test_organisations_split_the_kpis_but_not_the_distributions() -> None:
    records = outcomes_of(november_tickets(), "2026-12-02 12:00")
    records = [o._replace(organisation="org-1" if o.ticket_id in "AB" else None) for o in records]
    tables = kpi_tables(records, NOVEMBER, CALENDARS, by_organisation=True)
    rows = rows_by_key(tables["kpis"])
    assert rows[("acme", "standard", "normal", "first_response", "org-1")]["met"] == 1  # A (B breached)
    assert rows[("acme", "standard", "normal", "first_response", None)]["met"] == 1  # C
    (fr,) = [
        d for d in tables["distributions"] if (d["priority"], d["metric"]) == ("normal", "first_response")
    ]
    assert sum(b["count"] for b in fr["buckets"]) + fr["over"] == 3


def test_the_instance_filter_and_unknown_calendars() -> None:
    records = outcomes_of(november_tickets(), "2026-12-02 12:00")
    assert kpi_tables(records, NOVEMBER, CALENDARS, instance="other")["kpis"] == []
    with pytest.raises(ValueError, match="names calendar 'berlin', not given"):
        kpi_tables(records, NOVEMBER, {})


def test_a_cycle_counts_where_it_ends_edges_included() -> None:
    (o,) = [
        o
        for o in Ticket("A").solve("2026-11-23 12:00").outcomes("2026-11-23 13:00")
        if o.metric == "resolution"
    ]
    stop = epoch_ms(at("2026-11-23 12:00"))
    assert counted_as(o, stop, stop + 1) == "met"  # a period starting at the stop holds it
    assert counted_as(o, stop - 1, stop) == "open"  # one ending at the stop had it still open
    assert counted_as(o, stop + 1, stop + 2) is None  # ended before
    assert counted_as(o, 0, epoch_ms(at("2026-11-23 10:00"))) is None  # started at the period's end
    assert counted_as(o._replace(outcome="cancelled"), stop, stop + 1) is None


def test_the_rule_is_written_down() -> None:
    assert "counts in the period in which it ends" in RULE and "cancelled cycles count nowhere" in RULE


# --- properties ------------------------------------------------------------------------------------

YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
SECONDS = 365 * 86400


@st.composite
def records_in_2026(draw: st.DrawFn) -> list:
    """Resolution records of the "A" template with random starts, stops (or none) and outcomes."""
    (template,) = [o for o in Ticket("A").solve("2026-11-23 12:00").outcomes("2026-11-23 13:00")
                   if o.metric == "resolution"]  # fmt: skip
    out = []
    for i in range(draw(st.integers(0, 40))):
        start = draw(st.integers(0, SECONDS - 1))
        stop = draw(st.one_of(st.none(), st.integers(start, SECONDS + 86400)))
        outcome = draw(
            st.sampled_from(["met", "breached", "cancelled"] if stop is not None else ["open", "breached"])
        )
        out.append(template._replace(
            ticket_id=f"T{i}", outcome=outcome, business_s=draw(st.integers(0, 10**6)),
            started_at=YEAR_START + timedelta(seconds=start),
            stopped_at=None if stop is None else YEAR_START + timedelta(seconds=stop),
        ))  # fmt: skip
    return out


@settings(max_examples=60, deadline=None)
@given(records_in_2026())
def test_months_partition_a_quarter(records: list) -> None:
    """Counting where a cycle ends: the months' met and breached add up to the quarter's, and what is
    open at the end of March is what is open at the end of the quarter."""
    quarter = kpi_tables(records, ReportPeriod("2026-Q1", "2026-Q1"), CALENDARS)["kpis"]
    months = [
        kpi_tables(records, ReportPeriod(m, m), CALENDARS)["kpis"] for m in ("2026-01", "2026-02", "2026-03")
    ]

    def total(rows: list, field: str) -> int:
        return sum(r[field] for r in rows)

    for field in ("met", "breached"):
        assert total(quarter, field) == sum(total(rows, field) for rows in months)
    assert total(quarter, "open") == total(months[2], "open")
