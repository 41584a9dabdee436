"""Where /health's channel check reads the configured channels from, and which channels the rules need."""

from __future__ import annotations

from pathlib import Path

from agents.health import configured_channels, rule_channels
from agents.rules_files import load_rules


def test_channels_from_the_environment_list() -> None:
    assert configured_channels({"TAILWATCH_CHANNELS": " pagerduty, slack-critical ,,"}) == {"pagerduty",
                                                                                           "slack-critical"}
    assert configured_channels({"TAILWATCH_CHANNELS": ""}) == frozenset()  # configured, but none
    assert configured_channels({}) is None  # no configuration at all


def test_channels_from_a_file_mapping_or_list(tmp_path: Path) -> None:
    mapping = tmp_path / "channels.yaml"
    mapping.write_text("channels:\n  pagerduty: {url: 'pagerduty://k@r'}\n  email: {url: 'mailto://x'}\n")
    assert configured_channels({"TAILWATCH_CHANNELS_FILE": str(mapping)}) == {"pagerduty", "email"}
    listed = tmp_path / "channels.json"
    listed.write_text('{"channels": [{"name": "slack-alerts", "url": "slack://a/b/c"}, "slack-monitoring"]}')
    assert configured_channels({"TAILWATCH_CHANNELS_FILE": str(listed),
                                "TAILWATCH_CHANNELS": "email"}) == {"slack-alerts", "slack-monitoring", "email"}
    assert configured_channels({"TAILWATCH_CHANNELS_FILE": str(tmp_path / "missing.yaml")}) is None


def test_rule_channels_include_the_tiers() -> None:
    assert rule_channels(load_rules()) == {"pagerduty", "slack-critical", "slack-alerts", "slack-monitoring",
                                           "email"}


def test_a_notifier_channel_file_counts_only_the_channels_whose_secrets_are_set() -> None:
    from agents.notify.config import DEFAULT_CHANNELS

    env = {"TAILWATCH_CHANNELS_FILE": str(DEFAULT_CHANNELS), "SLACK_ALERTS_WEBHOOK": "http://127.0.0.1:9/hook"}
    assert configured_channels(env) == {"slack-alerts"}
    env |= {"PAGERDUTY_INTEGRATION_KEY": "k", "SLACK_CRITICAL_WEBHOOK": "http://127.0.0.1:9/c",
            "SLACK_MONITORING_WEBHOOK": "http://127.0.0.1:9/m", "SMTP_HOST": "127.0.0.1", "SMTP_FROM": "a@b.c"}
    assert configured_channels(env) == rule_channels(load_rules())
