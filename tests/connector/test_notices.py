"""Escalation notices: channel configuration, sending and its classification, and the look job's part.

Slack, Teams and Google Chat go through apprise, faked at the HTTP layer with `responses` (their
incoming-webhook URLs); email goes through apprise to a local SMTP server (aiosmtpd); the signed
webhook through `requests`. Pipeline tests run the real look job on a real RQ SimpleWorker against
the test Redis (tests/connector/fakes/harness.py), with the test-only "testdesk" helpdesk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import responses

from connector.config.loader import Config, ConfigError, config_from_dict
from connector.config.tuning import PipelineSettings
from connector.jobs.context import Context
from connector.notices.channels import Channel, parse_channels
from connector.notices.send import (
    NOTICE_ID_HEADER,
    REPEAT_NOTE,
    Notice,
    NoticeFailed,
    NoticeRefused,
    send,
)
from connector.state import failed, status, store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakes import sla_config, testdesk  # noqa: E402
from fakes.harness import Clock, drain, fire_scheduled, make_context, post  # noqa: E402
from fakes.notice_servers import FakeHook, FakeSmtp  # noqa: E402

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
DESK = "https://desk.test"
SLACK = "https://hooks.slack.com/services/T0SLA0001/B0SLA0001/abcdefghijklmnopqrstuvwx"
TEAMS = (
    "https://prod-12.westus.logic.azure.com:443/workflows/0a1b2c3d4e5f/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Zm9vYmFyYmF6cXV4c2lnbmF0dXJl"
)
GCHAT = "https://chat.googleapis.com/v1/spaces/AAAAbcdEFG/messages?key=AIzaSyKEY000000&token=tok0000000000"
SECRET = "ops-hook-secret-0123456789"
ENV = {"SLACK_URL": SLACK, "HOOK_SECRET": SECRET}
HALF, BREACH = "notify:test/resolution:half", "notify:test/resolution:breach"


def channels_cfg(
    smtp_url: str = "mailto://127.0.0.1:25", hook_url: str = "https://ops.example.com/hook"
) -> dict:
    return {
        "oncall-slack": {"kind": "slack", "url": "${SLACK_URL}"},
        "team-lead": {
            "kind": "email",
            "smtp": smtp_url,
            "to": ["lead@example.com"],
            "from": "sla@example.com",
        },
        "ops-hook": {"kind": "webhook", "url": hook_url, "secret": "${HOOK_SECRET}"},
    }


def notice_config(
    *,
    dry_run: bool = False,
    channels: dict | None = None,
    half: list[str] = ("oncall-slack",),
    breach: list[str] = ("oncall-slack",),
) -> Config:
    """testdesk and the sla_config policy (10 s target) with notices at 50% and at the breach."""
    testdesk.register()
    policy = sla_config.policy("10s")
    policy["escalations"].insert(
        1, {"name": "half", "metric": "resolution", "at": "50%", "actions": [{"notify": c} for c in half]}
    )
    policy["escalations"][2]["actions"] += [{"notify": c} for c in breach]
    raw = {
        "instances": {"desk": {"product": "testdesk", "dry_run": dry_run, "base_url": DESK}},
        "calendars": sla_config.CALENDARS,
        "policies": [policy],
        "notify_channels": channels if channels is not None else channels_cfg(),
    }
    return config_from_dict(raw, env=ENV, source="<test>")


def make(conn: redis.Redis, config: Config) -> tuple[Context, Clock]:
    clock = Clock(T0 + timedelta(seconds=1))
    return make_context(conn, config, PipelineSettings(backoff_base_s=1), clock=clock), clock


def desk_api(rsps: responses.RequestsMock) -> None:
    rsps.assert_all_requests_are_fired = False
    rsps.add(responses.PUT, f"{DESK}/tickets/T-1", json={})
    rsps.add(responses.GET, f"{DESK}/tickets/T-1/comments", json={"comments": []})
    rsps.add(responses.POST, f"{DESK}/tickets/T-1/comments", json={}, status=201)


def slack_posts(rsps: responses.RequestsMock) -> list[dict]:
    return [json.loads(c.request.body) for c in rsps.calls if c.request.url == SLACK]


def run_to(ctx: Context, clock: Clock, seconds: float) -> Any:
    clock.now = (T0 + timedelta(seconds=seconds)).timestamp()
    return drain(ctx, fire_timers_at=clock.now)


def run_retries(ctx: Context) -> Any:
    """RQ's scheduler once the retries it scheduled are due (in wall-clock time), then a drain."""
    assert fire_scheduled(ctx.conn, time.time() + 86_400) > 0
    return drain(ctx)


def ledger(conn: redis.Redis) -> dict[str, str]:
    record = store.load_record(conn, "desk", "T-1")
    assert record is not None
    return {k: v for k, v in record.ledger.items() if k.startswith("notify:")}


def counter(conn: redis.Redis, name: str) -> float:
    return sum(status.counters(conn).get(name, {}).values())


@pytest.fixture
def smtp() -> Iterator[FakeSmtp]:
    server = FakeSmtp().start()
    yield server
    server.stop()


# ---------------------------------------------------------------- configuration


def test_channels_are_built_with_their_targets_kept_out_of_what_is_shown() -> None:
    config = notice_config()
    slack, mail, hook = (config.notify_channels[n] for n in ("oncall-slack", "team-lead", "ops-hook"))
    assert (slack.kind, slack.target) == ("slack", SLACK)
    assert slack.shown.startswith("slack slack://") and "abcdefghijklmnopqrstuvwx" not in slack.shown
    assert mail.shown == "email to lead@example.com via mailto://127.0.0.1:25"
    assert (hook.shown, hook.secret, hook.header) == (
        "webhook https://ops.example.com",
        SECRET,
        "X-SLA-Connector-Signature",
    )
    for channel in (slack, mail, hook):  # repr never shows a URL or secret (tracebacks, debuggers)
        assert "abcdefghijklmnopqrstuvwx" not in repr(channel) and SECRET not in repr(channel)
    assert config.policies.notice_templates["oncall-slack"].startswith("SLA {level}: ")


def test_an_unknown_channel_in_a_policy_is_a_configuration_error_naming_its_path() -> None:
    with pytest.raises(ConfigError) as exc:
        notice_config(breach=["oncall"])
    assert str(exc.value) == (
        "<test>: policies[0].escalations[2].actions[2].notify: unknown channel 'oncall' "
        "(known: oncall-slack, ops-hook, team-lead)"
    )


def test_no_channels_configured_and_a_policy_that_notifies() -> None:
    with pytest.raises(
        ConfigError, match=r"actions\[0\]\.notify: unknown channel 'oncall-slack' \(known: none"
    ):
        notice_config(channels={})


def test_smtp_urls_pick_apprise_s_tls_mode_by_port() -> None:
    import apprise

    def mode(smtp: str) -> str:
        settings = {"kind": "email", "smtp": smtp, "to": "lead@example.com", "from": "sla@example.com"}
        target = parse_channels({"m": settings})["m"].target
        return str(apprise.Apprise.instantiate(target).secure_mode)

    assert mode("mailtos://bot:pw@smtp.example.com:465") == "ssl"  # TLS from the first byte
    assert mode("mailtos://bot:pw@smtp.example.com:587") == "starttls"
    assert mode("mailtos://bot:pw@smtp.example.com") == "starttls"
    assert mode("mailto://smtp.example.com") == "insecure"
    with pytest.raises(
        ValueError, match=r"^notify_channels\.m\.smtp: mailto:// sends the password unencrypted"
    ):
        mode("mailto://bot:pw@smtp.example.com:587")


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        (
            "x",
            {"kind": "pager"},
            "notify_channels.x.kind: expected one of slack, teams, google_chat, email, webhook, got 'pager'",
        ),
        ("x", {"kind": "slack"}, "notify_channels.x: slack channels need url"),
        (
            "x",
            {"kind": "slack", "url": SLACK, "channel": "#ops"},
            "notify_channels.x: unknown key(s) 'channel'; expected kind, url, message",
        ),
        (
            "x",
            {"kind": "slack", "url": "https://example.com/hook"},
            "notify_channels.x.url: expected a Slack incoming-webhook URL (https://hooks.slack.com/services/...)",
        ),
        ("x", {"kind": "teams", "url": SLACK}, "notify_channels.x.url: expected a Microsoft Teams workflow"),
        ("x", {"kind": "google_chat", "url": TEAMS}, "notify_channels.x.url: expected a Google Chat space"),
        ("x", {"kind": "slack", "url": ""}, "notify_channels.x.url: expected a non-empty string"),
        (
            "x",
            {"kind": "slack", "url": SLACK, "message": "{ticket} {owner}"},
            "notify_channels.x.message: unknown placeholder {owner}",
        ),
        (
            "x",
            {
                "kind": "email",
                "smtp": "smtp://mail.example.com",
                "to": ["a@example.com"],
                "from": "s@example.com",
            },
            "notify_channels.x.smtp: expected mailtos://[user:password@]host[:port] (STARTTLS, or TLS",
        ),
        (
            "x",
            {"kind": "email", "smtp": "mailto://mail.example.com", "to": [], "from": "s@example.com"},
            "notify_channels.x.to: expected a list of email addresses",
        ),
        (
            "x",
            {"kind": "email", "smtp": "mailto://mail.example.com", "to": ["lead"], "from": "s@example.com"},
            "notify_channels.x.to[0]: 'lead' is not an email address",
        ),
        (
            "x",
            {
                "kind": "email",
                "smtp": "mailto://mail.example.com:99999",
                "to": ["a@example.com"],
                "from": "s@example.com",
            },
            "notify_channels.x.smtp: the port is not a number from 1 to 65535",
        ),
        (
            "x",
            {"kind": "webhook", "url": "ftp://ops.example.com", "secret": SECRET},
            "notify_channels.x.url: expected an http:// or https:// URL with a host, without a password",
        ),
        (
            "x",
            {"kind": "webhook", "url": "https://u:p@ops.example.com", "secret": SECRET},
            "notify_channels.x.url: expected an http:// or https:// URL with a host, without a password",
        ),
        (
            "x",
            {"kind": "webhook", "url": "https://ops.example.com", "secret": "short"},
            "notify_channels.x.secret: at least 16 characters",
        ),
        (
            "x",
            {"kind": "webhook", "url": "https://ops.example.com", "secret": SECRET, "header": "X Sig"},
            "notify_channels.x.header: 'X Sig' is not an HTTP header name",
        ),
        (
            "on call",
            {"kind": "slack", "url": SLACK},
            "notify_channels: key 'on call' does not match the expected",
        ),
        ("x", "slack", "notify_channels.x: expected a mapping with kind and its settings, got str"),
    ],
)
def test_bad_channels_are_refused_naming_their_path(name: str, settings: Any, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_channels({name: settings})
    assert str(exc.value).startswith(message)
    assert "abcdefghijklmnopqrstuvwx" not in str(exc.value)  # a chat URL is a secret: never quoted


def test_a_secret_url_from_the_environment_is_never_shown_in_an_error() -> None:
    channels = {"oncall-slack": {"kind": "teams", "url": "${SLACK_URL}"}}
    with pytest.raises(ConfigError) as exc:
        notice_config(channels=channels, breach=[])
    assert "notify_channels.oncall-slack.url: expected a Microsoft Teams" in str(exc.value)
    assert "abcdefghijklmnopqrstuvwx" not in str(exc.value)


def test_an_unset_secret_variable_names_the_variable() -> None:
    testdesk.register()
    raw = {
        "instances": {"desk": {"product": "testdesk", "base_url": DESK}},
        "notify_channels": channels_cfg(),
    }
    with pytest.raises(ConfigError) as exc:
        config_from_dict(raw, env={"SLACK_URL": SLACK}, source="<test>")
    assert str(exc.value) == (
        "<test>: notify_channels.ops-hook.secret: environment variable HOOK_SECRET is not set "
        "(referenced as ${HOOK_SECRET})"
    )


# ---------------------------------------------------------------- sending and its classification


def channel(kind: str, url: str) -> Channel:
    return parse_channels({"c": {"kind": kind, "url": url}})["c"]


NOTICE = Notice("desk", "T-1", "notify:test/resolution:breach:c", "SLA breach: resolution of T-1\nBody text.")


def test_slack_gets_the_subject_as_title_and_the_rest_as_text() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SLACK, body="ok")
        send(channel("slack", SLACK), NOTICE)
        [body] = slack_posts(rsps)
    [attachment] = body["attachments"]
    assert (attachment["title"], attachment["text"]) == ("SLA breach: resolution of T-1", "Body text.")


@pytest.mark.parametrize(("kind", "url"), [("slack", SLACK), ("teams", TEAMS), ("google_chat", GCHAT)])
@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, None),
        (400, NoticeRefused),
        (403, NoticeRefused),
        (404, NoticeRefused),
        (410, NoticeRefused),
        (408, NoticeFailed),
        (429, NoticeFailed),
        (500, NoticeFailed),
        (503, NoticeFailed),
    ],
)
def test_chat_answers_are_classified_by_their_http_status(
    kind: str, url: str, status: int, outcome: Any
) -> None:
    ch = channel(kind, url)
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            url.split("?")[0],
            status=status,
            body=("ok" if kind == "slack" else "{}") if status < 300 else "nope",
            match=[responses.matchers.query_string_matcher(url.split("?")[1] if "?" in url else "")],
        )
        if outcome is None:
            send(ch, NOTICE)
        else:
            with pytest.raises(outcome) as exc:
                send(ch, NOTICE)
            assert exc.value.status == status  # read from apprise's per-attempt log of the answer
            assert f"HTTP {status}" in str(exc.value) and url.split("/")[-1][:12] not in str(exc.value)
        assert len(rsps.calls) == 1  # apprise does not retry on its own: RQ does


def test_a_chat_timeout_is_retried_and_may_have_arrived() -> None:
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SLACK, body=requests.ConnectTimeout("connect timeout"))
        with pytest.raises(NoticeFailed) as exc:
            send(channel("slack", SLACK), NOTICE)
    assert exc.value.status is None and exc.value.maybe_sent
    assert "abcdefghijklmnopqrstuvwx" not in str(exc.value)


def hook_channel(url: str = "https://ops.example.com/hook?token=tok-in-query") -> Channel:
    return parse_channels({"ops": {"kind": "webhook", "url": url, "secret": SECRET}})["ops"]


def test_the_webhook_body_is_signed_with_hmac_sha256_and_carries_a_stable_id() -> None:
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, "https://ops.example.com/hook?token=tok-in-query", status=204)
        send(hook_channel(), NOTICE, now)
        send(hook_channel(), dataclasses.replace(NOTICE, repeat=True), now)
        first, again = (c.request for c in rsps.calls)
    raw = first.body
    expected = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert first.headers["X-SLA-Connector-Signature"] == f"sha256={expected}"
    assert first.headers["Content-Type"] == "application/json"
    assert json.loads(raw) == {
        "id": NOTICE.id,
        "instance": "desk",
        "ticket": "T-1",
        "key": NOTICE.key,
        "channel": "ops",
        "subject": "SLA breach: resolution of T-1",
        "text": "Body text.",
        "repeat": False,
        "sent_at": "2026-11-27T10:00:00+00:00",
    }
    assert first.headers[NOTICE_ID_HEADER] == again.headers[NOTICE_ID_HEADER] == NOTICE.id
    assert json.loads(again.body)["repeat"] is True


@pytest.mark.parametrize(
    ("answer", "outcome", "maybe_sent"),
    [
        (200, None, False),
        (301, NoticeRefused, False),  # never followed: a redirect turns a POST into a GET
        (401, NoticeRefused, False),
        (422, NoticeRefused, False),
        (425, NoticeFailed, False),
        (502, NoticeFailed, False),
        (requests.ReadTimeout("read timeout"), NoticeFailed, True),
        (requests.ConnectionError("refused"), NoticeFailed, True),
    ],
)
def test_webhook_answers_are_classified(answer: Any, outcome: Any, maybe_sent: bool) -> None:
    with responses.RequestsMock() as rsps:
        if isinstance(answer, int):
            rsps.add(responses.POST, "https://ops.example.com/hook?token=tok-in-query", status=answer)
        else:
            rsps.add(responses.POST, "https://ops.example.com/hook?token=tok-in-query", body=answer)
        if outcome is None:
            send(hook_channel(), NOTICE)
            return
        with pytest.raises(outcome) as exc:
            send(hook_channel(), NOTICE)
    assert "tok-in-query" not in str(exc.value)
    if outcome is NoticeFailed:
        assert exc.value.maybe_sent is maybe_sent


def test_email_goes_through_smtp_with_the_subject_and_a_stable_notice_header(smtp: FakeSmtp) -> None:
    mail = parse_channels(
        {
            "m": {
                "kind": "email",
                "smtp": smtp.url,
                "to": ["lead@example.com", "ops@example.com"],
                "from": "sla@example.com",
            }
        }
    )["m"]
    send(mail, NOTICE)
    assert sorted(str(m["To"]) for m in smtp.messages) == ["lead@example.com", "ops@example.com"]
    message = smtp.messages[0]
    assert (str(message["Subject"]), str(message["From"])) == (
        "SLA breach: resolution of T-1",
        "sla@example.com",
    )
    assert str(message[NOTICE_ID_HEADER]) == NOTICE.id
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    assert text.get_payload(decode=True).decode().replace("\r\n", "\n").strip() == "Body text."


def test_an_email_the_server_refuses_is_retried_not_taken_as_sent(smtp: FakeSmtp) -> None:
    smtp.refuse["lead@example.com"] = "550 5.1.1 no such user"
    mail = parse_channels(
        {"m": {"kind": "email", "smtp": smtp.url, "to": ["lead@example.com"], "from": "sla@example.com"}}
    )["m"]
    with pytest.raises(NoticeFailed) as exc:  # apprise keeps the SMTP code to itself: retried
        send(mail, NOTICE)
    assert not exc.value.maybe_sent and smtp.messages == []


def test_an_unreachable_smtp_server_is_retried() -> None:
    mail = parse_channels(
        {
            "m": {
                "kind": "email",
                "smtp": "mailto://127.0.0.1:9",
                "to": ["lead@example.com"],
                "from": "sla@example.com",
            }
        }
    )["m"]
    with pytest.raises(NoticeFailed):
        send(mail, NOTICE)


# ---------------------------------------------------------------- the look job: once per level and ticket


def test_slack_notices_are_sent_once_per_level_across_duplicates_and_looks(redis_conn: redis.Redis) -> None:
    ctx, clock = make(redis_conn, notice_config())
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        rsps.add(responses.POST, SLACK, body="ok")
        post(redis_conn, "d1", "T-1", [sla_config.created("T-1", T0)])
        post(redis_conn, "d1-again", "T-1", [sla_config.created("T-1", T0)])
        drain(ctx)
        assert slack_posts(rsps) == []  # no level with a notice reached yet
        run_to(ctx, clock, 6)  # 50%
        post(redis_conn, "d1-third", "T-1", [sla_config.created("T-1", T0)])
        run_to(ctx, clock, 7)
        run_to(ctx, clock, 11)  # the breach
        run_to(ctx, clock, 12)
        post(
            redis_conn,
            "d2",
            "T-1",
            [sla_config.changed("T-1", T0 + timedelta(seconds=3), "u1", priority="high")],
        )
        run_to(ctx, clock, 13)
        titles = [p["attachments"][0]["title"] for p in slack_posts(rsps)]
    assert titles == ["SLA half: resolution of T-1", "SLA breach: resolution of T-1"]
    assert ledger(redis_conn) == {f"{HALF}:oncall-slack": "sent", f"{BREACH}:oncall-slack": "sent"}
    assert counter(redis_conn, "notices_sent") == 2
    assert failed.failed_count(redis_conn) == 0


def test_a_slack_refusal_is_recorded_once_and_never_resent(redis_conn: redis.Redis) -> None:
    ctx, clock = make(redis_conn, notice_config())
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        rsps.add(responses.POST, SLACK, status=404, body="no_service")
        post(redis_conn, "d1", "T-1", [sla_config.created("T-1", T0)])
        drain(ctx)
        drained = run_to(ctx, clock, 6)
        assert drained.failures == []  # a refusal is no failure: the look went through
        for second in (7, 8, 9):
            run_to(ctx, clock, second)
        post(redis_conn, "d2", "T-1", [sla_config.created("T-1", T0)])
        drain(ctx)
        assert len(slack_posts(rsps)) == 1
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and ledger(redis_conn) == {}
    assert record.rejected[f"{HALF}:oncall-slack"]["value"] == "sent"
    assert "HTTP 404" in record.rejected[f"{HALF}:oncall-slack"]["reason"]
    assert redis_conn.sismember(store.REFUSED, failed.ticket_id("desk", "T-1"))
    assert [e["id"] for e in failed.list_failed(redis_conn)] == [failed.ticket_id("desk", "T-1")]
    assert counter(redis_conn, "effects_rejected") == 1


def test_failed_retry_forgets_a_refusal_and_the_fixed_channel_gets_the_notice_once(
    redis_conn: redis.Redis,
) -> None:
    ctx, clock = make(redis_conn, notice_config(breach=[]))
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        rsps.add(responses.POST, SLACK, status=403, body="action_prohibited")
        rsps.add(responses.POST, SLACK, body="ok")
        post(redis_conn, "d1", "T-1", [sla_config.created("T-1", T0)])
        drain(ctx)
        run_to(ctx, clock, 6)
        assert ledger(redis_conn) == {}
        assert failed.retry_failed(redis_conn, [failed.ticket_id("desk", "T-1")]) == 1
        drain(ctx)
        run_to(ctx, clock, 7)
        assert len(slack_posts(rsps)) == 2
    assert ledger(redis_conn) == {f"{HALF}:oncall-slack": "sent"}
    assert failed.list_failed(redis_conn) == []


def test_a_slack_5xx_fails_the_look_rq_retries_it_and_the_notice_goes_once(redis_conn: redis.Redis) -> None:
    ctx, clock = make(redis_conn, notice_config(breach=[]))
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        rsps.add(responses.POST, SLACK, status=500, body="rollup_error")
        rsps.add(responses.POST, SLACK, status=503, body="unavailable")
        rsps.add(responses.POST, SLACK, body="ok")
        post(redis_conn, "d1", "T-1", [sla_config.created("T-1", T0)])
        drain(ctx)
        drained = run_to(ctx, clock, 6)
        assert len(drained.failures) == 1 and "HTTP 500" in drained.failures[0]
        assert ledger(redis_conn) == {}
        assert len(run_retries(ctx).failures) == 1  # 503: again
        assert run_retries(ctx).failures == []  # 200
        run_to(ctx, clock, 7)
        post(redis_conn, "d2", "T-1", [sla_config.created("T-1", T0)])
        drain(ctx)
        assert len(slack_posts(rsps)) == 3
        puts = [c for c in rsps.calls if c.request.method == "PUT"]
    assert ledger(redis_conn) == {f"{HALF}:oncall-slack": "sent"}
    assert len(puts) == 1  # the ticket's own writes were recorded before the failing notice: not repeated
    assert counter(redis_conn, "notices_failed") == 2
    assert failed.failed_count(redis_conn) == 0


def test_emails_are_sent_once_per_level_even_with_duplicate_deliveries(
    redis_conn: redis.Redis, smtp: FakeSmtp
) -> None:
    config = notice_config(channels=channels_cfg(smtp.url), half=["team-lead"], breach=["team-lead"])
    ctx, clock = make(redis_conn, config)
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        for delivery in ("d1", "d1-again"):
            post(redis_conn, delivery, "T-1", [sla_config.created("T-1", T0)])
        drain(ctx)
        for second in (6, 6, 9):
            post(redis_conn, f"dup-{second}", "T-1", [sla_config.created("T-1", T0)])
            run_to(ctx, clock, second)
        for second in (11, 11, 15):
            post(redis_conn, f"dup-{second}", "T-1", [sla_config.created("T-1", T0)])
            run_to(ctx, clock, second)
    assert [str(m["Subject"]) for m in smtp.to("lead@example.com")] == [
        "SLA half: resolution of T-1",
        "SLA breach: resolution of T-1",
    ]
    ids = [str(m[NOTICE_ID_HEADER]) for m in smtp.messages]
    assert len(set(ids)) == 2
    assert ledger(redis_conn) == {f"{HALF}:team-lead": "sent", f"{BREACH}:team-lead": "sent"}


def test_a_notice_interrupted_mid_send_goes_again_marked_as_a_possible_repeat(
    redis_conn: redis.Redis,
) -> None:
    hook = FakeHook().start()
    try:
        config = notice_config(channels=channels_cfg(hook_url=hook.url), half=["ops-hook"], breach=[])
        ctx, clock = make(redis_conn, config)
        with responses.RequestsMock(passthru_prefixes=("http://127.0.0.1",)) as rsps:
            desk_api(rsps)
            post(redis_conn, "d1", "T-1", [sla_config.created("T-1", T0)])
            drain(ctx)
            # What a worker killed between the channel's answer and the ledger write leaves: the intent.
            key = f"{HALF}:ops-hook"
            redis_conn.hset(store.ticket_key("desk", "T-1"), store.META + "notifying:" + key, "1.0")
            run_to(ctx, clock, 6)
            run_to(ctx, clock, 7)
    finally:
        hook.stop()
    [only] = hook.received
    assert only.json["repeat"] is True and only.json["key"] == key
    assert ledger(redis_conn) == {key: "sent"}
    fields = redis_conn.hkeys(store.ticket_key("desk", "T-1"))
    assert not [f for f in fields if b"notifying:" in f]  # the intent goes with the ledger write
    assert counter(redis_conn, "notices_repeated") == 1


def test_the_repeat_note_is_appended_to_chat_and_email_text(smtp: FakeSmtp) -> None:
    mail = parse_channels(
        {"m": {"kind": "email", "smtp": smtp.url, "to": ["lead@example.com"], "from": "sla@example.com"}}
    )["m"]
    send(mail, Notice("desk", "T-1", NOTICE.key, NOTICE.text, repeat=True))
    text = next(p for p in smtp.messages[0].walk() if p.get_content_type() == "text/plain")
    assert (
        text.get_payload(decode=True).decode().replace("\r\n", "\n").strip() == f"Body text.\n\n{REPEAT_NOTE}"
    )


def test_dry_run_logs_notices_and_sends_none(redis_conn: redis.Redis, smtp: FakeSmtp, caplog) -> None:
    config = notice_config(dry_run=True, channels=channels_cfg(smtp.url), half=["oncall-slack", "team-lead"])
    ctx, clock = make(redis_conn, config)
    caplog.set_level(logging.INFO, logger="sla_connector.jobs")
    with responses.RequestsMock() as rsps:
        rsps.assert_all_requests_are_fired = False
        rsps.add(responses.POST, SLACK, body="ok")
        post(redis_conn, "d1", "T-1", [sla_config.created("T-1", T0)])
        drain(ctx)
        run_to(ctx, clock, 6)
        run_to(ctx, clock, 7)
        assert len(rsps.calls) == 0
    assert smtp.messages == []
    logged = {
        r.effect: r.value
        for r in caplog.records
        if getattr(r, "event", None) == "effect_dry_run" and r.effect.startswith("notify:")
    }
    assert sorted(logged) == [f"{HALF}:oncall-slack", f"{HALF}:team-lead"]
    assert logged[f"{HALF}:oncall-slack"].startswith("SLA half: resolution of T-1\n")
    record = store.load_record(redis_conn, "desk", "T-1")
    assert record is not None and record.ledger == {} and f"{HALF}:team-lead" in record.dry_ledger


def test_log_lines_about_notices_never_hold_a_url_or_secret(redis_conn: redis.Redis, caplog) -> None:
    ctx, clock = make(redis_conn, notice_config(breach=[]))
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as rsps:
        desk_api(rsps)
        rsps.add(responses.POST, SLACK, status=500, body="rollup_error")
        rsps.add(responses.POST, SLACK, body="ok")
        post(redis_conn, "d1", "T-1", [sla_config.created("T-1", T0)])
        drain(ctx)
        run_to(ctx, clock, 6)
        run_retries(ctx)
    events = [getattr(r, "event", None) for r in caplog.records]
    assert "notice_failed" in events and "notice_sent" in events
    for r in caplog.records:
        assert "abcdefghijklmnopqrstuvwx" not in r.getMessage() + json.dumps(r.__dict__, default=str)
    sent = next(r for r in caplog.records if getattr(r, "event", None) == "notice_sent")
    assert (sent.channel, sent.instance, sent.ticket) == ("oncall-slack", "desk", "T-1")


def test_a_config_without_channels_keeps_working_unchanged() -> None:
    config = sla_config.desk_config(DESK)
    assert config.notify_channels == {} and config.policies.notice_templates == {}
