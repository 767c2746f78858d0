"""What the `simulate` and `review` command tests share: a configuration with two testdesk instances
(resolution on a 24x7 UTC calendar, 10h for every priority, a warning at 50% and a breach level),
and event logs written as the look job stores them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from connector.state.store import encode_event, events_key
from sla.events import TicketEvent
from tests.connector.fakes.cli import CliConfig

CONFIG = """
    instances:
      desk:
        product: testdesk
        dry_run: true
        base_url: https://desk.test
      other:
        product: testdesk
        dry_run: true
        base_url: https://other.test
    calendars:
      always: {timezone: UTC, hours: 24x7}
    policies:
      - id: test
        version: 1
        metrics:
          resolution: {calendar: always, targets: {low: 10h, normal: 10h, high: 10h, urgent: 10h}}
        escalations:
          - {name: warning, metric: resolution, at: "50%", actions: [{tag: sla-warning}]}
          - {name: breach, metric: resolution, at: breach, actions: [{tag: sla-breached}]}
"""
JAN = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


def write_config(cli_config_file: CliConfig) -> Path:
    """The configuration file (see `cli_config_file`), with the testdesk adapter registered."""
    from tests.connector.fakes import testdesk

    testdesk.register()
    return cli_config_file(CONFIG)


def store_ticket(
    conn: redis.Redis,
    ticket: str,
    created: datetime,
    solved_after: timedelta | None,
    instance: str = "desk",
    priority: str = "normal",
) -> None:
    """A ticket's event log as the look job stores it: created, then solved after `solved_after`."""
    events = [
        TicketEvent(
            f"{ticket}-c", ticket, "created", created, "requester", {"status": "new", "priority": priority}
        )
    ]
    if solved_after is not None:
        events.append(
            TicketEvent(
                f"{ticket}-s", ticket, "changed", created + solved_after, "agent", {"status": "solved"}
            )
        )
    conn.rpush(events_key(instance, ticket), *(encode_event(e) for e in events))
