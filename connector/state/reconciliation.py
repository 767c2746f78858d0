"""What Redis keeps about each instance's reconciliation: its cursor, its last run, its lock.

- `sla:rc:<instance>` hash:
  - the cursor: `from` (epoch: changes at or after it are still to be read), and while a run is
    under way (or was interrupted) `to` (the end of its window), `page` (the product's token of the
    page being read) and `done` (tickets of that page already fed in). A run resumes from them.
  - the record: `last_run`, `last_missed` (events the last completed run found that the webhooks
    had missed), `missed_total`, `run_missed` (found so far by the run under way), `next_run`,
    `failures` (consecutive failed runs), `last_error` ("" after a good run), `job` (the id of the
    reconcile job queued or running).
- `sla:rc:lock:<instance>`: the id of the job reconciling the instance, with a TTL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.state import store


def state_key(instance: str) -> str:
    return f"sla:rc:{instance}"


def lock_key(instance: str) -> str:
    return f"sla:rc:lock:{instance}"


@dataclass(frozen=True)
class Cursor:
    """Where an instance's reading of changes stands."""

    since: float | None  # None: never read yet
    until: float | None = None  # set while a run's window is being read
    page: str | None = None  # the product's token of the page being read
    done: int = 0  # tickets of that page already fed in

    @property
    def running(self) -> bool:
        return self.until is not None


def read(conn: Any, instance: str) -> dict[str, str]:
    return {store.text(k) or "": store.text(v) or "" for k, v in conn.hgetall(state_key(instance)).items()}


def cursor_of(state: dict[str, str]) -> Cursor:
    return Cursor(
        since=_number(state.get("from")),
        until=_number(state.get("to")),
        page=state.get("page"),
        done=int(_number(state.get("done")) or 0),
    )


def _number(value: str | None) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except ValueError:
        return None


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def describe(instance: str, every_s: int, item: Mapping[str, Any] | None) -> str:
    """One line of `sla-connector status` about an instance's reconciliation."""
    if every_s <= 0:
        return f"reconcile {instance}: off"
    item = item or {}
    parts = [f"every {every_s // 60}m" if every_s % 3600 else f"every {every_s // 3600}h"]
    if item.get("last_run"):
        parts.append(
            f"last run {item['last_run']} found {item['missed_last_run']} events the webhooks had "
            f"missed ({item['missed_total']} in all)"
        )
    else:
        parts.append("not run yet")
    if item.get("cursor"):
        parts.append(f"cursor {item['cursor']}")
    if item.get("run_under_way"):
        parts.append(f"a run under way ({item['run_under_way']['done']} tickets of its page read)")
    if item.get("next_run"):
        parts.append(f"next run {item['next_run']}")
    line = f"reconcile {instance}: " + ", ".join(parts)
    return line + (f"; last error: {item['last_error']}" if item.get("last_error") else "")


def summary(conn: Any, instances: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per instance: last run, events it found that webhooks had missed, cursor, next run, last error."""
    names = list(instances)
    pipe = conn.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(state_key(name))
    out: dict[str, dict[str, Any]] = {}
    for name, raw in zip(names, pipe.execute(), strict=True):
        state = {store.text(k) or "": store.text(v) or "" for k, v in raw.items()}
        cursor = cursor_of(state)
        out[name] = {
            "last_run": _iso(_number(state.get("last_run"))),
            "missed_last_run": int(_number(state.get("last_missed")) or 0),
            "missed_total": int(_number(state.get("missed_total")) or 0),
            "cursor": _iso(cursor.since),
            "run_under_way": {"until": _iso(cursor.until), "page": cursor.page, "done": cursor.done}
            if cursor.running
            else None,
            "next_run": _iso(_number(state.get("next_run"))),
            "last_error": state.get("last_error") or None,
        }
    return out
