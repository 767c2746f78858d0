from __future__ import annotations

import pytest

from connector.tuning import PipelineSettings


def test_defaults_and_environment_overrides() -> None:
    assert PipelineSettings.from_env({}) == PipelineSettings()
    s = PipelineSettings.from_env(
        {"SLA_CONNECTOR_RECLAIM_IDLE_S": "2.5", "SLA_CONNECTOR_BATCH_SIZE": "50", "UNRELATED": "x"}
    )
    assert s.reclaim_idle_s == 2.5 and s.batch_size == 50


def test_a_malformed_variable_names_itself() -> None:
    with pytest.raises(ValueError, match=r"SLA_CONNECTOR_BATCH_SIZE: expected int, got 'many'"):
        PipelineSettings.from_env({"SLA_CONNECTOR_BATCH_SIZE": "many"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reclaim_idle_s": -1}, r"PipelineSettings.reclaim_idle_s: expected a number >= 0, got -1"),
        ({"batch_size": 0}, r"batch_size, max_attempts and max_deliveries must be >= 1"),
        ({"max_attempts": True}, r"PipelineSettings.max_attempts: expected a number >= 0, got True"),
        ({"batch_timeout_s": 0}, r"PipelineSettings.batch_timeout_s: must be > 0"),
    ],
)
def test_bad_values_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PipelineSettings(**kwargs)
