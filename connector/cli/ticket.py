"""`sla-connector ticket <instance> <ticket>`: one ticket's SLA state as a readable table.

The same state as `GET /api/tickets/<instance>/<ticket>` (connector/state/ticket_view.py), read from Redis
and evaluated now. Exit codes as every command's (connector/cli/main.py): 0 shown; 1 the connector holds
no events for the ticket; 2 an unknown instance.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connector.cli.common import EXIT_OK, Failure, config_from_args, instance_named, redis_for
from connector.state.ticket_view import ticket_state


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser("ticket", help="one ticket's SLA clocks, effects written and next timer")
    cmd.add_argument("instance")
    cmd.add_argument("ticket", help="the ticket id, or a key the look job indexed (a Jira issue key)")
    cmd.add_argument("--json", action="store_true", help="print the raw state (as the HTTP API)")


def cmd_ticket(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config = config_from_args(args, env)
    inst = instance_named(config, args.instance)  # unknown instance: UsageError, exit 2
    now = datetime.fromtimestamp(time.time(), UTC)
    state = ticket_state(redis_for(config), config, inst.name, args.ticket, now)
    if state is None:
        raise Failure(
            f"no events stored for ticket {args.ticket!r} of instance {inst.name!r} "
            "(not delivered yet, or older than the webhook: see `sla-connector backfill`)"
        )
    if args.json:
        print(json.dumps(state, indent=2, sort_keys=True, default=str))
    else:
        print("\n".join(render(state, inst.name)))
    return EXIT_OK


# ---------------------------------------------------------------- rendering


def render(state: Mapping[str, Any], instance: str) -> list[str]:
    """The state as lines of text: a header, a table of clocks, then effects and bookkeeping."""
    ticket = state.get("ticket_id")
    key = state.get("key")
    name = f"{key} (id {ticket})" if key and key != ticket else str(ticket)
    mode = "  [dry run]" if state.get("dry_run") else ""
    lines = [
        f"{instance} ticket {name}: policy {state.get('policy_id') or '-'} "
        f"v{state.get('policy_version') or '-'}, {state.get('event_count', 0)} events{mode}"
    ]
    if state.get("gone"):
        lines.append("gone: the product no longer has this ticket")
    rows = [("METRIC", "STATE", "STARTED", "DEADLINE", "REMAINING", "ELAPSED", "BREACHED AT")]
    for metric_name, metric in (state.get("metrics") or {}).items():
        for clock in [*(metric.get("past_cycles") or []), metric]:
            label = metric_name if clock.get("cycle") is None else f"{metric_name} #{clock['cycle']}"
            rows.append(
                (
                    label,
                    str(clock.get("status") or "-"),
                    _when(clock.get("started_at")),
                    _when(clock.get("deadline")),
                    _duration(clock.get("remaining")),
                    _duration(clock.get("elapsed")),
                    _when(clock.get("breached_at")),
                )
            )
    if len(rows) == 1:
        lines.append("no SLA metric applies (no policy matches, or no target for its priority)")
    else:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines.extend(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
        )
    dry = bool(state.get("dry_run"))
    ledger = state.get("dry_run_ledger" if dry else "ledger") or {}
    lines.append(("effects logged (dry run):" if dry else "effects written:") + ("" if ledger else " none"))
    lines.extend(f"  {k} = {v}" for k, v in ledger.items())
    other = state.get("ledger" if dry else "dry_run_ledger") or {}
    if other:  # written before the instance changed mode
        lines.append("effects written:" if dry else "effects logged in an earlier dry run:")
        lines.extend(f"  {k} = {v}" for k, v in other.items())
    rejected = state.get("rejected") or {}
    lines.append("effects refused by the product:" + ("" if rejected else " none"))
    lines.extend(
        f"  {k} = {r.get('value')}: {r.get('reason') or '?'} ({_when(r.get('at'))})"
        for k, r in rejected.items()
    )
    lines.append(f"next timer: {_when(state.get('next_timer'))}")
    lines.append(f"pending deliveries: {state.get('pending_deliveries', 0)}")
    return lines


def _when(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except ValueError:
        return str(iso)


def _duration(seconds: float | None) -> str:
    """Business time as "2d 3h 05m" (seconds shown only under a minute)."""
    if seconds is None:
        return "-"
    total = int(round(float(seconds)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"
