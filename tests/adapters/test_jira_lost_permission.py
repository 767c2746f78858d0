"""Through the pipeline with the real Jira adapter: a 404 from a lost Browse permission must not end
the issue. Jira answers 404 for it while /myself still works, exactly like a deletion would look to
a re-read, so nothing but `jira:issue_deleted` ends an issue's effects."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import responses
from rq.registry import ScheduledJobRegistry

from adapters.jira.tests.helpers import CLOUD_CONFIG, CLOUD_URL, ENV, FIXTURES
from connector.config.loader import config_from_dict
from connector.config.tuning import PipelineSettings
from connector.receiver.intake import accept
from connector.state import failed, queues, store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "connector"))
from fakes.harness import Clock, drain, make_context  # noqa: E402
from fakes.sla_config import sla_sections  # noqa: E402

ISSUE = f"{CLOUD_URL}/rest/api/3/issue/10042"
NO_PERMISSION = {
    "errorMessages": ["Issue does not exist or you do not have permission to see it."],
    "errors": {},
}


def payload(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_a_404_for_lost_permission_is_retried_and_the_issue_is_evaluated_again(redis_conn: Any) -> None:
    instance = {**CLOUD_CONFIG, "dry_run": False}
    config = config_from_dict({"instances": {"acme": instance}, **sla_sections("1h")}, ENV, source="<test>")
    clock = Clock(datetime(2026, 11, 27, 9, 0, 5, tzinfo=UTC))
    processor = make_context(redis_conn, config, PipelineSettings(max_attempts=3), clock=clock)

    # 1) The service user lost "Browse projects": every read of the issue 404s, its credentials work.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.put(ISSUE, status=404, json=NO_PERMISSION)
        rsps.get(ISSUE, status=404, json=NO_PERMISSION)
        rsps.get(f"{CLOUD_URL}/rest/api/3/myself", json={"accountId": "x", "active": True})
        assert accept(redis_conn, "acme", "d1", "10042", payload("cloud_issue_created"), {}, clock.dt)
        drain(processor)
        calls = [(c.request.method, c.request.url) for c in rsps.calls]
    assert calls == [("PUT", ISSUE)]  # no re-read, no probe: they could not tell the cases apart
    record = store.load_record(redis_conn, "acme", "10042")
    assert record is not None and not record.gone
    retries = ScheduledJobRegistry(queue=queues.queue(redis_conn, queues.TICKETS)).get_job_ids()
    assert len(retries) == 1  # RQ retries the look, not dropped

    # 2) The permission is back and the issue sends an update: it is evaluated and written again.
    clock.advance(75 * 60)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.put(ISSUE, status=204)
        rsps.get(f"{ISSUE}/comment", json={"startAt": 0, "maxResults": 100, "total": 0, "comments": []})
        rsps.post(f"{ISSUE}/comment", status=201, json={"id": "10601"})
        update = payload("cloud_issue_updated_fields")
        assert accept(redis_conn, "acme", "d2", "10042", update, {}, clock.dt)
        drain(processor, retries=True)  # RQ's retry of the look is due: it takes the update too
        written = [c.request.method for c in rsps.calls]
    assert written[0] == "PUT" and "POST" in written  # due date, labels, then the breach comment
    record = store.load_record(redis_conn, "acme", "10042")
    assert record is not None and not record.gone
    assert failed.failed_count(redis_conn) == 0
    assert any(key.startswith("comment:") for key in record.ledger)
