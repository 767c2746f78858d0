"""The current month's KPIs on /metrics: share met per instance, priority and metric, as Grafana users
expect, computed at scrape time from the outcome records (connector/state/outcomes.py).

The month is the current UTC calendar month, each record placed by the rule of every report (where
its cycle ends, in its calendar's time zone: sla.kpis). Only ended cycles count (share met is met /
(met + breached)); clocks still running are not evaluated here, which keeps a scrape to reading a
month of records (measured in bench/report_cli_bench.py). The result is kept `ttl_s` seconds, so
frequent scrapes or several Prometheus servers read Redis once per interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("sla_connector.metrics")

LABELS = ["instance", "priority", "metric"]
SHARE_HELP = "Share of SLA cycles met (0..1) among those that ended this month (UTC)"
ENDED_HELP = "SLA cycles that ended this month (UTC), as met or breached"


class KpiCollector(Collector):
    """`sla_kpi_share_met` and `sla_kpi_cycles_ended{outcome}` of the current month, cached `ttl_s`."""

    def __init__(self, conn: redis.Redis, config: Any, ttl_s: float = 15.0,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.conn, self.config, self.ttl_s, self.clock = conn, config, ttl_s, clock
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[tuple[str, str, str], list[int]]] | None = None

    def describe(self) -> list[Metric]:
        return []  # computed at scrape: registration must not read Redis

    def collect(self) -> Iterator[Metric]:
        counts = self._counts()
        if counts is None:
            return
        share = GaugeMetricFamily("sla_kpi_share_met", SHARE_HELP, labels=LABELS)
        ended = GaugeMetricFamily("sla_kpi_cycles_ended", ENDED_HELP, labels=[*LABELS, "outcome"])
        for key, (met, breached) in sorted(counts.items()):
            share.add_metric(list(key), met / (met + breached))
            ended.add_metric([*key, "met"], met)
            ended.add_metric([*key, "breached"], breached)
        yield share
        yield ended

    def _counts(self) -> dict[tuple[str, str, str], list[int]] | None:
        with self._lock:  # one computation at a time; the others take its result
            now = self.clock()
            if self._cached is not None and now - self._cached[0] < self.ttl_s:
                return self._cached[1]
            try:
                counts = month_counts(self.conn, self.config, datetime.fromtimestamp(now, UTC))
            except (redis.exceptions.RedisError, ValueError) as exc:
                log.warning("KPI metrics unavailable: %s", exc.__class__.__name__,
                            extra={"event": "metrics_kpi_error", "error": str(exc)[:200]})  # fmt: skip
                return None
            self._cached = (now, counts)
            return counts


def month_counts(conn: Any, config: Any, now: datetime) -> dict[tuple[str, str, str], list[int]]:
    """(instance, priority, metric) -> [met, breached] of the cycles that ended in `now`'s UTC month."""
    from connector.state import outcomes
    from sla.kpis import kpi_tables
    from sla.periods import ReportPeriod

    month = now.astimezone(UTC).strftime("%Y-%m")
    period = ReportPeriod(month, month)
    start, end = period.bounds(ZoneInfo("UTC"))
    records = outcomes.read_records(conn, list(config.instances), start, end, now)
    out: dict[tuple[str, str, str], list[int]] = {}
    for row in kpi_tables(records, period, config.calendars)["kpis"]:
        if row["met"] + row["breached"]:
            tally = out.setdefault((row["instance"], row["priority"] or "", row["metric"]), [0, 0])
            tally[0] += row["met"]
            tally[1] += row["breached"]
    return out
