"""The report as CSV for spreadsheets and BI: one part per file, one header row, flat rows.

Values stay machine values (fractions 0..1, seconds, empty for None) so a spreadsheet can compute
with them; the human forms are the table's and the HTML's.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

from connector.reports import shape

#: The parts `render_csv` can write; `kpis` is the default.
PARTS = ("kpis", "weekly", "distributions", "credits", "credit_totals", "uptime")

# A text cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets: a
# customer named "=HYPERLINK(...)" must stay text (OWASP's CSV injection advice: a leading quote).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _keys(part: str) -> list[str]:
    return list(shape.schema()["properties"][part]["items"]["properties"])


def _kpi_rows(report: Mapping[str, Any]) -> Iterator[list[Any]]:
    """breaches_by_level becomes one column per level, `breaches_by_level.<level>`, in the order the
    levels first appear; a row without that level has 0."""
    keys = [k for k in _keys("kpis") if k != "breaches_by_level"]
    levels: dict[str, None] = {}
    for row in report["kpis"]:
        levels.update(dict.fromkeys(str(k) for k in row["breaches_by_level"]))
    yield keys + [f"breaches_by_level.{level}" for level in levels]
    for row in report["kpis"]:
        counts = {str(k): n for k, n in row["breaches_by_level"].items()}
        yield [row[k] for k in keys] + [counts.get(level, 0) for level in levels]


def _distribution_rows(report: Mapping[str, Any]) -> Iterator[list[Any]]:
    """One row per bucket, from_s < time <= upto_s; the last row of each histogram counts the times
    above its last bucket, with an empty upto_s."""
    keys = ["instance", "policy", "priority", "metric", "target_s"]
    yield keys + ["from_s", "upto_s", "count"]
    for row in report["distributions"]:
        lower = 0
        for bucket in row["buckets"]:
            yield [row[k] for k in keys] + [lower, bucket["upto_s"], bucket["count"]]
            lower = bucket["upto_s"]
        yield [row[k] for k in keys] + [lower, None, row["over"]]


def _flat_rows(report: Mapping[str, Any], part: str) -> Iterator[list[Any]]:
    keys = _keys(part)
    yield keys
    for row in report[part]:
        yield [row[k] for k in keys]


def render_csv(report: Mapping[str, Any], part: str = "kpis") -> str:
    """One part of a checked report as CSV text (RFC 4180: CRLF line ends, quotes where needed)."""
    if part not in PARTS:
        raise ValueError(f"unknown CSV part {part!r}; expected one of {', '.join(PARTS)}")
    if part == "kpis":
        rows = _kpi_rows(report)
    elif part == "distributions":
        rows = _distribution_rows(report)
    else:
        rows = _flat_rows(report, part)
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()
