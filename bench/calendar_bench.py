"""Benchmark: sla.calendar.BusinessCalendar against the `businesstimedelta` package.

Run: .venv/bin/python bench/calendar_bench.py [--cases N] [--runs R] [--seed S]

Both implementations get the same random cases: Mon-Fri 09:00-17:00 in Europe/Berlin with German
(national) holidays, start instants uniform over 2025-2027 to the second (inside and outside hours),
spans of 1 and 60 business days. Prints per-operation medians over several runs, the speedup, and
every case where the two disagree (see docs/benchmarks.md for why they do).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import businesstimedelta as btd  # noqa: E402
import holidays  # noqa: E402
import pytz  # noqa: E402

from sla.calendar import BusinessCalendar  # noqa: E402

ZONE = "Europe/Berlin"
DAY = timedelta(hours=8)  # one business day of Mon-Fri 09:00-17:00
SPANS = {"1 business day": DAY, "60 business days": 60 * DAY}
FIRST, LAST = datetime(2025, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)


def ours() -> BusinessCalendar:
    cfg = {"timezone": ZONE, "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}}
    return BusinessCalendar.from_config(cfg, name="bench")


def theirs() -> Any:
    tz = pytz.timezone(ZONE)
    workday = btd.WorkDayRule(
        start_time=datetime.min.time().replace(hour=9),
        end_time=datetime.min.time().replace(hour=17),
        working_days=[0, 1, 2, 3, 4],
        tz=tz,
    )
    # A plain set of dates is the fastest holiday container businesstimedelta accepts.
    german = frozenset(holidays.country_holidays("DE", years=range(2024, 2031)))
    return btd.Rules([workday, btd.HolidayRule(german, tz=tz)])


def make_cases(cal: BusinessCalendar, span: timedelta, count: int, rng: random.Random) -> list[tuple]:
    """(start, end) pairs: start uniform in 2025-2027; end = add(start, span) moved by up to an hour."""
    width = int((LAST - FIRST).total_seconds())
    cases = []
    for _ in range(count):
        start = FIRST + timedelta(seconds=rng.randrange(width))
        end = cal.add(start, span) + timedelta(seconds=rng.randrange(-3600, 3601))
        cases.append((start, end))
    return cases


def probes(cal: BusinessCalendar, rules: Any) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """Hand-picked cases where the two differ; see docs/benchmarks.md for which side is right."""
    ber = ZoneInfo(ZONE)

    def at(*args: int) -> datetime:
        return datetime(*args, tzinfo=ber)

    def their_add(start: datetime, span: timedelta) -> datetime:
        return start + btd.BusinessTimeDelta(rules, timedelta=span)

    a, b = at(2026, 11, 27, 9, 0, 0, 500_000), at(2026, 11, 27, 10)
    saturday, late = at(2026, 11, 28, 3), at(2036, 11, 27, 12)
    return [
        (
            "between(Fri 09:00:00.5, Fri 10:00)",
            lambda: cal.between(a, b),
            lambda: rules.difference(a, b).timedelta,
        ),
        (
            "between(Fri 10:00, Fri 09:00:00.5)",
            lambda: cal.between(b, a),
            lambda: rules.difference(b, a).timedelta,
        ),
        (
            "add(Sat 03:00, 0)",
            lambda: cal.add(saturday, timedelta(0)),
            lambda: their_add(saturday, timedelta(0)),
        ),
        ("add(2036-11-27 12:00, 8h)", lambda: cal.add(late, DAY), lambda: their_add(late, DAY)),
    ]


def per_op(fn: Callable[[], None], count: int, runs: int) -> float:
    """Median over `runs` of the seconds per operation."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) / count)
    return statistics.median(samples)


def fmt(seconds: float) -> str:
    return f"{seconds * 1e6:9.1f} µs" if seconds < 1e-2 else f"{seconds * 1e3:9.1f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    cal, rules = ours(), theirs()

    t0 = time.perf_counter()
    BusinessCalendar.from_config(
        {"timezone": ZONE, "hours": {"mon-fri": ["09:00-17:00"]}, "holidays": {"country": "DE"}}
    )._table(2026)
    print(f"one-off cost of a year table (built lazily, then cached): {fmt(time.perf_counter() - t0)}")
    print(
        f"{args.cases} cases per span, median of {args.runs} runs (businesstimedelta: "
        f"{max(1, args.runs // 2)} runs)\n"
    )
    print(f"{'operation':<28}{'ours':>13}{'businesstimedelta':>20}{'speedup':>10}")

    disagreements: list[str] = []
    for label, span in SPANS.items():
        cases = make_cases(cal, span, args.cases, rng)
        bspan = btd.BusinessTimeDelta(rules, timedelta=span)
        for start, end in cases:  # compare results (also warms our year tables)
            a, b = cal.add(start, span), start + bspan
            if a != b:
                disagreements.append(
                    f"add({start.isoformat()}, {span}): ours {a.astimezone(UTC)}, "
                    f"businesstimedelta {b.astimezone(UTC)}"
                )
            a2, b2 = cal.between(start, end), rules.difference(start, end).timedelta
            if a2 != b2:
                disagreements.append(
                    f"between({start.isoformat()}, {end.isoformat()}): ours {a2}, businesstimedelta {b2}"
                )

        def our_add(cases=cases, span=span) -> None:
            for start, _ in cases:
                cal.add(start, span)

        def their_add(cases=cases, bspan=bspan) -> None:
            for start, _ in cases:
                start + bspan  # noqa: B018

        def our_between(cases=cases) -> None:
            for start, end in cases:
                cal.between(start, end)

        def their_between(cases=cases) -> None:
            for start, end in cases:
                rules.difference(start, end)

        for op, mine, other in (("add", our_add, their_add), ("between", our_between, their_between)):
            t_ours = per_op(mine, len(cases), args.runs)
            t_theirs = per_op(other, len(cases), max(1, args.runs // 2))
            print(f"{op + ', ' + label:<28}{fmt(t_ours):>13}{fmt(t_theirs):>20}{t_theirs / t_ours:>9.0f}x")

    print(f"\n{len(disagreements)} disagreement(s) out of {4 * args.cases} comparisons")
    for line in disagreements[:20]:
        print("  " + line)
    print("\nprobes (ours | businesstimedelta):")
    for label, mine, other in probes(cal, rules):
        results = []
        for fn in (mine, other):
            try:
                results.append(str(fn()))
            except Exception as exc:  # a crash is a result worth printing here
                results.append(f"{type(exc).__name__}: {exc}")
        print(f"  {label:<38}{results[0]:<34}| {results[1]}")

    # `evaluate` runs on every event: its rate for a ticket with 20 events (bench/evaluate_bench.py).
    import evaluate_bench

    print("\nevaluate, a ticket with 20 events:")
    evaluate_bench.report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
