"""What the connector keeps in Redis, and what it reads back for status and the CLI.

store.py: key names and the ticket's event log and ledger; timers.py: the due-timers set; queues.py:
the RQ queues and job ids; failed.py: RQ's failed-job registry and refused deliveries; status.py:
backlog, workers, breaches; ticket_view.py: one ticket's stored state for the API and CLI.
"""
