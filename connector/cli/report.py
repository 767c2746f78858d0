"""`sla-connector report`: the contract report of a period, as a table, CSV, JSON or one HTML file.

It reads the outcome records the look jobs keep (connector/state/outcomes.py), evaluates the tickets
whose clocks still run from their event logs (at now: a clock reopened after the period counts as
open in it, as its record will once it ends again), reads the incidents, builds the report with the
configuration's contracts (sla.report.build_report) and renders it (connector/reports). Nothing is
written to Redis. Exit codes as every command's (connector/cli/main.py): 0 written; 1 Redis failed or
a stored record is unreadable; 2 an unknown instance, an unparsable, inverted or empty period, a bad
`contracts` configuration, an unwritable --out.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connector.cli.common import EXIT_OK, Failure, UsageError, config_from_args, instance_named, redis_for
from connector.config.loader import Config
from connector.reports import CSV_PARTS, FORMATS, render
from connector.state import outcomes
from sla.periods import ReportPeriod
from sla.report import build_report

PERIOD_HELP = "2026, 2026-Q1, 2026-01, 2026-W05, 2026-01-15 or an ISO 8601 date-time"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cmd = sub.add_parser(
        "report", help="KPIs, service credits and uptime of a period (table, CSV, JSON, HTML)"
    )
    cmd.add_argument(
        "--from",
        dest="period_from",
        required=True,
        metavar="PERIOD",
        help=f"the first period: {PERIOD_HELP}, in the time zone of each calendar and contract",
    )
    cmd.add_argument(
        "--to",
        dest="period_to",
        metavar="PERIOD",
        help="the last period, included (default: the --from period alone)",
    )
    cmd.add_argument("--instance", help="only this instance (default: every configured one)")
    cmd.add_argument("--format", choices=FORMATS, default="table", help="(default: %(default)s)")
    cmd.add_argument(
        "--part",
        choices=CSV_PARTS,
        default="kpis",
        help="with --format csv: which table (default: %(default)s)",
    )
    cmd.add_argument("--by-organisation", action="store_true", help="KPI rows per organisation too")
    cmd.add_argument("--out", type=Path, metavar="FILE", help="write here (atomically) instead of stdout")


def period_bounds(config: Config, period_from: str, period_to: str) -> tuple[datetime, datetime]:
    """The widest [start, end) the period spans over the configuration's time zones; UsageError when
    it does not parse, or is inverted or empty in one of them."""
    zones = {c.zone.key for c in config.calendars.values()} | {c.zone.key for c in config.contracts}
    try:
        period = ReportPeriod(period_from, period_to)
        spans = [period.bounds(ZoneInfo(z)) for z in sorted(zones or {"UTC"})]
    except ValueError as exc:
        raise UsageError(f"--from/--to: {exc}") from None
    return min(s for s, _ in spans), max(e for _, e in spans)


def cmd_report(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config = config_from_args(args, env)  # a bad `contracts` block: ConfigError, exit 2
    instances = list(config.instances)
    if args.instance:  # its KPIs, and the credits of its contracts: those judge all their instances
        name = instance_named(config, args.instance).name
        covered = {i for c in config.contracts if name in c.instances for i in c.instances}
        instances = [i for i in instances if i == name or i in covered]
    if args.part != "kpis" and args.format != "csv":
        raise UsageError(
            f"--part {args.part} is only for --format csv (the {args.format} format has every part)"
        )
    period_to = args.period_to or args.period_from
    start, end = period_bounds(config, args.period_from, period_to)
    if args.out is not None and not args.out.parent.is_dir():
        raise UsageError(f"--out {args.out}: no directory {args.out.parent}")
    conn = redis_for(config)
    now = datetime.now(UTC)
    records = read(conn, config, instances, start, end, now, _progress_factory())
    report = build(records, config, args, period_to, now, conn, instances)
    try:
        text = render(report, args.format, part=args.part)
    except ValueError as exc:  # the report does not have the documented shape: a bug, not bad input
        raise Failure(f"the report could not be rendered: {exc}") from None
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_atomically(args.out, text)
        print(f"report written to {args.out}", file=sys.stderr)
    return EXIT_OK


def read(
    conn: Any,
    config: Config,
    instances: list[str],
    start: datetime,
    end: datetime,
    now: datetime,
    progress: Callable[[str, int], Any],
) -> list[Any]:
    """The stored records, then the open tickets' clocks evaluated from their logs (in that order:
    build_report keeps the later of two records of one clock)."""
    days = len(outcomes.days_to_read(start, end, now)) * len(instances)
    with progress("reading records", days) as bar:
        try:
            records = outcomes.read_records(conn, instances, start, end, now, progress=bar.update)
        except ValueError as exc:
            raise Failure(f"a stored record is unreadable: {exc}") from None
    tickets = {name: outcomes.open_tickets(conn, name) for name in instances}
    with progress("evaluating open tickets", sum(len(t) for t in tickets.values())) as bar:
        try:
            for name, open_ones in tickets.items():
                records.extend(
                    outcomes.evaluate_open(conn, config, name, open_ones, now, progress=bar.update)
                )
        except ValueError as exc:
            raise Failure(f"a ticket could not be evaluated: {exc}") from None
    return records


def build(
    records: list[Any],
    config: Config,
    args: argparse.Namespace,
    period_to: str,
    now: datetime,
    conn: Any,
    instances: list[str],
) -> dict[str, Any]:
    try:
        report = build_report(
            records, config.contracts, outcomes.read_incidents(conn, instances), args.period_from, period_to,
            config.calendars, now=now, instance=args.instance, by_organisation=args.by_organisation,
        )  # fmt: skip
    except ValueError as exc:  # e.g. records naming a calendar the configuration no longer has
        raise UsageError(f"{exc} (the configuration must keep what the kept records name)") from None
    # A group whose cycles are all still open has no target and no time to show; sla.kpis still gives
    # it a distribution row without buckets, which the report's shape (connector/reports) refuses.
    report["distributions"] = [d for d in report["distributions"] if d["buckets"]]
    return report


def _progress_factory() -> Callable[[str, int], Any]:
    """tqdm bars on stderr when it is a terminal; silent when piped or redirected."""
    from tqdm import tqdm

    quiet = not sys.stderr.isatty()

    def bar(what: str, total: int) -> Any:
        return tqdm(total=total, desc=what, unit="", disable=quiet, leave=False, file=sys.stderr)

    return bar


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader sees the old file or the whole new one, never a part."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot write there ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would create it (mkstemp makes it 0600)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"--out {path}: cannot write there ({exc.strerror or exc})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
