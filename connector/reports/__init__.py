"""Rendering of the contract report (the dict sla/report.py builds): a terminal table, CSV, JSON and
one self-contained HTML file. Every format checks the report's shape first (report.schema.json)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from connector.reports import shape
from connector.reports.csv_out import PARTS as CSV_PARTS
from connector.reports.csv_out import render_csv
from connector.reports.html import render_html
from connector.reports.table import render_table

FORMATS = ("table", "csv", "json", "html")

__all__ = ["CSV_PARTS", "FORMATS", "render", "render_csv", "render_html", "render_json", "render_table"]


def render_json(report: Mapping[str, Any]) -> str:
    """The report itself, keys in the schema's order, non-ASCII text as is."""
    return json.dumps(shape.ordered(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def render(report: Mapping[str, Any], fmt: str, *, part: str = "kpis") -> str:
    """`report` in format `fmt` (one of FORMATS); `part` picks the CSV part (one of CSV_PARTS).

    Raises ValueError naming the bad format, part or the first part of the report that is not the
    documented shape, before anything is rendered."""
    renderers = {"table": render_table, "json": render_json, "html": render_html}
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt != "csv" and part != "kpis":
        raise ValueError(f"part {part!r} is only for --format csv; the {fmt} format has every part")
    if part not in CSV_PARTS:
        raise ValueError(f"unknown CSV part {part!r}; expected one of {', '.join(CSV_PARTS)}")
    shape.check(report)
    return render_csv(report, part) if fmt == "csv" else renderers[fmt](report)
