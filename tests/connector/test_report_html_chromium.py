"""The HTML report opened in headless Chromium (Debian's package): no console error, no failed load,
no network request, every chart drawn with a size; a screenshot is kept in test-artifacts/.

The checker itself is proven on deliberately broken pages: each of them must be caught.
Skipped only when Chromium is absent outside CI; with CI=true a missing Chromium fails.
"""

from __future__ import annotations

import http.server
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector import reports

sys.path.insert(0, str(Path(__file__).resolve().parent))
from headless_chromium import CHROMIUM, Browser, PageCheck  # noqa: E402

SAMPLE = Path(__file__).parent / "fixtures" / "report_sample.json"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOSTILE = "<script>console.error('injected')</script><img src=x onerror=\"console.error('img')\">"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser for the module (a new tab per page): a start costs about 1.5 s on this machine."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"CI=true and {CHROMIUM} is missing: .ci/run installs Debian's chromium before the tests"
            )
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium); CI runs this test")
    with Browser() as started:
        yield started


def report() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def chart_failures(check: PageCheck, expected: int) -> list[str]:
    """Why the page's charts are not all drawn: a wrong count, an empty, unsized or unnamed <svg>."""
    out = [] if len(check.svgs) == expected else [f"{len(check.svgs)} <svg> elements, expected {expected}"]
    for i, s in enumerate(check.svgs):
        if not (s["width"] > 0 and s["height"] > 0):
            out.append(f"svg {i} ({s['title']!r}) has no size: {s['width']}x{s['height']}")
        if not s["marks"]:
            out.append(f"svg {i} ({s['title']!r}) draws nothing")
        if s["role"] != "img" or not s["title"]:
            out.append(f"svg {i} has no accessible name (role={s['role']!r}, title={s['title']!r})")
    return out


def keep_screenshot(check: PageCheck, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.write_bytes(check.screenshot)
    print(f"screenshot: {path}")
    return path


def test_the_sample_report_opens_cleanly_with_every_chart_drawn(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(reports.render(report(), "html"), encoding="utf-8")
    check = browser.check(page)
    shot = keep_screenshot(check, "report_sample.png")
    assert check.problems == []
    assert check.scripts == 0
    assert chart_failures(check, expected=10) == []
    assert check.title == "SLA report 2026-11-01 to 2026-12-01"
    assert "Müller & Söhne GmbH" in check.text and "19h 36m" in check.text and "25 (capped)" in check.text
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_the_report_sla_builds_opens_cleanly(browser: Browser, tmp_path: Path) -> None:
    from tests.sla.test_report import report as november_report

    page = tmp_path / "november.html"
    page.write_text(reports.render(november_report(), "html"), encoding="utf-8")
    check = browser.check(page)
    keep_screenshot(check, "report_november.png")
    assert check.problems == [] and check.scripts == 0
    assert check.svgs and chart_failures(check, expected=len(check.svgs)) == []


def test_hostile_names_are_shown_as_text_and_run_nothing(browser: Browser, tmp_path: Path) -> None:
    data = report()
    data["credit_totals"][0]["customer"] = HOSTILE
    data["kpis"][7]["organisation"] = HOSTILE
    data["weekly"][0]["priority"] = HOSTILE
    data["uptime"][1]["service"] = HOSTILE
    page = tmp_path / "hostile.html"
    page.write_text(reports.render(data, "html"), encoding="utf-8")
    check = browser.check(page)
    keep_screenshot(check, "report_hostile_names.png")
    assert check.problems == [] and check.scripts == 0
    assert check.text.count(HOSTILE) >= 4


def test_an_empty_report_opens_cleanly(browser: Browser, tmp_path: Path) -> None:
    data = report()
    for key in ("kpis", "weekly", "distributions", "credits", "credit_totals", "uptime"):
        data[key] = []
    page = tmp_path / "empty.html"
    page.write_text(reports.render(data, "html"), encoding="utf-8")
    check = browser.check(page)
    assert check.problems == [] and check.svgs == []
    assert "No ticket in scope in this period." in check.text


# --- the checker catches what it must: deliberately broken pages ----------------------------------


def _broken(browser: Browser, tmp_path: Path, body: str, head: str = "") -> PageCheck:
    page = tmp_path / "broken.html"
    page.write_text(
        f"<!doctype html><html><head><title>broken</title>{head}</head><body>{body}</body></html>"
    )
    return browser.check(page)


def test_an_uncaught_exception_is_caught(browser: Browser, tmp_path: Path) -> None:
    check = _broken(browser, tmp_path, "<p>hi</p><script>window.notAFunction();</script>")
    assert any(
        "uncaught exception: TypeError: window.notAFunction is not a function" in p for p in check.problems
    )


def test_a_console_error_is_caught(browser: Browser, tmp_path: Path) -> None:
    check = _broken(browser, tmp_path, "<script>console.error('chart data missing')</script>")
    assert "console.error: chart data missing" in check.problems


@pytest.fixture
def local_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that answers 200 to anything and records the paths asked for."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            asked.append(self.path)
            body = b"p { color: red }"
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_a_network_load_is_caught_even_when_it_succeeds(
    browser: Browser, tmp_path: Path, local_server: tuple[str, list[str]]
) -> None:
    url, asked = local_server
    check = _broken(
        browser,
        tmp_path,
        "<p>styled from the network</p>",
        head=f'<link rel="stylesheet" href="{url}/x.css">',
    )
    assert asked == ["/x.css"]  # the request really went out, and it succeeded
    assert check.problems == [f"network request: {url}/x.css"]


def test_a_failed_load_is_caught(browser: Browser, tmp_path: Path) -> None:
    check = _broken(browser, tmp_path, '<img src="missing-logo.png" alt="logo">')
    assert any(p.startswith("load failed (net::ERR_FILE_NOT_FOUND)") for p in check.problems)
    assert any(
        p.startswith("network request: file://") and p.endswith("missing-logo.png") for p in check.problems
    )


def test_what_the_report_policy_blocks_is_caught_too(browser: Browser, tmp_path: Path) -> None:
    """A script slipped into a page with the report's Content-Security-Policy does not run, and the
    refusal is reported: the policy is no place for a problem to hide."""
    from connector.reports.html import CSP

    head = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
    check = _broken(browser, tmp_path, "<script>console.error('ran')</script>", head=head)
    assert "console.error: ran" not in check.problems
    assert any("Content Security Policy" in p for p in check.problems), check.problems


def test_charts_without_size_or_marks_are_caught(browser: Browser, tmp_path: Path) -> None:
    body = (
        '<svg role="img" width="0" height="0"><title>a</title><rect width="5" height="5"/></svg>'
        '<svg role="img" width="100" height="50"><title>b</title></svg>'
        '<svg width="100" height="50"><rect width="5" height="5"/></svg>'
    )
    check = _broken(browser, tmp_path, body)
    assert check.problems == []
    assert chart_failures(check, expected=3) == [
        "svg 0 ('a') has no size: 0x0",
        "svg 1 ('b') draws nothing",
        "svg 2 has no accessible name (role=None, title=None)",
    ]
    assert chart_failures(check, expected=4)[0] == "3 <svg> elements, expected 4"
