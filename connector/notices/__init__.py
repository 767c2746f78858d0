"""Escalation notices: a level's `notify: <channel>` sent to people outside the ticket.

- `channels`: the configuration's `notify_channels` (Slack, Microsoft Teams, Google Chat, email over
  SMTP, a signed JSON webhook), checked at start-up, secrets kept out of every message and log.
- `send`: one notice to one channel, classified as sent, refused (a 4xx: recorded once, never
  resent) or failed (a 5xx, a timeout: the look job raises and RQ retries it).
- `deliver`: the look job's part: the notices the ledger lacks, each recorded right after it is sent.

What a notice says and when it is wanted is pure and lives in `sla` (`sla.notices`, `sla.evaluate`).
"""
