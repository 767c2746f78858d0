"""The contract report of a period: KPIs, weekly series, time distributions, credits and uptime.

`build_report` returns one JSON-able dict; the connector renders it as a table, CSV, JSON or HTML.
Shares and availabilities are fractions 0..1 (None when nothing was measured), durations seconds,
instants ISO 8601. Percentages of the configuration (thresholds of credits, guarantees) are given as
fractions too (`threshold`, `guaranteed`); `credit_percent` and `percent` are percent of the fee.

Which figures count where (also in the report's "rule"):
- KPIs, weekly series and distributions: see sla.kpis (a cycle counts where it ends, in its
  calendar's time zone).
- Credits and uptime: per contract and calendar month in the contract's time zone, for the months
  lying wholly inside the period (a partial month would judge a contract on part of its month). A
  KPI credit line's `in_scope` is the met and breached cycles it measured; an uptime line's the
  incidents that overlapped the month. Each line's `amount` is its own credit; a month's total sums
  them, capped at the contract's `credit_cap_percent`.
- Open incidents are down until `now`; a month not over yet at `now` is judged on what happened so far.

Records are keyed by (instance, ticket, cycle); when a key is given twice the later record wins, so
pass the stored records of ended cycles first and the open ones read from the event logs after them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sla.calendar import BusinessCalendar
from sla.contracts import ALWAYS, Contract, CreditTier, triggered_tier
from sla.kpis import RULE, epoch_ms, kpi_tables
from sla.outcomes import Outcome
from sla.periods import ReportPeriod, whole_periods
from sla.uptime import Incident, availability

REPORT_RULE = (
    f"{RULE} Credits and uptime: per contract and calendar month in the contract's time zone, months "
    "wholly inside the period; the highest tier triggered per rule, summed, capped; open incidents are "
    "down until the report is made."
)
_CENT = Decimal("0.01")


def build_report(
    outcomes: Iterable[Outcome],
    contracts: Sequence[Contract],
    incidents: Iterable[Incident],
    period_from: str | datetime,
    period_to: str | datetime,
    calendars: Mapping[str, BusinessCalendar],
    *,
    now: datetime,
    instance: str | None = None,
    by_organisation: bool = False,
) -> dict[str, Any]:
    """The report for [from, to): texts such as "2026-01" or "2026-Q1" name periods in each time zone
    used (a Berlin month for Berlin figures), aware datetimes the same instants everywhere.

    `instance` limits the KPIs to one instance and the credits to the contracts that cover it.
    """
    if now.utcoffset() is None:
        raise ValueError(f"build_report: now={now!r} must be timezone-aware")
    period = ReportPeriod(period_from, period_to)
    latest = {(o.instance, o.ticket_id, o.cycle): o for o in outcomes}
    records = list(latest.values())
    tables = kpi_tables(records, period, calendars, instance=instance, by_organisation=by_organisation)
    chosen = [c for c in contracts if instance is None or instance in c.instances]
    by_service: dict[str, list[Incident]] = {}
    for inc in incidents:
        by_service.setdefault(inc.service, []).append(inc)
    index: dict[tuple[str, str | None], list[Outcome]] = {}
    for o in records:
        if o.stopped_at is not None and o.outcome != "cancelled":
            index.setdefault((o.instance, o.organisation), []).append(o)
    credits: list[dict[str, Any]] = []
    totals: list[dict[str, Any]] = []
    uptime: list[dict[str, Any]] = []
    for contract in chosen:
        lines, rows = _contract_figures(contract, period, index, by_service, calendars, now)
        credits.extend(row for row, _ in lines)
        uptime.extend(rows)
        for month, _, _ in _months(contract, period):
            totals.append(_total(contract, month, [pct for row, pct in lines if row["month"] == month]))
    zone = _display_zone(calendars, contracts)
    start, end = period.bounds(zone)
    return {
        "period": {"from": start.astimezone(zone).isoformat(), "to": end.astimezone(zone).isoformat()},
        "generated_at": now.astimezone(UTC).isoformat(),
        "rule": REPORT_RULE,
        "kpis": tables["kpis"],
        "weekly": tables["weekly"],
        "distributions": tables["distributions"],
        "credits": credits,
        "credit_totals": totals,
        "uptime": uptime,
    }  # fmt: skip


Line = tuple[dict[str, Any], Fraction]  # a credit row and its exact percent


def _months(contract: Contract, period: ReportPeriod) -> list[tuple[str, datetime, datetime]]:
    """The contract's calendar months lying wholly inside the period: ("YYYY-MM", start, end)."""
    months = whole_periods(*period.bounds(contract.zone), "month", contract.zone)
    return [(first.strftime("%Y-%m"), lo, hi) for first, lo, hi in months]


def _contract_figures(
    contract: Contract,
    period: ReportPeriod,
    index: Mapping[tuple[str, str | None], list[Outcome]],
    by_service: Mapping[str, list[Incident]],
    calendars: Mapping[str, BusinessCalendar],
    now: datetime,
) -> tuple[list[Line], list[dict[str, Any]]]:
    """A contract's credit lines (in month order) and uptime rows, month by month."""
    months = _months(contract, period)
    lines = _kpi_credits(contract, months, _contract_outcomes(contract, index))
    rows = []
    for rule in contract.uptime:
        hours = None if rule.service_hours == ALWAYS else _calendar(calendars, rule.service_hours, contract)
        mine = [
            i
            for i in by_service.get(rule.service, ())
            if i.instance is None or i.instance in contract.instances
        ]
        for month, lo, hi in months:
            got = availability(mine, lo, hi, now, hours)
            rows.append({
                "service": rule.service, "contract": contract.id, "month": month,
                "availability": _num(got.availability), "guaranteed": float(rule.guaranteed_percent / 100),
                "downtime_s": got.downtime.total_seconds(), "service_s": got.service_time.total_seconds(),
                "incidents": got.incidents, "met": got.meets(rule.guaranteed_percent),
            })  # fmt: skip
            tier = got.credit(rule.tiers)
            if tier is not None:
                text = f"availability of {rule.service} in its service hours ({rule.service_hours})"
                lines.append(_line(contract, month, "uptime", text, tier, got.availability, got.incidents,
                                   service=rule.service))  # fmt: skip
    return sorted(lines, key=lambda line: line[0]["month"]), rows


def _calendar(calendars: Mapping[str, BusinessCalendar], name: str, contract: Contract) -> BusinessCalendar:
    if name not in calendars:
        raise ValueError(f"contract {contract.id!r}: service hours on calendar {name!r}, not given")
    return calendars[name]


def _display_zone(calendars: Mapping[str, BusinessCalendar], contracts: Sequence[Contract]) -> ZoneInfo:
    """The one zone the configuration uses, else UTC: the header's bounds are shown in it."""
    zones = {c.zone.key for c in calendars.values()} | {c.zone.key for c in contracts}
    return ZoneInfo(zones.pop()) if len(zones) == 1 else ZoneInfo("UTC")


def _contract_outcomes(
    contract: Contract, index: Mapping[tuple[str, str | None], list[Outcome]]
) -> list[Outcome]:
    """The ended, not cancelled records of the contract's customer on its instances."""
    if contract.organisation is not None:
        return [
            o for inst in sorted(contract.instances) for o in index.get((inst, contract.organisation), ())
        ]
    return [o for (inst, _), rows in index.items() if inst in contract.instances for o in rows]


def _kpi_credits(
    contract: Contract, months: list[tuple[str, datetime, datetime]], outcomes: list[Outcome]
) -> list[Line]:
    """The KPI credit lines of each month: share met per rule, its highest tier triggered."""
    if not months or not contract.kpi_rules:
        return []
    starts = [epoch_ms(lo) for _, lo, _ in months]
    end = epoch_ms(months[-1][2])
    names = [month for month, _, _ in months]
    rules: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(contract.kpi_rules):
        rules.setdefault((r.priority, r.metric), []).append(i)
    counts = [[[0, 0] for _ in months] for _ in contract.kpi_rules]  # rule -> month -> [met, breached]
    for o in outcomes:
        found = rules.get((o.priority, o.metric))
        if found is None:
            continue
        assert o.stopped_at is not None
        stop = epoch_ms(o.stopped_at)
        if stop < starts[0] or stop >= end:
            continue
        month = bisect_right(starts, stop) - 1
        for i in found:
            policy = contract.kpi_rules[i].policy
            if policy is None or policy == o.policy_id:
                counts[i][month][o.outcome == "breached"] += 1
    lines = []
    for i, rule in enumerate(contract.kpi_rules):
        for m, name in enumerate(names):
            met, breached = counts[i][m]
            if met + breached == 0:
                continue  # nothing measured, nothing owed
            measured = Fraction(met, met + breached)
            tier = triggered_tier(rule.tiers, measured * 100)
            if tier is not None:
                lines.append(_line(contract, name, "kpi", rule.text, tier, measured, met + breached,
                                   priority=rule.priority, metric=rule.metric))  # fmt: skip
    return lines


def _line(
    contract: Contract,
    month: str,
    kind: str,
    text: str,
    tier: CreditTier,
    measured: Fraction | None,
    in_scope: int,
    *,
    priority: str | None = None,
    metric: str | None = None,
    service: str | None = None,
) -> Line:
    rule = f"{text} below {_pct(tier.below)}%: {_pct(tier.credit_percent)}% of the monthly fee ({tier.where})"
    row = {
        "contract": contract.id, "customer": contract.customer, "month": month, "kind": kind, "rule": rule,
        "priority": priority, "metric": metric, "service": service,
        "measured": _num(measured), "threshold": float(tier.below / 100), "in_scope": in_scope,
        "credit_percent": float(tier.credit_percent), "fee": float(contract.monthly_fee),
        "amount": _money(contract.monthly_fee, tier.credit_percent), "currency": contract.currency,
    }  # fmt: skip
    return row, tier.credit_percent


def _total(contract: Contract, month: str, percents: list[Fraction]) -> dict[str, Any]:
    percent = sum(percents, Fraction(0))  # the tiers' exact percents, not the rows' floats
    cap = contract.credit_cap_percent
    capped = cap is not None and percent > cap
    if capped:
        assert cap is not None
        percent = cap
    return {
        "contract": contract.id, "customer": contract.customer, "month": month, "percent": float(percent),
        "capped": capped, "amount": _money(contract.monthly_fee, percent), "currency": contract.currency,
    }  # fmt: skip


def _money(fee: Decimal, percent: Fraction) -> float:
    exact = fee * Decimal(percent.numerator) / Decimal(percent.denominator) / 100
    return float(exact.quantize(_CENT, rounding=ROUND_HALF_UP))


def _pct(value: Fraction) -> str:
    return f"{float(value):g}"


def _num(value: Fraction | None) -> float | None:
    return None if value is None else float(value)
