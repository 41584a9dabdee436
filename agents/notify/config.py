"""Loading channel files: YAML → validated `ChannelFile` → channels with their secrets from the environment.

Every problem names its file and line. A channel whose secret variable (or SMTP setting) is missing is not an
error: it is kept, inactive, with the reason, so `tailwatch notify` reports it at start and skips it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ValidationError

from agents.yaml_source import line_of, printable, read_yaml, where
from schemas.channels import ChannelFile, ChannelSpec, EmailChannel, PagerDutyChannel, SlackChannel
from schemas.rules import duration_ms

DEFAULT_CHANNELS = Path(__file__).resolve().parents[1] / "defaults" / "channels.yaml"
EVENTS_URL_ENV = "PAGERDUTY_EVENTS_URL"
DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_RATE_LIMITS = {"pagerduty": (120, 60_000), "slack": (1, 1_000), "email": (30, 60_000)}
TlsMode = Literal["starttls", "ssl", "none"]
_TLS = {"starttls": "starttls", "true": "starttls", "yes": "starttls", "1": "starttls", "ssl": "ssl",
        "tls": "ssl", "implicit": "ssl", "none": "none", "false": "none", "no": "none", "0": "none", "off": "none"}
_TYPES = ("pagerduty", "slack", "email")
_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class ChannelFileError(ValueError):
    """`path:line: where: what` for each problem."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str | None
    password: str | None
    sender: str
    tls: TlsMode


@dataclass(frozen=True)
class Channel:
    name: str
    spec: ChannelSpec
    secret: str | None = None  # the PagerDuty routing key or the Slack webhook URL
    events_url: str | None = None
    smtp: SmtpSettings | None = None
    missing: str | None = None  # why the channel is skipped

    @property
    def active(self) -> bool:
        return self.missing is None

    @property
    def kind(self) -> str:
        return self.spec.type

    @property
    def send_resolved(self) -> bool:
        return True if isinstance(self.spec, PagerDutyChannel) else self.spec.send_resolved

    @property
    def group_wait_ms(self) -> int:
        return 0 if isinstance(self.spec, PagerDutyChannel) else duration_ms(self.spec.group_wait)

    @property
    def group_interval_ms(self) -> int:
        return 0 if isinstance(self.spec, PagerDutyChannel) else duration_ms(self.spec.group_interval)

    @property
    def rate_limit(self) -> tuple[int, int]:
        limit = self.spec.rate_limit
        return (limit.max, duration_ms(limit.per)) if limit else DEFAULT_RATE_LIMITS[self.kind]

    def describe(self) -> dict[str, Any]:
        """What is configured, for `channels list`: secrets masked."""
        spec = self.spec
        out: dict[str, Any] = {"name": self.name, "type": self.kind,
                               "status": "active" if self.active else f"skipped: {self.missing}"}
        if isinstance(spec, PagerDutyChannel):
            out["integration_key"] = f"{spec.integration_key} ({'set' if self.secret else 'unset'})"
            out["events_url"] = mask_url(self.events_url or DEFAULT_EVENTS_URL)
            out["escalation_policy"] = spec.escalation_policy
        elif isinstance(spec, SlackChannel):
            out["webhook_url"] = f"{spec.webhook_url} = {mask_url(self.secret)}" if self.secret \
                else f"{spec.webhook_url} (unset)"
            out["channel"] = spec.channel
            out["mention"] = spec.mention
        else:
            out["recipients"] = list(spec.recipients)
            if self.smtp:
                smtp = self.smtp
                out["smtp"] = (f"{smtp.host}:{smtp.port} tls={smtp.tls} from={smtp.sender} user={smtp.user or '-'} "
                               f"password={'***' if smtp.password else '-'}")
        out["group_wait"] = "0s" if isinstance(spec, PagerDutyChannel) else spec.group_wait
        out["group_interval"] = "0s" if isinstance(spec, PagerDutyChannel) else spec.group_interval
        out["send_resolved"] = self.send_resolved
        out["rate_limit"] = "{}/{}ms".format(*self.rate_limit)
        out["retry"] = spec.retry.model_dump()
        return out


def mask_url(url: str | None) -> str:
    """`https://hooks.slack.com/services/T/B/X` → `https://hooks.slack.com/***`: scheme and host only."""
    if not url:
        return "-"
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "***"
    return f"{parts.scheme}://{host}{port}/***"


def _smtp_from(env: Mapping[str, str]) -> tuple[SmtpSettings | None, str | None]:
    host, sender = env.get("SMTP_HOST"), env.get("SMTP_FROM")
    if not host:
        return None, "SMTP_HOST is not set"
    if not sender:
        return None, "SMTP_FROM is not set"
    tls = _TLS.get(env.get("SMTP_TLS", "starttls").strip().lower())
    if tls is None:
        return None, "SMTP_TLS must be starttls, ssl or none"
    port_text = env.get("SMTP_PORT") or str(_DEFAULT_PORTS[tls])
    if not port_text.isdigit():
        return None, "SMTP_PORT is not a number"
    return SmtpSettings(host, int(port_text), env.get("SMTP_USER") or None, env.get("SMTP_PASSWORD") or None,
                        sender, tls), None  # type: ignore[arg-type]


def _channel(name: str, spec: ChannelSpec, env: Mapping[str, str]) -> Channel:
    if isinstance(spec, EmailChannel):
        smtp, missing = _smtp_from(env)
        return Channel(name, spec, smtp=smtp, missing=missing)
    variable = spec.integration_key if isinstance(spec, PagerDutyChannel) else spec.webhook_url
    secret = env.get(variable[1:]) or None
    missing = None if secret else f"{variable[1:]} is not set"
    events_url = env.get(EVENTS_URL_ENV) or DEFAULT_EVENTS_URL if isinstance(spec, PagerDutyChannel) else None
    return Channel(name, spec, secret=secret, events_url=events_url, missing=missing)


def load_channels(path: Path | str = DEFAULT_CHANNELS, env: Mapping[str, str] | None = None) -> list[Channel]:
    path = Path(path)
    env = os.environ if env is None else env
    data, root, _text = read_yaml(path, ChannelFileError)
    if data is None:
        raise ChannelFileError(f"{path}: the file is empty (a channel file has `channels:`)")
    try:
        channel_file = ChannelFile.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            loc = tuple(item["loc"])
            if len(loc) > 2 and loc[0] == "channels" and loc[2] in _TYPES:  # pydantic's union tag
                loc = loc[:2] + loc[3:]
            problem = printable(f"{where(loc)}: {item['msg']}")  # one line, whatever the keys hold
            problems.append(f"{path}:{line_of(root, loc) or '?'}: {problem}")
        raise ChannelFileError("\n".join(problems)) from None
    return [_channel(name, spec, env) for name, spec in channel_file.channels.items()]
