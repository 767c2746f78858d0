"""The small protocol every helpdesk adapter implements, and the typed errors it raises.

Nothing product-specific lives here. A product is a package `adapters/<product>/` exposing
`create(instance, config, env) -> Adapter` and `CONFIG_SCHEMA` (the JSON Schema of its own
instance settings); `load(product)` finds it by name, so a third helpdesk is a new folder.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import ModuleType
from typing import Any, Protocol

from sla.effects import Effect
from sla.events import TicketEvent

# ---------------------------------------------------------------- inbound errors


class InboundError(Exception):
    """A delivery the receiver must refuse; `status` is the HTTP answer."""

    status = 400
    reason = "invalid"


class SignatureError(InboundError):
    """Missing, malformed, stale or wrong signature (never says which secret was expected)."""

    status = 401
    reason = "signature"


class PayloadError(InboundError):
    """The payload is not one this product sends; `path` names the failing JSON location."""

    status = 400
    reason = "schema"

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


#: The instants a delivery may state (UTC; the end is exclusive). A helpdesk records nothing before the
#: Unix epoch (Jira's own `timestamp` counts from it) and nothing in the 23rd century; far outside
#: this range the workers' arithmetic (time zones, business calendars, epoch seconds) overflows.
EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(2200, 1, 1, tzinfo=UTC)


def in_range(when: datetime, path: str, raw: Any = None) -> datetime:
    """`when` (timezone-aware) unchanged if it lies in [EARLIEST_INSTANT, LATEST_INSTANT); else a
    PayloadError naming `path` and the value as the payload gave it (`raw`, default `when`)."""
    try:
        utc = when.astimezone(UTC)  # 9999-12-31T23:59:59-01:00 has no UTC datetime: OverflowError
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_INSTANT <= utc < LATEST_INSTANT:
        shown = when.isoformat() if raw is None else raw
        raise PayloadError(f"{shown!r} is outside the instants a delivery may state "
                           "(1970-01-01 to 2199-12-31 UTC)", path)
    return when


def encodable(text: str, path: str) -> str:
    """`text` if it has a UTF-8 form (ids become Redis keys and queue fields); else a PayloadError naming
    `path`. Only a lone surrogate (half an emoji, or `\\ud800` written in the JSON) has none."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise PayloadError(f"not valid text: a lone surrogate {text[exc.start]!r} at position {exc.start}",
                           path) from None
    return text


# ---------------------------------------------------------------- outbound errors


class ApiError(Exception):
    """A call to the product's API failed. Messages never contain credentials."""

    retryable = False

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        #: The product's decoded JSON error body of a 4xx answer (set by `adapters.http`), so a
        #: client can tell which field a validation error names; None when there is none.
        self.body: Any = None


class Unauthorized(ApiError):  # 401
    pass


class Forbidden(ApiError):  # 403
    pass


class NotFound(ApiError):
    """404 (or a product's own "can never be written again"): the ticket may be gone.

    A bare 404 also means lost permission or (Jira Cloud) refused credentials, so the pipeline
    believes it only with a deletion event, unless `confirmed`: the adapter re-read the ticket
    (404 again) and an authenticated probe succeeded, so the credentials work and the ticket is gone.
    """

    def __init__(self, message: str, status: int | None = None, *, confirmed: bool = False) -> None:
        super().__init__(message, status)
        self.confirmed = confirmed


class Conflict(ApiError):  # 409: someone else changed the ticket; try again
    retryable = True


class RateLimited(ApiError):  # 429
    retryable = True

    def __init__(self, message: str, retry_after: float, status: int | None = 429) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


class ServerError(ApiError):  # 5xx
    retryable = True


class Timeout(ApiError):  # connect or read timeout, connection refused
    retryable = True


class EffectRejected(ApiError):
    """The product (or the adapter's own mapping) refused the *values* of specific effects.

    `rejected` maps each refused effect's key to why (the product's validation message or the
    adapter's own; never a credential). `applied` holds the effects of the same `apply` call that
    were written anyway: a client writes the good effects before it raises this. Not retryable:
    the same value would be refused again, so the pipeline records it once as rejected instead.
    """

    def __init__(
        self,
        message: str,
        rejected: Mapping[str, str],
        applied: Sequence[Effect] = (),
        status: int | None = None,
    ) -> None:
        super().__init__(message, status)
        self.rejected = dict(rejected)
        self.applied = list(applied)


REASON_LIMIT = 300  # a rejection reason is logged and kept per effect: keep it short


def reject(instance: str, ticket_id: str, rejected: Mapping[str, str], applied: Sequence[Effect]) -> None:
    """After the good effects were written: raise EffectRejected naming the refused ones (if any)."""
    if not rejected:
        return
    reasons = {key: reason[:REASON_LIMIT] for key, reason in rejected.items()}
    listed = "; ".join(f"effect {key!r}: {reason}" for key, reason in reasons.items())
    raise EffectRejected(f"instance {instance!r}, ticket {ticket_id}: {listed}", reasons, applied)


def report_bad(
    instance: str, ticket_id: str, bad: Sequence[tuple[Effect, ValueError]], applied: Sequence[Effect]
) -> None:
    """`reject` for effects whose value the adapter itself cannot map (no call was made for them)."""
    reject(instance, ticket_id, {effect.key: str(exc) for effect, exc in bad}, applied)


# ---------------------------------------------------------------- the protocol


class WritebackClient(Protocol):
    def apply(self, ticket_id: str, effects: Sequence[Effect]) -> list[Effect]:
        """Write `effects` to the ticket in as few calls as the API allows; return those applied.

        Comments carry `sla.effects.comment_marker(key)`; before posting one the client looks for
        the marker among the ticket's comments and skips the post if it is already there (a
        worker may have died between the product's answer and the ledger write).
        Raises ApiError subclasses; retry decisions beyond a short bounded retry belong to jobs.
        An effect whose value the product refuses (a validation error naming its field) or the
        adapter cannot map is not written: the others are, then `EffectRejected` names the refused
        ones and carries the applied ones.
        """
        ...


class Adapter(Protocol):
    product: str
    instance: str

    def verify(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        """Check the signature on the raw body. `headers` keys are lower-case. Raises SignatureError."""
        ...

    def validate(self, payload: Any) -> None:
        """Check the parsed payload against the product's JSON Schemas. Raises PayloadError."""
        ...

    def delivery_id(self, headers: Mapping[str, str], payload: Any) -> str:
        """A stable id of this delivery, the same across the product's retries (dedupe key)."""
        ...

    def ticket_id(self, payload: Any) -> str | None:
        """The ticket a payload is about, or None for payloads that concern no ticket."""
        ...

    def normalise(self, payload: Any, headers: Mapping[str, str]) -> list[TicketEvent]:
        """Canonical events of a validated payload; [] for supported-but-ignored event kinds."""
        ...

    def client(self) -> WritebackClient:
        ...

    # Optional (`DeliverySigner`): `sign(body, now)` and `delivery_headers(delivery_id)`, used by
    # `sla-connector send-test-event`; an adapter without them cannot be sent test events.
    # Optional (`DisplayKeys`): `display_key(payload)`, the name people use for the ticket.


class DisplayKeys(Protocol):
    """What an adapter offers when its product names tickets by something other than their id."""

    def display_key(self, payload: Any) -> str | None:
        """The key people use for the payload's ticket (Jira: "SUP-42"), or None. The look job indexes
        it so that the ticket API and `sla-connector ticket` accept it as well as the id."""
        ...


class DeliverySigner(Protocol):
    """What an adapter offers to sign test deliveries exactly as its product would send them."""

    def sign(self, body: bytes, now: datetime) -> dict[str, str]:
        """The signature headers for `body` at `now`, with the instance's configured secret.

        Raises ValueError (naming the setting or variable, never the secret) when there is none.
        """
        ...

    def delivery_headers(self, delivery_id: str) -> dict[str, str]:
        """The product's delivery-id header(s), so a repeated test delivery can be deduplicated."""
        ...


def load(product: str) -> ModuleType:
    """The adapter package for `product` (e.g. "jira" loads `adapters.jira`)."""
    if not product.isidentifier() or product.startswith("_") or product == "base":
        raise ValueError(f"unknown product {product!r}")
    try:
        module = importlib.import_module(f"adapters.{product}")
    except ModuleNotFoundError as exc:
        raise ValueError(f"unknown product {product!r}: no package adapters/{product}/") from exc
    for attr in ("create", "CONFIG_SCHEMA"):
        if not hasattr(module, attr):
            raise ValueError(f"adapters/{product}/ does not define {attr}")
    return module
