"""Who wrote a comment or made a change, and whether the requester can see a comment.

Jira has no agent role of its own (Jira Software has none at all), so the rules are configurable;
docs/install-jira.md ("Who counts as an agent") is their user-facing description.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.jira.config import JiraConfig
from sla.events import Role

MARKER_PREFIX = "[sla-connector:"
Payload = Mapping[str, Any]


def user_ids(user: Mapping[str, Any] | None) -> set[str]:
    """Every id a user is known by: Cloud accountId, Data Center name and key."""
    if not user:
        return set()
    return {str(user[k]) for k in ("accountId", "name", "key") if user.get(k)}


def user_id(user: Mapping[str, Any] | None) -> str | None:
    """The id written back for this user: Cloud accountId, Data Center name."""
    if not user:
        return None
    return user.get("accountId") or user.get("name") or user.get("key")


def actor_role(cfg: JiraConfig, user: Payload | None, fields: Payload, text: str = "") -> Role:
    """Connector, requester, agent, or other, in that order of precedence (see docs/install-jira.md)."""
    if MARKER_PREFIX in text:
        return Role.CONNECTOR
    ids = user_ids(user)
    if not ids:
        return Role.OTHER
    if cfg.connector_user and cfg.connector_user in ids:
        return Role.CONNECTOR
    account_type = (user or {}).get("accountType")
    if ids & user_ids(fields.get("reporter")) or account_type == "customer":
        return Role.REQUESTER
    if ids & cfg.agent_users:
        return Role.AGENT
    if account_type == "app":
        return Role.OTHER
    # Data Center users have no accountType: they count as Atlassian accounts.
    if cfg.agents_default == "atlassian_accounts_except_reporter" and account_type in (None, "atlassian"):
        return Role.AGENT
    return Role.OTHER


def body_text(body: Any) -> str:
    """Plain text of a comment body: a string (v2, Data Center) or an ADF document (Cloud v3)."""
    if isinstance(body, str):
        return body
    if isinstance(body, Mapping):
        own = body.get("text") if isinstance(body.get("text"), str) else ""
        return own + "".join(body_text(child) for child in body.get("content") or ())
    if isinstance(body, list):
        return "".join(body_text(child) for child in body)
    return ""


def is_public(comment: Mapping[str, Any]) -> bool:
    """Private: JSM internal (`jsdPublic: false` or `sd.public.comment` internal) or role/group restricted."""
    if comment.get("visibility"):
        return False
    if comment.get("jsdPublic") is False:
        return False
    for prop in comment.get("properties") or ():
        if prop.get("key") == "sd.public.comment" and (prop.get("value") or {}).get("internal") is True:
            return False
    return True
