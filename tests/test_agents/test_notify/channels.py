"""Channel files and environments pointing at the loopback receivers."""

from __future__ import annotations

from pathlib import Path

from tests.receivers import HttpReceiver, SmtpReceiver

PD_KEY = "R0UTINGKEYpd5ecret0000000000abcd"
SLACK_SECRET_PATH = "/services/T0001/B0002/SlackWebhookSecretXYZ"
SMTP_USER = "alerts-bot"
SMTP_PASSWORD = "smtp-Pa55word-zz9"
SECRETS = (PD_KEY, "SlackWebhookSecretXYZ", SMTP_PASSWORD)


def channel_file(tmp_path: Path, group_wait: str = "0s", max_attempts: int = 8, slack_rate: str = "50",
                 extra: str = "") -> Path:
    path = tmp_path / "channels.yaml"
    retry = f"retry: {{max_attempts: {max_attempts}, initial: 100ms, max: 1s, timeout: 3s}}"
    path.write_text(f"""version: 1
channels:
  pagerduty:
    type: pagerduty
    integration_key: $PAGERDUTY_INTEGRATION_KEY
    {retry}
  slack-critical:
    type: slack
    webhook_url: $SLACK_CRITICAL_WEBHOOK
    channel: "#incidents"
    mention: "@here"
    group_wait: {group_wait}
    rate_limit: {{max: {slack_rate}, per: 1s}}
    {retry}
  email:
    type: email
    recipients: [oncall@example.test, lead@example.test]
    group_wait: {group_wait}
    {retry}
{extra}""")
    return path


def channel_env(http: HttpReceiver, smtp: SmtpReceiver | None) -> dict[str, str]:
    env = {"PAGERDUTY_INTEGRATION_KEY": PD_KEY, "PAGERDUTY_EVENTS_URL": http.url("/v2/enqueue"),
           "SLACK_CRITICAL_WEBHOOK": http.url(SLACK_SECRET_PATH)}
    if smtp is not None:
        env |= {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none",
                "SMTP_USER": SMTP_USER, "SMTP_PASSWORD": SMTP_PASSWORD, "SMTP_FROM": "tailwatch@example.test"}
    return env
