"""`sla-connector backfill <instance>`: the command around connector/backfill.py (output and exit codes).

Exit codes as every command's (connector/cli/main.py): 0 done; 1 the product refused or failed (the
message names the credential variables on 401/403, never their values), or some tickets could not
be read; 2 an unknown instance, a bad --since or --limit, or a product without backfill.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from adapters.base import ApiError, Forbidden, Unauthorized
from connector import backfill
from connector.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    Failure,
    UsageError,
    config_from_args,
    instance_named,
    redis_for,
)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser("backfill", help="bring tickets that predate the webhook under SLA")
    cmd.add_argument("instance")
    cmd.add_argument(
        "--since",
        default=backfill.DEFAULT_SINCE,
        help="tickets updated since: 30d, 12h, 2026-10-01 or an ISO instant (default: %(default)s)",
    )
    cmd.add_argument("--dry-run", action="store_true", help="read and print only; write nothing to Redis")
    cmd.add_argument("--limit", type=_positive, metavar="N", help="stop after N tickets")
    cmd.add_argument(
        "--include-solved",
        action="store_true",
        help="also evaluate tickets already solved or closed that were never evaluated "
        "(default: store their history but write nothing onto finished work)",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def cmd_backfill(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config = config_from_args(args, env)
    inst = instance_named(config, args.instance)
    now = datetime.fromtimestamp(time.time(), UTC)
    try:
        since = backfill.parse_since(args.since, now)
        backfill.load_reader(inst)  # a product without backfill: say so before touching Redis
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    conn = redis_for(config)
    tickets = events = new = skipped = failed = 0
    try:
        for outcome in backfill.run(
            conn,
            inst,
            since,
            now,
            dry_run=args.dry_run,
            limit=args.limit,
            include_solved=args.include_solved,
            config=config,
        ):
            print(outcome.line(args.dry_run), flush=True)
            tickets += 1
            events += outcome.events
            new += outcome.new
            failed += outcome.error
            skipped += bool(outcome.skipped) and not outcome.error
    except (Unauthorized, Forbidden) as exc:
        names = ", ".join(backfill.credential_vars(inst.settings)) or "the variables its auth block names"
        raise Failure(
            f"{inst.product} refused the credentials of instance {inst.name!r} (HTTP {exc.status}): "
            f"check the environment variables {names} and the user's permissions to read tickets"
        ) from None
    except ApiError as exc:
        status = f" (HTTP {exc.status})" if exc.status else ""
        raise Failure(
            f"{inst.product} API call failed{status}: {exc}; after {tickets} tickets "
            "(running backfill again is safe: it appends only what is missing)"
        ) from None
    written = "dry run: nothing written" if args.dry_run else "new events appended, tickets scheduled"
    print(
        f"{inst.name}: {tickets} tickets updated since {since.isoformat(timespec='seconds')}, "
        f"{events} events, {new} new, {skipped} skipped, {failed} failed ({written})"
    )
    return EXIT_FAILURE if failed else EXIT_OK
