"""The whole report by value: its exact shape, credits (tiers, cap), uptime, partial months, bad input."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from sla.contracts import load_contracts
from sla.report import REPORT_RULE, build_report
from sla.uptime import Incident
from tests.sla.report_tickets import CALENDARS, at, november_tickets, outcomes_of

NOW = datetime(2026, 12, 2, 11, tzinfo=UTC)
GOLD = {
    "id": "acme-gold",
    "customer": {"organisation": "123", "name": "ACME"},
    "instances": ["acme"],
    "timezone": "Europe/Berlin",
    "monthly_fee": 10000,
    "currency": "EUR",
    "credits": [
        {"priority": "normal", "metric": "first_response", "below": 95, "credit_percent": 5},
        {"priority": "normal", "metric": "first_response", "below": 70, "credit_percent": 10},
        {"priority": "urgent", "metric": "resolution", "below": 95, "credit_percent": 5},
        {"priority": "normal", "metric": "resolution", "below": 95, "credit_percent": 5},
    ],
    "credit_cap_percent": 12,
    "uptime": [
        {
            "service": "api",
            "incidents": {"match": {"type": "incident", "tags": ["svc-api"]}},
            "service_hours": "24x7",
            "guaranteed_percent": 99.9,
            "credits": [{"below": 99.9, "credit_percent": 10}, {"below": 99.0, "credit_percent": 25}],
        }
    ],
}
INCIDENTS = [  # 3h and 2h overlapping by 1h: 4h down in November (720h), 99.44%
    Incident("I-1", "api", at("2026-11-10 10:00"), at("2026-11-10 13:00"), "acme"),
    Incident("I-2", "api", at("2026-11-10 12:00"), at("2026-11-10 14:00"), "acme"),
    Incident("I-9", "api", at("2026-11-10 00:00"), at("2026-11-11 00:00"), "elsewhere"),  # not acme's
]


def contracts(*cfgs: dict) -> tuple:
    return load_contracts(list(cfgs or [GOLD]), {"urgent", "high", "normal", "low"}, CALENDARS)


def records() -> list:
    """November's tickets; every one is organisation 123's except C."""
    rows = outcomes_of(november_tickets(), "2026-12-02 12:00")
    return [o._replace(organisation=None if o.ticket_id == "C" else "123") for o in rows]


def report(period_from: str = "2026-11", period_to: str = "2026-11", **kw) -> dict:
    return build_report(records(), contracts(), INCIDENTS, period_from, period_to, CALENDARS, now=NOW, **kw)


def test_the_report_has_exactly_the_agreed_shape_and_is_json() -> None:
    r = report()
    json.dumps(r, allow_nan=False)
    assert list(r) == [
        "period",
        "generated_at",
        "rule",
        "kpis",
        "weekly",
        "distributions",
        "credits",
        "credit_totals",
        "uptime",
    ]
    assert r["period"] == {"from": "2026-11-01T00:00:00+01:00", "to": "2026-12-01T00:00:00+01:00"}
    assert (r["generated_at"], r["rule"]) == ("2026-12-02T11:00:00+00:00", REPORT_RULE)
    assert set(r["kpis"][0]) == {
        "instance",
        "policy",
        "priority",
        "metric",
        "organisation",
        "in_scope",
        "met",
        "breached",
        "open",
        "share_met",
        "target_s",
        "mean_s",
        "median_s",
        "p90_s",
        "breaches_by_level",
    }
    assert set(r["weekly"][0]) == {
        "week_start",
        "instance",
        "priority",
        "metric",
        "met",
        "breached",
        "share_met",
    }
    assert set(r["distributions"][0]) == {
        "instance",
        "policy",
        "priority",
        "metric",
        "target_s",
        "buckets",
        "over",
    }
    assert set(r["credits"][0]) == {
        "contract",
        "customer",
        "month",
        "kind",
        "rule",
        "priority",
        "metric",
        "service",
        "measured",
        "threshold",
        "in_scope",
        "credit_percent",
        "fee",
        "amount",
        "currency",
    }
    assert set(r["credit_totals"][0]) == {
        "contract",
        "customer",
        "month",
        "percent",
        "capped",
        "amount",
        "currency",
    }
    assert set(r["uptime"][0]) == {
        "service",
        "contract",
        "month",
        "availability",
        "guaranteed",
        "downtime_s",
        "service_s",
        "incidents",
        "met",
    }


def test_credits_of_a_month_by_value() -> None:
    r = report()
    lines = [(c["kind"], c["priority"], c["metric"], c["service"]) for c in r["credits"]]
    assert lines == [
        ("kpi", "normal", "first_response", None),
        ("kpi", "urgent", "resolution", None),
        ("uptime", None, None, "api"),
    ]
    fr, urgent, api = r["credits"]
    # ACME's first responses in November: A met, B breached (C is not ACME's; D ended in December).
    assert {k: fr[k] for k in ("measured", "threshold", "in_scope", "credit_percent", "fee", "amount")} == {
        "measured": 0.5,
        "threshold": 0.7,
        "in_scope": 2,
        "credit_percent": 10.0,
        "fee": 10000.0,
        "amount": 1000.0,
    }
    assert (fr["contract"], fr["customer"], fr["month"], fr["currency"]) == (
        "acme-gold",
        "ACME",
        "2026-11",
        "EUR",
    )
    assert fr["rule"] == (
        "share met of normal first response per month below 70%: 10% of the monthly fee "
        "(contracts[0].credits[1])"
    )
    assert (urgent["measured"], urgent["in_scope"], urgent["amount"]) == (0.0, 1, 500.0)
    assert (api["measured"], api["threshold"], api["in_scope"], api["amount"]) == (
        1 - 4 / 720,
        0.999,
        2,
        1000.0,
    )
    # 10% + 5% + 10% = 25%, capped at 12%. Normal resolution (A, B, E met) owes nothing.
    assert r["credit_totals"] == [
        {
            "contract": "acme-gold",
            "customer": "ACME",
            "month": "2026-11",
            "percent": 12.0,
            "capped": True,
            "amount": 1200.0,
            "currency": "EUR",
        },
    ]


def test_uptime_rows_by_value() -> None:
    (row,) = report()["uptime"]
    assert row == {
        "service": "api",
        "contract": "acme-gold",
        "month": "2026-11",
        "availability": 1 - 4 / 720,
        "guaranteed": 0.999,
        "downtime_s": 4 * 3600.0,
        "service_s": 720 * 3600.0,
        "incidents": 2,
        "met": False,
    }


def test_a_contract_for_every_ticket_with_uncapped_credits_and_cents() -> None:
    cfg = {
        k: v for k, v in copy.deepcopy(GOLD).items() if k not in ("customer", "credit_cap_percent", "uptime")
    }
    cfg["monthly_fee"] = 999.99
    r = build_report(records(), contracts(cfg), [], "2026-11", "2026-11", CALENDARS, now=NOW)
    # Every ticket now: A and C met, B breached: 66.7% is below 70 (10%); urgent resolution 0% (5%).
    assert [(c["customer"], c["in_scope"], c["credit_percent"], c["amount"]) for c in r["credits"]] == [
        ("all", 3, 10.0, 100.0),
        ("all", 1, 5.0, 50.0),
    ]
    assert [(t["percent"], t["capped"], t["amount"]) for t in r["credit_totals"]] == [(15.0, False, 150.0)]
    assert r["uptime"] == []


def test_credits_count_only_months_wholly_inside_the_period() -> None:
    r = report("2026-11-15", "2026-12")
    assert {t["month"] for t in r["credit_totals"]} == {"2026-12"}
    assert {u["month"] for u in r["uptime"]} == {"2026-12"}
    assert all(c["month"] == "2026-12" for c in r["credits"])
    # December so far: D's first response breached on 1 Dec (ACME's): 0% met, the 10% tier.
    assert [(c["metric"], c["measured"], c["in_scope"]) for c in r["credits"]] == [("first_response", 0.0, 1)]


def test_a_later_record_of_the_same_cycle_replaces_the_earlier() -> None:
    rows = records()
    stale = [o._replace(outcome="met", stopped_at=at("2026-11-20 12:00")) for o in rows if o.ticket_id == "D"]
    r = build_report([*stale, *rows], contracts(), INCIDENTS, "2026-11", "2026-11", CALENDARS, now=NOW)
    assert r == report()


def test_the_instance_filter_keeps_its_kpis_and_the_contracts_covering_it() -> None:
    r = report(instance="other")
    assert (r["kpis"], r["weekly"], r["credits"], r["credit_totals"], r["uptime"]) == ([], [], [], [], [])
    assert report(instance="acme") == report()


def test_bad_input_is_refused_before_anything_is_computed() -> None:
    with pytest.raises(ValueError, match=r"period 2026-12 \.\. 2026-11 is inverted"):
        report("2026-12", "2026-11")
    with pytest.raises(ValueError, match="'2026-11-31' does not exist"):
        report("2026-11-31", "2026-12")
    with pytest.raises(ValueError, match="now=.* must be timezone-aware"):
        build_report([], (), [], "2026-11", "2026-11", CALENDARS, now=datetime(2026, 12, 2))
    cfg = copy.deepcopy(GOLD)
    cfg["uptime"][0]["service_hours"] = "berlin"
    with pytest.raises(
        ValueError, match="contract 'acme-gold': service hours on calendar 'berlin', not given"
    ):
        build_report([], contracts(cfg), [], "2026-11", "2026-11", {}, now=NOW)


def test_the_header_is_in_utc_when_the_configuration_uses_several_zones() -> None:
    cfg = {**copy.deepcopy(GOLD), "timezone": "Asia/Tokyo"}
    r = build_report([], contracts(cfg), [], "2026-11", "2026-11", CALENDARS, now=NOW)
    # The header shows the UTC month; each figure still uses its own zone's month.
    assert r["period"] == {"from": "2026-11-01T00:00:00+00:00", "to": "2026-12-01T00:00:00+00:00"}
    assert [t["month"] for t in r["credit_totals"]] == ["2026-11"]  # a Tokyo November, owing nothing
    assert r["credit_totals"][0]["amount"] == 0.0
