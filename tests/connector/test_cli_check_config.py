"""`check-config` warnings: valid configurations that silently leave tickets without an SLA."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.cli.main import main

ENV = {
    "JIRA_EMAIL": "bot@acme.example",
    "JIRA_API_TOKEN": "jira-token-value",
    "JIRA_WEBHOOK_SECRET": "jira-webhook-secret-value",
    "ZENDESK_EMAIL": "bot@acme.example",
    "ZENDESK_API_TOKEN": "zendesk-token-value",
    "ZENDESK_WEBHOOK_SECRET": "zendesk-webhook-secret-value",
}
INSTANCES = """
    instances:
      acme-jira:
        product: jira
        base_url: https://acme.atlassian.net
        deployment: cloud
        auth: {email_env: JIRA_EMAIL, token_env: JIRA_API_TOKEN}
        webhook_secret_env: JIRA_WEBHOOK_SECRET
        priorities: {Blocker: critical, High: high, Medium: normal, Low: low}
      acme-zendesk:
        product: zendesk
        base_url: https://acme.zendesk.com
        auth: {email_env: ZENDESK_EMAIL, token_env: ZENDESK_API_TOKEN}
        webhook: {secret_env: ZENDESK_WEBHOOK_SECRET}
    calendars:
      always: {timezone: UTC, hours: 24x7}
"""
# Targets for every priority both instances produce: no warning.
CLEAN = """
    policies:
      - id: standard
        version: 1
        metrics:
          resolution: {calendar: always, targets: {critical: 2h, urgent: 2h, high: 4h, normal: 8h, low: 16h}}
        escalations:
          - {name: breach, metric: resolution, at: breach, actions: [{tag: sla-breached}]}
"""


@pytest.fixture(autouse=True)
def _env_and_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], policies: str) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(INSTANCES) + textwrap.dedent(policies))
    code = main(["--config", str(path), "check-config"])
    out, err = capsys.readouterr()
    assert code == 0, err  # warnings never fail the check
    assert out.startswith("Configuration OK")
    assert all(line.startswith("warning: ") for line in err.splitlines())
    return [line.removeprefix("warning: ") for line in err.splitlines()]


def test_a_configuration_covering_every_priority_has_no_warning(tmp_path: Path, capsys) -> None:
    assert check(tmp_path, capsys, CLEAN) == []


def test_priorities_an_instance_produces_without_any_target(tmp_path: Path, capsys) -> None:
    warnings = check(tmp_path, capsys, CLEAN.replace("critical: 2h, urgent: 2h, ", ""))
    assert warnings == [
        "instance 'acme-jira' maps priorities to 'critical', which no policy for it has a target for: "
        "those tickets get no SLA clock (targets exist for 'high', 'low', 'normal')",
        "instance 'acme-zendesk' maps priorities to 'urgent', which no policy for it has a target for: "
        "those tickets get no SLA clock (targets exist for 'high', 'low', 'normal')",
    ]


def test_a_target_for_a_priority_no_instance_produces(tmp_path: Path, capsys) -> None:
    policies = CLEAN.replace("critical: 2h,", "critical: 2h, highest: 1h,")
    assert check(tmp_path, capsys, policies) == [
        "policy standard v1 has targets for 'highest', a priority no instance it applies to produces "
        "(they produce 'critical', 'high', 'low', 'normal', 'urgent')",
    ]


def test_a_policy_restricted_to_one_instance_is_checked_against_that_instance_only(tmp_path: Path,
                                                                                  capsys) -> None:
    policies = """
        policies:
          - id: jira-only
            version: 1
            match: {instance: [acme-jira], priority: [urgent]}
            metrics:
              resolution: {calendar: always, targets: {urgent: 2h}}
    """
    warnings = check(tmp_path, capsys, policies)
    assert ("policy jira-only v1 has targets for 'urgent', a priority no instance it applies to produces "
            "(they produce 'critical', 'high', 'low', 'normal')") in warnings
    assert ("policy jira-only v1 matches priority 'urgent', which no instance it applies to produces: "
            "it never applies") in warnings


def test_an_escalation_setting_a_priority_the_instance_cannot_write(tmp_path: Path, capsys) -> None:
    policies = CLEAN.replace("actions: [{tag: sla-breached}]", "actions: [{priority: urgent}]")
    assert check(tmp_path, capsys, policies) == [
        "policy standard v1 escalation breach sets priority 'urgent', which 'acme-jira' maps no priority "
        "to: that write-back fails",
    ]


def test_a_policy_after_a_catch_all_never_applies(tmp_path: Path, capsys) -> None:
    policies = CLEAN + """
      - id: vip
        version: 1
        match: {tags_any: [vip]}
        metrics:
          resolution: {calendar: always, targets: {high: 1h}}
    """
    assert check(tmp_path, capsys, policies) == [
        "policy vip v1 never applies: policy standard before it matches every ticket",
    ]


def test_a_before_level_longer_than_every_target_fires_at_once(tmp_path: Path, capsys) -> None:
    policies = CLEAN.replace("at: breach, actions: [{tag: sla-breached}]",
                             "before: 16h, actions: [{tag: sla-due-soon}]")
    assert check(tmp_path, capsys, policies) == [
        "policy standard v1 escalation breach is 16h before a deadline that is never that far away: "
        "it is reached as soon as the resolution clock starts",
    ]


def test_a_level_on_a_metric_without_targets_for_the_matched_priorities(tmp_path: Path, capsys) -> None:
    policies = """
        policies:
          - id: urgent
            version: 1
            match: {priority: [urgent, critical]}
            metrics:
              first_response: {calendar: always, targets: {urgent: 30m, critical: 30m}}
              resolution: {calendar: always, targets: {high: 4h}}
            escalations:
              - {name: late, metric: resolution, at: breach, actions: [{tag: sla-breached}]}
          - id: rest
            version: 1
            metrics:
              resolution:
                calendar: always
                targets: {critical: 2h, urgent: 2h, high: 4h, normal: 8h, low: 16h}
    """
    assert check(tmp_path, capsys, policies) == [
        "policy urgent v1 escalation late is never reached: resolution has no target for the priorities "
        "the policy matches ('critical', 'urgent')",
    ]


def test_pausing_in_a_working_status(tmp_path: Path, capsys) -> None:
    policies = CLEAN.replace("    metrics:", "    pause_statuses: [open, pending]\n        metrics:", 1)
    assert check(tmp_path, capsys, policies) == [
        "policy standard v1 pauses its clocks in status 'open', where the team is working: "
        "they hardly ever run",
    ]


def test_the_example_configuration_has_no_warning(tmp_path: Path, capsys) -> None:
    root = Path(__file__).resolve().parents[2]
    code = main(["--config", str(root / "examples/config.yaml"), "check-config"])
    _, err = capsys.readouterr()
    assert code == 0 and err == ""


def test_a_refused_configuration_says_in_words_what_is_expected(tmp_path: Path, capsys) -> None:
    path = tmp_path / "config.yaml"
    due = "deployment: cloud\n    due_field: due"
    text = textwrap.dedent(INSTANCES).replace("deployment: cloud", due)
    path.write_text(text + textwrap.dedent(CLEAN) + "colour: red\n")
    assert main(["--config", str(path), "check-config"]) == 1
    assert capsys.readouterr().err == (
        f"error: {path}: $: unknown key(s) 'colour'; expected redis_url, data_dir, api_token_env, receiver, "
        "instances, calendars, contracts, policies, notify_channels\n")
    path.write_text(text + textwrap.dedent(CLEAN))
    assert main(["--config", str(path), "check-config"]) == 1
    assert capsys.readouterr().err == (
        f"error: {path}: instances.acme-jira.due_field: 'due' does not match the expected form: "
        '"duedate" or "customfield_<number>", e.g. customfield_10042\n')


def test_check_config_lists_reconciliation_notify_channels_and_contracts_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "B0SECRETPATHxyz"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"https://hooks.slack.com/services/T000/B000/{token}")
    extra = """
    notify_channels:
      oncall-slack: {kind: slack, url: "${SLACK_WEBHOOK_URL}"}
    contracts:
      - id: acme-gold
        customer: {organisation: "123", name: ACME}
        instances: [acme-zendesk]
        timezone: Europe/Berlin
        monthly_fee: 10000
        currency: EUR
        credits:
          - {priority: high, metric: resolution, below: 95, credit_percent: 5}
    """
    text = textwrap.dedent(INSTANCES).replace(
        "webhook: {secret_env: ZENDESK_WEBHOOK_SECRET}",
        "webhook: {secret_env: ZENDESK_WEBHOOK_SECRET}\n    reconcile_every: 1h")
    path = tmp_path / "config.yaml"
    path.write_text(text + textwrap.dedent(CLEAN) + textwrap.dedent(extra))
    assert main(["--config", str(path), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "webhook POST /hooks/acme-jira, reconcile every 15m\n" in out
    assert "webhook POST /hooks/acme-zendesk, reconcile every 1h\n" in out
    assert "Notify channels (1):\n  oncall-slack: slack to " in out
    assert "Contracts (1):\n  acme-gold: customer ACME; instances acme-zendesk; 1 credit rule(s)\n" in out
    assert token not in out


def test_check_config_warns_of_an_outage_start_no_instance_of_the_contract_carries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contract = """
    contracts:
      - id: acme-gold
        instances: [acme-jira, acme-zendesk]
        timezone: UTC
        monthly_fee: 10000
        currency: EUR
        uptime:
          - service: api
            incidents: {match: {type: incident}}
            downtime_from: outage_start
            service_hours: 24x7
            guaranteed_percent: 99.9
    """
    text = textwrap.dedent(INSTANCES).replace(
        "webhook_secret_env: JIRA_WEBHOOK_SECRET",
        "webhook_secret_env: JIRA_WEBHOOK_SECRET\n    outage_start_field: customfield_10061")
    path = tmp_path / "config.yaml"
    path.write_text(text + textwrap.dedent(CLEAN) + textwrap.dedent(contract))
    assert main(["--config", str(path), "check-config"]) == 0  # valid, but likely not what was meant
    assert capsys.readouterr().err.splitlines() == [
        "warning: contract acme-gold, service api: downtime_from is outage_start, but instance "
        "'acme-zendesk' sets no outage_start_field: its incidents start at creation"
    ]
