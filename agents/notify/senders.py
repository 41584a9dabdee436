"""Sending one message to one channel: PagerDuty and Slack over aiohttp, e-mail over SMTP (aiosmtplib).

A sender makes one attempt and says how it went (`Attempt`); retrying is the delivery loop's job. Reasons
never hold a secret: they name the status or the error class, and are redacted with the channel's secrets.
"""

from __future__ import annotations

import asyncio
import email.policy
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, Protocol

import aiohttp
import aiosmtplib
import orjson

from agents.logs import redact
from agents.notify.config import Channel, SmtpSettings
from pipeline.notify.mail import email_content, mail_date, message_id, subject_header
from pipeline.notify.pagerduty import pagerduty_event
from pipeline.notify.retry import Verdict, classify_http, classify_smtp, retry_after_ms
from pipeline.notify.routing import PlannedDelivery
from pipeline.notify.slack import slack_payload
from pipeline.notify.text import visible
from schemas.channels import EmailChannel, PagerDutyChannel, SlackChannel
from schemas.rules import duration_ms

KEY_HEADER = "X-Tailwatch-Delivery-Key"
# How messages go on the wire (flattened here, not by aiosmtplib, whose SMTP policy folds at 78): header lines up
# to RFC 5322's hard limit, as Python's folder leaves a space before a fold (a value moved to a continuation line
# comes back with a leading space, a Subject with a doubled one; non-ASCII subjects are folded by
# `subject_header`); bodies 7-bit (quoted-printable or base64), so no server needs 8BITMIME.
MAIL_POLICY = email.policy.SMTP.clone(max_line_length=998, cte_type="7bit")
BODY_EXCERPT = 200


@dataclass(frozen=True)
class Attempt:
    verdict: Verdict
    reason: str
    status: int | None = None
    retry_after_ms: int | None = None


def unbuildable(error: Exception, secrets: list[str]) -> Attempt:
    """A message that cannot be built will never be: a permanent failure, dead-lettered at once."""
    detail = " ".join(str(error).split())[:BODY_EXCERPT]
    return Attempt("fail", redact(f"cannot build the message: {type(error).__name__}: {detail}", secrets))


def build(make: Callable[[], Any], secrets: list[str]) -> Any | Attempt:
    """`make()`, or the permanent failure it raised."""
    try:
        return make()
    except Exception as error:  # what the logs said must not turn into retries
        return unbuildable(error, secrets)


class Sender(Protocol):
    groups: bool  # whether one message can carry several alerts

    async def send(self, deliveries: list[PlannedDelivery]) -> Attempt: ...


def _secrets(channel: Channel) -> list[str]:
    values = [channel.secret] if channel.secret else []
    if channel.smtp and channel.smtp.password:
        values.append(channel.smtp.password)
    return values


class _Http:
    def __init__(self, channel: Channel, session: aiohttp.ClientSession) -> None:
        self.channel = channel
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=duration_ms(channel.spec.retry.timeout) / 1000)

    async def post(self, url: str, body: bytes, deliveries: list[PlannedDelivery]) -> Attempt:
        headers = {"Content-Type": "application/json", "User-Agent": "tailwatch",
                   KEY_HEADER: visible(",".join(d.key for d in deliveries))}
        try:
            async with self.session.post(url, data=body, headers=headers,
                                         timeout=self.timeout, allow_redirects=False) as response:
                text = (await response.content.read(4096)).decode("utf-8", "replace")
                verdict = classify_http(response.status)
                reason = f"HTTP {response.status}"
                if verdict != "ok" and text.strip():
                    reason += f": {' '.join(text.split())[:BODY_EXCERPT]}"
                wait = retry_after_ms(response.headers.get("Retry-After"), int(time.time() * 1000))
                return Attempt(verdict, redact(reason, _secrets(self.channel)), response.status, wait)
        except TimeoutError:
            return Attempt("retry", f"no answer within {self.timeout.total:g}s")
        except aiohttp.ClientError as error:  # its text can hold the URL: name the class only
            return Attempt("retry", f"connection failed: {type(error).__name__}")


class PagerDutySender(_Http):
    groups = False

    async def send(self, deliveries: list[PlannedDelivery]) -> Attempt:
        assert len(deliveries) == 1 and self.channel.secret and self.channel.events_url
        secret = self.channel.secret
        body = build(lambda: orjson.dumps(pagerduty_event(deliveries[0], secret)), _secrets(self.channel))
        return body if isinstance(body, Attempt) else await self.post(self.channel.events_url, body, deliveries)


class SlackSender(_Http):
    groups = True

    async def send(self, deliveries: list[PlannedDelivery]) -> Attempt:
        spec = self.channel.spec
        assert isinstance(spec, SlackChannel) and self.channel.secret
        body = build(lambda: orjson.dumps(slack_payload(deliveries, spec.channel, spec.mention)),
                     _secrets(self.channel))
        return body if isinstance(body, Attempt) else await self.post(self.channel.secret, body, deliveries)


def email_message(deliveries: list[PlannedDelivery], sender: str, recipients: list[str],
                  now_epoch_ms: int) -> EmailMessage:
    """The message for one attempt: `Date` is the attempt's time, `Message-ID` the same for every attempt."""
    content = email_content(deliveries)
    message = EmailMessage(policy=MAIL_POLICY)
    message.set_raw("Subject", subject_header(content.subject))  # one line or folded by subject_header
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = mail_date(now_epoch_ms)
    message["Message-ID"] = message_id(content.delivery_keys, sender)
    message[KEY_HEADER] = visible(",".join(content.delivery_keys))
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    return message


class EmailSender:
    groups = True

    def __init__(self, channel: Channel) -> None:
        assert isinstance(channel.spec, EmailChannel) and channel.smtp
        self.channel = channel
        self.smtp: SmtpSettings = channel.smtp
        self.recipients = list(channel.spec.recipients)
        self.timeout_s = duration_ms(channel.spec.retry.timeout) / 1000

    async def send(self, deliveries: list[PlannedDelivery]) -> Attempt:
        smtp = self.smtp
        message = build(lambda: email_message(deliveries, smtp.sender, self.recipients, int(time.time() * 1000)),
                        _secrets(self.channel))
        if isinstance(message, Attempt):
            return message
        try:
            errors, _ = await aiosmtplib.send(
                message.as_bytes(), sender=parseaddr(smtp.sender)[1] or smtp.sender, recipients=self.recipients,
                hostname=smtp.host, port=smtp.port, username=smtp.user, password=smtp.password,
                use_tls=smtp.tls == "ssl", start_tls=smtp.tls == "starttls",
                timeout=self.timeout_s)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refused.code for refused in error.recipients]
            verdict: Verdict = "retry" if any(classify_smtp(code) == "retry" for code in codes) else "fail"
            return Attempt(verdict, f"SMTP: every recipient refused ({', '.join(map(str, codes))})",
                           codes[0] if codes else None)
        except aiosmtplib.SMTPResponseException as error:
            reason = redact(f"SMTP {error.code}: {' '.join(str(error.message).split())[:BODY_EXCERPT]}",
                            _secrets(self.channel))
            return Attempt(classify_smtp(error.code), reason, error.code)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            return Attempt("retry", f"SMTP connection failed: {type(error).__name__}")
        if errors:  # some recipients refused: the others have it, and a resend would duplicate theirs
            refused = ", ".join(f"{address} ({response.code})" for address, response in errors.items())
            return Attempt("ok", f"delivered; refused: {refused}", 250)
        return Attempt("ok", "SMTP 250", 250)


def make_sender(channel: Channel, session: aiohttp.ClientSession) -> Sender:
    if isinstance(channel.spec, PagerDutyChannel):
        return PagerDutySender(channel, session)
    if isinstance(channel.spec, SlackChannel):
        return SlackSender(channel, session)
    return EmailSender(channel)


async def close_quietly(session: aiohttp.ClientSession) -> None:
    await session.close()
    await asyncio.sleep(0)
