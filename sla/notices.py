"""Escalation notices: messages to people outside the ticket (a chat channel, an inbox, a webhook).

A level's `notify: <channel>` action sends one notice per level, clock and ticket. Its text is the
channel's template (or `DEFAULT_TEMPLATE`) with the placeholders of comments (`sla.templates`),
rendered as of the instant the level is reached, so a notice sent late or again says the same. The
first line is the subject: an email's Subject, the title of a chat message or of a webhook's JSON.
"""

from __future__ import annotations

DEFAULT_TEMPLATE = (
    "SLA {level}: {metric} of {ticket}\n"
    "{metric} of {ticket} (priority {priority}) reached level {level}: {elapsed} of its {target} target "
    "elapsed, {remaining} left; due {deadline}."
)


def subject_and_body(text: str) -> tuple[str, str]:
    """The notice's subject (its first line) and body (the rest; the subject again when there is none)."""
    subject, _, rest = text.strip().partition("\n")
    return subject.strip(), rest.strip() or subject.strip()
