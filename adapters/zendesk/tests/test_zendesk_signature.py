"""Signature checks: valid, missing, wrong, malformed, stale, future, and no secret configured."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.base import SignatureError
from adapters.zendesk.signature import sign, verify_signature
from adapters.zendesk.tests.helpers import ENV, NOW, SECRET, adapter, fixture_bytes, signed_headers

BODY = fixture_bytes("event_status_changed")


def test_valid_signature_passes() -> None:
    adapter().verify(signed_headers(BODY), BODY, NOW)


def test_documented_example_shape() -> None:
    # base64(HMAC-SHA256(secret, timestamp + body)): 44 characters of base64 for 32 bytes.
    signature = sign("secret", "2021-03-25T05:09:27Z", b"{}")
    assert len(base64.b64decode(signature)) == 32
    verify_signature(
        {
            "x-zendesk-webhook-signature": signature,
            "x-zendesk-webhook-signature-timestamp": "2021-03-25T05:09:27Z",
        },
        b"{}",
        "secret",
        NOW.replace(year=2021, month=3, day=25, hour=5, minute=10),
        300,
    )


def test_epoch_seconds_timestamp_is_accepted() -> None:
    ts = str(int((NOW - timedelta(seconds=10)).timestamp()))
    adapter().verify(signed_headers(BODY, timestamp=ts), BODY, NOW)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h: h.pop("x-zendesk-webhook-signature"), "missing X-Zendesk-Webhook-Signature header"),
        (
            lambda h: h.pop("x-zendesk-webhook-signature-timestamp"),
            "missing X-Zendesk-Webhook-Signature-Timestamp",
        ),
        (
            lambda h: h.update({"x-zendesk-webhook-signature": "not base64!!"}),
            "malformed X-Zendesk-Webhook-Signature",
        ),
        (
            lambda h: h.update({"x-zendesk-webhook-signature": base64.b64encode(b"short").decode()}),
            "not an HMAC-SHA256 digest",
        ),
        (
            lambda h: h.update({"x-zendesk-webhook-signature-timestamp": "yesterday"}),
            "malformed X-Zendesk-Webhook-Signature-Timestamp",
        ),
        (
            lambda h: h.update(
                {"x-zendesk-webhook-signature": sign("other-secret", "2026-11-27T11:59:30Z", BODY)}
            ),
            "wrong X-Zendesk-Webhook-Signature",
        ),
        # Re-signed with a different timestamp header than the one sent: wrong.
        (
            lambda h: h.update({"x-zendesk-webhook-signature-timestamp": "2026-11-27T11:59:31Z"}),
            "wrong X-Zendesk-Webhook-Signature",
        ),
    ],
)
def test_bad_signatures_are_refused_with_a_clear_reason(mutate, message: str) -> None:
    headers = signed_headers(BODY)
    mutate(headers)
    with pytest.raises(SignatureError, match=message) as info:
        adapter().verify(headers, BODY, NOW)
    assert info.value.status == 401
    assert SECRET not in str(info.value)


def test_tampered_body_is_refused() -> None:
    headers = signed_headers(BODY)
    with pytest.raises(SignatureError, match="wrong"):
        adapter().verify(headers, BODY.replace(b"PENDING", b"SOLVED_"), NOW)


def test_stale_timestamp_is_refused() -> None:
    old = "2026-11-27T11:54:59Z"  # 301 s before NOW
    with pytest.raises(SignatureError, match=r"stale signature timestamp: 301 s old, limit 300 s"):
        adapter().verify(signed_headers(BODY, timestamp=old), BODY, NOW)
    adapter().verify(signed_headers(BODY, timestamp="2026-11-27T11:55:00Z"), BODY, NOW)  # exactly 300 s


def test_signature_max_age_is_configurable() -> None:
    zd = adapter(webhook={"secret_env": "ZD_SECRET", "signature_max_age": 30})
    with pytest.raises(SignatureError, match="limit 30 s"):
        zd.verify(signed_headers(BODY, timestamp="2026-11-27T11:59:00Z"), BODY, NOW)


def test_future_timestamp_is_refused() -> None:
    with pytest.raises(SignatureError, match="in the future"):
        adapter().verify(signed_headers(BODY, timestamp="2026-11-27T12:05:00Z"), BODY, NOW)


def test_missing_signing_secret_fails_closed() -> None:
    env = {k: v for k, v in ENV.items() if k != "ZD_SECRET"}
    zd = adapter(env=env)
    with pytest.raises(SignatureError, match="no webhook signing secret is configured"):
        zd.verify(signed_headers(BODY), BODY, NOW)


@given(body=st.binary(max_size=512), flip=st.integers(min_value=0, max_value=511), age=st.integers(0, 300))
def test_any_signed_body_verifies_and_any_changed_byte_does_not(body: bytes, flip: int, age: int) -> None:
    timestamp = (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = signed_headers(body, timestamp=timestamp)
    verify_signature(headers, body, SECRET, NOW, 300)
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        with pytest.raises(SignatureError, match="wrong"):
            verify_signature(headers, changed, SECRET, NOW, 300)


def test_adapter_sign_is_what_zendesk_sends_and_verify_accepts() -> None:
    from adapters.zendesk.tests.helpers import NOW, adapter

    zd = adapter()
    headers = zd.sign(b'{"id": "01"}', NOW)
    assert headers["X-Zendesk-Webhook-Signature-Timestamp"] == "2026-11-27T12:00:00Z"
    zd.verify({k.lower(): v for k, v in headers.items()}, b'{"id": "01"}', NOW)
    assert zd.delivery_headers("inv-7") == {"X-Zendesk-Webhook-Invocation-Id": "inv-7"}


def test_adapter_sign_without_the_secret_names_the_variable_not_a_value() -> None:
    from adapters.zendesk.tests.helpers import ENV, NOW, adapter

    zd = adapter(env={k: v for k, v in ENV.items() if k != "ZD_SECRET"})
    with pytest.raises(ValueError, match=r"environment variable ZD_SECRET \(webhook.secret_env\) is not set"):
        zd.sign(b"{}", NOW)
