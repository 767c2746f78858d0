from __future__ import annotations

import pytest

from connector.config.tuning import PipelineSettings


def test_defaults_and_environment_overrides() -> None:
    assert PipelineSettings.from_env({}) == PipelineSettings()
    s = PipelineSettings.from_env(
        {"SLA_CONNECTOR_LOST_AFTER_S": "2.5", "SLA_CONNECTOR_DISPATCH_BATCH": "50", "UNRELATED": "x"}
    )
    assert s.lost_after_s == 2.5 and s.dispatch_batch == 50
    assert s.job_timeout_s == PipelineSettings().job_timeout_s


def test_a_malformed_variable_names_itself() -> None:
    with pytest.raises(ValueError, match=r"SLA_CONNECTOR_DISPATCH_BATCH: expected int, got 'many'"):
        PipelineSettings.from_env({"SLA_CONNECTOR_DISPATCH_BATCH": "many"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lost_after_s": -1}, r"PipelineSettings.lost_after_s: expected a number >= 0, got -1"),
        ({"dispatch_batch": 0}, r"PipelineSettings.dispatch_batch: must be >= 1, got 0"),
        ({"max_attempts": True}, r"PipelineSettings.max_attempts: expected a number >= 0, got True"),
        ({"job_timeout_s": 0}, r"PipelineSettings.job_timeout_s: must be >= 1, got 0"),
        ({"tick_s": 0}, r"PipelineSettings.tick_s: must be >= 1, got 0"),
        # TTLs: 0 is "expire at once" (intake's SET EX fails after its RPUSH; EXPIRE 0 deletes a
        # ticket's log and ledger, so its effects would be written again; RQ drops a failed job at once).
        ({"dedupe_ttl_s": 0}, r"PipelineSettings.dedupe_ttl_s: must be >= 1, got 0"),
        ({"dispatch_flag_ttl_s": 0}, r"PipelineSettings.dispatch_flag_ttl_s: must be >= 1, got 0"),
        ({"open_ttl_s": 0}, r"PipelineSettings.open_ttl_s: must be >= 1, got 0"),
        ({"retention_s": 0.5}, r"PipelineSettings.retention_s: must be >= 1, got 0.5"),
        ({"deleted_retention_s": 0}, r"PipelineSettings.deleted_retention_s: must be >= 1, got 0"),
        ({"failure_ttl_s": 0}, r"PipelineSettings.failure_ttl_s: must be >= 1, got 0"),
    ],
)
def test_bad_values_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PipelineSettings(**kwargs)


def test_a_tickets_lock_outlives_its_jobs_time_limit() -> None:
    # RQ stops a job at its timeout: the lock must still be there until then, and gone before RQ's
    # maintenance takes back a dead worker's job (job_timeout_s + 60 s), so a retry never waits for it.
    for timeout in (1, 90, 600):
        s = PipelineSettings(job_timeout_s=timeout)
        assert timeout < s.lock_ttl_s < timeout + 60
