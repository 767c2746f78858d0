"""The look job's notices: send those the ledger lacks, each recorded in the ledger right after it went.

Once per level and ticket: a notice's ledger key (`notify:<policy>/<clock>:<level>:<channel>`) is
written as soon as the channel took it, so a later look, a duplicate delivery or a retried job finds
it and sends nothing. A refusal (4xx) is recorded once like a refused write-back (`rej:<key>`, listed
by `failed list`, replayed by `failed retry`). A failure (5xx, timeout) is raised after the other
notices were tried, so RQ retries the look with backoff; the next look sends only what is still missing.

A worker killed mid-send: the channel may have the notice while the ledger does not. Chat webhooks and
SMTP have no way to ask whether a message arrived, so the notice is sent again (at least once: an
escalation that never arrives is worse than one that arrives twice). The intent recorded before each
send (`#notifying:<key>`) marks that case: the repeat says it may be one, and carries the same id
(webhook header and JSON `id`, email header `X-SLA-Connector-Notice`) for receivers that drop repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connector.jobs import retries
from connector.jobs.context import Context
from connector.notices.send import Notice, NoticeFailed, NoticeRefused, describe, send
from connector.state import status, store
from sla.effects import Effect, notice_channel

log = logging.getLogger("sla_connector.notices")

INTENT = "notifying:"  # bookkeeping field (under store.META): a notice being sent, with when


def send_due(
    ctx: Context,
    tally: status.Tally,
    record: store.TicketRecord,
    effects: Sequence[Effect],
    now: float,
    fields: Mapping[str, Any],
) -> tuple[list[Effect], list[Effect]]:
    """Send `effects` (NOTIFY effects the ledger lacks, none refused); return those sent and refused.

    Each sent notice is in the ledger before the next is tried; refusals are recorded. Raises the first
    NoticeFailed once every notice was tried (the look stores what it has, then RQ retries it).
    """
    conn, instance = ctx.conn, record.instance
    tk = store.ticket_key(instance, record.ticket)
    product = ctx.config.instances[instance].product
    sent: list[Effect] = []
    refused: list[Effect] = []
    error: NoticeFailed | None = None
    for effect in effects:
        name = notice_channel(effect)
        labels = {"instance": instance, "channel": name}
        channel = ctx.config.notify_channels[name]  # load_policies refused a notify naming any other
        extra = {**fields, **describe(channel), "effect": effect.key}
        intent = store.META + INTENT + effect.key
        repeat = (INTENT + effect.key) in record.meta
        conn.hset(tk, intent, repr(now))
        notice = Notice(instance, record.ticket, effect.key, effect.value, repeat=repeat)
        try:
            send(channel, notice, datetime.fromtimestamp(now, UTC))
        except NoticeRefused as exc:
            conn.hdel(tk, intent)
            reasons = {effect.key: exc.reason}
            retries.record_rejected(conn, tally, record, product, [effect], reasons, now, fields)
            refused.append(effect)
            continue
        except NoticeFailed as exc:
            if not exc.maybe_sent:  # the channel said no: the next try is no repeat
                conn.hdel(tk, intent)
            log.warning(
                "notice not sent; the look is retried",
                extra={**extra, "event": "notice_failed", "error": str(exc), "status": exc.status},
            )
            tally.incr("notices_failed", labels)
            error = error or exc
            continue
        pipe = conn.pipeline(transaction=True)
        pipe.hset(tk, effect.key, effect.ledger_value)
        pipe.hdel(tk, intent, store.LEDGER_REJECTED + effect.key)
        pipe.execute()
        sent.append(effect)
        tally.incr("notices_sent", labels)
        if repeat:
            tally.incr("notices_repeated", labels)
            log.warning(
                "notice sent again: an earlier attempt was interrupted and may have arrived",
                extra={**extra, "event": "notice_repeated", "notice_id": notice.id},
            )
        log.info("notice sent", extra={**extra, "event": "notice_sent", "notice_id": notice.id})
    if error is not None:
        raise error
    return sent, refused
