"""What each channel's message says: PagerDuty events, Slack payloads, e-mail content."""

from __future__ import annotations

from pipeline.notify.mail import email_content
from pipeline.notify.pagerduty import pagerduty_event, pd_severity
from pipeline.notify.routing import Router
from pipeline.notify.slack import slack_mention, slack_payload
from pipeline.notify.text import RESOLVED_COLOUR, SEVERITY_COLOURS
from tests.alert_samples import alert

ROUTER_CHANNELS = {"pagerduty": True, "slack-critical": True, "slack-alerts": True, "email": True}


def deliveries(channel: str, **kwargs: object):  # type: ignore[no-untyped-def]
    router = Router(ROUTER_CHANNELS)
    router.route(alert(channels=["pagerduty", "slack-critical", "slack-alerts", "email"]))
    return [d for d in router.route(alert(**kwargs)).deliveries if d.channel == channel]  # type: ignore[arg-type]


def test_pagerduty_trigger_carries_dedup_key_severity_and_details() -> None:
    [delivery] = deliveries("pagerduty", channels=["pagerduty"], window_end="2026-03-01T10:11:00Z", change="repeat")
    event = pagerduty_event(delivery, "routing-key-1")
    assert event["routing_key"] == "routing-key-1"
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == delivery.alert.fingerprint
    payload = event["payload"]
    assert payload["severity"] == "critical"
    assert payload["source"] == "gateway" and payload["component"] == "/api/public/factory/templates"
    assert payload["summary"].startswith("[CRITICAL] gateway /api/public/factory/templates: error rate 12.5%")
    details = payload["custom_details"]
    assert details["value"] == 0.125 and details["threshold"] == 0.05
    assert details["runbook"] == "https://runbooks.example.com/factory/high-error-rate"
    assert details["actions"] == ["Create incident", "Notify engineering lead", "Consider rollback"]
    assert "2026-03-01T10:09:00Z" in details["window"]
    assert event["links"] == [{"href": "https://runbooks.example.com/factory/high-error-rate", "text": "Runbook"}]


def test_pagerduty_severity_mapping_and_resolve() -> None:
    assert [pd_severity(s) for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW")] == ["critical", "error", "warning",
                                                                            "info"]
    [resolve] = deliveries("pagerduty", change="resolved", window_end="2026-03-01T10:30:00Z")
    assert pagerduty_event(resolve, "k") == {"routing_key": "k", "event_action": "resolve",
                                             "dedup_key": resolve.alert.fingerprint}


def test_slack_mentions_critical_triggers_only_in_the_top_level_text() -> None:
    [critical] = deliveries("slack-critical", channels=["slack-critical"], change="repeat",
                            window_end="2026-03-01T10:11:00Z")
    payload = slack_payload([critical], channel="#incidents", mention="@here")
    assert payload["text"].startswith("<!here> [STILL FIRING] CRITICAL factory-high-error-rate")
    assert payload["channel"] == "#incidents"
    attachment = payload["attachments"][0]
    assert attachment["color"] == SEVERITY_COLOURS["CRITICAL"]
    assert attachment["title_link"] == "https://runbooks.example.com/factory/high-error-rate"
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["Value"] == "0.125 vs threshold 0.05 (error_rate &gt; 0.05)"  # Slack: `>` escaped
    assert fields["Endpoint"] == "gateway /api/public/factory/templates"
    [high] = deliveries("slack-alerts", channels=["slack-alerts"], severity="HIGH", change="repeat",
                        window_end="2026-03-01T10:11:00Z")
    assert "<!here>" not in str(slack_payload([high], mention="@here"))
    [resolved] = deliveries("slack-critical", change="resolved", window_end="2026-03-01T10:30:00Z")
    payload = slack_payload([resolved], mention="@here")
    assert not payload["text"].startswith("<!here>") and "[RESOLVED]" in payload["text"]
    assert payload["attachments"][0]["color"] == RESOLVED_COLOUR


def test_slack_mention_forms() -> None:
    assert [slack_mention(m) for m in ("@here", "@channel", "@U024BE7LH", "<!subteam^S1>")] == [
        "<!here>", "<!channel>", "<@U024BE7LH>", "<!subteam^S1>"]


def test_a_group_is_one_message_with_one_attachment_each() -> None:
    router = Router(ROUTER_CHANNELS)
    group = [d for i in range(3) for d in router.route(alert(endpoint=f"/api/e{i}", channels=["email"])).deliveries]
    assert len(slack_payload(group)["attachments"]) == 3
    content = email_content(group)
    assert content.subject == "[tailwatch] 3 alerts: 3 firing, 0 resolved"
    assert content.delivery_keys == [d.key for d in group]
    assert all(f"/api/e{i}" in content.text and f"/api/e{i}" in content.html for i in range(3))


def test_email_content_is_plain_and_escaped_html() -> None:
    [delivery] = deliveries("email", channels=["email"], endpoint="/api/<script>", change="repeat",
                            window_end="2026-03-01T10:11:00Z")
    content = email_content([delivery])
    assert content.subject == "[tailwatch] [STILL FIRING] CRITICAL factory-high-error-rate: gateway /api/<script>"
    assert "Runbook: https://runbooks.example.com/factory/high-error-rate" in content.text
    assert "<script>" not in content.html and "&lt;script&gt;" in content.html
