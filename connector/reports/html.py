"""The report as one self-contained HTML file: inline CSS, charts as inline SVG, no script, nothing
fetched. A Content-Security-Policy that allows only the inline style makes that a property of the
file: a browser refuses any script or network load, should one ever slip in."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from html import escape
from typing import Any

from connector.reports import formatting as fmt
from connector.reports import svg

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

CSS = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --line: #d0d7de; --bad: #b3261e; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1280px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 32px 0 8px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
.meta, .empty, figcaption { color: var(--muted); } caption { text-align: left; }
nav a { margin-right: 12px; }
.pair { display: flex; flex-wrap: wrap; gap: 8px 32px; align-items: flex-start; margin: 0 0 16px; }
.pair figure { margin: 0; flex: 0 1 640px; }
.pair .scroll { flex: 1 1 auto; }
.chart { max-width: 100%; height: auto; font-size: 11px; }
.chart .grid { stroke: #e6e9ec; } .chart .axis { stroke: var(--muted); }
.chart .tick, .chart .legend { fill: var(--muted); } .chart .legend { font-size: 12px; }
.chart .marker { stroke: var(--ink); stroke-width: 2; stroke-dasharray: 5 3; }
.chart .marker-label { fill: var(--ink); font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
td { white-space: nowrap; } td.wrap { white-space: normal; min-width: 16em; }
th { font-weight: 600; background: #f6f8fa; } td.num, th.num { text-align: right; }
.bad { color: var(--bad); font-weight: 600; }
"""


def _cell(text: object, num: bool = False, bad: bool = False, wrap: bool = False) -> str:
    """One escaped table cell: `num` right-aligns, `bad` marks a miss, `wrap` lets long text wrap."""
    classes = " ".join(c for c, on in (("num", num), ("bad", bad), ("wrap", wrap)) if on)
    return f'<td class="{classes}">{escape(str(text))}</td>' if classes else f"<td>{escape(str(text))}</td>"


def _table(caption: str, headers: Sequence[tuple[str, bool]], rows: Iterable[Sequence[str]]) -> str:
    """`headers` are (name, numeric); each row is a sequence of already escaped <td> cells."""
    head = "".join(f'<th scope="col"{" class=num" if num else ""}>{escape(h)}</th>' for h, num in headers)
    body = "\n".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return (
        f'<div class="scroll"><table><caption class="meta">{escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>"
    )


def _pair(chart: str, table: str) -> str:
    return f'<div class="pair"><figure>{chart}</figure>{table}</div>'


def _empty(what: str) -> str:
    return f'<p class="empty">{escape(what)}</p>'


def _first_seen(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _weeks(starts: Iterable[str]) -> list[str]:
    """The weeks of the data in order, with the weeks between that have no row filled in."""
    found = sorted({date.fromisoformat(s) for s in starts})
    if found and all((d - found[0]).days % 7 == 0 for d in found):
        found = [found[0] + timedelta(days=7 * i) for i in range((found[-1] - found[0]).days // 7 + 1)]
    return [d.isoformat() for d in found]


def _short(day: str) -> str:
    d = date.fromisoformat(day)
    return f"{MONTHS[d.month - 1]} {d.day}"


def _kpis(report: Mapping[str, Any]) -> str:
    rows = report["kpis"]
    if not rows:
        return _empty("No ticket in scope in this period.")
    headers = [
        ("instance", False),
        ("policy", False),
        ("priority", False),
        ("metric", False),
        ("organisation", False),
        ("in scope", True),
        ("met", True),
        ("breached", True),
        ("open", True),
        ("met %", True),
        ("target", True),
        ("mean", True),
        ("median", True),
        ("p90", True),
        ("breaches by level", False),
    ]
    body = []
    for r in rows:
        late = r["target_s"] is not None and r["p90_s"] is not None and r["p90_s"] > r["target_s"]
        levels = ", ".join(f"{level} {n}" for level, n in r["breaches_by_level"].items()) or fmt.MISSING
        body.append(
            [
                _cell(r["instance"]),
                _cell(r["policy"]),
                _cell(r["priority"]),
                _cell(fmt.metric(r["metric"])),
                _cell(r["organisation"] or fmt.MISSING),
                _cell(r["in_scope"], True),
                _cell(r["met"], True),
                _cell(r["breached"], True, bool(r["breached"])),
                _cell(r["open"], True),
                _cell(fmt.percent(r["share_met"]), True),
                _cell(fmt.duration(r["target_s"]), True),
                _cell(fmt.duration(r["mean_s"]), True),
                _cell(fmt.duration(r["median_s"]), True),
                _cell(fmt.duration(r["p90_s"]), True, late),
                _cell(levels),
            ]
        )
    return _table("Per instance, policy, priority and metric; times are business time.", headers, body)


def _weekly(report: Mapping[str, Any], ids: Iterable[str]) -> str:
    rows = report["weekly"]
    if not rows:
        return _empty("No weekly figures in this period.")
    weeks = _weeks(r["week_start"] for r in rows)
    groups: dict[tuple[str, str], dict[tuple[str, str], Mapping[str, Any]]] = defaultdict(dict)
    for r in rows:
        groups[(r["instance"], r["metric"])][(r["priority"], r["week_start"])] = r
    out = []
    for (instance, metric), cells in groups.items():
        priorities = _first_seen(p for p, _ in cells)
        series = [
            (p, [None if (c := cells.get((p, w))) is None else c["share_met"] for w in weeks])
            for p in priorities
        ]
        title = f"{instance}: share of {fmt.metric(metric)} met per week"
        desc = (
            f"Line chart, one line per priority ({', '.join(priorities)}), weeks {weeks[0]} to {weeks[-1]}, "
            f"share met from 0 to 100%. The table beside it lists every value."
        )
        chart = svg.line_chart(next(ids), title, desc, [_short(w) for w in weeks], series, fmt.percent)
        body = []
        for w in weeks:
            row = [_cell(w)]
            for p in priorities:
                c = cells.get((p, w))
                if c is None or not c["met"] + c["breached"]:
                    row.append(_cell(fmt.MISSING, True))
                else:
                    text = f"{fmt.percent(c['share_met'])} ({c['met']} of {c['met'] + c['breached']})"
                    row.append(_cell(text, True, bool(c["breached"])))
            body.append(row)
        headers = [("week of", False)] + [(p, True) for p in priorities]
        out.append(f"<h3>{escape(instance)}: {escape(fmt.metric(metric))}</h3>")
        out.append(_pair(chart, _table(f"{title} (met of met + breached)", headers, body)))
    return "\n".join(out)


def _bucket_labels(buckets: Sequence[Mapping[str, Any]]) -> list[str]:
    return [f"≤{fmt.duration(b['upto_s'])}" for b in buckets] + [f">{fmt.duration(buckets[-1]['upto_s'])}"]


def _target_position(buckets: Sequence[Mapping[str, Any]], target: float) -> float:
    """Where the target falls in bar units: inside the bucket that holds it, linearly."""
    lower = 0
    for i, b in enumerate(buckets):
        if target <= b["upto_s"]:
            return i + (target - lower) / (b["upto_s"] - lower)
        lower = b["upto_s"]
    return len(buckets)  # beyond the last bound: the edge of the "over" bar


_BIN_FILLS = {"yes": svg.WITHIN, "partly": "#E69F00", "no": svg.OVER, fmt.MISSING: "#8c959f"}


def _within(lower: float, upper: float | None, target: float | None) -> str:
    """Whether every time in the bin (lower, upper] is within the target: yes, partly or no."""
    if target is None:
        return fmt.MISSING
    if upper is not None and upper <= target:
        return "yes"
    return "no" if lower >= target else "partly"


def _distributions(report: Mapping[str, Any], ids: Iterable[str]) -> str:
    rows = report["distributions"]
    if not rows:
        return _empty("No response or resolution times in this period.")
    out = []
    for r in rows:
        buckets, target = r["buckets"], r["target_s"]
        labels = _bucket_labels(buckets)
        counts = [b["count"] for b in buckets] + [r["over"]]
        bounds = [0] + [b["upto_s"] for b in buckets] + [None]
        verdicts = [_within(bounds[i], bounds[i + 1], target) for i in range(len(counts))]
        name = f"{r['instance']} · {r['policy']} · {r['priority']}: time to {fmt.metric(r['metric'])}"
        marker = (
            None if target is None else (_target_position(buckets, target), f"target {fmt.duration(target)}")
        )
        desc = (
            f"Histogram of {sum(counts):,} business times in {len(counts)} bins"
            + (f"; the dashed line marks the target, {fmt.duration(target)}." if target is not None else ".")
            + " The table beside it lists every bin."
        )
        chart = svg.bar_chart(
            next(ids),
            name,
            desc,
            labels,
            [("tickets", counts)],
            fills=[_BIN_FILLS[v] for v in verdicts],
            marker=marker,
        )
        body = [
            [_cell(label), _cell(f"{n:,}", True), _cell(v)]
            for label, n, v in zip(labels, counts, verdicts, strict=True)
        ]
        headers = [("business time", False), ("count", True), ("within target", False)]
        out.append(f"<h3>{escape(name)}</h3>")
        out.append(_pair(chart, _table(f"target {fmt.duration(target)}", headers, body)))
    return "\n".join(out)


def _breaches(report: Mapping[str, Any], ids: Iterable[str]) -> str:
    rows = report["weekly"]
    if not rows:
        return _empty("No weekly figures in this period.")
    weeks = _weeks(r["week_start"] for r in rows)
    priorities = _first_seen(r["priority"] for r in rows)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        counts[(r["priority"], r["week_start"])] += r["breached"]
    series = [(p, [counts[(p, w)] for w in weeks]) for p in priorities]
    total = sum(counts.values())
    desc = (
        f"Stacked bar chart of {total:,} breaches over {len(weeks)} weeks, one colour per priority "
        f"({', '.join(priorities)}). The table beside it lists every value."
    )
    chart = svg.bar_chart(
        next(ids), "Breaches per week, all instances and metrics", desc, [_short(w) for w in weeks], series
    )
    body = [
        [_cell(w)]
        + [_cell(counts[(p, w)], True) for p in priorities]
        + [_cell(sum(counts[(p, w)] for p in priorities), True)]
        for w in weeks
    ]
    headers = [("week of", False)] + [(p, True) for p in priorities] + [("all", True)]
    return _pair(chart, _table("Breached cycles per week and priority", headers, body))


def _credits(report: Mapping[str, Any]) -> str:
    rows, totals = report["credits"], report["credit_totals"]
    if not rows and not totals:
        return _empty("No service credit is owed for this period.")
    headers = [
        ("contract", False),
        ("customer", False),
        ("month", False),
        ("rule", False),
        ("for", False),
        ("measured", True),
        ("threshold", True),
        ("in scope", True),
        ("credit %", True),
        ("fee", True),
        ("amount", True),
    ]
    body = []
    for r in rows:
        subject = (
            r["service"]
            if r["kind"] == "uptime"
            else " ".join(x for x in (r["priority"], fmt.metric(r["metric"]) if r["metric"] else None) if x)
        )
        digits = 3 if r["kind"] == "uptime" else 1
        body.append(
            [
                _cell(r["contract"]),
                _cell(r["customer"]),
                _cell(r["month"]),
                _cell(r["rule"], wrap=True),
                _cell(subject or fmt.MISSING),
                _cell(fmt.percent(r["measured"], digits), True),
                _cell(fmt.percent(r["threshold"], digits), True),
                _cell(fmt.MISSING if r["in_scope"] is None else r["in_scope"], True),
                _cell(fmt.number(r["credit_percent"]), True),
                _cell(fmt.money(r["fee"], r["currency"]), True),
                _cell(fmt.money(r["amount"], r["currency"]), True),
            ]
        )
    total_headers = [
        ("contract", False),
        ("customer", False),
        ("month", False),
        ("credit %", True),
        ("amount", True),
    ]
    total_body = [
        [
            _cell(t["contract"]),
            _cell(t["customer"]),
            _cell(t["month"]),
            _cell(fmt.number(t["percent"]) + (" (capped)" if t["capped"] else ""), True),
            _cell(fmt.money(t["amount"], t["currency"]), True),
        ]
        for t in totals
    ]
    return (
        _table("Each credit with the rule and the figures that triggered it", headers, body)
        + "<h3>Totals per customer and month</h3>"
        + _table("Sum of the credits, after the contract's cap", total_headers, total_body)
    )


def _uptime(report: Mapping[str, Any], ids: Iterable[str]) -> str:
    rows = report["uptime"]
    if not rows:
        return _empty("No service with an uptime guarantee in this period.")
    bars = [(f"{r['service']} · {r['month']}", r["availability"], r["guaranteed"], r["met"]) for r in rows]
    below = sum(1 for r in rows if r["met"] is False)
    desc = (
        f"Horizontal bars: availability of {len(rows)} service months; a dashed tick marks each "
        f"guarantee; {below} below it. The table beside it lists every value."
    )
    chart = svg.uptime_chart(
        next(ids), "Availability per service and month against the guarantee", desc, bars
    )
    headers = [
        ("service", False),
        ("contract", False),
        ("month", False),
        ("availability", True),
        ("guaranteed", True),
        ("downtime", True),
        ("service time", True),
        ("incidents", True),
        ("met", False),
    ]
    body = [
        [
            _cell(r["service"]),
            _cell(r["contract"] or fmt.MISSING),
            _cell(r["month"]),
            _cell(fmt.percent(r["availability"], 3), True),
            _cell(fmt.percent(r["guaranteed"], 3), True),
            _cell(fmt.duration(r["downtime_s"]), True),
            _cell(fmt.duration(r["service_s"]), True),
            _cell(r["incidents"], True),
            _cell(fmt.MISSING if r["met"] is None else ("yes" if r["met"] else "no"), bad=r["met"] is False),
        ]
        for r in rows
    ]
    return _pair(chart, _table("Downtime within the contract's service hours", headers, body))


SECTIONS = (
    ("kpis", "KPIs"),
    ("weekly", "Share met per week"),
    ("distributions", "Response and resolution times"),
    ("breaches", "Breaches over time"),
    ("credits", "Service credits"),
    ("uptime", "Uptime"),
)


def render_html(report: Mapping[str, Any]) -> str:
    """A checked report as a complete HTML document."""
    ids = (f"chart{i}" for i in itertools.count(1))
    period = report["period"]
    bodies = {
        "kpis": _kpis(report),
        "weekly": _weekly(report, ids),
        "distributions": _distributions(report, ids),
        "breaches": _breaches(report, ids),
        "credits": _credits(report),
        "uptime": _uptime(report, ids),
    }
    title = f"SLA report {period['from'][:10]} to {period['to'][:10]}"
    nav = "".join(f'<a href="#{key}">{escape(name)}</a>' for key, name in SECTIONS)
    sections = "\n".join(
        f'<section id="{key}" aria-labelledby="{key}-h"><h2 id="{key}-h">{escape(name)}</h2>\n'
        f"{bodies[key]}\n</section>"
        for key, name in SECTIONS
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{escape(title)}</h1>
<p class="meta">Period from {escape(period["from"])} to {escape(period["to"])}, generated
{escape(report["generated_at"])}. Counting rule: {escape(report["rule"])}</p>
<nav aria-label="Sections">{nav}</nav>
</header>
<main>
{sections}
</main>
</body>
</html>
"""
