"""`sla-connector simulate --policies FILE --from P --to P`: the period's tickets replayed through a proposed
policy file, next to the current policies (sla/simulate.py computes; this reads Redis and prints).

Exit codes as every command's (connector/cli/main.py): 0 printed; 1 Redis unreachable; 2 an unknown
instance, an unparsable, inverted or empty period, or a policy file that does not validate (the
message names the file and the path inside it). Nothing is written anywhere.
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
from connector.config.proposed import load_proposed
from sla.durations import format_duration
from sla.simulate import RULE, Simulation


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser("simulate", help="replay a period's tickets through a proposed policy file")
    cmd.add_argument(
        "--policies",
        required=True,
        metavar="FILE",
        help="YAML with `policies` (and optionally `calendars`) as in the configuration",
    )
    add_replay_arguments(cmd, required=True)


def cmd_simulate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config = config_from_args(args, env)
    instances = instances_from_args(config, args)
    period = period_from_args(args.period_from, args.period_to)
    proposed = load_proposed(args.policies, args.config, env)  # invalid: ConfigError, exit 2
    now = datetime.fromtimestamp(time.time(), UTC)
    try:
        sim = Simulation((config.policies, config.calendars), proposed, period, now)
    except ValueError as exc:  # a local date-time that lands inverted in a calendar's zone
        raise UsageError(f"--from/--to: {exc}") from None
    unreadable = replay(redis_for(config), instances, sim, processes=args.processes)
    result = {
        "period": {"from": args.period_from, "to": args.period_to},
        "evaluated_at": sim.at.isoformat(),
        "instances": instances,
        "current": config.source,
        "proposed": str(args.policies),
        "tickets": sim.counts.tickets,
        "skipped": sim.counts.skipped,
        "unreadable": unreadable,
        "rule": RULE,
        "rows": sim.rows(),
    }
    if args.format == "json":
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print("\n".join(render(result)))
    return EXIT_OK


# ---------------------------------------------------------------- the table


def render(result: Mapping[str, Any]) -> list[str]:
    period = result["period"]
    lines = [
        f"simulate {period['from']} .. {period['to']} ({', '.join(result['instances'])}), tickets evaluated "
        f"as of {result['evaluated_at']}: {result['tickets']} replayed, "
        f"{result['skipped']} outside the period (finished before it or created after it)",
        f"current: {result['current']}; proposed: {result['proposed']}",
        f"rule: {result['rule']}",
    ]
    lines.extend(f"warning: {message}" for message in result["unreadable"])
    rows = result["rows"]
    if not rows:
        lines.append("no SLA cycle counts in this period under either policy set")
        return lines
    header = ("INSTANCE", "PRIORITY", "METRIC", "TARGET", "IN SCOPE", "MET", "BREACHED", "OPEN", "SHARE MET")
    table: list[tuple[str, ...]] = [header]
    extra: dict[int, str] = {}
    for row in rows:
        cur, new = row["current"], row["proposed"]
        table.append((
            row["instance"], row["priority"] or "-", row["metric"],
            _change(_targets(cur["targets_s"]), _targets(new["targets_s"])),
            *(_count(cur[k], new[k]) for k in ("in_scope", "met", "breached", "open")),
            _share(cur["share_met"], new["share_met"]),
        ))  # fmt: skip
        levels = sorted(cur["levels"].keys() | new["levels"].keys())
        if levels:
            reached = (_count(cur["levels"].get(lv, 0), new["levels"].get(lv, 0)) for lv in levels)
            extra[len(table) - 1] = "  escalations reached: " + ", ".join(
                f"{lv} {text}" for lv, text in zip(levels, reached, strict=True)
            )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, cells in enumerate(table):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        if i in extra:
            lines.append(extra[i])
    return lines


def _targets(seconds: list[int]) -> str:
    return "/".join(format_duration(timedelta(seconds=s)) for s in seconds) or "-"


def _change(before: str, after: str) -> str:
    return before if before == after else f"{before} -> {after}"


def _count(before: int, after: int) -> str:
    return str(before) if before == after else f"{before} -> {after} ({after - before:+d})"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _share(before: float | None, after: float | None) -> str:
    if before == after:
        return _pct(before)
    points = "" if before is None or after is None else f" ({100 * (after - before):+.1f} pts)"
    return f"{_pct(before)} -> {_pct(after)}{points}"
