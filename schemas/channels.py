"""Channel files: where notifications go. Secrets are never written here: a channel names the environment
variable that holds its secret (`$SLACK_CRITICAL_WEBHOOK`); SMTP settings come from `SMTP_*` variables."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.rules import duration_ms

_ENV_REF = r"^\$[A-Z_][A-Z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateLimit(_Strict):
    max: int = Field(ge=1, description="at most this many messages …")
    per: str = Field(default="1m", description="… in any window of this length")

    @field_validator("per")
    @classmethod
    def _is_duration(cls, value: str) -> str:
        if duration_ms(value) <= 0:
            raise ValueError("must be longer than 0")
        return value


class Retry(_Strict):
    max_attempts: int = Field(default=10, ge=1, le=100, description="attempts before the dead-letter topic")
    initial: str = Field(default="1s", description="first backoff; doubles each attempt, with jitter")
    max: str = Field(default="5m", description="longest backoff (a longer Retry-After is still honoured, ≤ 1h)")
    timeout: str = Field(default="10s", description="one attempt's time limit")

    @field_validator("initial", "max", "timeout")
    @classmethod
    def _is_duration(cls, value: str) -> str:
        duration_ms(value)
        return value


class _Channel(_Strict):
    group_wait: str = Field(default="0s", description="collect this channel's alerts this long into one message "
                                                      "(0s: each alert at once; PagerDuty never groups)")
    group_interval: str = Field(default="0s", description="the next message of this channel waits at least this "
                                                          "long after the previous one (grouping what came since)")
    send_resolved: bool = Field(default=True, description="notify resolves (PagerDuty always resolves)")
    retry: Retry = Field(default_factory=Retry)
    rate_limit: RateLimit | None = Field(default=None, description="default per type: PagerDuty 120/1m, "
                                                                   "Slack 1/1s, email 30/1m")

    @field_validator("group_wait", "group_interval")
    @classmethod
    def _is_duration(cls, value: str) -> str:
        duration_ms(value)
        return value


class PagerDutyChannel(_Channel):
    type: Literal["pagerduty"]
    integration_key: str = Field(pattern=_ENV_REF, description="the environment variable holding the Events v2 "
                                                                "routing key, e.g. $PAGERDUTY_INTEGRATION_KEY")
    escalation_policy: str | None = Field(default=None, description="informational: PagerDuty routes by the key")


class SlackChannel(_Channel):
    type: Literal["slack"]
    webhook_url: str = Field(pattern=_ENV_REF, description="the environment variable holding the incoming webhook "
                                                            "URL, e.g. $SLACK_CRITICAL_WEBHOOK")
    channel: str | None = Field(default=None, description="sent as `channel` (legacy webhooks honour it)")
    mention: str | None = Field(default=None, description="`@here`, `@channel`, `@user-id` or `<!subteam^ID>`: "
                                                          "put in the top-level text of CRITICAL alerts")


class EmailChannel(_Channel):
    type: Literal["email"]
    recipients: list[str] = Field(min_length=1)

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c.isspace() for c in address):
                raise ValueError(f"not an e-mail address: {address!r}")
        return value


ChannelSpec = Annotated[PagerDutyChannel | SlackChannel | EmailChannel, Field(discriminator="type")]


class ChannelFile(_Strict):
    version: Literal[1] = 1
    channels: dict[str, ChannelSpec]

    @field_validator("channels")
    @classmethod
    def _names(cls, value: dict[str, ChannelSpec]) -> dict[str, ChannelSpec]:
        for name in value:
            if not name or not all(c.isalnum() or c in "-_" for c in name):
                raise ValueError(f"channel name {name!r}: use letters, digits, - and _")
        return value
