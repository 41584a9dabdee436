"""Hostile text from logs in every channel's message: Slack mentions and links, CR/LF, `&`, backticks,
4,000 characters, non-ASCII. Exact payloads: what Slack, PagerDuty and a mail server receive."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from pipeline.notify.mail import (
    SUBJECT_MAX,
    email_content,
    header_text,
    mail_date,
    message_id,
    subject_header,
)
from pipeline.notify.pagerduty import FIELD_MAX, SUMMARY_MAX, pagerduty_event, pd_summary
from pipeline.notify.routing import PlannedDelivery, Router
from pipeline.notify.slack import slack_escape, slack_link, slack_payload
from pipeline.notify.text import headline, shorten_middle, visible
from schemas.alerts import AlertEvent
from tests.alert_samples import alert

HOSTILE = "/api/<!channel>/<b>&amp;\r\nBcc: x@evil.test `rm -rf` @here ü日本"
SHOWN = "/api/<!channel>/<b>&amp;\\r\\nBcc: x@evil.test `rm -rf` @here ü日本"  # one line, still readable
RUNBOOK = "https://runbooks.example.com/x?a=1&b=<2>|y z"
ACTIONS = ["Page <!everyone>", "Run `tailwatch report` & check"]


def hostile(endpoint: str = HOSTILE, summary: str | None = None) -> AlertEvent:
    event = alert(endpoint=endpoint, channels=["pagerduty", "slack-critical", "email"], fingerprint="fp-hostile")
    return event.model_copy(update={"runbook_url": RUNBOOK, "actions": ACTIONS,
                                    "annotations": {"summary": summary} if summary else {}})


def planned(event: AlertEvent, channel: str) -> PlannedDelivery:
    router = Router({"pagerduty": True, "slack-critical": True, "email": True})
    return next(d for d in router.route(event).deliveries if d.channel == channel)


def test_visible_text_has_no_line_breaks_and_shortening_keeps_both_ends() -> None:
    assert visible("a\r\nb\tc\x00d\u2028e\x85") == "a\\r\\nb\\tc\\x00d\\u2028e\\x85"
    assert shorten_middle("abcdefghij", 5) == "ab…ij" and shorten_middle("abc", 5) == "abc"
    assert len(shorten_middle("x" * 4000, 1024)) == 1024


def test_slack_payload_escapes_every_logged_text_and_builds_the_only_link() -> None:
    payload = slack_payload([planned(hostile(), "slack-critical")], channel="#incidents", mention="@here")
    escaped = "gateway /api/&lt;!channel&gt;/&lt;b&gt;&amp;amp;\\r\\nBcc: x@evil.test `rm -rf` @here ü日本"
    url = "https://runbooks.example.com/x?a=1&b=%3C2%3E%7Cy%20z"
    assert payload == {
        "text": f"<!here> [FIRING] CRITICAL factory-high-error-rate: {escaped}",
        "channel": "#incidents",
        "attachments": [{
            "color": "#A32037",
            "title": "[FIRING] factory-high-error-rate",
            "text": f"factory-high-error-rate on {escaped}: error_rate &gt; 0.05",
            "fields": [
                {"title": "Endpoint", "value": escaped, "short": True},
                {"title": "Severity", "value": "CRITICAL", "short": True},
                {"title": "Value", "value": "0.125 vs threshold 0.05 (error_rate &gt; 0.05)", "short": False},
                {"title": "Window", "value": "2026-03-01T10:09:00Z – 2026-03-01T10:10:00Z (200 requests)",
                 "short": False},
                {"title": "Actions", "value": "Page &lt;!everyone&gt; · Run `tailwatch report` &amp; check",
                 "short": False},
                {"title": "Runbook", "value": f"<{url.replace('&', '&amp;')}|https://runbooks.example.com/x?a=1"
                                              "&amp;b=&lt;2&gt;|y z>", "short": False},
            ],
            "footer": "tailwatch · fp-hostile/firing@2026-03-01T10:10:00Z/slack-critical",
            "fallback": f"[FIRING] CRITICAL factory-high-error-rate: {escaped}",
            "title_link": url,
        }],
    }
    text = str(payload)
    # The control sequences in the payload: the configured mention and the runbook link, nothing from the logs.
    assert text.count("<!") == 1 and text.count("<http") == 1


def test_slack_links_refuse_other_schemes_and_escape_labels() -> None:
    assert slack_link("javascript:alert(1)", "x") == "javascript:alert(1)"
    assert slack_link("https://a.example/<!channel>", "<@U1>") == "<https://a.example/%3C!channel%3E|&lt;@U1&gt;>"
    assert slack_escape("a & <b> &amp;") == "a &amp; &lt;b&gt; &amp;amp;"
    grouped = slack_payload([planned(hostile(), "slack-critical"), planned(hostile("/ok"), "slack-critical")])
    assert grouped["text"] == "2 alerts: 2 firing, 0 resolved"
    assert all("<!channel>" not in a["text"] for a in grouped["attachments"])


def test_slack_4000_character_endpoint_is_whole_in_the_fields_and_cut_in_the_headline() -> None:
    endpoint = "/api/" + "é" * 4000 + "/<end>"
    payload = slack_payload([planned(hostile(endpoint), "slack-critical")])
    fields = {f["title"]: f["value"] for f in payload["attachments"][0]["fields"]}
    assert fields["Endpoint"] == "gateway " + slack_escape(endpoint)
    assert payload["text"].endswith("/&lt;end&gt;") and len(payload["text"]) < 300


def test_email_headers_are_one_line_dated_and_identified() -> None:
    delivery = planned(hostile(), "email")
    content = email_content([delivery])
    assert content.subject == f"[tailwatch] [FIRING] CRITICAL factory-high-error-rate: gateway {SHOWN}"
    assert "\r" not in content.subject and "\n" not in content.subject
    assert f"Endpoint: gateway {SHOWN}\n" in content.text
    assert "Runbook: https://runbooks.example.com/x?a=1&b=<2>|y z\n" in content.text
    assert "&lt;!channel&gt;" in content.html and "<!channel>" not in content.html
    assert mail_date(1_767_700_800_255) == "Tue, 06 Jan 2026 12:00:00 +0000"
    assert parsedate_to_datetime(mail_date(0)).timestamp() == 0
    first = message_id(content.delivery_keys, "tailwatch <alerts@example.test>")
    assert first == message_id(content.delivery_keys, "alerts@example.test")  # the same message, the same id
    assert first.startswith("<") and first.endswith(".tailwatch@example.test>")
    assert message_id(["other"], "alerts@example.test") != first
    assert message_id(["k"], "no-domain").endswith("@tailwatch.invalid>")
    assert message_id(["k"], "x@evil\r\nBcc: y").endswith("@tailwatch.invalid>")


@pytest.mark.parametrize("endpoint", [HOSTILE, "/api/" + "x" * 4000, "/ü\r\n" * 1500, "/api/" + "é" * 4000])
def test_any_endpoint_makes_a_valid_email(endpoint: str) -> None:
    content = email_content([planned(hostile(endpoint), "email")])
    assert len(content.subject) <= SUBJECT_MAX == len(header_text("s" * 5000))
    message = EmailMessage()
    message.set_raw("Subject", subject_header(content.subject))
    message["Date"] = mail_date(0)
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    raw = message.as_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\n"))
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == content.subject  # folded and encoded without changing a character


def test_pagerduty_summary_cut_keeps_rule_endpoint_ends_and_value() -> None:
    endpoint = "/api/start/" + "x" * 4000 + "/the-end"
    event = pagerduty_event(planned(hostile(endpoint, summary="S" * 3000), "pagerduty"), "key")
    payload = event["payload"]
    summary = payload["summary"]
    assert len(summary) == SUMMARY_MAX
    assert summary.startswith("[CRITICAL] factory-high-error-rate on gateway /api/start/xxx")
    assert summary.endswith("xxx/the-end: 0.125 vs threshold 0.05 (error_rate > 0.05)") and "…" in summary
    assert len(payload["component"]) == FIELD_MAX and payload["component"].endswith("/the-end")
    assert payload["custom_details"]["labels"]["endpoint"] == endpoint  # whole, in the details
    assert event["dedup_key"] == "fp-hostile"


def test_pagerduty_summary_is_one_line_and_whole_when_it_fits() -> None:
    event = pagerduty_event(planned(hostile(), "pagerduty"), "key")
    assert event["payload"]["summary"] == \
        f"[CRITICAL] factory-high-error-rate on gateway {SHOWN}: error_rate > 0.05"
    assert event["payload"]["component"] == SHOWN
    assert pd_summary(hostile(summary="short")) == "[CRITICAL] short"
    assert headline(hostile(), "trigger").count("\n") == 0
