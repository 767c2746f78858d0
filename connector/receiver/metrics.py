"""Prometheus metrics for /metrics: the receiver's own counters plus the pipeline's, read from Redis.

The receiver counts in-process. With several gunicorn workers each would report only its own
counts, so every scrape would differ: `web` (and so `run`) then uses prometheus-client's
multiprocess mode, in PROMETHEUS_MULTIPROC_DIR when that is set, else in a private temporary
directory it creates empty and removes at exit (`multiprocess_dir`). The workers' counters and
the queue gauges live in Redis (connector.state.status) and are read at scrape time by a custom
collector, so every web process reports the same pipeline figures.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("sla_connector.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_NAME_OK = re.compile(r"[^a-zA-Z0-9_]")


def _metric_name(*parts: str) -> str:
    return _NAME_OK.sub("_", "_".join(p for p in parts if p)).strip("_")


class PipelineCollector(Collector):
    """Renders connector.state.status.counters() and status() of the shared Redis at scrape time."""

    def __init__(self, conn: redis.Redis) -> None:
        self.conn = conn

    def describe(self) -> list[Metric]:
        return []  # unknown until scraped; an empty description keeps registration from reading Redis

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("sla_redis_up", "1 if the queue store answered this scrape, else 0")
        try:
            from connector.state import status as status_mod

            counters = status_mod.counters(self.conn)
            snapshot = status_mod.status(self.conn)
        except ImportError:  # the pipeline is not installed in this process
            return
        except redis.exceptions.RedisError as exc:
            log.warning("pipeline metrics unavailable: %s", exc.__class__.__name__,
                        extra={"event": "metrics_redis_error"})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _counter_families(counters)
        yield from _gauge_families(snapshot)


Series = Mapping[tuple[tuple[str, str], ...], float]


def _counter_families(counters: Mapping[str, Series]) -> Iterator[Metric]:
    """Counters as `sla_<name>_total`; `<base>_bucket/_sum/_count` triples as one histogram."""
    histograms = {n[: -len("_bucket")] for n in counters if n.endswith("_bucket")}
    for base in sorted(histograms):
        buckets = counters.get(f"{base}_bucket", {})
        ordered = sorted(((dict(k).get("le", "+Inf"), v) for k, v in buckets.items()),
                         key=lambda b: float("inf") if b[0] == "+Inf" else float(b[0]))
        total = sum(counters.get(f"{base}_sum", {}).values())
        yield HistogramMetricFamily(_metric_name("sla", base), f"pipeline histogram {base} (from Redis)",
                                    buckets=[(le, float(v)) for le, v in ordered], sum_value=float(total))
    skip = {f"{b}_{part}" for b in histograms for part in ("bucket", "sum", "count")}
    for name, series in sorted(counters.items()):
        if name in skip or not isinstance(series, Mapping):
            continue
        keys = sorted({k for labels in series for k, _ in labels})
        family = CounterMetricFamily(_metric_name("sla", name), f"pipeline counter {name} (from Redis)",
                                     labels=keys)
        for labels, value in series.items():
            d = dict(labels)
            family.add_metric([str(d.get(k, "")) for k in keys], float(value))
        yield family


# status() key -> (metric name, help, label name for per-key mappings)
_GAUGES = {
    "tickets_waiting": ("sla_tickets_waiting", "Tickets wanting a look that have no job yet", None),
    "tickets_claimed": ("sla_tickets_claimed", "Tickets with a look job queued or running", None),
    "jobs_queued": ("sla_rq_jobs_queued", "Jobs in the connector's RQ queues", "queue"),
    "oldest_pending_age_s": ("sla_queue_oldest_age_seconds", "Age of the oldest pending look", None),
    "timers_pending": ("sla_timers_pending", "Tickets with a pending timer", None),
    "failed": ("sla_failed", "Failed look jobs (RQ's registry) and unreadable deliveries", None),
    "workers_alive": ("sla_workers_alive", "RQ workers registered on the connector's queues", None),
    "scheduler_alive": ("sla_scheduler_alive", "1 if an RQ cron scheduler (dispatch tick) is alive", None),
    "last_event_at": ("sla_last_event_timestamp_seconds", "When the last delivery was accepted", "instance"),
}


# status() keys that repeat a counter (already exported as sla_<name>_total with all its labels).
_COUNTED = frozenset({"effects_rejected"})


def _gauge_families(snapshot: Mapping[str, Any]) -> Iterator[Metric]:
    """Known status() keys under stable names; other numbers as sla_pipeline_<key>; lists skipped."""
    for key, value in sorted(snapshot.items()):
        if key in _COUNTED:
            continue
        fallback = (_metric_name("sla_pipeline", str(key)), f"pipeline status {key}", "key")
        name, doc, label = _GAUGES.get(key, fallback)
        if value is None:
            value = 0
        if isinstance(value, bool | int | float):
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], float(value))
            yield gauge
        elif isinstance(value, Mapping) and all(isinstance(v, bool | int | float) for v in value.values()):
            gauge = GaugeMetricFamily(name, doc, labels=[label or "key"])
            for sub, v in sorted(value.items()):
                gauge.add_metric([str(sub)], float(v))
            yield gauge


class ReceiverMetrics:
    """The receiver's own counters and its request latency histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.received = Counter(
            "sla_webhooks_received_total", "Webhook deliveries accepted, by instance and outcome",
            ["instance", "outcome"], registry=self.registry,
        )
        self.rejected = Counter(
            "sla_webhooks_rejected_total", "Webhook deliveries refused, by instance and reason",
            ["instance", "reason"], registry=self.registry,
        )
        self.latency = Histogram(
            "sla_http_request_duration_seconds", "Time to answer an HTTP request, by route",
            ["route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )

    def exposition(self, conn: redis.Redis | None, config: Any = None) -> Callable[[], bytes]:
        """A function producing the text exposition: ours (or all processes') plus the pipeline's, and
        with `config` the current month's KPIs (connector/receiver/kpi_metrics.py)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self.registry
        if conn is not None:
            registry.register(PipelineCollector(conn))
            if config is not None:
                from connector.receiver.kpi_metrics import KpiCollector

                registry.register(KpiCollector(conn, config))
        return lambda: generate_latest(registry)


@contextmanager
def multiprocess_dir(workers: int) -> Iterator[str | None]:
    """Multiprocess metrics for `workers` forked processes, for as long as the context lasts.

    Yields the directory in use, or None for a single process (nothing to aggregate). An operator's
    PROMETHEUS_MULTIPROC_DIR is used as given; otherwise a fresh private directory is created, set
    in os.environ (inherited by the forked workers) and removed afterwards. Enter this before the
    workers fork and before they create metrics: prometheus-client picks its value class from the
    environment when it is imported, so the choice is made again here.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given or workers <= 1:
        yield given or None
        return
    path = tempfile.mkdtemp(prefix="sla-connector-metrics-")  # empty, mode 0700: ours alone
    os.environ[MULTIPROC_ENV] = path
    values.ValueClass = values.get_value_class()
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        values.ValueClass = values.get_value_class()
        shutil.rmtree(path, ignore_errors=True)
