"""Contracts: the service credits a provider owes a customer for missed KPIs and uptime.

The `contracts` list of the configuration, checked by `sla/schemas/contracts.schema.json` and then by
`load_contracts` (what a schema cannot check). Every error is a ValueError whose message starts with
the configuration path, e.g. `contracts[0].credits[1].priority: 'urgnt' is not a priority of this
configuration (known: high, normal, urgent)`.

    contracts:
      - id: acme-gold
        customer: {organisation: "123", name: ACME}   # absent: every ticket of the instances
        instances: [acme-zendesk]
        timezone: Europe/Berlin      # credits are per calendar month in this zone
        monthly_fee: 10000
        currency: EUR
        credits:                     # share met per priority and metric, in percent
          - {priority: urgent, metric: resolution, below: 95, credit_percent: 5}
          - {priority: urgent, metric: resolution, below: 90, credit_percent: 10}
        credit_cap_percent: 25       # of the monthly fee, all credits of a month together
        uptime:
          - service: api
            incidents: {match: {type: incident, tags: [svc-api]}}   # tags: all of these
            downtime_from: created   # or outage_start (sla.events.INSTANT_FIELDS)
            service_hours: 24x7      # or a calendar id of the configuration
            guaranteed_percent: 99.9
            credits: [{below: 99.9, credit_percent: 10}, {below: 99.0, credit_percent: 25}]

Credit rules with the same priority, metric (and policy) form one group, as do the credits of one
uptime service: per group and month only the highest tier triggered counts ("below 90" gives 10%,
not 5% + 10%). The groups' credits are summed and capped at `credit_cap_percent`. A month in which a
group has no met or breached cycle measures nothing and owes nothing for it.

A service is the provider's, not the customer's: its incidents are the tickets matching its filter
on the contract's instances, and two contracts naming the same service must give it the same filter
and `downtime_from` (its downtime is one fact, whichever contract asks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema

from sla._schema import ID_FORM, check_structure, load_validator, plain
from sla.events import INSTANT_FIELDS

ALWAYS = "24x7"
MATCH_FIELDS = ("instance", "project", "group", "brand", "type", "priority")


@dataclass(frozen=True)
class CreditTier:
    below: Fraction  # percent: owed when the measured percent is strictly below it
    credit_percent: Fraction  # of the monthly fee
    where: str  # configuration path, e.g. "contracts[0].credits[1]"


def triggered_tier(tiers: Iterable[CreditTier], measured_percent: Fraction) -> CreditTier | None:
    """The tier owed for a measured percent: the largest credit among those triggered."""
    hits = [t for t in tiers if measured_percent < t.below]
    return max(hits, key=lambda t: (t.credit_percent, -t.below), default=None)


@dataclass(frozen=True)
class KpiCreditRule:
    priority: str
    metric: str
    policy: str | None  # None: tickets of every policy
    tiers: tuple[CreditTier, ...]

    @property
    def text(self) -> str:
        scope = f" under policy {self.policy}" if self.policy else ""
        return f"share met of {self.priority} {self.metric.replace('_', ' ')}{scope} per month"


@dataclass(frozen=True)
class IncidentMatch:
    fields: Mapping[str, frozenset[str]] = field(default_factory=dict)  # field -> allowed values
    tags: frozenset[str] = frozenset()  # every one of these

    def matches(self, attrs: Mapping[str, Any], instance: str | None) -> bool:
        for name, allowed in self.fields.items():
            value = instance if name == "instance" else attrs.get(name)
            if value is None or str(value) not in allowed:
                return False
        return self.tags <= (attrs.get("tags") or frozenset())


@dataclass(frozen=True)
class UptimeRule:
    service: str
    match: IncidentMatch
    downtime_from: str  # "created" or a ticket field
    service_hours: str  # ALWAYS or a calendar id
    guaranteed_percent: Fraction
    tiers: tuple[CreditTier, ...] = ()


@dataclass(frozen=True)
class Contract:
    id: str
    instances: frozenset[str]
    zone: ZoneInfo
    monthly_fee: Decimal
    currency: str
    organisation: str | None = None  # None: every ticket of the instances
    customer_name: str | None = None
    kpi_rules: tuple[KpiCreditRule, ...] = ()
    credit_cap_percent: Fraction | None = None
    uptime: tuple[UptimeRule, ...] = ()

    @property
    def customer(self) -> str:
        """How reports name the customer: its name, else its organisation id, else "all"."""
        return self.customer_name or self.organisation or "all"


@cache
def _validator() -> jsonschema.protocols.Validator:
    return load_validator("contracts.schema.json")


def _pattern_form(pattern: str) -> str:
    return "an ISO 4217 code such as EUR" if pattern == "^[A-Z]{3}$" else ID_FORM


def _percent(value: float | int) -> Fraction:
    return Fraction(str(value))  # 99.9 as written, not the nearest binary float


def _known(value: str, known: Iterable[str] | None, where: str, what: str) -> None:
    if known is not None and value not in set(known):
        names = ", ".join(sorted(known)) or "none"
        raise ValueError(f"{where}: {value!r} is not {what} of this configuration (known: {names})")


def _tiers(items: list[Mapping[str, Any]], where: str) -> tuple[CreditTier, ...]:
    tiers: list[CreditTier] = []
    for i, item in enumerate(items):
        tier = CreditTier(_percent(item["below"]), _percent(item["credit_percent"]), f"{where}[{i}]")
        twin = next((t for t in tiers if t.below == tier.below), None)
        if twin is not None:
            raise ValueError(f"{tier.where}.below: {item['below']} is already a tier at {twin.where}")
        tiers.append(tier)
    return tuple(tiers)


def _kpi_rules(items: list[Mapping[str, Any]], where: str, priorities: Iterable[str],
               policies: Iterable[str] | None) -> tuple[KpiCreditRule, ...]:  # fmt: skip
    groups: dict[tuple[str, str, str | None], list[CreditTier]] = {}
    for i, item in enumerate(items):
        here = f"{where}.credits[{i}]"
        _known(item["priority"], priorities, f"{here}.priority", "a priority")
        if "policy" in item:
            _known(item["policy"], policies, f"{here}.policy", "a policy")
        tiers = groups.setdefault((item["priority"], item["metric"], item.get("policy")), [])
        tier = CreditTier(_percent(item["below"]), _percent(item["credit_percent"]), here)
        twin = next((t for t in tiers if t.below == tier.below), None)
        if twin is not None:
            raise ValueError(f"{here}.below: {item['below']} is already a tier of this rule at {twin.where}")
        tiers.append(tier)
    return tuple(KpiCreditRule(p, m, pol, tuple(ts)) for (p, m, pol), ts in groups.items())


def _uptime_rule(item: Mapping[str, Any], where: str, calendars: Iterable[str]) -> UptimeRule:
    hours = item["service_hours"]
    if hours != ALWAYS and hours not in set(calendars):
        known = ", ".join([ALWAYS, *sorted(calendars)])
        raise ValueError(f"{where}.service_hours: unknown calendar {hours!r} (known: {known})")
    match = item["incidents"]["match"]
    fields = {
        k: frozenset([match[k]] if isinstance(match[k], str) else match[k])
        for k in MATCH_FIELDS
        if k in match
    }
    downtime_from = item.get("downtime_from", "created")
    if downtime_from != "created" and downtime_from not in INSTANT_FIELDS:
        # Any other name would silently mean the creation, or fail on every incident: say so instead.
        known = ", ".join(["created", *sorted(INSTANT_FIELDS)])
        raise ValueError(
            f"{where}.downtime_from: {downtime_from!r} is not a ticket field holding an instant "
            f"(known: {known}); outage_start is the product field an instance's outage_start_field names"
        )
    return UptimeRule(
        service=item["service"],
        match=IncidentMatch(fields, frozenset(match.get("tags", ()))),
        downtime_from=downtime_from,
        service_hours=hours,
        guaranteed_percent=_percent(item["guaranteed_percent"]),
        tiers=_tiers(item.get("credits", []), f"{where}.credits"),
    )


def _contract(cfg: Mapping[str, Any], where: str, priorities: Iterable[str], calendars: Iterable[str],
              instances: Iterable[str] | None, policies: Iterable[str] | None) -> Contract:  # fmt: skip
    try:
        zone = ZoneInfo(cfg["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{where}.timezone: unknown time zone {cfg['timezone']!r}") from None
    for i, name in enumerate(cfg["instances"]):
        _known(name, instances, f"{where}.instances[{i}]", "an instance")
    uptime: list[UptimeRule] = []
    for i, item in enumerate(cfg.get("uptime", [])):
        rule = _uptime_rule(item, f"{where}.uptime[{i}]", calendars)
        if any(u.service == rule.service for u in uptime):
            raise ValueError(f"{where}.uptime[{i}].service: {rule.service!r} is named twice in this contract")
        uptime.append(rule)
    customer = cfg.get("customer") or {}
    cap = cfg.get("credit_cap_percent")
    return Contract(
        id=cfg["id"],
        instances=frozenset(cfg["instances"]),
        zone=zone,
        monthly_fee=Decimal(str(cfg["monthly_fee"])),
        currency=cfg["currency"],
        organisation=None if "organisation" not in customer else str(customer["organisation"]),
        customer_name=customer.get("name"),
        kpi_rules=_kpi_rules(cfg.get("credits", []), where, priorities, policies),
        credit_cap_percent=None if cap is None else _percent(cap),
        uptime=tuple(uptime),
    )


def load_contracts(
    contracts_cfg: Any,
    priorities: Iterable[str],
    calendars: Iterable[str],
    instances: Iterable[str] | None = None,
    policies: Iterable[str] | None = None,
) -> tuple[Contract, ...]:
    """Validate and build the contracts; raise ValueError naming the configuration path.

    `priorities`: the canonical priority names of the configuration; `calendars`: its calendar ids;
    `instances` and `policies` (ids), when given, are checked too."""
    cfg = plain(contracts_cfg)
    check_structure(_validator(), cfg, "contracts", _pattern_form)
    priorities, calendars = frozenset(priorities), frozenset(calendars)
    out: list[Contract] = []
    services: dict[str, tuple[UptimeRule, str]] = {}
    for i, ccfg in enumerate(cfg):
        where = f"contracts[{i}]"
        contract = _contract(ccfg, where, priorities, calendars, instances, policies)
        twin = next((j for j, c in enumerate(out) if c.id == contract.id), None)
        if twin is not None:
            raise ValueError(f"{where}.id: {contract.id!r} is already defined at contracts[{twin}]")
        for k, rule in enumerate(contract.uptime):
            first = services.setdefault(rule.service, (rule, f"{where}.uptime[{k}]"))
            if (first[0].match, first[0].downtime_from) != (rule.match, rule.downtime_from):
                raise ValueError(
                    f"{where}.uptime[{k}].incidents: service {rule.service!r} has another incident filter or "
                    f"downtime_from at {first[1]}; a service's incidents must be the same in every contract"
                )
        out.append(contract)
    return tuple(out)


def uptime_rules(contracts: Iterable[Contract]) -> dict[str, UptimeRule]:
    """Each service once (every contract gives a service the same filter): service -> its rule."""
    return {rule.service: rule for c in contracts for rule in c.uptime}
