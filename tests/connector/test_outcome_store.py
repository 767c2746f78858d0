"""Outcome records and incidents in Redis (connector/state/outcomes.py), written by the real look job
(receiver intake + RQ burst worker through tests/connector/fakes/harness.py) against the test Redis."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from connector.config.tuning import PipelineSettings
from connector.jobs import dispatcher
from connector.state import outcomes as oc
from connector.state import store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import Clock, drain, make_context, post  # noqa: E402
from fakes.report_config import created, deleted, event, reply, report_config, status  # noqa: E402

# A Monday about two months ago: the records' day hashes expire at an absolute time (their day's end plus
# the retention), so the tests' days must lie within the retention of the real clock.
_BACK = datetime.now(UTC).date() - timedelta(days=60)
T0 = datetime.combine(_BACK - timedelta(days=_BACK.weekday()), datetime.min.time(), UTC) + timedelta(hours=9)
DAY = T0.date()


def stored(conn: redis.Redis, instance: str = "desk") -> dict[tuple[str, str], dict]:
    """Every record kept for `instance`: (ticket, cycle) -> its day and Outcome, checked to be unique."""
    out: dict[tuple[str, str], dict] = {}
    for key in conn.scan_iter(f"sla:oc:{instance}:2*"):
        day = key.decode().rsplit(":", 1)[1]
        for rid, data in conn.hgetall(key).items():
            o = oc.decode_record(instance, rid, data)
            assert (o.ticket_id, o.cycle) not in out, f"record {rid!r} kept twice"
            out[(o.ticket_id, o.cycle)] = {"day": day, "o": o}
    return out


def look(conn: redis.Redis, clock: Clock, settings: PipelineSettings | None = None, **kw) -> None:
    ctx = make_context(conn, kw.pop("config", None) or report_config(), settings, clock=clock)
    drained = drain(ctx, fire_timers_at=clock.now)
    assert not drained.failures, drained.failures


def test_a_met_ticket_leaves_one_record_per_clock(redis_conn: redis.Redis) -> None:
    events = [
        created("T-1", T0, key="SUP-1"),
        reply("T-1", T0 + timedelta(minutes=10), 1),
        status("T-1", T0 + timedelta(hours=1), 1, "solved"),
    ]
    post(redis_conn, "d1", "T-1", events)
    clock = Clock(T0 + timedelta(hours=2))
    look(redis_conn, clock)
    got = stored(redis_conn)
    assert set(got) == {("T-1", "first_response"), ("T-1", "resolution")}
    first, resolution = got[("T-1", "first_response")]["o"], got[("T-1", "resolution")]["o"]
    assert (first.outcome, first.business_s, first.target_s) == ("met", 600, 3600)
    assert (resolution.outcome, resolution.business_s, resolution.target_s) == ("met", 3600, 8 * 3600)
    assert resolution.stopped_at == T0 + timedelta(hours=1) and resolution.started_at == T0
    assert (resolution.policy_id, resolution.policy_version, resolution.priority) == ("std", 1, "normal")
    assert resolution.calendar == "always" and resolution.instance == "desk"
    assert first.display_key == resolution.display_key == "SUP-1"  # the events' key, from the first look
    assert got[("T-1", "resolution")]["day"] == DAY.isoformat()
    assert redis_conn.zcard(oc.open_key("desk")) == 0  # nothing runs any more
    meta = json.loads(redis_conn.hget(store.ticket_key("desk", "T-1"), "#oc"))
    assert meta == {"first_response": DAY.isoformat(), "resolution": DAY.isoformat()}
    # The day's hash expires the retention after the day ends.
    expires = datetime.combine(DAY + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    expires += PipelineSettings().outcome_retention_s
    assert abs(redis_conn.ttl(oc.records_key("desk", DAY)) - (expires - time.time())) < 5


def test_a_breached_ticket_keeps_its_levels_and_a_running_one_is_indexed_open(
    redis_conn: redis.Redis,
) -> None:
    post(redis_conn, "d1", "T-2", [created("T-2", T0, priority="urgent")])
    post(redis_conn, "d2", "T-3", [created("T-3", T0)])
    clock = Clock(T0 + timedelta(minutes=5))
    look(redis_conn, clock)
    assert stored(redis_conn) == {}
    assert {m.decode() for m in redis_conn.zrange(oc.open_key("desk"), 0, -1)} == {"T-2", "T-3"}
    post(
        redis_conn,
        "d3",
        "T-2",
        [reply("T-2", T0 + timedelta(hours=2), 1), status("T-2", T0 + timedelta(hours=10), 1, "solved")],
    )
    clock.now = (T0 + timedelta(hours=11)).timestamp()
    look(redis_conn, clock)
    got = stored(redis_conn)
    first, resolution = got[("T-2", "first_response")]["o"], got[("T-2", "resolution")]["o"]
    assert (first.outcome, first.business_s, first.levels_reached) == ("breached", 7200, ("late",))
    assert (resolution.outcome, resolution.business_s) == ("breached", 10 * 3600)
    assert resolution.levels_reached == ("half", "late") and resolution.priority == "urgent"
    assert [m.decode() for m in redis_conn.zrange(oc.open_key("desk"), 0, -1)] == ["T-3"]


def test_next_reply_cycles_and_a_reopened_resolution_replace_their_records(redis_conn: redis.Redis) -> None:
    events = [
        created("T-4", T0),
        reply("T-4", T0 + timedelta(minutes=5), 1),  # first response met
        reply("T-4", T0 + timedelta(minutes=20), 2, "requester"),  # cycle 1 opens
        reply("T-4", T0 + timedelta(minutes=30), 3),  # cycle 1 met after 10 min
        reply("T-4", T0 + timedelta(minutes=40), 4, "requester"),  # cycle 2 opens
        reply("T-4", T0 + timedelta(minutes=90), 5),  # cycle 2 breached after 50 min
        status("T-4", T0 + timedelta(hours=2), 1, "solved"),
    ]
    post(redis_conn, "d1", "T-4", events)
    clock = Clock(T0 + timedelta(hours=3))
    look(redis_conn, clock)
    got = stored(redis_conn)
    cycles = sorted(
        (v["o"] for k, v in got.items() if k[1].startswith("next_reply#")), key=lambda o: o.started_at
    )
    assert [(o.outcome, o.business_s) for o in cycles] == [("met", 600), ("breached", 3000)]
    assert got[("T-4", "resolution")]["o"].stopped_at == T0 + timedelta(hours=2)
    # Reopened the next day: the resolution runs again, its record goes (reports read it from the log).
    post(redis_conn, "d2", "T-4", [status("T-4", T0 + timedelta(days=1), 2, "open")])
    clock.now = (T0 + timedelta(days=1, minutes=1)).timestamp()
    look(redis_conn, clock)
    got = stored(redis_conn)
    assert ("T-4", "resolution") not in got and len(got) == 3
    assert redis_conn.hlen(oc.records_key("desk", DAY)) == 3
    assert [m.decode() for m in redis_conn.zrange(oc.open_key("desk"), 0, -1)] == ["T-4"]
    # Solved again two days later: one resolution record, in the new day's hash only.
    post(redis_conn, "d3", "T-4", [status("T-4", T0 + timedelta(days=2), 3, "solved")])
    clock.now = (T0 + timedelta(days=2, hours=1)).timestamp()
    look(redis_conn, clock)
    got = stored(redis_conn)
    assert got[("T-4", "resolution")]["day"] == (DAY + timedelta(days=2)).isoformat()
    assert got[("T-4", "resolution")]["o"].business_s == 2 * 3600 + 86400  # 24x7: the reopened day counts
    assert len(got) == 4 and redis_conn.zcard(oc.open_key("desk")) == 0


def test_repeated_looks_and_duplicate_deliveries_never_duplicate_records(redis_conn: redis.Redis) -> None:
    events = [
        created("T-5", T0),
        reply("T-5", T0 + timedelta(minutes=10), 1),
        status("T-5", T0 + timedelta(hours=1), 1, "solved"),
    ]
    assert post(redis_conn, "d1", "T-5", events)
    assert not post(redis_conn, "d1", "T-5", events)  # the same delivery again: deduplicated at intake
    clock = Clock(T0 + timedelta(hours=2))
    look(redis_conn, clock)
    first = stored(redis_conn)
    post(redis_conn, "d2", "T-5", events)  # the same events under another delivery id
    post(redis_conn, "d3", "T-5", events[1:])
    for _ in range(3):
        clock.advance(3600)
        redis_conn.zadd(store.WANT, {store.member("desk", "T-5"): clock.now})  # a replay asks for a look
        look(redis_conn, clock)
    assert stored(redis_conn) == first  # stored() also fails on a record kept twice
    assert redis_conn.hlen(oc.records_key("desk", DAY)) == 2


def test_a_deleted_ticket_leaves_no_record(redis_conn: redis.Redis) -> None:
    events = [
        created("T-6", T0, type="incident", tags=["svc-api"]),
        reply("T-6", T0 + timedelta(minutes=10), 1),
        status("T-6", T0 + timedelta(hours=1), 1, "solved"),
    ]
    post(redis_conn, "d1", "T-6", events)
    post(redis_conn, "d2", "T-7", [created("T-7", T0)])
    clock = Clock(T0 + timedelta(hours=2))
    look(redis_conn, clock)
    assert len(stored(redis_conn)) == 2 and redis_conn.hlen(oc.incidents_key("desk")) == 1
    post(redis_conn, "d3", "T-6", [deleted("T-6", T0 + timedelta(hours=3))])
    post(redis_conn, "d4", "T-7", [deleted("T-7", T0 + timedelta(hours=3))])
    clock.now = (T0 + timedelta(hours=4)).timestamp()
    look(redis_conn, clock)
    assert stored(redis_conn) == {}
    assert redis_conn.zcard(oc.open_key("desk")) == 0 and redis_conn.hlen(oc.incidents_key("desk")) == 0
    assert not redis_conn.hexists(store.ticket_key("desk", "T-6"), "#oc")


def test_incidents_are_kept_open_then_ended_and_dropped_when_the_filter_no_longer_matches(
    redis_conn: redis.Redis,
) -> None:
    post(redis_conn, "d1", "T-8", [created("T-8", T0, type="incident", tags=["svc-api", "x"])])
    post(redis_conn, "d2", "T-9", [created("T-9", T0, type="question", tags=["svc-api"])])
    clock = Clock(T0 + timedelta(minutes=5))
    look(redis_conn, clock)
    assert oc.read_incidents(redis_conn, ["desk"]) == [oc.Incident("T-8", "api", T0, None, "desk")]
    post(redis_conn, "d3", "T-8", [status("T-8", T0 + timedelta(minutes=30), 1, "solved")])
    clock.now = (T0 + timedelta(hours=1)).timestamp()
    look(redis_conn, clock)
    assert oc.read_incidents(redis_conn, ["desk"]) == [
        oc.Incident("T-8", "api", T0, T0 + timedelta(minutes=30), "desk")
    ]
    assert redis_conn.hget(store.ticket_key("desk", "T-8"), "#inc") == b"api"
    post(
        redis_conn,
        "d4",
        "T-8",
        [event("T-8", "changed", T0 + timedelta(hours=2), "T-8-t", "agent", tags=["x"])],
    )
    clock.now = (T0 + timedelta(hours=3)).timestamp()
    look(redis_conn, clock)
    assert oc.read_incidents(redis_conn, ["desk"]) == []
    assert not redis_conn.hexists(store.ticket_key("desk", "T-8"), "#inc")


def test_records_older_than_the_retention_are_not_kept(redis_conn: redis.Redis) -> None:
    events = [
        created("T-10", T0),
        reply("T-10", T0 + timedelta(minutes=10), 1),
        status("T-10", T0 + timedelta(hours=1), 1, "solved"),
    ]
    post(redis_conn, "d1", "T-10", events)
    clock = Clock(T0 + timedelta(days=3))
    look(redis_conn, clock, PipelineSettings(outcome_retention_s=86400))  # one day after the day ends
    assert stored(redis_conn) == {}
    assert PipelineSettings.from_env({"SLA_CONNECTOR_OUTCOME_RETENTION_S": "60"}).outcome_retention_s == 60
    with pytest.raises(ValueError, match="outcome_retention_s: must be >= 1"):
        PipelineSettings(outcome_retention_s=0)


def test_the_sweep_trims_the_open_index_and_old_incidents_once_an_hour(redis_conn: redis.Redis) -> None:
    now = T0.timestamp() + 400 * 86400
    redis_conn.zadd(oc.open_key("desk"), {"old": now - 401 * 86400, "recent": now - 10})
    old_end = int((now - 397 * 86400) * 1000)
    redis_conn.hset(
        oc.incidents_key("desk"),
        mapping={
            "a\napi": json.dumps([old_end - 1000, old_end]),
            "b\napi": json.dumps([old_end, None]),
            "c\napi": json.dumps([old_end, int(now * 1000)]),
        },
    )
    ctx = make_context(redis_conn, report_config(), PipelineSettings(), clock=lambda: now)
    dispatcher.dispatch(ctx)  # its sweep trims
    assert [m.decode() for m in redis_conn.zrange(oc.open_key("desk"), 0, -1)] == ["recent"]
    assert sorted(redis_conn.hkeys(oc.incidents_key("desk"))) == [b"b\napi", b"c\napi"]
    redis_conn.zadd(oc.open_key("desk"), {"old": now - 401 * 86400})
    assert oc.trim(redis_conn, ["desk"], now, 400 * 86400, 396 * 86400) == 0  # not again within the hour


def test_reading_a_period_filters_by_time_and_says_which_record_is_unreadable(
    redis_conn: redis.Redis,
) -> None:
    for n, stop in enumerate((T0, T0 + timedelta(days=10), T0 + timedelta(days=40))):
        post(
            redis_conn,
            f"d{n}",
            f"R-{n}",
            [
                created(f"R-{n}", stop - timedelta(hours=1)),
                reply(f"R-{n}", stop - timedelta(minutes=30), 1),
                status(f"R-{n}", stop, 1, "solved"),
            ],
        )
    clock = Clock(T0 + timedelta(days=41))
    look(redis_conn, clock)
    start, end = T0 + timedelta(days=5), T0 + timedelta(days=20)
    days = oc.days_to_read(start, end, clock.dt)
    assert days[0] == (start - timedelta(hours=26)).date() and days[-1] == (T0 + timedelta(days=41)).date()
    got = oc.read_records(redis_conn, ["desk"], start, end, clock.dt)
    # R-0 stopped before the period (and its margin); R-2 started after it: neither can count there.
    assert sorted({o.ticket_id for o in got}) == ["R-1"]
    seen: list[int] = []
    oc.read_records(redis_conn, ["desk"], start, end, clock.dt, progress=seen.append)
    assert sum(seen) == len(days)
    redis_conn.hset(oc.records_key("desk", (T0 + timedelta(days=10)).date()), "R-1\nresolution", b"[1,2")
    with pytest.raises(ValueError, match="outcome record 'R-1' 'resolution' of instance 'desk'"):
        oc.read_records(redis_conn, ["desk"], start, end, clock.dt)


def test_open_tickets_are_evaluated_from_their_logs(redis_conn: redis.Redis) -> None:
    post(redis_conn, "d1", "T-11", [created("T-11", T0), reply("T-11", T0 + timedelta(minutes=10), 1)])
    clock = Clock(T0 + timedelta(hours=9))
    look(redis_conn, clock)
    assert oc.open_tickets(redis_conn, "desk") == ["T-11"]
    got = list(oc.evaluate_open(redis_conn, report_config(), "desk", ["T-11", "expired"], clock.dt))
    assert [(o.metric, o.outcome, o.stopped_at) for o in got] == [("resolution", "breached", None)]
    assert got[0].business_s == 9 * 3600


def test_backfill_keeps_records_of_finished_tickets_it_stores_without_a_look(redis_conn: redis.Redis) -> None:
    from connector import backfill
    from sla.events import TicketEvent

    config = report_config()
    raw = [
        created("B-1", T0),
        reply("B-1", T0 + timedelta(hours=2), 1),
        status("B-1", T0 + timedelta(hours=3), 1, "solved"),
    ]
    events = [TicketEvent.from_dict(e) for e in raw]
    now = (T0 + timedelta(days=20)).timestamp()
    dry = backfill.append_events(redis_conn, "desk", "B-1", events, now, dry_run=True, config=config)
    assert dry.quiet and stored(redis_conn) == {}  # a dry run writes nothing, records neither
    for _ in range(2):  # a second run finds the ticket still never evaluated (only report bookkeeping)
        result = backfill.append_events(redis_conn, "desk", "B-1", events, now, dry_run=False, config=config)
        assert result.quiet
    got = stored(redis_conn)
    assert {k: (v["o"].outcome, v["o"].business_s) for k, v in got.items()} == {
        ("B-1", "first_response"): ("breached", 7200),
        ("B-1", "resolution"): ("met", 3 * 3600),
    }
    assert redis_conn.zcard(store.WANT) == 0  # no look asked for: nothing is written onto finished work
    assert redis_conn.ttl(store.ticket_key("desk", "B-1")) > 0
    # --include-solved sends it through a look instead, which keeps the same records (not twice).
    more = [*events, TicketEvent.from_dict(reply("B-1", T0 + timedelta(hours=4), 2, "requester"))]
    taken = backfill.append_events(
        redis_conn, "desk", "B-1", more, now, dry_run=False, include_solved=True, config=config
    )
    assert not taken.quiet
    look(redis_conn, Clock(T0 + timedelta(days=20)))
    assert {k: v["o"].outcome for k, v in stored(redis_conn).items()} == {
        ("B-1", "first_response"): "breached",
        ("B-1", "resolution"): "met",
    }
