"""The configuration's `notify_channels`: where a policy level's `notify: <channel>` goes.

    notify_channels:
      oncall-slack: {kind: slack, url: "${SLACK_WEBHOOK_URL}"}
      team-lead:    {kind: email, smtp: "mailtos://sla:${SMTP_PASSWORD}@smtp.example.com:587",
                     to: [lead@example.com], from: sla@example.com}
      ops-hook:     {kind: webhook, url: "https://ops.example.com/hook", secret: "${OPS_HOOK_SECRET}"}

Webhook URLs of chat channels and SMTP passwords are secrets: they come from the environment through
`${VAR}` (the loader substitutes them) and never appear in an error or a log line (`Channel.shown`).
Every error is a ValueError whose message starts with the path, e.g.
"notify_channels.oncall.url: expected a Slack incoming-webhook URL (https://hooks.slack.com/services/...)".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from sla.notices import DEFAULT_TEMPLATE
from sla.templates import check_template

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
MIN_SECRET_CHARS = 16
DEFAULT_SIGNATURE_HEADER = "X-SLA-Connector-Signature"

# kind -> (apprise's plugin class, what the URL looks like); chat channels go through apprise.
CHAT_KINDS: Mapping[str, tuple[str, str]] = {
    "slack": ("NotifySlack", "a Slack incoming-webhook URL (https://hooks.slack.com/services/...)"),
    "teams": (
        "NotifyWorkflows",
        "a Microsoft Teams workflow webhook URL (https://...logic.azure.com/workflows/...)",
    ),
    "google_chat": (
        "NotifyGoogleChat",
        "a Google Chat space webhook URL "
        "(https://chat.googleapis.com/v1/spaces/.../messages?key=...&token=...)",
    ),
}
_KEYS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # kind -> (required, optional) keys
    **{kind: (("kind", "url"), ("message",)) for kind in CHAT_KINDS},
    "email": (("kind", "smtp", "to", "from"), ("message",)),
    "webhook": (("kind", "url", "secret"), ("message", "header")),
}
KINDS = tuple(_KEYS)


@dataclass(frozen=True)
class Channel:
    name: str
    kind: str  # one of KINDS
    target: str = field(repr=False)  # the URL to send to (apprise's, or the webhook's): may hold a secret
    shown: str  # where it goes, safe to log: no credentials, no token in a path or query
    template: str = DEFAULT_TEMPLATE
    secret: str | None = field(default=None, repr=False)  # webhook: the HMAC-SHA256 key
    header: str = DEFAULT_SIGNATURE_HEADER  # webhook: the header carrying "sha256=<hex>"


def parse_channels(cfg: Any) -> dict[str, Channel]:
    """Check and build every channel of `notify_channels`; raise ValueError naming the path."""
    if cfg is None:
        return {}
    if not isinstance(cfg, Mapping):
        raise ValueError(f"notify_channels: expected a mapping of channel names, got {type(cfg).__name__}")
    channels = {}
    for name, settings in cfg.items():
        where = f"notify_channels.{name}"
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(
                f"notify_channels: key {name!r} does not match the expected form: a name of 1 "
                "to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
            )
        channels[name] = _channel(name, settings, where)
    return channels


def _channel(name: str, cfg: Any, where: str) -> Channel:
    if not isinstance(cfg, Mapping):
        raise ValueError(f"{where}: expected a mapping with kind and its settings, got {type(cfg).__name__}")
    kind = cfg.get("kind")
    if kind not in _KEYS:
        raise ValueError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    required, optional = _KEYS[kind]
    unknown = [k for k in cfg if k not in required + optional]
    if unknown:
        names = ", ".join(repr(str(k)) for k in unknown)
        raise ValueError(f"{where}: unknown key(s) {names}; expected {', '.join(required + optional)}")
    for key in required:
        if key not in cfg:
            raise ValueError(f"{where}: {kind} channels need {key}")
    template = cfg.get("message", DEFAULT_TEMPLATE)
    _text(template, f"{where}.message")
    check_template(template, f"{where}.message")
    if kind in CHAT_KINDS:
        target, shown = _chat_url(kind, cfg["url"], f"{where}.url")
        return Channel(name, kind, target, shown, template)
    if kind == "email":
        target, shown = _email(cfg, where)
        return Channel(name, kind, target, shown, template)
    url = _text(cfg["url"], f"{where}.url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ValueError(f"{where}.url: expected an http:// or https:// URL with a host, without a password")
    secret = _text(cfg["secret"], f"{where}.secret")
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"{where}.secret: at least {MIN_SECRET_CHARS} characters (a short key is guessable)")
    header = _text(cfg.get("header", DEFAULT_SIGNATURE_HEADER), f"{where}.header")
    if not re.fullmatch(r"[A-Za-z0-9-]+", header):
        raise ValueError(f"{where}.header: {header!r} is not an HTTP header name (letters, digits and '-')")
    shown = f"webhook {parts.scheme}://{parts.netloc}"  # the path and query may carry a token
    return Channel(name, kind, url, shown, template, secret=secret, header=header)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected a non-empty string")
    return value


def _chat_url(kind: str, value: Any, where: str) -> tuple[str, str]:
    import apprise  # imported here: only processes whose configuration has channels need it

    url = _text(value, where)
    plugin_class, expected = CHAT_KINDS[kind]
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if type(plugin).__name__ != plugin_class:  # never quote the URL: it is the channel's secret
        raise ValueError(f"{where}: expected {expected}")
    return url, f"{kind} {plugin.url(privacy=True).split('?')[0]}"


def _email(cfg: Mapping[str, Any], where: str) -> tuple[str, str]:
    import apprise

    smtp = _text(cfg["smtp"], f"{where}.smtp")
    parts = urlsplit(smtp)
    usable = parts.scheme in ("mailto", "mailtos") and parts.hostname
    if not usable or parts.query or parts.path.strip("/"):
        raise ValueError(
            f"{where}.smtp: expected mailtos://[user:password@]host[:port] (STARTTLS, or TLS on port 465) "
            "or mailto://host[:port] (plain), with no path or query"
        )
    if parts.scheme == "mailto" and parts.password:
        raise ValueError(f"{where}.smtp: mailto:// sends the password unencrypted: use mailtos://")
    to = cfg["to"]
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to:
        raise ValueError(f"{where}.to: expected a list of email addresses")
    for i, address in enumerate(to):
        if not isinstance(address, str) or not _EMAIL.match(address):
            raise ValueError(f"{where}.to[{i}]: {address!r} is not an email address")
    sender = cfg["from"]
    if not isinstance(sender, str) or not _EMAIL.match(sender):
        raise ValueError(f"{where}.from: {sender!r} is not an email address")
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # urllib's words quote only the port
        raise ValueError(f"{where}.smtp: the port is not a number from 1 to 65535") from None
    query = {"to": ",".join(to), "from": sender}
    if parts.scheme == "mailtos":  # apprise would try STARTTLS on 465 too: that port speaks TLS at once
        query["mode"] = "ssl" if parts.port == 465 else "starttls"
    target = smtp.rstrip("/") + "/?" + urlencode(query)
    if type(apprise.Apprise.instantiate(target, suppress_exceptions=True)).__name__ != "NotifyEmail":
        raise ValueError(
            f"{where}.smtp: not an SMTP URL apprise can use (mailto://host:port or mailtos://...)"
        )
    return target, f"email to {', '.join(to)} via {parts.scheme}://{parts.hostname}{port}"
