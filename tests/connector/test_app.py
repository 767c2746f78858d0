"""The receiver: every check in its order, the answers, durable acceptance, health and metrics."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from connector.config.loader import Config, ConfigError, config_from_dict
from connector.receiver.app import connect, create_app
from connector.state import store
from tests.connector.fakes import shelldesk


def _queued(conn: redis.Redis) -> list[tuple[None, dict[bytes, bytes]]]:
    """What the receiver kept, in the order received: the rows of every ticket's inbox, as fields
    p (payload as received), d (delivery id), h (headers kept, JSON) and t (ticket)."""
    rows = []
    for key in conn.scan_iter("sla:in:*"):
        ticket = key.decode().rpartition(":")[2]
        for raw in conn.lrange(key, 0, -1):
            row = store.decode_inbox_row(raw)
            fields = {b"p": row.body, b"d": row.delivery.encode(), b"h": json.dumps(row.headers).encode(),
                      b"t": ticket.encode()}
            rows.append((row.received or 0.0, fields))
    rows.sort(key=lambda r: r[0])
    return [(None, fields) for _, fields in rows]

shelldesk.register()
SECRET = "desk-webhook-secret-value"
ENV = {"DESK_SECRET": SECRET, "API_TOKEN": "api-token-value"}


def make_config(**top: Any) -> Config:
    data = {
        "instances": {"desk": {"product": "shelldesk", "secret_env": "DESK_SECRET"}},
        "receiver": {"max_body_bytes": 2048},
        "api_token_env": "API_TOKEN",
        **top,
    }
    return config_from_dict(data, ENV, source="test.yaml")


@pytest.fixture
def client(redis_conn: redis.Redis) -> FlaskClient:
    return create_app(make_config(), redis_conn).test_client()


def signed(payload: Any, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signature = shelldesk.sign_body(secret, body)
    return body, {"Content-Type": "application/json", "X-Testdesk-Signature": signature}


def post(client: FlaskClient, payload: Any, instance: str = "desk", **kw: Any) -> Any:
    body, headers = signed(payload)
    headers.update(kw.pop("headers", {}))
    return client.post(f"/hooks/{instance}", data=kw.pop("data", body), headers=headers, **kw)


def test_accepts_then_reports_duplicates(client: FlaskClient) -> None:
    first = post(client, {"id": "d-1", "ticket": "T-1"})
    assert first.status_code == 202
    assert first.get_json() == {"status": "accepted", "delivery": "d-1"}
    again = post(client, {"id": "d-1", "ticket": "T-1", "retry": 1})
    assert again.status_code == 200
    assert again.get_json() == {"status": "duplicate", "delivery": "d-1"}
    other = post(client, {"id": "d-2", "ticket": None})  # payloads about no ticket are accepted too
    assert other.status_code == 202


def test_accepted_delivery_is_durably_queued(client: FlaskClient, redis_conn: redis.Redis) -> None:
    before = redis_conn.dbsize()
    assert post(client, {"id": "d-9", "ticket": "T-9"}).status_code == 202
    assert redis_conn.dbsize() > before  # the pipeline's dedupe key and queue entry exist in Redis
    # The dedupe key is shared state: another receiver process answers "duplicate" too.
    second_app = create_app(make_config(), redis_conn).test_client()
    assert post(second_app, {"id": "d-9", "ticket": "T-9"}).status_code == 200


def test_json_media_types(client: FlaskClient) -> None:
    body, headers = signed({"id": "d-3"})
    for ctype in ("application/json; charset=UTF-8", "application/vnd.desk+json"):
        response = client.post("/hooks/desk", data=body, headers={**headers, "Content-Type": ctype})
        assert response.status_code in (200, 202), ctype


def assert_error(response: Any, status: int, reason: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == reason
    text = response.get_data(as_text=True)
    assert SECRET not in text and "api-token-value" not in text
    return body


def test_unknown_instance_is_404_before_anything_else(client: FlaskClient) -> None:
    response = client.post("/hooks/nope", data=b"x" * 5000, headers={"Content-Type": "text/plain"})
    assert_error(response, 404, "unknown_instance")


def test_too_large_by_content_length_is_413_before_content_type(client: FlaskClient) -> None:
    response = client.post("/hooks/desk", data=b"x" * 2049, headers={"Content-Type": "text/plain"})
    body = assert_error(response, 413, "too_large")
    assert body["detail"] == "the body exceeds 2048 bytes"


def test_too_large_without_content_length_is_413(client: FlaskClient) -> None:
    # A chunked upload has no Content-Length: the limit holds on the bytes actually read.
    body, headers = signed({"id": "big", "pad": "x" * 3000})
    environ = {"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}
    response = client.post("/hooks/desk", headers={**headers, "Transfer-Encoding": "chunked"},
                           environ_overrides=environ)
    assert_error(response, 413, "too_large")


def test_exactly_the_limit_is_accepted(client: FlaskClient) -> None:
    payload = {"id": "edge", "pad": ""}
    size = len(json.dumps(payload).encode())
    payload["pad"] = "x" * (2048 - size)
    assert len(json.dumps(payload).encode()) == 2048
    assert post(client, payload).status_code == 202


def test_not_json_content_type_is_415_before_the_signature(client: FlaskClient) -> None:
    response = client.post("/hooks/desk", data=b"{}", headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "unsupported_media_type")
    response = client.post("/hooks/desk", data=b"{}")
    assert_error(response, 415, "unsupported_media_type")


def test_signature_is_checked_on_the_raw_body_before_parsing(client: FlaskClient) -> None:
    response = client.post("/hooks/desk", data=b"not json", headers={"Content-Type": "application/json"})
    body = assert_error(response, 401, "signature")
    assert body["detail"] == "missing X-Testdesk-Signature header"
    raw, headers = signed({"id": "d-4"})
    response = client.post("/hooks/desk", data=raw + b" ", headers=headers)  # body changed after signing
    assert_error(response, 401, "signature")
    raw, headers = signed({"id": "d-4"}, secret="wrong")
    assert_error(client.post("/hooks/desk", data=raw, headers=headers), 401, "signature")


def test_invalid_json_is_400(client: FlaskClient) -> None:
    body = assert_error(post(client, b'{"id": '), 400, "invalid_json")
    assert body["detail"].startswith("the body is not JSON: ")
    assert_error(post(client, b"\xff\xfe"), 400, "invalid_json")


def test_schema_failure_is_400_with_the_path(client: FlaskClient) -> None:
    body = assert_error(post(client, {"ticket": "T-1"}), 400, "schema")
    assert body == {"error": "schema", "detail": "'id' is a required string", "path": "$.id"}
    body = assert_error(post(client, [1]), 400, "schema")
    assert body["path"] == "$"


def test_store_unreachable_is_503_with_retry_after(tmp_path: Path) -> None:
    dead = connect(f"unix://{tmp_path}/no.sock")
    client = create_app(make_config(), dead).test_client()
    response = post(client, {"id": "d-5", "ticket": "T-5"})
    assert_error(response, 503, "store_unavailable")
    assert response.headers["Retry-After"] == "5"


def test_unknown_routes_and_methods_answer_json(client: FlaskClient) -> None:
    assert_error(client.get("/nowhere"), 404, "not_found")
    assert_error(client.get("/hooks/desk"), 405, "method_not_allowed")


# ---------------------------------------------------------------- ops endpoints


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_without_workers_is_503_with_reasons(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not ready"
    assert "no worker alive" in body["reasons"]


def test_readyz_redis_down(tmp_path: Path) -> None:
    dead = connect(f"unix://{tmp_path}/no.sock")
    response = create_app(make_config(), dead).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["reasons"] == ["redis unreachable (ConnectionError)"]


def test_metrics_count_received_and_rejected(client: FlaskClient) -> None:
    post(client, {"id": "m-1", "ticket": "T"})
    post(client, {"id": "m-1", "ticket": "T"})
    client.post("/hooks/desk", data=b"{}", headers={"Content-Type": "text/plain"})
    client.post("/hooks/ghost", data=b"{}", headers={"Content-Type": "application/json"})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert 'sla_webhooks_received_total{instance="desk",outcome="accepted"} 1.0' in text
    assert 'sla_webhooks_received_total{instance="desk",outcome="duplicate"} 1.0' in text
    assert 'sla_webhooks_rejected_total{instance="desk",reason="unsupported_media_type"} 1.0' in text
    assert 'sla_webhooks_rejected_total{instance="unknown",reason="unknown_instance"} 1.0' in text
    assert 'sla_http_request_duration_seconds_count{route="/hooks/<instance>"} 4.0' in text
    assert "ghost" not in text


def test_two_apps_in_one_process_keep_separate_counters(redis_conn: redis.Redis) -> None:
    a = create_app(make_config(), redis_conn).test_client()
    b = create_app(make_config(), redis_conn).test_client()
    post(a, {"id": "sep-1", "ticket": "T"})
    assert 'outcome="accepted"} 1.0' in a.get("/metrics").get_data(as_text=True)
    assert 'outcome="accepted"}' not in b.get("/metrics").get_data(as_text=True)


# ---------------------------------------------------------------- the factory


def test_factory_reads_the_config_named_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          redis_url: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("instances:\n  desk: {product: shelldesk, secret_env: DESK_SECRET}\n")
    monkeypatch.setenv("SLA_CONNECTOR_CONFIG", str(path))
    monkeypatch.setenv("DESK_SECRET", SECRET)
    monkeypatch.setenv("REDIS_URL", redis_url)
    app = create_app()
    assert app.test_client().get("/healthz").status_code == 200
    assert post(app.test_client(), {"id": "f-1"}).status_code == 202


def test_factory_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLA_CONNECTOR_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="SLA_CONNECTOR_CONFIG is not set"):
        create_app()
    with pytest.raises(ConfigError, match=r"test\.yaml: redis_url: the web process needs Redis"):
        create_app(make_config())


def test_readyz_with_a_live_worker_and_scheduler(client: FlaskClient, redis_conn: redis.Redis) -> None:
    from rq import SimpleWorker

    from connector.config.tuning import PipelineSettings
    from connector.jobs.worker import cron_scheduler
    from connector.state import queues

    worker = SimpleWorker([queues.queue(redis_conn, queues.TICKETS)], connection=redis_conn, name="w-1")
    worker.register_birth()
    assert client.get("/readyz").get_json()["reasons"] == ["scheduler not alive"]
    cron_scheduler(redis_conn, PipelineSettings()).register_birth()  # RQ's, with the dispatch tick
    response = client.get("/readyz")
    assert response.status_code == 200 and response.get_json() == {"status": "ready"}


def test_metrics_include_the_pipeline_figures(client: FlaskClient, redis_conn: redis.Redis) -> None:
    from rq import SimpleWorker

    from connector.state import queues, status

    status.incr(redis_conn, "effects_applied", {"product": "jira", "instance": "acme"}, 3)
    status.incr(redis_conn, "breaches", {"instance": "acme", "metric": "resolution"})
    status.observe_latency(redis_conn, [0.07, 0.2, 400.0])
    worker = SimpleWorker([queues.queue(redis_conn, queues.TICKETS)], connection=redis_conn, name="w-1")
    worker.register_birth()
    post(client, {"id": "p-1", "ticket": "T-1"})  # one ticket waiting for a look
    text = client.get("/metrics").get_data(as_text=True)
    assert "sla_redis_up 1.0" in text
    assert 'sla_effects_applied_total{instance="acme",product="jira"} 3.0' in text
    assert 'sla_breaches_total{instance="acme",metric="resolution"} 1.0' in text
    assert 'sla_processing_latency_seconds_bucket{le="0.1"} 1.0' in text
    assert 'sla_processing_latency_seconds_bucket{le="+Inf"} 3.0' in text
    assert "sla_processing_latency_seconds_count 3.0" in text
    assert "sla_tickets_waiting 1.0" in text
    assert "sla_workers_alive 1.0" in text
    assert "sla_scheduler_alive 0.0" in text
    assert "sla_timers_pending 0.0" in text
    assert "sla_failed 0.0" in text
    assert 'sla_last_event_timestamp_seconds{instance="desk"}' in text


def test_metrics_still_answer_when_redis_is_down(tmp_path: Path) -> None:
    dead = connect(f"unix://{tmp_path}/no.sock")
    response = create_app(make_config(), dead).test_client().get("/metrics")
    assert response.status_code == 200
    assert "sla_redis_up 0.0" in response.get_data(as_text=True)


# ---------------------------------------------------------------- the ticket API


def test_api_is_disabled_without_a_token(redis_conn: redis.Redis) -> None:
    cfg = config_from_dict({"instances": {"desk": {"product": "shelldesk", "secret_env": "DESK_SECRET"}}},
                           {"DESK_SECRET": SECRET})
    client = create_app(cfg, redis_conn).test_client()
    body = assert_error(client.get("/api/tickets/desk/T-1", headers={"Authorization": "Bearer x"}),
                        503, "api_disabled")
    assert body["detail"] == "set the environment variable SLA_CONNECTOR_API_TOKEN to enable the API"


def test_api_needs_the_bearer_token(client: FlaskClient) -> None:
    response = client.get("/api/tickets/desk/T-1")
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for header in ("Basic abc", "Bearer ", "Bearer"):
        response = client.get("/api/tickets/desk/T-1", headers={"Authorization": header})
        assert_error(response, 401, "unauthorized")
    for wrong in ("api-token-valu", "api-token-value2", "API-TOKEN-VALUE"):
        response = client.get("/api/tickets/desk/T-1", headers={"Authorization": f"Bearer {wrong}"})
        assert_error(response, 403, "forbidden")


def test_api_unknown_instance_and_ticket_are_404(client: FlaskClient) -> None:
    auth = {"Authorization": "Bearer api-token-value"}
    assert_error(client.get("/api/tickets/ghost/T-1", headers=auth), 404, "unknown_instance")
    assert_error(client.get("/api/tickets/desk/T-404", headers=auth), 404, "unknown_ticket")


def test_api_store_down_is_503(tmp_path: Path) -> None:
    dead = connect(f"unix://{tmp_path}/no.sock")
    client = create_app(make_config(), dead).test_client()
    response = client.get("/api/tickets/desk/T-1", headers={"Authorization": "Bearer api-token-value"})
    assert_error(response, 503, "store_unavailable")
    assert response.headers["Retry-After"] == "5"


def test_api_answers_the_state_of_a_processed_ticket(redis_conn: redis.Redis) -> None:
    import hashlib
    import hmac

    from connector.jobs.worker import run_worker

    root = Path(__file__).resolve().parents[2]
    env = {"JE": "bot@acme.example", "JT": "jira-token", "JS": "jira-secret", "API_TOKEN": "api-token-value"}
    cfg = config_from_dict({
        "api_token_env": "API_TOKEN",
        "instances": {"acme": {"product": "jira", "dry_run": True, "base_url": "https://acme.atlassian.net",
                               "deployment": "cloud", "auth": {"email_env": "JE", "token_env": "JT"},
                               "webhook_secret_env": "JS"}},
        "calendars": {"always": {"timezone": "UTC", "hours": "24x7"}},
        "policies": [{"id": "std", "version": 1, "metrics": {"resolution": {
            "calendar": "always", "targets": {p: "8h" for p in ("urgent", "high", "normal", "low")}}}}],
    }, env)
    client = create_app(cfg, redis_conn).test_client()
    body = (root / "adapters/jira/tests/fixtures/cloud_issue_created.json").read_bytes()
    digest = hmac.new(b"jira-secret", body, hashlib.sha256).hexdigest()
    response = client.post("/hooks/acme", data=body, headers={
        "Content-Type": "application/json; charset=UTF-8", "X-Hub-Signature": f"sha256={digest}",
        "X-Atlassian-Webhook-Identifier": "api-1"})
    assert response.status_code == 202
    run_worker(cfg, redis_conn, burst=True, name="api-test")
    ticket = json.loads(body)["issue"]["id"]
    response = client.get(f"/api/tickets/acme/{ticket}", headers={"Authorization": "Bearer api-token-value"})
    assert response.status_code == 200
    state = response.get_json()
    assert state["policy_id"] == "std" and state["event_count"] == 1 and state["dry_run"] is True
    assert "resolution" in state["metrics"]


def test_redis_outage_answers_503_quickly_and_recovers(tmp_path: Path) -> None:
    import time

    from connector.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "r", persistent=True).start()
    try:
        client = create_app(make_config(), connect(server.url)).test_client()
        assert post(client, {"id": "o-1", "ticket": "T"}).status_code == 202
        server.stop()
        start = time.monotonic()
        response = post(client, {"id": "o-2", "ticket": "T"})
        assert_error(response, 503, "store_unavailable")
        assert time.monotonic() - start < 2.5
        server.start()  # same socket, same append-only file
        assert post(client, {"id": "o-2", "ticket": "T"}).status_code == 202
        assert post(client, {"id": "o-1", "ticket": "T"}).status_code == 200  # persisted across the restart
    finally:
        server.stop()


def test_the_body_is_queued_as_received(client: FlaskClient, redis_conn: redis.Redis) -> None:
    # The receiver hands intake the text it parsed instead of serialising the payload again.
    body = b'{ "id": "d-raw",\n  "ticket": "T-1", "note": "caf\\u00e9 \\ud83d\\ude00" }'
    assert post(client, body).status_code == 202
    (_, fields), = _queued(redis_conn)
    assert fields[b"p"] == body


def test_stored_headers_have_no_credentials_signature_or_transport(client: FlaskClient,
                                                                    redis_conn: redis.Redis) -> None:
    extra = {"X-Automation-Secret": "shh", "Authorization": "Bearer x", "X-Api-Key": "k",
             "X-Atlassian-Webhook-Identifier": "abc", "User-Agent": "Atlassian Webhook HTTP Client"}
    assert post(client, {"id": "d-h", "ticket": "T-1"}, headers=extra).status_code == 202
    (_, fields), = _queued(redis_conn)
    stored = json.loads(fields[b"h"])
    assert stored == {"content-type": "application/json", "x-atlassian-webhook-identifier": "abc",
                      "user-agent": "Atlassian Webhook HTTP Client"}  # no signature, host or length
    assert b"shh" not in fields[b"h"] and b"Bearer" not in fields[b"h"]


def test_a_utf16_body_is_still_accepted_and_queued(client: FlaskClient, redis_conn: redis.Redis) -> None:
    # json.loads(bytes) always read UTF-16/32 and a UTF-8 BOM; those bodies are queued re-serialised.
    for n, body in enumerate([json.dumps({"id": "d-16", "ticket": "T-1"}).encode("utf-16"),
                              b"\xef\xbb\xbf" + json.dumps({"id": "d-bom", "ticket": "T-1"}).encode()]):
        assert post(client, body).status_code == 202
        fields = _queued(redis_conn)[n][1]
        assert json.loads(fields[b"p"])["ticket"] == "T-1"


def test_starts_while_redis_is_down_then_queues_once_it_is_up(tmp_path: Path) -> None:
    # The enqueue connection is taken on the first delivery, not by create_app.
    from connector.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "r", persistent=True)
    client = create_app(make_config(), connect(server.url)).test_client()  # nothing listens yet
    assert_error(post(client, {"id": "u-1", "ticket": "T"}), 503, "store_unavailable")
    server.start()
    try:
        assert post(client, {"id": "u-1", "ticket": "T"}).status_code == 202
        assert len(_queued(redis.Redis.from_url(server.url))) == 1
    finally:
        server.stop()


def _clients_since(conn: redis.Redis, before: set[str]) -> int:
    """Connections the server sees now that it did not see at `before` (other tests' clients that
    are still open, e.g. a CLI test's pool, are not this test's), plus the test's own."""
    return len({c["id"] for c in conn.client_list()} - before) + 1


def test_concurrent_deliveries_on_threads_hold_a_connection_each(redis_conn: redis.Redis) -> None:
    # A threaded server (gunicorn gthread, flask run) holds one connection per serving thread: each
    # delivery is queued once, and the pool holds no more connections than there were threads.
    from concurrent.futures import ThreadPoolExecutor

    before = {c["id"] for c in redis_conn.client_list()}
    app = create_app(make_config(), redis_conn)

    def deliver(n: int) -> int:
        return post(app.test_client(), {"id": f"c-{n}", "ticket": f"T-{n % 3}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(deliver, range(64)))
    assert statuses == [202] * 64
    delivered = {json.loads(f[b"p"])["id"] for _, f in _queued(redis_conn)}
    assert delivered == {f"c-{n}" for n in range(64)}
    # Connections the server sees: one held per thread, the dispatch enqueue's pooled one, the test's own.
    assert _clients_since(redis_conn, before) <= 8 + 1 + 1


def test_a_thread_per_request_server_gives_its_held_connections_back(redis_conn: redis.Redis) -> None:
    # werkzeug's threaded dev server starts a thread per request: when the thread ends, its held
    # connection goes back to the pool instead of piling up.
    import threading

    before = {c["id"] for c in redis_conn.client_list()}
    app = create_app(make_config(), redis_conn)
    for n in range(20):
        thread = threading.Thread(target=post, args=(app.test_client(), {"id": f"t-{n}", "ticket": "T"}))
        thread.start()
        thread.join()
    assert len(_queued(redis_conn)) == 20
    # Connections the server sees: the held one, the pooled one the first delivery used to enqueue the
    # dispatch job (RQ's enqueue takes a pipeline from the pool), and the test's own.
    assert _clients_since(redis_conn, before) <= 3


def test_the_held_connection_survives_a_redis_restart(tmp_path: Path) -> None:
    # The receiver's held connection dies with the server; the next delivery (Redis is back by then)
    # must be accepted, not answered 503 by every worker once.
    from connector.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "r", persistent=True).start()
    try:
        client = create_app(make_config(), connect(server.url)).test_client()
        statuses = [post(client, {"id": "r-1", "ticket": "T"}).status_code]
        server.stop()
        server.start()  # restarted between two deliveries
        statuses.append(post(client, {"id": "r-2", "ticket": "T"}).status_code)
        server.stop()
        down = post(client, {"id": "r-3", "ticket": "T"})  # down: still a quick 503 after the one retry
        assert_error(down, 503, "store_unavailable")
        server.start()
        statuses += [post(client, {"id": n, "ticket": "T"}).status_code for n in ("r-3", "r-4", "r-1")]
        assert statuses == [202, 202, 202, 202, 200]
        stream = _queued(redis.Redis.from_url(server.url))
        delivered = [json.loads(fields[b"p"])["id"] for _, fields in stream]
        assert delivered == ["r-1", "r-2", "r-3", "r-4"]  # each queued once
    finally:
        server.stop()


def test_the_held_connection_survives_the_server_closing_it(tmp_path: Path) -> None:
    # Redis's idle timeout or a proxy closes the held connection: seen here as CLIENT KILL. A private
    # server: the suite's shared one must keep its connections.
    from connector.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "k", persistent=False).start()
    try:
        client = create_app(make_config(), connect(server.url)).test_client()
        admin = redis.Redis.from_url(server.url)
        statuses, killed = [], []
        for n in range(3):
            statuses.append(post(client, {"id": f"k-{n}", "ticket": "T"}).status_code)
            killed.append(admin.client_kill_filter(_type="normal", skipme=True))  # the held connection
        statuses.append(post(client, {"id": "k-0", "ticket": "T"}).status_code)
        # The first round also kills the pooled connection that enqueued the dispatch job.
        assert (statuses, killed[1:]) == ([202, 202, 202, 200], [1, 1]) and killed[0] in (1, 2)
        assert len(_queued(admin)) == 3
    finally:
        server.stop()


def test_a_utf8_body_is_queued_byte_for_byte(client: FlaskClient, redis_conn: redis.Redis) -> None:
    body = b'{ "id" : "d-raw",  "ticket": "T-1", "note": "\xc3\xa9t\xc3\xa9 \\u00e9" }'
    assert post(client, body).status_code == 202
    assert _queued(redis_conn)[0][1][b"p"] == body


def test_json_that_orjson_refuses_is_still_read_as_json_loads_reads_it(client: FlaskClient,
                                                                        redis_conn: redis.Redis) -> None:
    # orjson parses the hot path; an integer beyond 64 bits or a NaN literal (which json.loads reads)
    # falls back to json.loads and is queued re-serialised, as before orjson.
    for n, body in enumerate([b'{"id": "d-big", "ticket": "T-1", "n": 123456789012345678901234567890}',
                              b'{"id": "d-nan", "ticket": "T-1", "n": NaN}']):
        assert post(client, body).status_code == 202
        queued = json.loads(_queued(redis_conn)[n][1][b"p"])
        assert queued["id"] == f"d-{('big', 'nan')[n]}" and queued["ticket"] == "T-1"
    assert json.loads(_queued(redis_conn)[0][1][b"p"])["n"] == 123456789012345678901234567890


def test_a_content_length_that_is_not_a_number_is_ignored_as_werkzeug_ignores_it(client: FlaskClient) -> None:
    # gunicorn refuses such a request itself; a server that frames the body (wsgi.input_terminated)
    # and passes the header on gets the body read as sent, not a 500.
    import io

    body, headers = signed({"id": "d-cl", "ticket": "T-1"})
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/hooks/desk", "SERVER_NAME": "t", "SERVER_PORT": "80",
               "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True,
               "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": "twelve",
               **{"HTTP_" + k.upper().replace("-", "_"): v
                  for k, v in headers.items() if k != "Content-Type"}}
    statuses = []
    out = b"".join(client.application(environ, lambda status, _headers: statuses.append(status)))
    assert statuses == ["202 ACCEPTED"], out


def test_a_lone_surrogate_escape_is_accepted_and_queued_as_received(client: FlaskClient,
                                                                    redis_conn: redis.Redis) -> None:
    # Half an emoji, cut off by the product's truncation: orjson refuses it, json.loads reads it.
    body = b'{"id": "d-sur", "ticket": "T-1", "note": "cut \\ud83d"}'
    assert post(client, body).status_code == 202
    assert _queued(redis_conn)[0][1][b"p"] == body
    assert post(client, body).status_code == 200  # the product's retry: a duplicate, not a 500


# ---------------------------------------------------------------- bad input: a 4xx at the door (issue 9)


def _nest(depth: int) -> bytes:
    """A shelldesk payload whose `x` nests arrays so that the whole body is `depth` levels deep."""
    return b'{"id": "deep", "ticket": "T-1", "x": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


@pytest.fixture
def roomy(redis_conn: redis.Redis) -> FlaskClient:
    """A receiver that takes bodies of up to 10 KB (deep JSON is long)."""
    return create_app(make_config(receiver={"max_body_bytes": 10_000}), redis_conn).test_client()


def test_json_nested_past_what_json_loads_reads_is_400_not_500(roomy: FlaskClient) -> None:
    client = roomy
    # ~1,100 levels: orjson refuses (its limit is 1,024) and json.loads raised RecursionError: was a 500.
    body = assert_error(post(client, _nest(1100)), 400, "too_deep")
    assert body == {"error": "too_deep", "detail": "the JSON is nested deeper than 512 levels", "path": "$"}
    # The same through the json fallback (a NaN makes orjson refuse it first).
    nan = _nest(1100).replace(b'"T-1"', b'"T-1", "n": NaN')
    assert assert_error(post(client, nan), 400, "too_deep")["path"] == "$"


def test_json_orjson_reads_but_json_loads_cannot_is_400_with_the_path(roomy: FlaskClient) -> None:
    client = roomy
    # 1,000 levels: orjson reads it, the workers' json.loads would not (RecursionError): refused at the door.
    body = assert_error(post(client, _nest(1000)), 400, "too_deep")
    assert body["path"] == "$.x" + "[0]" * (512 - 1)  # the first value at level 513
    nan = _nest(600).replace(b'"T-1"', b'"T-1", "n": NaN')  # via the json fallback, same answer
    assert assert_error(post(client, nan), 400, "too_deep")["path"] == "$.x" + "[0]" * 511


def test_json_at_the_depth_limit_is_accepted_and_many_brackets_are_not_depth(roomy: FlaskClient) -> None:
    from connector.receiver.app import MAX_DEPTH

    assert post(roomy, _nest(MAX_DEPTH)).status_code == 202
    assert_error(post(roomy, _nest(MAX_DEPTH + 1)), 400, "too_deep")
    wide = {"id": "wide", "ticket": "T-1", "x": [[{}]] * 400}  # 1,201 brackets, 4 levels: walked, accepted
    assert post(roomy, wide).status_code == 202


def test_a_delivery_or_ticket_id_with_a_lone_surrogate_is_400_not_500(client: FlaskClient) -> None:
    # Ids become Redis keys and stream fields: no UTF-8, no enqueue (was UnicodeEncodeError: 500).
    body = assert_error(post(client, b'{"id": "d-\\ud800", "ticket": "T-1"}'), 400, "invalid_id")
    assert body["path"] == "$"
    assert body["detail"] == ("the payload gives no usable delivery or ticket id (delivery 'd-\\ud800', "
                              "ticket 'T-1'): it is empty or not valid text")
    body = assert_error(post(client, b'{"id": "d-ok", "ticket": "T-\\udfff"}'), 400, "invalid_id")
    assert body["path"] == "$"
    body = assert_error(post(client, {"id": "", "ticket": "T-1"}), 400, "invalid_id")
    assert body["path"] == "$"
    assert post(client, {"id": "d-ok", "ticket": "T-1"}).status_code == 202  # then the product's retry


def test_a_payload_the_adapter_cannot_normalise_is_400_with_its_path(client: FlaskClient,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.base import PayloadError

    adapter = client.application.extensions["sla_connector"]["config"].instances["desk"].adapter
    calls: list[Any] = []

    def normalise(payload: Any, headers: Any) -> list[Any]:
        calls.append(payload)
        if payload.get("when") == "never":
            raise PayloadError("not an instant: 'never' (half \ud83d)", "$.when")
        return []

    monkeypatch.setattr(adapter, "normalise", normalise)
    body = assert_error(post(client, {"id": "n-1", "ticket": "T-1", "when": "never"}), 400, "schema")
    # A lone surrogate quoted in a detail is written escaped (orjson refuses it): not a 500.
    assert body == {"error": "schema", "detail": "not an instant: 'never' (half \ud83d)", "path": "$.when"}
    assert post(client, {"id": "n-2", "ticket": "T-1", "when": "now"}).status_code == 202
    assert [c["id"] for c in calls] == ["n-1", "n-2"]  # every delivery is normalised at the door


def test_an_error_nobody_foresaw_while_normalising_is_400_and_logged_not_500(
        client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    adapter = client.application.extensions["sla_connector"]["config"].instances["desk"].adapter

    def normalise(payload: Any, headers: Any) -> list[Any]:
        return [len(payload["n"])]  # an int has no len: TypeError

    monkeypatch.setattr(adapter, "normalise", normalise)
    with caplog.at_level("ERROR", logger="sla_connector.app"):
        body = assert_error(post(client, {"id": "u-1", "ticket": "T-1", "n": 5}), 400, "unprocessable")
    assert body == {"error": "unprocessable", "path": "$",
                    "detail": "the payload cannot be read: TypeError: object of type 'int' has no len()"}
    record, = [r for r in caplog.records if getattr(r, "event", None) == "webhook_unprocessable"]
    assert record.exc_info is not None and record.levelname == "ERROR"  # ours to look at


def test_an_error_nobody_foresaw_in_the_ids_is_400_not_500(client: FlaskClient,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = client.application.extensions["sla_connector"]["config"].instances["desk"].adapter
    monkeypatch.setattr(adapter, "ticket_id", lambda payload: {"a": 1}[payload["ticket"]])  # KeyError
    body = assert_error(post(client, {"id": "k-1", "ticket": "T-1"}), 400, "unprocessable")
    assert body["path"] == "$" and body["detail"] == "the payload cannot be read: KeyError: 'T-1'"
