"""Rendering of the contract report: terminal table, CSV parts, JSON and the self-contained HTML page,
from the hand-built sample in fixtures/report_sample.json. Headless Chromium opens the page in
test_report_html_chromium.py."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from connector import reports
from connector.reports import csv_out, formatting, html, shape, svg, table
from tests.dotted import with_value

SAMPLE = Path(__file__).parent / "fixtures" / "report_sample.json"
HOSTILE = '<script>alert("x")</script> & "quotes" \'single\''


@pytest.fixture
def report() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def empty_report() -> dict[str, Any]:
    return {
        "period": {"from": "2026-11-01T00:00:00+01:00", "to": "2026-12-01T00:00:00+01:00"},
        "generated_at": "2026-12-02T07:30:00+00:00",
        "rule": "cycles count where they end",
        "kpis": [],
        "weekly": [],
        "distributions": [],
        "credits": [],
        "credit_totals": [],
        "uptime": [],
    }


# --- durations, shares, money -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "–"),
        (0, "0s"),
        (45, "45s"),
        (59.4, "59s"),
        (59.6, "1m"),
        (1800, "30m"),
        (3600, "1h"),
        (16200, "4h 30m"),
        (16229, "4h 30m"),
        (16231, "4h 31m"),
        (3599.9, "1h"),
        (187200, "52h"),  # never days: a business day is 8h or 24h
        (70566.3, "19h 36m"),
    ],
)
def test_duration_is_hours_and_minutes(seconds: float | None, text: str) -> None:
    assert formatting.duration(seconds) == text


def test_a_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match=r"a duration cannot be negative: -1 seconds"):
        formatting.duration(-1)


def test_shares_and_money() -> None:
    assert formatting.percent(0.9375) == "93.8%"
    assert formatting.percent(0.99841, 3) == "99.841%"
    assert formatting.percent(None) == "–"
    assert formatting.money(1250, "USD") == "1,250.00 USD"
    assert formatting.number(12.5) == "12.5" and formatting.number(25) == "25"


# --- the shape: every bad input named --------------------------------------------------------------


def test_the_sample_is_the_documented_shape(report: dict[str, Any]) -> None:
    shape.check(report)


def _broken(report: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `report` with `value` at `path` ("kpis.0.metric"); `...` deletes the key."""
    return with_value(report, path, value)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "kpis.0.metric",
            "response",
            r"^report\.kpis\[0\]\.metric: 'response' is not one of \['first_response'",
        ),
        ("kpis.2.share_met", 1.2, r"^report\.kpis\[2\]\.share_met: 1\.2 is greater than the maximum of 1$"),
        ("kpis.0.mean_s", -5, r"^report\.kpis\[0\]\.mean_s: -5 is less than the minimum of 0$"),
        ("kpis.0.met", "21", r"^report\.kpis\[0\]\.met: '21' is not of type 'integer'$"),
        ("kpis.0.met", True, r"^report\.kpis\[0\]\.met: True is not of type 'integer'$"),
        ("kpis.1.open", ..., r"^report\.kpis\[1\]: 'open' is a required property$"),
        ("kpis.1.opne", 3, r"^report\.kpis\[1\]: unknown key\(s\) 'opne'; expected instance, policy, "),
        ("kpis.0.breaches_by_level.breach", -1, r"^report\.kpis\[0\]\.breaches_by_level\.breach: -1 is less"),
        (
            "weekly.3.week_start",
            "16/11/2026",
            r"^report\.weekly\[3\]\.week_start: '16/11/2026' is not a date ",
        ),
        (
            "weekly.3.week_start",
            "2026-02-30",
            r"^report\.weekly\[3\]\.week_start: '2026-02-30' is not a real ",
        ),
        (
            "credits.1.month",
            "2026-13",
            r"^report\.credits\[1\]\.month: '2026-13' is not a real calendar month$",
        ),
        (
            "credit_totals.0.month",
            "2026-11-01",
            r"^report\.credit_totals\[0\]\.month: '2026-11-01' is not a month",
        ),
        (
            "credits.0.kind",
            "penalty",
            r"^report\.credits\[0\]\.kind: 'penalty' is not one of \['kpi', 'uptime'\]$",
        ),
        (
            "uptime.0.availability",
            99.84,
            r"^report\.uptime\[0\]\.availability: 99\.84 is greater than the max",
        ),
        ("distributions.0.buckets", [], r"^report\.distributions\[0\]\.buckets: \[\] should be non-empty$"),
        (
            "distributions.0.buckets.0.upto_s",
            0,
            r"^report\.distributions\[0\]\.buckets\[0\]\.upto_s: 0 is less",
        ),
        (
            "period.from",
            "last month",
            r"^report\.period\.from: 'last month' is not an ISO 8601 date or date-time",
        ),
        ("uptime", None, r"^report\.uptime: None is not of type 'array'$"),
        ("rule", ..., r"^report: 'rule' is a required property$"),
    ],
)
def test_a_report_that_is_not_the_shape_is_refused_naming_the_place(
    report: dict[str, Any], path: str, value: Any, message: str
) -> None:
    bad = _broken(report, path, value)
    for fmt in reports.FORMATS:
        with pytest.raises(ValueError, match=message):
            reports.render(bad, fmt)


def test_histogram_buckets_must_increase(report: dict[str, Any]) -> None:
    report["distributions"][1]["buckets"][3]["upto_s"] = 1200
    with pytest.raises(
        ValueError,
        match=r"^report\.distributions\[1\]\.buckets\[3\]\.upto_s: 1200 is not above "
        r"the previous bucket's 1800; buckets go in increasing order of upto_s$",
    ):
        reports.render(report, "html")


def test_not_a_dict_at_all() -> None:
    with pytest.raises(ValueError, match=r"^report: \[\] is not of type 'object'$"):
        reports.render([], "json")  # type: ignore[arg-type]


def test_unknown_format_and_part_are_named(report: dict[str, Any]) -> None:
    with pytest.raises(
        ValueError, match=r"^unknown report format 'pdf'; expected one of table, csv, json, html$"
    ):
        reports.render(report, "pdf")
    with pytest.raises(ValueError, match=r"^unknown CSV part 'tickets'; expected one of kpis, weekly, "):
        reports.render(report, "csv", part="tickets")
    with pytest.raises(
        ValueError, match=r"^part 'uptime' is only for --format csv; the html format has every"
    ):
        reports.render(report, "html", part="uptime")


# --- terminal table -------------------------------------------------------------------------------


def test_table_aligns_columns_and_right_aligns_numbers() -> None:
    rows = [{"name": "api", "n": 2}, {"name": "billing", "n": 1234}]
    columns = [("name", lambda r: r["name"], False), ("count", lambda r: str(r["n"]), True)]
    assert table.table(rows, columns) == "name     count\n-------  -----\napi          2\nbilling   1234"


def test_table_counts_wide_characters_as_two_columns() -> None:
    rows = [{"name": "東京 GmbH"}, {"name": "Berlin"}]
    columns = [("customer", lambda r: r["name"], False), ("x", lambda r: "1", True)]
    lines = table.table(rows, columns).splitlines()
    assert lines[2] == "東京 GmbH  1" and lines[3] == "Berlin     1"
    assert {table.width(line) for line in lines} == {12}


def test_table_neutralises_terminal_control_characters(report: dict[str, Any]) -> None:
    """A customer name is user data: an escape sequence must not reach the terminal."""
    report["credit_totals"][0]["customer"] = "Evil\x1b[2J\x1b]0;pwned\x07 Corp\u202e"
    out = reports.render(report, "table")
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "Evil\ufffd[2J\ufffd]0;pwned\ufffd Corp\ufffd" in out


def test_table_of_the_sample(report: dict[str, Any]) -> None:
    out = reports.render(report, "table")
    lines = out.splitlines()
    period = "2026-11-01T00:00:00+01:00 to 2026-12-01T00:00:00+01:00"
    assert lines[0] == f"SLA report {period} (generated 2026-12-02T07:30:00+00:00)"
    kpis = lines[lines.index("KPIs") + 1 : lines.index("Service credits") - 1]
    assert len(kpis) == 2 + len(report["kpis"])
    header = kpis[0]
    # Right-aligned: every value of "met %" ends where its header ends.
    end = header.index("met %") + len("met %")
    assert [line[end - 6 : end] for line in kpis[2:5]] == [" 91.3%", " 91.8%", " 94.0%"]
    assert (
        "acme-jira     standard  normal    resolution" in out
        and "19h 36m" in out
        and "breach 11, late 4" in out
    )
    assert 'globex-standard  Globex "Intl" Ltd    2026-11  25 (capped)  1,250.00 USD' in out
    assert re.search(r"^api +acme-gold +2026-11 +99\.841% +99\.900% +1h 9m +720h +2  NO$", out, re.M)


def test_table_of_an_empty_report_says_none() -> None:
    out = reports.render(empty_report(), "table")
    assert out.count("(none)") == 4


# --- CSV ------------------------------------------------------------------------------------------


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_kpis_are_flat_with_one_column_per_escalation_level(report: dict[str, Any]) -> None:
    rows = _rows(reports.render(report, "csv"))
    assert rows[0] == [
        "instance", "policy", "priority", "metric", "organisation", "in_scope", "met", "breached", "open",
        "share_met", "target_s", "mean_s", "median_s", "p90_s",
        "breaches_by_level.breach", "breaches_by_level.late",
    ]  # fmt: skip
    assert len(rows) == 1 + len(report["kpis"])
    assert rows[4] == ["acme-jira", "standard", "urgent", "resolution", "", "23", "18", "3", "2", "0.8571",
                       "14400", "9120.0", "7800", "15900", "3", "1"]  # fmt: skip
    # No breach at all: 0 in every level column; unknown times: empty cells.
    assert rows[-1][-6:] == ["28800", "", "", "", "0", "0"]


def test_csv_uses_crlf_and_quotes_what_needs_quoting(report: dict[str, Any]) -> None:
    text = reports.render(report, "csv", part="credit_totals")
    assert text.split("\r\n")[0] == "contract,customer,month,percent,capped,amount,currency"
    assert 'globex-standard,"Globex ""Intl"" Ltd",2026-11,25,true,1250,USD\r\n' in text


def test_csv_keeps_a_formula_like_name_as_text(report: dict[str, Any]) -> None:
    report["credits"][0]["customer"] = '=HYPERLINK("http://evil.example","x")'
    report["credits"][1]["customer"] = "-2+3"
    rows = _rows(reports.render(report, "csv", part="credits"))
    assert rows[1][1] == '\'=HYPERLINK("http://evil.example","x")' and rows[2][1] == "'-2+3"


@pytest.mark.parametrize("part", csv_out.PARTS)
def test_every_csv_part_has_one_header_row_and_a_row_per_item(report: dict[str, Any], part: str) -> None:
    rows = _rows(reports.render(report, "csv", part=part))
    expected = (
        sum(len(d["buckets"]) + 1 for d in report["distributions"])
        if part == "distributions"
        else len(report[part])
    )
    assert len(rows) == 1 + expected
    assert len({len(r) for r in rows}) == 1
    header = [h for h in rows[0] if not h.startswith("breaches_by_level.")]  # no row, no level
    assert _rows(reports.render(empty_report(), "csv", part=part)) == [header]


def test_csv_distributions_have_bounds_and_an_open_last_bin(report: dict[str, Any]) -> None:
    rows = _rows(reports.render(report, "csv", part="distributions"))
    assert rows[0] == ["instance", "policy", "priority", "metric", "target_s", "from_s", "upto_s", "count"]
    first = [r for r in rows[1:] if r[:4] == ["acme-jira", "standard", "high", "first_response"]]
    assert [r[5:] for r in first] == [["0", "600", "10"], ["600", "1200", "12"], ["1200", "1800", "9"],
                                      ["1800", "2700", "8"], ["2700", "3600", "6"], ["3600", "5400", "3"],
                                      ["5400", "", "1"]]  # fmt: skip


# --- JSON -----------------------------------------------------------------------------------------


def test_json_is_the_report_in_the_schema_key_order(report: dict[str, Any]) -> None:
    text = reports.render(report, "json")
    assert json.loads(text) == report
    shuffled = json.loads(json.dumps(report), object_pairs_hook=lambda pairs: dict(reversed(pairs)))
    for mine, theirs in zip(shuffled["kpis"], report["kpis"], strict=True):
        mine["breaches_by_level"] = theirs["breaches_by_level"]  # the producer's order of levels is kept
    assert list(shuffled) != list(report)
    assert reports.render(shuffled, "json") == text  # the same bytes whatever order the producer used
    first_kpi = json.loads(text)["kpis"][0]
    assert list(first_kpi) == list(shape.schema()["properties"]["kpis"]["items"]["properties"])
    assert '"organisation": "Müller & Söhne GmbH"' in text  # UTF-8 as is, not \u escapes


def test_json_keeps_the_level_order_of_the_producer(report: dict[str, Any]) -> None:
    report["kpis"][3]["breaches_by_level"] = {"late": 1, "breach": 3}
    assert list(json.loads(reports.render(report, "json"))["kpis"][3]["breaches_by_level"]) == [
        "late",
        "breach",
    ]


def test_json_refuses_not_a_number(report: dict[str, Any]) -> None:
    report["kpis"][0]["mean_s"] = float("nan")  # NaN passes `minimum`; JSON has no NaN
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        reports.render(report, "json")


# --- HTML -----------------------------------------------------------------------------------------


class _Page(HTMLParser):
    """Elements and attributes of a rendered page, for structural checks."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str, **attrs: str) -> int:
        return sum(1 for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items()))


def _page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def test_html_is_one_file_that_fetches_nothing(report: dict[str, Any]) -> None:
    text = reports.render(report, "html")
    page = _page(text)
    assert page.count("script") == 0 and page.count("link") == 0 and page.count("img") == 0
    assert page.count("meta", **{"http-equiv": "Content-Security-Policy"}) == 1
    assert "default-src 'none'" in html.CSP and "script-src" not in html.CSP
    # The only URL in the file is the SVG namespace, which is a name, not something fetched.
    assert set(re.findall(r"[a-z]+://[^\s\"'<>]*", text)) == {"http://www.w3.org/2000/svg"}
    linked = [a.get("href") for t, a in page.tags if "href" in a] + [
        a.get("src") for t, a in page.tags if "src" in a
    ]
    assert linked and all(link.startswith("#") for link in linked)  # only the section links


def test_html_has_every_chart_with_an_accessible_name_and_a_table_beside_it(report: dict[str, Any]) -> None:
    page = _page(reports.render(report, "html"))
    # 3 weekly line charts (acme-jira first response and resolution, acme-zendesk first response),
    # 5 histograms, the breaches bars and the uptime bars.
    assert page.count("svg") == page.count("svg", role="img") == 10
    assert page.count("div", **{"class": "pair"}) == 10
    for tag, attrs in page.tags:
        if tag == "svg":
            title, desc = (attrs.get("aria-labelledby") or "").split()
            assert page.count("title", id=title) == 1 and page.count("desc", id=desc) == 1
    for section in ("kpis", "weekly", "distributions", "breaches", "credits", "uptime"):
        assert page.count("section", id=section) == 1


def test_html_shows_human_durations_and_shares(report: dict[str, Any]) -> None:
    text = " ".join(_page(reports.render(report, "html")).text)
    for shown in (
        "19h 36m",
        "4h 25m",
        "target 40h",
        "≤1h 30m",
        ">48h",
        "93.8%",
        "99.841%",
        "25 (capped)",
        "1,250.00 USD",
        "breach 11, late 4",
        "87.5% (7 of 8)",
    ):
        assert shown in text, shown


def test_html_escapes_every_user_text(report: dict[str, Any]) -> None:
    report["kpis"][7]["organisation"] = HOSTILE
    report["credits"][0]["customer"] = HOSTILE
    report["credit_totals"][0]["customer"] = HOSTILE
    report["uptime"][0]["service"] = HOSTILE
    report["weekly"][0]["instance"] = HOSTILE
    report["weekly"][1]["priority"] = HOSTILE  # a legend entry and a column heading
    report["distributions"][0]["policy"] = HOSTILE
    report["kpis"][0]["breaches_by_level"] = {HOSTILE: 2}
    report["rule"] = HOSTILE
    text = reports.render(report, "html")
    assert "<script" not in text and "'single'" not in text and '"quotes"' not in text
    page = _page(text)
    assert page.count("script") == 0
    shown = "".join(page.text)
    assert shown.count(HOSTILE) >= 8  # shown as text: in tables, headings, chart titles and tooltips


def test_html_of_an_empty_report_says_so_and_draws_nothing() -> None:
    page = _page(reports.render(empty_report(), "html"))
    assert page.count("svg") == 0 and page.count("table") == 0
    text = " ".join(page.text)
    for empty in (
        "No ticket in scope",
        "No weekly figures",
        "No response or resolution times",
        "No service credit is owed",
        "No service with an uptime guarantee",
    ):
        assert empty in text


# --- chart geometry -------------------------------------------------------------------------------


def _buckets(*bounds: int) -> list[dict[str, int]]:
    return [{"upto_s": b, "count": 1} for b in bounds]


@pytest.mark.parametrize(
    ("target", "position"),
    [
        (1800, 2.0),
        (1200, 1.5),
        (300, 0.5),
        (3600, 3.0),
        (5000, 3.0),
    ],  # beyond the last bound: the "over" edge
)
def test_target_marker_falls_inside_its_bucket(target: int, position: float) -> None:
    assert html._target_position(_buckets(600, 1800, 3600), target) == position


@pytest.mark.parametrize(
    ("lower", "upper", "verdict"),
    [(0, 600, "yes"), (600, 1800, "yes"), (1800, 3600, "no"), (600, 2400, "partly"), (3600, None, "no"),
     (1200, None, "partly")],
)  # fmt: skip
def test_bins_within_partly_or_over_the_target(lower: int, upper: int | None, verdict: str) -> None:
    assert html._within(lower, upper, 1800) == verdict
    assert html._within(lower, upper, None) == "–"


@pytest.mark.parametrize(
    ("values", "floor"),
    [
        ([0.99841, 0.999], 0.998),
        ([0.97125, 0.99], 0.95),
        ([1.0], 0.999),
        ([0.999, 0.9995], 0.998),
        ([0.2], 0.0),
    ],
)
def test_availability_axis_starts_a_round_step_below_the_lowest_value(
    values: list[float], floor: float
) -> None:
    assert svg.availability_floor(values) == pytest.approx(floor)


def test_uptime_axis_ticks_end_at_100_percent(report: dict[str, Any]) -> None:
    chart = svg.uptime_chart("u", "t", "d", [("a", 0.97125, 0.99, False), ("b", 1.0, 0.995, True)])
    ticks = re.findall(r">([0-9.]+%)</text>", chart)
    assert ticks[:6] == ["95%", "96%", "97%", "98%", "99%", "100%"]
    assert "scale starts at 95%, not 0" in chart


def test_a_missing_week_is_a_gap_in_its_line() -> None:
    chart = svg.line_chart("c", "t", "d", ["w1", "w2", "w3", "w4"], [("high", [1.0, None, 0.5, 0.75])], str)
    assert chart.count("<path") == 2 and chart.count("<circle") == 3


def test_weeks_without_rows_are_filled_in() -> None:
    assert html._weeks(["2026-11-16", "2026-11-02", "2026-11-02"]) == [
        "2026-11-02",
        "2026-11-09",
        "2026-11-16",
    ]
    assert html._weeks(["2026-11-03", "2026-11-02"]) == [
        "2026-11-02",
        "2026-11-03",
    ]  # not weeks apart: as found


def test_nice_steps() -> None:
    assert [svg.nice_step(s) for s in (6, 15, 30, 1, 0)] == [2, 5, 10, 0.5, 1.0]


# --- the producer's report ------------------------------------------------------------------------


def test_the_report_sla_builds_renders_in_every_format() -> None:
    """sla/report.py's November report (tests/sla/test_report.py) is the shape the renderers take."""
    from tests.sla.test_report import report as november_report

    built = november_report()
    shape.check(built)
    for fmt in ("table", "json", "html"):
        assert reports.render(built, fmt)
    for part in csv_out.PARTS:
        assert len(_rows(reports.render(built, "csv", part=part))) >= 1
    assert json.loads(reports.render(built, "json")) == json.loads(json.dumps(built))


def test_count_axes_have_whole_steps() -> None:
    chart = svg.bar_chart("c", "t", "d", ["a", "b"], [("n", [1, 2])])
    assert re.findall(r'text-anchor="end">([^<]*)</text>', chart) == ["0", "1", "2"]


def test_long_bar_labels_are_thinned_so_they_do_not_overlap() -> None:
    labels = [f"≤{formatting.duration(1440 * i)}" for i in range(1, 11)] + [">4h"]  # tenths of a 4h target
    chart = svg.bar_chart("c", "t", "d", labels, [("n", [1] * 11)])
    shown = re.findall(r'text-anchor="middle">([^<]*)</text>', chart)
    assert shown == ["≤24m", "≤1h 12m", "≤2h", "≤2h 48m", "≤3h 36m", "&gt;4h"]
    assert (
        len(
            re.findall(
                r'text-anchor="middle">', svg.bar_chart("c", "t", "d", list("abcdef"), [("n", [1] * 6)])
            )
        )
        == 6
    )


def test_a_week_with_nothing_ended_shows_no_share(report: dict[str, Any]) -> None:
    report["weekly"][2].update(met=0, breached=0, share_met=None)  # acme-jira urgent first response, Nov 9
    text = reports.render(report, "html")
    assert "(0 of 0)" not in text
    assert re.search(r"<td>2026-11-09</td><td class=\"num\">–</td>", text)
