"""Contracts from the configuration: what is built, and every refusal naming its path."""

from __future__ import annotations

import copy
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sla.contracts import CreditTier, IncidentMatch, load_contracts, triggered_tier, uptime_rules
from tests.dotted import with_value

PRIORITIES = {"urgent", "high", "normal"}
CALENDARS = {"berlin"}
GOLD: dict[str, Any] = {
    "id": "acme-gold",
    "customer": {"organisation": "123", "name": "ACME"},
    "instances": ["acme-zendesk"],
    "timezone": "Europe/Berlin",
    "monthly_fee": 10000,
    "currency": "EUR",
    "credits": [
        {"priority": "urgent", "metric": "resolution", "below": 95, "credit_percent": 5},
        {"priority": "urgent", "metric": "resolution", "below": 90, "credit_percent": 10},
        {"priority": "high", "metric": "first_response", "below": 80, "credit_percent": 2.5, "policy": "std"},
    ],
    "credit_cap_percent": 25,
    "uptime": [
        {
            "service": "api",
            "incidents": {"match": {"type": "incident", "tags": ["svc-api"]}},
            "downtime_from": "created",
            "service_hours": "24x7",
            "guaranteed_percent": 99.9,
            "credits": [{"below": 99.9, "credit_percent": 10}, {"below": 99.0, "credit_percent": 25}],
        }
    ],
}


def load(cfg: Any, **kw: Any):
    return load_contracts(cfg, PRIORITIES, CALENDARS, **kw)


def test_a_contract_is_built_with_exact_percentages() -> None:
    (c,) = load([GOLD], instances={"acme-zendesk"}, policies={"std"})
    assert (c.id, c.customer, c.organisation, c.instances) == ("acme-gold", "ACME", "123", {"acme-zendesk"})
    assert (c.zone, c.monthly_fee, c.currency, c.credit_cap_percent) == (
        ZoneInfo("Europe/Berlin"),
        Decimal(10000),
        "EUR",
        Fraction(25),
    )
    urgent, high = c.kpi_rules
    assert (urgent.priority, urgent.metric, urgent.policy) == ("urgent", "resolution", None)
    assert [(t.below, t.credit_percent, t.where) for t in urgent.tiers] == [
        (95, 5, "contracts[0].credits[0]"),
        (90, 10, "contracts[0].credits[1]"),
    ]
    assert (high.policy, high.tiers[0].credit_percent) == ("std", Fraction(5, 2))
    (api,) = c.uptime
    assert api.guaranteed_percent == Fraction(999, 10)  # 99.9 as written, not a binary float
    assert api.match == IncidentMatch({"type": frozenset({"incident"})}, frozenset({"svc-api"}))
    assert (api.downtime_from, api.service_hours, len(api.tiers)) == ("created", "24x7", 2)


def test_a_contract_without_customer_covers_every_ticket_and_defaults() -> None:
    cfg = {k: v for k, v in GOLD.items() if k not in ("customer", "credits", "credit_cap_percent", "uptime")}
    (c,) = load([cfg])
    assert (c.customer, c.organisation, c.kpi_rules, c.uptime, c.credit_cap_percent) == (
        "all",
        None,
        (),
        (),
        None,
    )


def test_an_organisation_id_may_be_written_as_a_number() -> None:
    cfg = copy.deepcopy(GOLD)
    cfg["customer"] = {"organisation": 123}
    (c,) = load([cfg])
    assert (c.organisation, c.customer) == ("123", "123")
    cfg["customer"] = {"organisation": 1.5}
    with pytest.raises(ValueError, match=r"contracts\[0\]\.customer\.organisation: 1.5 is not valid"):
        load([cfg])


def test_incident_match_fields_and_tags() -> None:
    match = IncidentMatch(
        {"type": frozenset({"incident"}), "instance": frozenset({"a"})}, frozenset({"svc-api"})
    )
    attrs = {"type": "incident", "tags": frozenset({"svc-api", "p1"})}
    assert match.matches(attrs, "a")
    assert not match.matches(attrs, "b")
    assert not match.matches({**attrs, "tags": frozenset({"p1"})}, "a")
    assert not match.matches({"tags": frozenset({"svc-api"})}, "a")


def test_the_highest_tier_triggered_wins() -> None:
    tiers = [CreditTier(Fraction(95), Fraction(5), "a"), CreditTier(Fraction(90), Fraction(10), "b")]
    assert triggered_tier(tiers, Fraction(96)) is None
    assert triggered_tier(tiers, Fraction(95)) is None  # "below 95": 95 itself is fine
    assert triggered_tier(tiers, Fraction(94)).where == "a"  # type: ignore[union-attr]
    assert triggered_tier(tiers, Fraction(50)).where == "b"  # type: ignore[union-attr]


def test_services_are_listed_once() -> None:
    other = {**copy.deepcopy(GOLD), "id": "beta"}
    rules = uptime_rules(load([GOLD, other]))
    assert list(rules) == ["api"]


def _with(path: str, value: Any) -> list[dict[str, Any]]:
    """GOLD with one value replaced (or removed with value=...), by a dotted path like credits.1.priority."""
    return [with_value(GOLD, path, value)]


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (
            _with("credits.1.priority", "urgnt"),
            "contracts[0].credits[1].priority: 'urgnt' is not a priority of this configuration "
            "(known: high, normal, urgent)",
        ),
        (_with("credits.2.policy", "vip"), "contracts[0].credits[2].policy: 'vip' is not a policy"),
        (_with("instances", ["acme-jira"]), "contracts[0].instances[0]: 'acme-jira' is not an instance"),
        (
            _with("credits.1.below", 95),
            "contracts[0].credits[1].below: 95 is already a tier of this rule at contracts[0].credits[0]",
        ),
        (
            _with("uptime.0.credits.1.below", 99.9),
            "contracts[0].uptime[0].credits[1].below: 99.9 is already a tier",
        ),
        (_with("timezone", "Europe/Berln"), "contracts[0].timezone: unknown time zone 'Europe/Berln'"),
        (_with("timezone", "../etc"), "contracts[0].timezone: unknown time zone '../etc'"),
        (
            _with("uptime.0.service_hours", "tokyo"),
            "contracts[0].uptime[0].service_hours: unknown calendar 'tokyo' (known: 24x7, berlin)",
        ),
        (_with("credits.0.metric", "speed"), "contracts[0].credits[0].metric: 'speed' is not one of"),
        (
            _with("credits.0.below", 0),
            "contracts[0].credits[0].below: 0 is less than or equal to the minimum of 0",
        ),
        (
            _with("credits.0.credit_percent", 101),
            "contracts[0].credits[0].credit_percent: 101 is greater than",
        ),
        (
            _with("currency", "euro"),
            "contracts[0].currency: 'euro' does not match the expected form: an ISO 4217",
        ),
        (_with("id", "a b"), "contracts[0].id: 'a b' does not match the expected form: letters, digits"),
        (_with("monthly_fee", ...), "contracts[0]: 'monthly_fee' is a required property"),
        (_with("monthly_fee", -1), "contracts[0].monthly_fee: -1 is less than the minimum of 0"),
        (
            _with("credit_cap", 25),
            "contracts[0]: unknown key(s) 'credit_cap'; expected id, customer, instances",
        ),
        (
            _with("uptime.0.incidents.match", {}),
            "contracts[0].uptime[0].incidents.match: {} should be non-empty",
        ),
        (
            _with("uptime.0.incidents.match", {"status": "open"}),
            "contracts[0].uptime[0].incidents.match: unknown key(s) 'status'",
        ),
        (
            _with("uptime.0.downtime_from", "group"),
            "contracts[0].uptime[0].downtime_from: 'group' is not a ticket field holding an instant "
            "(known: created, created_at, outage_start)",
        ),
        ({"id": "x"}, "contracts: {'id': 'x'} is not of type 'array'"),
    ],
)
def test_bad_contracts_are_refused_naming_the_path(cfg: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        load(cfg, instances={"acme-zendesk"}, policies={"std"})
    assert message in str(info.value)


def test_duplicate_ids_and_services_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"contracts\[1\]\.id: 'acme-gold' is already defined at contracts\[0\]"
    ):
        load([GOLD, GOLD])
    twice = copy.deepcopy(GOLD)
    twice["uptime"].append(copy.deepcopy(twice["uptime"][0]))
    with pytest.raises(ValueError, match=r"contracts\[0\]\.uptime\[1\]\.service: 'api' is named twice"):
        load([twice])
    other = {**copy.deepcopy(GOLD), "id": "beta"}
    other["uptime"][0]["incidents"]["match"]["tags"] = ["svc-web"]
    with pytest.raises(
        ValueError, match=r"contracts\[1\]\.uptime\[0\]\.incidents: service 'api' has another"
    ):
        load([GOLD, other])
