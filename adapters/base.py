"""The small protocol every helpdesk adapter implements, and the typed errors it raises.

Nothing product-specific lives here. A product is a package `adapters/<product>/` exposing
`create(instance, config, env) -> Adapter` and `CONFIG_SCHEMA` (the JSON Schema of its own
instance settings); `load(product)` finds it by name, so a third helpdesk is a new folder.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import ModuleType
from typing import Any, Protocol

from sla.effects import Effect
from sla.events import TicketEvent

_log = logging.getLogger("sla.adapters")

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


# ---------------------------------------------------------------- outbound errors


class ApiError(Exception):
    """A call to the product's API failed. Messages never contain credentials."""

    retryable = False

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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


def report_bad(
    instance: str, ticket_id: str, bad: Sequence[tuple[Effect, ValueError]], applied: Sequence[Effect]
) -> None:
    """After the good effects were written: log each effect whose value cannot be written.

    With nothing written, raise one ValueError naming them all: the pipeline counts it as a failed
    attempt (ending in the failed registry), so a bad value is reported and never blocks the rest.
    With progress, the missing effects make the pipeline retry soon, and the retry raises.
    """
    if not bad:
        return
    message = "; ".join(f"effect {effect.key!r}: {exc}" for effect, exc in bad)
    if not applied:
        raise ValueError(f"instance {instance!r}, ticket {ticket_id}: {message}")
    for effect, exc in bad:
        _log.error(
            "effect not written: bad value",
            extra={"event": "effect_bad_value", "instance": instance, "ticket": ticket_id,
                   "effect": effect.key, "error": str(exc)},
        )


# ---------------------------------------------------------------- the protocol


class WritebackClient(Protocol):
    def apply(self, ticket_id: str, effects: Sequence[Effect]) -> list[Effect]:
        """Write `effects` to the ticket in as few calls as the API allows; return those applied.

        Comments carry `sla.effects.comment_marker(key)`; before posting one the client looks for
        the marker among the ticket's comments and skips the post if it is already there (a
        worker may have died between the product's answer and the ledger write).
        Raises ApiError subclasses; retry decisions beyond a short bounded retry belong to jobs.
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
