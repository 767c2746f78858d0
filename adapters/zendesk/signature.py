"""Zendesk webhook signatures: a pure function of headers, raw body, secret and `now`.

Zendesk signs `timestamp + body` with HMAC-SHA256 and sends the base64 digest in
`X-Zendesk-Webhook-Signature`, the timestamp (ISO 8601, e.g. 2021-03-25T05:09:27Z) in
`X-Zendesk-Webhook-Signature-Timestamp`. The timestamp string is signed exactly as received.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from adapters.base import SignatureError

SIGNATURE_HEADER = "x-zendesk-webhook-signature"
TIMESTAMP_HEADER = "x-zendesk-webhook-signature-timestamp"
#: Clocks differ a little; a timestamp further ahead than this is refused as well.
FUTURE_TOLERANCE_SECONDS = 60


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Zendesk sends for `body` at `timestamp` (used by tests and tools)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def parse_timestamp(raw: str) -> datetime:
    """ISO 8601 as Zendesk documents it; plain epoch seconds are accepted too."""
    text = raw.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), tz=UTC)
    parsed = datetime.fromisoformat(text.replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no time zone")
    return parsed


def verify_signature(
    headers: Mapping[str, str], body: bytes, secret: str | None, now: datetime, max_age: int
) -> None:
    """Raise SignatureError unless the delivery is signed with `secret` within `max_age` seconds."""
    if not secret:
        raise SignatureError("no webhook signing secret is configured for this instance")
    signature = headers.get(SIGNATURE_HEADER)
    if not signature:
        raise SignatureError("missing X-Zendesk-Webhook-Signature header")
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not timestamp:
        raise SignatureError("missing X-Zendesk-Webhook-Signature-Timestamp header")
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("malformed X-Zendesk-Webhook-Signature: not base64") from None
    if len(given) != hashlib.sha256().digest_size:
        raise SignatureError("malformed X-Zendesk-Webhook-Signature: not an HMAC-SHA256 digest")
    try:
        signed_at = parse_timestamp(timestamp)
    except (ValueError, OverflowError, OSError):
        raise SignatureError("malformed X-Zendesk-Webhook-Signature-Timestamp: not ISO 8601") from None
    # Check the signature before the age, so that an attacker learns nothing about clock windows.
    expected = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        raise SignatureError("wrong X-Zendesk-Webhook-Signature")
    age = (now - signed_at).total_seconds()
    if age > max_age:
        raise SignatureError(f"stale signature timestamp: {int(age)} s old, limit {max_age} s")
    if age < -FUTURE_TOLERANCE_SECONDS:
        raise SignatureError(f"signature timestamp is {int(-age)} s in the future")
