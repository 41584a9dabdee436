"""Channel files: the spec's defaults, secrets only from the environment, errors with file and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agents.notify.config import DEFAULT_EVENTS_URL, ChannelFileError, load_channels, mask_url
from tests.receivers import HttpReceiver, Reply

SPEC_NAMES = ["pagerduty", "slack-critical", "slack-alerts", "slack-monitoring", "email"]


def test_defaults_are_the_specs_five_channels_skipped_without_their_secrets() -> None:
    channels = load_channels(env={})
    assert [c.name for c in channels] == SPEC_NAMES
    assert {c.name: c.missing for c in channels} == {
        "pagerduty": "PAGERDUTY_INTEGRATION_KEY is not set", "slack-critical": "SLACK_CRITICAL_WEBHOOK is not set",
        "slack-alerts": "SLACK_ALERTS_WEBHOOK is not set", "slack-monitoring": "SLACK_MONITORING_WEBHOOK is not set",
        "email": "SMTP_HOST is not set"}


def test_secrets_and_smtp_settings_come_from_the_environment() -> None:
    env = {"PAGERDUTY_INTEGRATION_KEY": "k" * 32, "SLACK_CRITICAL_WEBHOOK": "https://hooks.slack.com/services/A/B/C",
           "SMTP_HOST": "mail.example.test", "SMTP_FROM": "tw@example.test", "SMTP_TLS": "ssl",
           "SMTP_USER": "u", "SMTP_PASSWORD": "p"}
    channels = {c.name: c for c in load_channels(env=env)}
    assert channels["pagerduty"].active and channels["pagerduty"].events_url == DEFAULT_EVENTS_URL
    assert channels["slack-critical"].secret == env["SLACK_CRITICAL_WEBHOOK"]
    smtp = channels["email"].smtp
    assert smtp is not None and (smtp.host, smtp.port, smtp.tls, smtp.user) == ("mail.example.test", 465, "ssl", "u")
    described = str([c.describe() for c in channels.values()])
    assert "k" * 32 not in described and "/services/A/B/C" not in described and "password=***" in described
    pd = {c.name: c for c in load_channels(env=env | {"PAGERDUTY_EVENTS_URL": "http://127.0.0.1:9/v2"})}
    assert pd["pagerduty"].events_url == "http://127.0.0.1:9/v2"
    bad = {c.name: c for c in load_channels(env=env | {"SMTP_TLS": "maybe"})}
    assert bad["email"].missing == "SMTP_TLS must be starttls, ssl or none"


def test_a_secret_written_in_the_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text("version: 1\nchannels:\n  ops:\n    type: slack\n"
                    "    webhook_url: https://hooks.slack.com/services/A/B/C\n")
    with pytest.raises(ChannelFileError) as error:
        load_channels(path, env={})
    assert str(error.value).startswith(f"{path}:5: channels.ops.webhook_url:")
    assert "hooks.slack.com" not in str(error.value)


def test_unknown_keys_types_and_bad_yaml_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text("version: 1\nchannels:\n  ops:\n    type: email\n    recipients: [a@b.c]\n    colour: red\n")
    with pytest.raises(ChannelFileError, match=r":6: channels.ops.colour: Extra inputs"):
        load_channels(path, env={})
    path.write_text("version: 1\nchannels:\n  ops:\n    type: fax\n")
    with pytest.raises(ChannelFileError, match=r":4: channels.ops"):
        load_channels(path, env={})
    path.write_text("channels: [\n")
    with pytest.raises(ChannelFileError, match="not valid YAML"):
        load_channels(path, env={})


def test_mask_url_keeps_scheme_and_host_only() -> None:
    assert mask_url("https://hooks.slack.com/services/T/B/X?x=1") == "https://hooks.slack.com/***"
    assert mask_url("http://user:pw@127.0.0.1:8080/hook") == "http://127.0.0.1:8080/***"


def test_channels_test_pagerduty_sends_a_trigger_and_its_resolve(tmp_path: Path) -> None:
    with HttpReceiver(default=Reply(202, b'{"status":"success"}')) as http:
        env = {"PAGERDUTY_INTEGRATION_KEY": "test-key-123456", "PAGERDUTY_EVENTS_URL": http.url("/v2/enqueue"),
               "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, "-m", "agents.cli", "channels", "test", "pagerduty"],
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        trigger, resolve = (r.json() for r in http.requests("/v2/enqueue"))
        assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
        assert trigger["dedup_key"] == resolve["dedup_key"] and trigger["payload"]["severity"] == "info"
        missing = subprocess.run([sys.executable, "-m", "agents.cli", "channels", "test", "slack-alerts"],
                                 capture_output=True, text=True, env=env, timeout=60)
        assert missing.returncode == 1 and "SLACK_ALERTS_WEBHOOK is not set" in missing.stderr  # a check failed
