from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import redis

from connector import store
from connector.intake import accept, kept_headers

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


def test_accept_queues_once_and_dedupes_retries(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn) is True
    assert _accept(redis_conn) is False  # the product's retry of the same delivery
    entries = redis_conn.xrange(store.STREAM)
    assert len(entries) == 1
    fields = {k.decode(): v.decode() for k, v in entries[0][1].items()}
    assert fields["k"] == "e" and fields["i"] == "acme" and fields["d"] == "d-1" and fields["t"] == "T-1"
    assert json.loads(fields["p"]) == {"a": 1}
    assert json.loads(fields["h"]) == {"content-type": "application/json"}
    assert float(fields["r"]) == NOW.timestamp()
    assert float(redis_conn.hget(store.LAST_EVENT, "acme")) == NOW.timestamp()


def test_same_delivery_id_on_another_instance_is_another_delivery(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn, instance="acme") is True
    assert _accept(redis_conn, instance="other") is True
    assert redis_conn.xlen(store.STREAM) == 2


def test_dedupe_key_expires_after_the_ttl(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn, dedupe_ttl_s=100)
    ttl = redis_conn.ttl(store.dedupe_key("acme", "d-1"))
    assert 90 < ttl <= 100


def test_ticketless_payload_is_queued_with_an_empty_ticket(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn, ticket=None)
    assert redis_conn.xrange(store.STREAM)[0][1][b"t"] == b""


def test_failed_enqueue_leaves_no_dedupe_key_behind(redis_conn: redis.Redis) -> None:
    redis_conn.set(store.STREAM, "not a stream")  # XADD will fail with WRONGTYPE
    with pytest.raises(redis.ResponseError):
        _accept(redis_conn)
    assert not redis_conn.exists(store.dedupe_key("acme", "d-1"))
    redis_conn.delete(store.STREAM)
    assert _accept(redis_conn) is True  # the product's retry is accepted, not taken for a duplicate


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
    [(_, fields)] = redis_conn.xrange(store.STREAM)
    assert json.loads(fields[b"h"]) == {"x-atlassian-webhook-identifier": "7"}


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
    assert redis_conn.xlen(store.STREAM) == 0


def test_raw_text_is_stored_instead_of_a_new_serialisation(redis_conn: redis.Redis) -> None:
    raw = '{ "a" : 1 }'
    assert _accept(redis_conn, payload={"a": 1}, raw=raw)
    assert redis_conn.xrange(store.STREAM)[0][1][b"p"] == raw.encode()


def test_raw_bytes_are_stored_as_received(redis_conn: redis.Redis) -> None:
    raw = '{ "a" : "\u00e9t\u00e9" }'.encode()
    assert _accept(redis_conn, payload={"a": "été"}, raw=raw)
    assert redis_conn.xrange(store.STREAM)[0][1][b"p"] == raw


def test_raw_must_be_text_or_bytes(redis_conn: redis.Redis) -> None:
    with pytest.raises(ValueError, match="raw must be the payload's JSON text .str or bytes., got dict"):
        _accept(redis_conn, raw={"a": 1})
    assert redis_conn.xlen(store.STREAM) == 0


# The receiver's held connection (single_connection_client) sends the script itself (intake._run_accept).


def _held(conn: redis.Redis) -> redis.Redis:
    return redis.Redis(connection_pool=conn.connection_pool, single_connection_client=True)


def test_a_held_connection_queues_the_same_entry_as_the_generic_path(redis_conn: redis.Redis) -> None:
    headers = {"Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": "é-1"}
    assert _accept(redis_conn, "g-1", headers=headers, dedupe_ttl_s=77, raw=b'{"a": "\xc3\xa9"}')
    assert _accept(_held(redis_conn), "h-1", headers=headers, dedupe_ttl_s=77, raw=b'{"a": "\xc3\xa9"}')
    (_, generic), (_, held) = redis_conn.xrange(store.STREAM)
    assert {**generic, b"d": b"h-1"} == held
    assert redis_conn.ttl(store.dedupe_key("acme", "h-1")) == 77
    assert _accept(_held(redis_conn), "h-1") is False  # and dedupes like it


def test_a_held_connection_reloads_the_script_after_the_server_lost_it(redis_conn: redis.Redis) -> None:
    held = _held(redis_conn)
    assert _accept(held, "s-1")
    redis_conn.script_flush()  # as after a restart without persistence of scripts
    assert _accept(held, "s-2") is True
    assert _accept(held, "s-2") is False
    assert redis_conn.xlen(store.STREAM) == 2


def test_a_held_connection_reconnects_after_the_server_closed_it(redis_conn: redis.Redis) -> None:
    held = _held(redis_conn)
    assert _accept(held, "k-1")
    redis_conn.client_kill_filter(_type="normal", skipme=True)
    with pytest.raises(redis.ConnectionError):
        _accept(held, "k-2")  # noticed on this command (the receiver retries once)
    assert _accept(held, "k-2") is True
    assert redis_conn.xlen(store.STREAM) == 2


def test_the_protocol_packing_matches_redis_py() -> None:
    from hypothesis import given
    from hypothesis import strategies as st
    from redis.connection import Connection

    from connector.intake import _bulk, _pack

    connection = Connection()

    @given(st.lists(st.one_of(st.binary(), st.text(), st.integers()), max_size=12))
    def check(args: list) -> None:
        assert _pack(b"EVALSHA", *map(_bulk, args)) == b"".join(connection.pack_command("EVALSHA", *args))

    check()


def test_a_payload_with_a_lone_surrogate_is_queued_escaped(redis_conn: redis.Redis) -> None:
    assert _accept(redis_conn, payload={"note": "cut \ud83d", "é": 1})
    stored = redis_conn.xrange(store.STREAM)[0][1][b"p"]
    assert json.loads(stored) == {"note": "cut \ud83d", "é": 1}
