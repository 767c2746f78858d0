"""`sla-connector report`: tickets delivered through the receiver's intake and looked at by a burst RQ
worker (tests/connector/fakes/harness.py) against the test Redis, then the report read back in every
format, figures checked by value; bad input exits 2 and writes nothing."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from connector.cli.main import main
from connector.config.loader import load_config
from tests.connector.fakes.cli import CliConfig, run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes import report_config as rc  # noqa: E402
from fakes.harness import Clock, drain, make_context, post  # noqa: E402

# The previous calendar month (UTC), relative to the real clock: the report reads the records with the
# real clock, and their day hashes expire at absolute times.
_TODAY = datetime.now(UTC).date()
M_END = datetime(_TODAY.year, _TODAY.month, 1, tzinfo=UTC)
M_START = datetime((M_END - timedelta(days=1)).year, (M_END - timedelta(days=1)).month, 1, tzinfo=UTC)
MONTH = M_START.strftime("%Y-%m")
H, M = timedelta(hours=1), timedelta(minutes=1)


def config_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "instances": {"desk": {"product": "testdesk", "dry_run": True, "base_url": "https://desk.test"}},
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [rc.policy()],
        "contracts": [rc.contract()],
    }
    return {**data, **overrides}


@pytest.fixture
def config_path(cli_config_file: CliConfig) -> Path:
    from fakes import testdesk

    testdesk.register()
    return cli_config_file(yaml.safe_dump(config_data()))


def tickets() -> dict[str, list[dict]]:
    a, b, c, f = (M_START + timedelta(days=n, hours=9) for n in (2, 3, 4, 5))
    d, e = M_END - 4 * H, M_END - 2 * H
    return {
        "A": [rc.created("A", a, priority="urgent"), rc.reply("A", a + 10 * M, 1),
              rc.status("A", a + H, 1, "solved")],
        "B": [rc.created("B", b, priority="urgent"), rc.reply("B", b + 2 * H, 1),
              rc.status("B", b + 10 * H, 1, "solved")],
        "C": [rc.created("C", c), rc.reply("C", c + 5 * M, 1), rc.reply("C", c + 20 * M, 2, "requester"),
              rc.reply("C", c + 30 * M, 3), rc.status("C", c + H, 1, "solved")],
        "D": [rc.created("D", d)],  # still open: both its clocks count as open in the month
        "E": [rc.created("E", e), rc.reply("E", e + 10 * M, 1), rc.status("E", M_END + M, 1, "solved")],
        "F": [rc.created("F", f, priority="low", type="incident", tags=["svc-api"]),
              rc.status("F", f + H, 1, "solved")],
        "G": [rc.created("G", a), rc.reply("G", a + M, 1), rc.status("G", a + H, 1, "solved"),
              rc.deleted("G", a + 2 * H)],
    }  # fmt: skip


@pytest.fixture
def delivered(config_path: Path, redis_conn: redis.Redis) -> Path:
    for n, (ticket, events) in enumerate(tickets().items()):
        assert post(redis_conn, f"d{n}", ticket, events)
    ctx = make_context(redis_conn, load_config(config_path), clock=Clock(datetime.now(UTC)))
    assert not drain(ctx).failures
    return config_path


def report_json(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> dict:
    code, out, err = run(capsys, "--config", str(path), "report", "--from", MONTH, "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_the_month_report_counts_each_cycle_where_it_ends(
    capsys: pytest.CaptureFixture[str], delivered: Path
) -> None:
    report = report_json(capsys, delivered)
    assert report["period"] == {"from": M_START.isoformat(), "to": M_END.isoformat()}
    rows = {(r["priority"], r["metric"]): r for r in report["kpis"]}
    assert set(rows) == {("urgent", "first_response"), ("urgent", "resolution"), ("low", "resolution"),
                         ("normal", "first_response"), ("normal", "next_reply"),
                         ("normal", "resolution")}  # fmt: skip

    def counts(key: tuple[str, str]) -> tuple[int, int, int, int, float | None]:
        r = rows[key]
        return r["in_scope"], r["met"], r["breached"], r["open"], r["share_met"]

    assert counts(("urgent", "first_response")) == (2, 1, 1, 0, 0.5)
    urgent_fr = rows[("urgent", "first_response")]
    assert (urgent_fr["mean_s"], urgent_fr["median_s"], urgent_fr["p90_s"]) == (3900, 3900, 7200)
    assert urgent_fr["target_s"] == 3600 and urgent_fr["breaches_by_level"] == {"late": 1}
    assert counts(("urgent", "resolution")) == (2, 1, 1, 0, 0.5)
    assert rows[("urgent", "resolution")]["breaches_by_level"] == {"half": 1, "late": 1}
    # C met after 5 min, E after 10 min; D is still unanswered: open in the month.
    assert counts(("normal", "first_response")) == (3, 2, 0, 1, 1.0)
    assert counts(("normal", "next_reply")) == (1, 1, 0, 0, 1.0)
    # E was solved a minute after the month ended: open at its end, like D. G was deleted: nowhere.
    assert counts(("normal", "resolution")) == (3, 1, 0, 2, 1.0)
    assert counts(("low", "resolution")) == (1, 1, 0, 0, 1.0)
    # Credits: urgent resolution met 50% (< 95%: 5%); the api was down an hour (< 99.9%: 10%).
    month_s = (M_END - M_START).total_seconds()
    assert [(c["kind"], c["credit_percent"], c["amount"]) for c in report["credits"]] == [
        ("kpi", 5.0, 50.0),
        ("uptime", 10.0, 100.0),
    ]
    assert report["credit_totals"] == [
        {
            "contract": "acme-gold",
            "customer": "all",
            "month": MONTH,
            "percent": 15.0,
            "capped": False,
            "amount": 150.0,
            "currency": "EUR",
        }
    ]
    (uptime,) = report["uptime"]
    assert (uptime["service"], uptime["incidents"], uptime["downtime_s"]) == ("api", 1, 3600)
    assert uptime["availability"] == pytest.approx(1 - 3600 / month_s) and uptime["met"] is False


def test_every_format_renders_and_out_writes_the_file_whole(
    capsys: pytest.CaptureFixture[str], delivered: Path, tmp_path: Path
) -> None:
    base = ("--config", str(delivered), "report", "--from", MONTH, "--to", MONTH)
    code, table, err = run(capsys, *base)
    assert code == 0 and err == ""  # no progress bar when stderr is not a terminal
    assert "urgent" in table and "first response" in table.lower()
    code, out, _ = run(capsys, *base, "--format", "csv", "--part", "credits")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["kind"], r["amount"]) for r in rows] == [("kpi", "50.0"), ("uptime", "100.0")]
    target = tmp_path / "report.html"
    target.write_text("old")
    code, out, err = run(capsys, *base, "--format", "html", "--out", str(target))
    assert code == 0 and out == "" and f"report written to {target}" in err
    html = target.read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "acme-gold" in html
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "report.html"]  # no temporary left
    assert run(capsys, *base, "--instance", "desk", "--format", "json")[0] == 0


def test_a_progress_bar_shows_on_a_terminal(
    capsys: pytest.CaptureFixture[str], delivered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run(capsys, "--config", str(delivered), "report", "--from", MONTH, "--format", "json")
    assert code == 0 and "reading records" in err and "evaluating open tickets" in err


def test_a_period_before_the_tickets_has_none_and_a_reopened_clock_counts_as_open(
    capsys: pytest.CaptureFixture[str], config_path: Path, redis_conn: redis.Redis
) -> None:
    t = M_START + timedelta(days=1, hours=9)
    events = [rc.created("R", t), rc.reply("R", t + M, 1), rc.status("R", t + H, 1, "solved"),
              rc.status("R", M_END + H, 2, "open")]  # fmt: skip
    post(redis_conn, "d1", "R", events)
    assert not drain(
        make_context(redis_conn, load_config(config_path), clock=Clock(datetime.now(UTC)))
    ).failures
    rows = {(r["priority"], r["metric"]): r for r in report_json(capsys, config_path)["kpis"]}
    # Solved in the month, reopened after it: it counts where it finally ends, open until then.
    assert (rows[("normal", "resolution")]["met"], rows[("normal", "resolution")]["open"]) == (0, 1)
    earlier = (M_START - timedelta(days=40)).strftime("%Y-%m")
    code, out, _ = run(capsys, "--config", str(config_path), "report", "--from", earlier, "--format", "json")
    assert code == 0 and json.loads(out)["kpis"] == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--from", "2026-13"), "period '2026-13' does not exist"),
        (("--from", "last month"), "period 'last month' is not one of"),
        (("--from", "2026-03", "--to", "2026-01"), "is inverted"),
        (("--from", MONTH, "--instance", "nope"), "unknown instance 'nope' (configured: desk)"),
        (("--from", MONTH, "--part", "credits"), "--part credits is only for --format csv"),
        (
            ("--from", MONTH, "--out", "/nonexistent/dir/r.html"),
            "--out /nonexistent/dir/r.html: no directory",
        ),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], config_path: Path, argv: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, "--config", str(config_path), "report", *argv)
    assert code == 2 and out == ""
    assert message in err, err


def test_an_unknown_format_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str], config_path: Path
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(config_path), "report", "--from", MONTH, "--format", "pdf"])
    assert exc.value.code == 2 and "invalid choice: 'pdf'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("contract", "message"),
    [
        ({"credits": [{"priority": "urgnt", "metric": "resolution", "below": 95, "credit_percent": 5}]},
         "contracts[0].credits[0].priority: 'urgnt' is not a priority of this configuration"),
        ({"instances": ["elsewhere"]}, "contracts[0].instances[0]: 'elsewhere' is not an instance"),
        ({"currency": "euro"}, "contracts[0].currency: 'euro' does not match the expected form"),
        ({"uptime": [{**rc.contract()["uptime"][0], "service_hours": "office"}]},
         "contracts[0].uptime[0].service_hours: unknown calendar 'office'"),
    ],
)  # fmt: skip
def test_a_bad_contracts_configuration_exits_2_naming_its_path(
    capsys: pytest.CaptureFixture[str], config_path: Path, contract: dict, message: str
) -> None:
    config_path.write_text(yaml.safe_dump(config_data(contracts=[{**rc.contract(), **contract}])))
    code, out, err = run(capsys, "--config", str(config_path), "report", "--from", MONTH)
    assert code == 2 and out == ""
    assert f"{config_path}: {message}" in err, err


def test_a_stored_record_that_cannot_be_read_exits_1_naming_it(
    capsys: pytest.CaptureFixture[str], delivered: Path, redis_conn: redis.Redis
) -> None:
    from connector.state import outcomes

    day = date.fromisoformat(f"{MONTH}-10")
    redis_conn.hset(outcomes.records_key("desk", day), "X\nresolution", b'["not", "a", "record"]')
    code, out, err = run(capsys, "--config", str(delivered), "report", "--from", MONTH)
    assert code == 1 and out == ""
    assert "a stored record is unreadable: outcome record 'X' 'resolution' of instance 'desk'" in err


@pytest.fixture(autouse=True)
def _uninstall_context() -> Iterator[None]:
    """The harness installs a job context in this (test) process."""
    from connector.jobs import context

    yield
    context.install(None)


def test_metrics_show_the_current_months_share_met_cached_a_few_seconds(
    delivered: Path, redis_conn: redis.Redis
) -> None:
    from prometheus_client import CollectorRegistry

    from connector.receiver.app import create_app
    from connector.receiver.kpi_metrics import KpiCollector

    now = [(M_END - timedelta(seconds=1)).timestamp()]  # the last second of the month: it is "current"
    registry = CollectorRegistry()
    registry.register(KpiCollector(redis_conn, load_config(delivered), ttl_s=10, clock=lambda: now[0]))

    def gauges() -> dict[tuple[str, ...], float]:
        out = {}
        for family in registry.collect():
            for s in family.samples:
                labels = s.labels
                out[(s.name, labels["priority"], labels["metric"], labels.get("outcome", ""))] = s.value
                assert labels["instance"] == "desk"
        return out

    got = gauges()
    assert got[("sla_kpi_share_met", "urgent", "first_response", "")] == 0.5
    assert got[("sla_kpi_share_met", "urgent", "resolution", "")] == 0.5
    assert got[("sla_kpi_share_met", "normal", "first_response", "")] == 1.0
    assert got[("sla_kpi_cycles_ended", "normal", "first_response", "met")] == 2
    assert got[("sla_kpi_cycles_ended", "urgent", "resolution", "breached")] == 1
    assert ("sla_kpi_share_met", "normal", "resolution", "") in got  # C; E ended after the month
    redis_conn.flushall()
    now[0] += 5
    assert gauges() == got  # within ttl_s: the cached figures, Redis not read
    now[0] += 10
    assert gauges() == {}
    # The receiver's /metrics carries the families (empty in the real current month of a fresh Redis).
    text = create_app(load_config(delivered), redis_conn).test_client().get("/metrics").get_data(as_text=True)
    assert "# TYPE sla_kpi_share_met gauge" in text and "# TYPE sla_kpi_cycles_ended gauge" in text


def test_one_instances_report_judges_its_contracts_on_all_their_instances(
    capsys: pytest.CaptureFixture[str], config_path: Path, redis_conn: redis.Redis
) -> None:
    desk = {"product": "testdesk", "dry_run": True, "base_url": "https://desk.test"}
    contract = {**rc.contract(), "instances": ["desk", "desk2"], "uptime": []}
    config_path.write_text(yaml.safe_dump(config_data(instances={"desk": desk, "desk2": desk},
                                                      contracts=[contract])))  # fmt: skip
    t = M_START + timedelta(days=3, hours=9)
    met = [
        rc.created("U1", t, priority="urgent"),
        rc.reply("U1", t + M, 1),
        rc.status("U1", t + H, 1, "solved"),
    ]
    late = [
        rc.created("U2", t, priority="urgent"),
        rc.reply("U2", t + M, 1),
        rc.status("U2", t + 9 * H, 1, "solved"),
    ]
    assert post(redis_conn, "d1", "U1", met, instance="desk")
    assert post(redis_conn, "d2", "U2", late, instance="desk2")
    assert not drain(
        make_context(redis_conn, load_config(config_path), clock=Clock(datetime.now(UTC)))
    ).failures
    report = report_json(capsys, config_path, "--instance", "desk")
    assert {(r["instance"], r["metric"]) for r in report["kpis"]} == {
        ("desk", "first_response"),
        ("desk", "resolution"),
    }
    (credit,) = report["credits"]  # urgent resolutions of both instances: 1 of 2 met
    assert (credit["measured"], credit["in_scope"], credit["amount"]) == (0.5, 2, 50.0)


def test_an_open_ticket_whose_log_cannot_be_read_exits_1_naming_it(
    capsys: pytest.CaptureFixture[str], delivered: Path, redis_conn: redis.Redis
) -> None:
    from connector.state import store

    redis_conn.rpush(
        store.events_key("desk", "D"), b'["D-x", "?"]'
    )  # D is still open: evaluated by the report
    code, out, err = run(capsys, "--config", str(delivered), "report", "--from", MONTH)
    assert code == 1 and out == ""
    assert "a ticket could not be evaluated: open ticket 'D' of instance 'desk': IndexError" in err, err


def test_records_naming_a_calendar_no_longer_configured_exit_2(
    capsys: pytest.CaptureFixture[str], delivered: Path, redis_conn: redis.Redis
) -> None:
    from connector.state import outcomes

    day = date.fromisoformat(f"{MONTH}-10")
    (rid, data), *_ = redis_conn.hgetall(
        outcomes.records_key("desk", M_START.date() + timedelta(days=2))
    ).items()
    old = outcomes.decode_record("desk", rid, data)._replace(calendar="berlin-2025")
    redis_conn.hset(outcomes.records_key("desk", day), rid, outcomes.encode_record(old))
    code, out, err = run(capsys, "--config", str(delivered), "report", "--from", MONTH)
    assert code == 2 and out == ""
    assert "names calendar 'berlin-2025', not given (the configuration must keep what the kept records" in err
