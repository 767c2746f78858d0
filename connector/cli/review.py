"""`sla-connector review [--from P --to P] [--percentile 90]`: targets suggested from the business times
the period's cycles took (sla/review.py computes and documents the rounding; this reads Redis and prints).

Exit codes as every command's (connector/cli/main.py): 0 printed; 1 Redis unreachable; 2 an unknown
instance, an unparsable, inverted or empty period, or a percentile that is not above 0 and at most 100.
Nothing is written anywhere.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.cli.common import EXIT_OK, UsageError, config_from_args, redis_for
from connector.cli.replay import add_replay_arguments, instances_from_args, period_from_args, replay
from sla.durations import format_duration
from sla.review import ROUNDING, Review, parse_percentile

DEFAULT_DAYS = 90


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser("review", help="suggest targets from the business times a period's tickets took")
    add_replay_arguments(cmd, required=False, default=f" (default: {DEFAULT_DAYS} days before now, to now)")
    cmd.add_argument("--percentile", default="90", help="of the business times, 0-100 (default: %(default)s)")


def cmd_review(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config = config_from_args(args, env)
    instances = instances_from_args(config, args)
    try:
        percentile = parse_percentile(args.percentile)
    except ValueError as exc:
        raise UsageError(f"--percentile: {exc}") from None
    now = datetime.fromtimestamp(time.time(), UTC)
    start = args.period_from or now - timedelta(days=DEFAULT_DAYS)
    end = args.period_to or now
    period = period_from_args(start, end)
    try:
        review = Review(config.policies, config.calendars, period, now)
    except ValueError as exc:  # a local date-time that lands inverted in a calendar's zone
        raise UsageError(f"--from/--to: {exc}") from None
    unreadable = replay(redis_for(config), instances, review, processes=args.processes)
    result = {
        "period": {"from": _shown(start), "to": _shown(end)},
        "evaluated_at": review.at.isoformat(),
        "instances": instances,
        "tickets": review.found.tickets,
        "skipped": review.found.skipped,
        "unreadable": unreadable,
        "percentile": float(percentile),
        "rows": review.rows(percentile),
    }
    if args.format == "json":
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print("\n".join(render(result)))
    return EXIT_OK


def _shown(value: str | datetime) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else value


# ---------------------------------------------------------------- the table


def render(result: Mapping[str, Any]) -> list[str]:
    period, pct = result["period"], f"{result['percentile']:g}"
    lines = [
        f"review {period['from']} .. {period['to']} ({', '.join(result['instances'])}), tickets evaluated "
        f"as of {result['evaluated_at']}: {result['tickets']} evaluated, "
        f"{result['skipped']} outside the period (finished before it or created after it)",
        f"suggested target: the {pct}th percentile (nearest rank) of the business times of the met and "
        f"breached cycles that ended in the period, rounded up ({ROUNDING}); would breach: the cycles "
        "that took longer",
    ]
    lines.extend(f"warning: {message}" for message in result["unreadable"])
    rows = result["rows"]
    if not rows:
        lines.append("no met or breached cycle ended in this period")
        return lines
    header = ("POLICY", "PRIORITY", "METRIC", "CYCLES", "TARGET", "MET NOW", f"P{pct}", "SUGGESTED",
              "WOULD BREACH", "WOULD MEET")  # fmt: skip
    table = [header]
    for r in rows:
        table.append((
            r["policy"] or "-", r["priority"] or "-", r["metric"], str(r["cycles"]),
            _duration(r["current_target_s"]), f"{_pct(r['share_met'])} ({r['breached']} breached)",
            _duration(r["percentile_s"]), _duration(r["suggested_s"]), str(r["would_breach"]),
            _pct(r["share_met_if"]),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table)
    return lines


def _duration(seconds: int | None) -> str:
    return "-" if seconds is None else format_duration(timedelta(seconds=seconds))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
