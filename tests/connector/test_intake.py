from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from connector.config.tuning import PipelineSettings
from connector.jobs import dispatcher
from connector.receiver.intake import accept, kept_headers
from connector.state import queues, store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes.harness import drain, make_context  # noqa: E402
from fakes.sla_config import created, desk_config  # noqa: E402

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def _accept(conn: redis.Redis, delivery: str = "d-1", instance: str = "acme", **kw) -> bool:
    return accept(
        conn,
        instance,
        delivery,
        kw.pop("ticket", "T-1"),
        kw.pop("payload", {"a": 1}),
        kw.pop("headers", {"Content-Type": "application/json"}),
        kw.pop("at", NOW),
        **kw,
    )


def inbox(conn: redis.Redis, instance: str = "acme", ticket: str = "T-1") -> list[store.InboxRow]:
    return [store.decode_inbox_row(r) for r in conn.lrange(store.inbox_key(instance, ticket), 0, -1)]


def wanting(conn: redis.Redis) -> list[tuple[str, str]]:
    return [store.split_member(m) for m in conn.zrange(store.WANT, 0, -1)]


def jobs(conn: redis.Redis) -> dict[str, int]:
    """Jobs waiting in each of the connector's RQ queues (what `rq info` shows)."""
    return {name: queues.queue(conn, name).count for name in queues.QUEUES}


def test_accept_keeps_once_and_dedupes_retries(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn) is True
    assert _accept(redis_conn) is False  # the product's retry of the same delivery
    [row] = inbox(redis_conn)
    assert (row.kind, row.delivery, row.received, row.replay) == ("e", "d-1", NOW.timestamp(), False)
    assert json.loads(row.body) == {"a": 1}
    assert row.headers == {"content-type": "application/json"}
    assert float(redis_conn.hget(store.LAST_EVENT, "acme")) == NOW.timestamp()
    assert wanting(redis_conn) == [("acme", "T-1")]


def test_same_delivery_id_on_another_instance_is_another_delivery(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn, instance="acme") is True
    assert _accept(redis_conn, instance="other") is True
    assert len(inbox(redis_conn, "acme")) == len(inbox(redis_conn, "other")) == 1
    assert wanting(redis_conn) == [("acme", "T-1"), ("other", "T-1")]


def test_a_delivery_is_kept_and_wanted_before_any_job_exists(redis_conn: redis.Redis) -> None:
    # "Accepted" means kept: should the receiver die right after the script (before or instead of
    # enqueueing the dispatch job), the delivery is in Redis and the cron tick's dispatch finds it.
    assert _accept(redis_conn, payload={"delivery": "d-1", "ticket": "T-1", "events": []}) is True
    assert len(inbox(redis_conn)) == 1 and wanting(redis_conn) == [("acme", "T-1")]
    assert jobs(redis_conn) == {queues.DISPATCH: 1, queues.TICKETS: 0}  # no look job yet
    redis_conn.delete(*(k for k in redis_conn.keys("rq:*")))  # the dispatch job lost with the receiver
    ctx = make_context(redis_conn, desk_config(names=("acme",), dry_run=True), PipelineSettings())
    assert dispatcher.dispatch(ctx) == 1  # the next tick
    drained = drain(ctx, dispatch=False)
    assert drained.tickets == ["T-1"] and drained.looks[0]["deliveries"] == 1
    assert inbox(redis_conn) == [] and redis_conn.hlen(store.QUEUED) == 0


def test_a_duplicate_answers_false_and_adds_nothing(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn, "d-1") is True
    before = {key: redis_conn.dump(key) for key in redis_conn.keys() if not key.startswith(b"rq:")}
    queued = jobs(redis_conn)
    redis_conn.delete(store.DISPATCH_FLAG)  # even with no dispatch asked for
    before.pop(store.DISPATCH_FLAG.encode())
    assert _accept(redis_conn, "d-1", payload={"other": "content"}, at=datetime.now(UTC)) is False
    assert {key: redis_conn.dump(key) for key in redis_conn.keys() if not key.startswith(b"rq:")} == before
    assert jobs(redis_conn) == queued


def test_deliveries_of_a_ticket_with_a_job_join_it(redis_conn: redis.Redis) -> None:
    ctx = make_context(redis_conn, desk_config(names=("acme",), dry_run=True), PipelineSettings())
    payload = {"delivery": "d", "ticket": "T-1", "events": [created("T-1", NOW)]}
    assert _accept(redis_conn, "d-1", payload=payload)
    assert dispatcher.dispatch(ctx) == 1  # T-1 claimed, its look job queued
    assert wanting(redis_conn) == [] and redis_conn.hexists(store.QUEUED, store.member("acme", "T-1"))
    queued = jobs(redis_conn)
    for delivery in ("d-2", "d-3"):
        assert _accept(redis_conn, delivery, payload=payload) is True
    assert len(inbox(redis_conn)) == 3
    assert wanting(redis_conn) == []  # not wanted again: the queued job takes them
    assert jobs(redis_conn) == queued  # and no dispatch asked for
    drained = drain(ctx, dispatch=False)
    assert [(r["ticket"], r["deliveries"]) for r in drained.looks] == [("T-1", 3)]  # one look for all
    assert inbox(redis_conn) == [] and redis_conn.hlen(store.QUEUED) == 0


def test_only_the_first_delivery_while_no_dispatch_is_asked_for_enqueues_one(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn, "d-1", ticket="T-1")
    assert jobs(redis_conn) == {queues.DISPATCH: 1, queues.TICKETS: 0}
    assert _accept(redis_conn, "d-2", ticket="T-2")  # another ticket, the dispatch asked for takes it
    assert _accept(redis_conn, "d-3", ticket="T-1")  # already wanting a look
    assert jobs(redis_conn)[queues.DISPATCH] == 1
    assert wanting(redis_conn) == [("acme", "T-1"), ("acme", "T-2")]
    [job] = queues.queue(redis_conn, queues.DISPATCH).jobs
    assert job.func_name == queues.DISPATCH_FUNC and redis_conn.ttl(store.DISPATCH_FLAG) > 0
    # The dispatch pass clears the flag first: the next ticket to want a look asks for a new pass.
    ctx = make_context(redis_conn, desk_config(names=("acme",), dry_run=True), PipelineSettings())
    assert dispatcher.dispatch(ctx) == 2
    assert _accept(redis_conn, "d-4", ticket="T-3")
    assert jobs(redis_conn) == {queues.DISPATCH: 2, queues.TICKETS: 2}
    assert _accept(redis_conn, "d-5", ticket="T-1")  # has a job: nothing asked
    assert jobs(redis_conn) == {queues.DISPATCH: 2, queues.TICKETS: 2}


def test_dedupe_key_expires_after_the_ttl(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn, dedupe_ttl_s=100)
    ttl = redis_conn.ttl(store.dedupe_key("acme", "d-1"))
    assert 90 < ttl <= 100


def test_a_dedupe_ttl_below_a_second_is_refused_before_anything_is_kept(redis_conn: redis.Redis) -> None:
    # The script's SET EX 0 would fail after its RPUSH: kept, but answered as an error and never deduped.
    with pytest.raises(ValueError, match="dedupe_ttl_s must be >= 1 second, got 0"):
        _accept(redis_conn, dedupe_ttl_s=0)
    assert redis_conn.dbsize() == 0


def test_ticketless_payload_is_kept_with_an_empty_ticket(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn, ticket=None)
    assert len(inbox(redis_conn, "acme", "")) == 1 and wanting(redis_conn) == [("acme", "")]


def test_failed_keep_leaves_no_dedupe_key_behind(redis_conn: redis.Redis) -> None:
    redis_conn.set(store.inbox_key("acme", "T-1"), "not a list")  # RPUSH will fail with WRONGTYPE
    with pytest.raises(redis.ResponseError):
        _accept(redis_conn)
    assert not redis_conn.exists(store.dedupe_key("acme", "d-1"))
    assert wanting(redis_conn) == [] and jobs(redis_conn) == {queues.DISPATCH: 0, queues.TICKETS: 0}
    redis_conn.delete(store.inbox_key("acme", "T-1"))
    assert _accept(redis_conn) is True  # the product's retry is accepted, not taken for a duplicate
    assert len(inbox(redis_conn)) == 1 and jobs(redis_conn)[queues.DISPATCH] == 1


def test_unreachable_redis_raises_for_a_503() -> None:
    conn = redis.Redis(unix_socket_path="/nonexistent/redis.sock")
    with pytest.raises(redis.ConnectionError):
        _accept(conn)


def test_secret_looking_and_transport_headers_are_not_kept() -> None:
    kept = kept_headers(
        {
            "Authorization": "Basic x",
            "X-Automation-Secret": "s",
            "X-Api-Token": "t",
            "Cookie": "c",
            "X-Hub-Signature": "sha256=ab",  # of no use once verified
            "x-zendesk-webhook-signature-timestamp": "2026",
            "X-Api-Key": "k",
            "x_api_key": "k",
            "X-ApiKey": "k",
            "X-Password": "p",
            "Host": "example",
            "Connection": "keep-alive",
            "Content-Length": "12",
            "Accept-Encoding": "gzip",
            "Accept": "*/*",
            "X-Atlassian-Webhook-Identifier": "7",
            "x-zendesk-webhook-invocation-id": "inv-1",
            "User-Agent": "Atlassian Webhook HTTP Client",
            "Content-Type": "application/json",
        }
    )
    assert kept == {"x-atlassian-webhook-identifier": "7", "x-zendesk-webhook-invocation-id": "inv-1",
                    "user-agent": "Atlassian Webhook HTTP Client", "content-type": "application/json"}


def test_accept_stores_only_the_kept_headers(redis_conn: redis.Redis) -> None:
    headers = {"X-Hub-Signature": "sha256=ab", "X-Atlassian-Webhook-Identifier": "7", "Host": "h"}
    assert accept(redis_conn, "acme", "d-h", "T-1", {"a": 1}, headers, datetime.now(UTC)) is True
    [row] = inbox(redis_conn)
    assert row.headers == {"x-atlassian-webhook-identifier": "7"}
    assert b"sha256" not in b"".join(redis_conn.lrange(store.inbox_key("acme", "T-1"), 0, -1))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delivery": ""}, "empty delivery id"),
        ({"instance": ""}, "bad instance name"),
        ({"instance": "a\nb"}, "bad instance name"),
        ({"at": datetime(2026, 1, 1)}, "must be timezone-aware"),
    ],
)
def test_bad_arguments_are_refused_clearly(redis_conn: redis.Redis, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _accept(redis_conn, **kwargs)
    assert redis_conn.dbsize() == 0


def test_raw_text_is_stored_instead_of_a_new_serialisation(redis_conn: redis.Redis) -> None:
    raw = '{ "a" : 1 }'
    assert _accept(redis_conn, payload={"a": 1}, raw=raw)
    assert inbox(redis_conn)[0].body == raw.encode()


def test_raw_bytes_are_stored_as_received(redis_conn: redis.Redis) -> None:
    raw = '{ "a" : "\u00e9t\u00e9" }\n'.encode()  # a newline in the body too: the row's head ends first
    assert _accept(redis_conn, payload={"a": "été"}, raw=raw)
    assert inbox(redis_conn)[0].body == raw


def test_raw_must_be_text_or_bytes(redis_conn: redis.Redis) -> None:
    with pytest.raises(ValueError, match="raw must be the payload's JSON text .str or bytes., got dict"):
        _accept(redis_conn, raw={"a": 1})
    assert redis_conn.dbsize() == 0


# The receiver's held connection (single_connection_client) sends the script itself (intake._run_accept).


def _held(conn: redis.Redis) -> redis.Redis:
    return redis.Redis(connection_pool=conn.connection_pool, single_connection_client=True)


def test_a_held_connection_keeps_the_same_row_as_the_generic_path(redis_conn: redis.Redis) -> None:
    headers = {"Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": "é-1"}
    assert _accept(redis_conn, "g-1", headers=headers, dedupe_ttl_s=77, raw=b'{"a": "\xc3\xa9"}')
    redis_conn.delete(store.DISPATCH_FLAG, store.WANT)  # so that the held path asks for a dispatch too
    assert _accept(_held(redis_conn), "h-1", headers=headers, dedupe_ttl_s=77, raw=b'{"a": "\xc3\xa9"}')
    generic, held = redis_conn.lrange(store.inbox_key("acme", "T-1"), 0, -1)
    assert generic.replace(b'"d":"g-1"', b'"d":"h-1"') == held
    assert redis_conn.ttl(store.dedupe_key("acme", "h-1")) == 77
    assert wanting(redis_conn) == [("acme", "T-1")] and jobs(redis_conn)[queues.DISPATCH] == 2
    assert _accept(_held(redis_conn), "h-1") is False  # and dedupes like it


def test_a_held_connection_reloads_the_script_after_the_server_lost_it(redis_conn: redis.Redis) -> None:
    held = _held(redis_conn)
    assert _accept(held, "s-1")
    redis_conn.script_flush()  # as after a restart without persistence of scripts
    assert _accept(held, "s-2") is True
    assert _accept(held, "s-2") is False
    assert len(inbox(redis_conn)) == 2


def test_a_held_connection_reconnects_after_the_server_closed_it(redis_conn: redis.Redis) -> None:
    held = _held(redis_conn)
    assert _accept(held, "k-1")
    redis_conn.client_kill_filter(_type="normal", skipme=True)
    with pytest.raises(redis.ConnectionError):
        _accept(held, "k-2")  # noticed on this command (the receiver retries once)
    assert _accept(held, "k-2") is True
    assert len(inbox(redis_conn)) == 2


def test_the_protocol_packing_matches_redis_py() -> None:
    from hypothesis import given
    from hypothesis import strategies as st
    from redis.connection import Connection

    from connector.receiver.intake import _bulk, _pack

    connection = Connection()

    @given(st.lists(st.one_of(st.binary(), st.text(), st.integers()), max_size=12))
    def check(args: list) -> None:
        assert _pack(b"EVALSHA", *map(_bulk, args)) == b"".join(connection.pack_command("EVALSHA", *args))

    check()


def test_a_payload_with_a_lone_surrogate_is_kept_escaped(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn, payload={"note": "cut \ud83d", "é": 1})
    assert json.loads(inbox(redis_conn)[0].body) == {"note": "cut \ud83d", "é": 1}
    # Also when the receiver passes the text it parsed (a str holding the lone surrogate).
    assert _accept(redis_conn, "d-2", payload={"note": "cut \ud83d"}, raw='{"note": "cut \ud83d"}')
    assert json.loads(inbox(redis_conn)[1].body) == {"note": "cut \ud83d"}


def test_a_delivery_id_with_a_lone_surrogate_is_kept_escaped(redis_conn: redis.Redis) -> None:
    # JSON allows "\ud83d" alone (a product cutting an id after half an emoji); Redis keys are UTF-8.
    assert _accept(redis_conn, "zd-\ud83d") is True
    assert redis_conn.exists(store.dedupe_key("acme", "zd-\\ud83d"))
    [row] = inbox(redis_conn)
    assert row.delivery == "zd-\\ud83d" and row.raw.decode()
    assert _accept(redis_conn, "zd-\ud83d") is False  # the product's retry: the same key
    assert _accept(_held(redis_conn), "zd-\ud83d") is False
    assert len(inbox(redis_conn)) == 1


def test_a_delivery_id_with_a_lone_surrogate_can_fail_visibly(redis_conn: redis.Redis) -> None:
    from connector.state import failed

    ctx = make_context(redis_conn, desk_config(names=("acme",), dry_run=True), PipelineSettings())
    assert _accept(redis_conn, "zd-\ud83d", payload={"delivery": "x", "ticket": "T-1", "poison": True,
                                                      "events": []})
    assert drain(ctx).failed_deliveries == 1
    [entry] = failed.list_failed(redis_conn)
    assert entry["id"] == "event:acme:zd-\\ud83d" and entry["delivery"] == "zd-\\ud83d"
