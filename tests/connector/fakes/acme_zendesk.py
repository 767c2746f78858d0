"""The acme-zendesk instance as the tests that read Zendesk configure it: the connector's own user and
the custom status are those of adapters/zendesk/tests/fixtures, and a 5xx is not retried within the
call (tests do not wait)."""

from __future__ import annotations

INSTANCE = {
    "product": "zendesk",
    "subdomain": "acme",
    "auth": {"email_env": "ZENDESK_EMAIL", "token_env": "ZENDESK_API_TOKEN"},
    "webhook": {"secret_env": "ZENDESK_WEBHOOK_SECRET"},
    "connector_user_id": 900000000001,
    "custom_statuses": {"8447388091999": "on_hold"},
    "http": {"max_attempts": 1},
}
