"""The report as aligned plain-text tables for a terminal."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connector.reports import formatting as fmt

Row = Mapping[str, Any]
# (header, cell of a row, right-aligned)
Column = tuple[str, Callable[[Row], str], bool]

# Bidirectional overrides and isolates reorder what follows them on screen: shown as a placeholder.
_BIDI_CONTROLS = set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def clean(text: object) -> str:
    """User data (customer, organisation names) made safe for a terminal: a control character could
    move the cursor, recolour the screen or reorder the line."""
    s = str(text)
    return "".join("\ufffd" if unicodedata.category(c) == "Cc" or ord(c) in _BIDI_CONTROLS else c for c in s)


def width(text: str) -> int:
    """Columns `text` takes on a terminal: wide East Asian characters take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


def _pad(text: str, size: int, right: bool) -> str:
    gap = " " * (size - width(text))
    return gap + text if right else text + gap


def table(rows: Sequence[Row], columns: Sequence[Column]) -> str:
    """Rows under a header, each column as wide as its widest cell, two spaces apart."""
    if not rows:
        return "(none)"
    cells = [[clean(h) for h, _, _ in columns]] + [[clean(get(r)) for _, get, _ in columns] for r in rows]
    sizes = [max(width(line[i]) for line in cells) for i in range(len(columns))]
    lines = []
    for line in cells:
        text = "  ".join(_pad(c, sizes[i], columns[i][2]) for i, c in enumerate(line))
        lines.append(text.rstrip())
    lines.insert(1, "  ".join("-" * s for s in sizes))
    return "\n".join(lines)


def _levels(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{level} {n}" for level, n in counts.items()) or fmt.MISSING


def _text(key: str) -> Callable[[Row], str]:
    return lambda r: fmt.MISSING if r[key] is None else str(r[key])


KPI_COLUMNS: list[Column] = [
    ("instance", _text("instance"), False),
    ("policy", _text("policy"), False),
    ("priority", _text("priority"), False),
    ("metric", lambda r: fmt.metric(r["metric"]), False),
    ("organisation", _text("organisation"), False),
    ("in scope", _text("in_scope"), True),
    ("met", _text("met"), True),
    ("breached", _text("breached"), True),
    ("open", _text("open"), True),
    ("met %", lambda r: fmt.percent(r["share_met"]), True),
    ("target", lambda r: fmt.duration(r["target_s"]), True),
    ("mean", lambda r: fmt.duration(r["mean_s"]), True),
    ("median", lambda r: fmt.duration(r["median_s"]), True),
    ("p90", lambda r: fmt.duration(r["p90_s"]), True),
    ("breaches by level", lambda r: _levels(r["breaches_by_level"]), False),
]

CREDIT_COLUMNS: list[Column] = [
    ("contract", _text("contract"), False),
    ("customer", _text("customer"), False),
    ("month", _text("month"), False),
    ("rule", _text("rule"), False),
    ("measured", lambda r: fmt.percent(r["measured"], 3 if r["kind"] == "uptime" else 1), True),
    ("threshold", lambda r: fmt.percent(r["threshold"], 3 if r["kind"] == "uptime" else 1), True),
    ("credit %", lambda r: fmt.number(r["credit_percent"]), True),
    ("amount", lambda r: fmt.money(r["amount"], r["currency"]), True),
]

TOTAL_COLUMNS: list[Column] = [
    ("contract", _text("contract"), False),
    ("customer", _text("customer"), False),
    ("month", _text("month"), False),
    ("credit %", lambda r: fmt.number(r["percent"]) + (" (capped)" if r["capped"] else ""), True),
    ("amount", lambda r: fmt.money(r["amount"], r["currency"]), True),
]

UPTIME_COLUMNS: list[Column] = [
    ("service", _text("service"), False),
    ("contract", _text("contract"), False),
    ("month", _text("month"), False),
    ("availability", lambda r: fmt.percent(r["availability"], 3), True),
    ("guaranteed", lambda r: fmt.percent(r["guaranteed"], 3), True),
    ("downtime", lambda r: fmt.duration(r["downtime_s"]), True),
    ("service time", lambda r: fmt.duration(r["service_s"]), True),
    ("incidents", _text("incidents"), True),
    ("met", lambda r: fmt.MISSING if r["met"] is None else ("yes" if r["met"] else "NO"), False),
]


def render_table(report: Mapping[str, Any]) -> str:
    """KPIs, credits and uptime; the weekly series and distributions are in the HTML, CSV and JSON."""
    period = report["period"]
    parts = [
        clean(f"SLA report {period['from']} to {period['to']} (generated {report['generated_at']})"),
        clean(f"Counting rule: {report['rule']}"),
        "",
        "KPIs",
        table(report["kpis"], KPI_COLUMNS),
        "",
        "Service credits",
        table(report["credits"], CREDIT_COLUMNS),
        "",
        "Credit totals",
        table(report["credit_totals"], TOTAL_COLUMNS),
        "",
        "Uptime",
        table(report["uptime"], UPTIME_COLUMNS),
    ]
    return "\n".join(parts) + "\n"
