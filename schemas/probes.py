"""The uptime probe: `ProbeResult` (value on `<prefix>.probes`, key: the URL) and `ProbeConfig` (a probe YAML)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.rules import Severity, duration_ms


class ProbeResult(BaseModel):
    """One check of one URL. `checked_at`: epoch ms when the request started."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    url: str
    ok: bool = Field(description="the expected status arrived within the timeout")
    status: int | None = Field(description="HTTP status; null when no response arrived")
    latency_ms: int = Field(ge=0, description="until the response (or the error)")
    error: str | None = Field(description="why the check failed; null when ok")
    checked_at: int = Field(ge=0, description="epoch milliseconds at the start of the check")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProbeTarget(_Strict):
    url: str = Field(pattern=r"^https?://[^/\s]+")
    expect_status: int = Field(default=200, ge=100, le=599)


class ProbeRuleSpec(_Strict):
    """The alert of the probe: fires after `failures` consecutive failed checks, resolves at the first success."""

    name: str = Field(default="factory-uptime-probe", pattern=r"^[a-z0-9][a-z0-9-]*$")
    failures: int = Field(default=2, ge=1, description="consecutive failed checks that fire the alert")
    severity: Severity = "CRITICAL"
    channels: list[str] = Field(default_factory=lambda: ["pagerduty", "slack-critical"])
    actions: list[str] = Field(default_factory=lambda: ["Create incident", "Page on-call engineer"])
    annotations: dict[str, str] = Field(default_factory=lambda: {
        "summary": "{url} is down: {value:.0f} consecutive failed checks ({error})"})
    runbook_url: str | None = None


class ProbeConfig(_Strict):
    """A probe YAML file (`agents/defaults/probes.yaml` holds the spec's "External monitoring")."""

    version: Literal[1] = 1
    interval: str = Field(default="60s", description="time between checks")
    timeout: str = Field(default="10s", description="a check without a response by then fails")
    targets: list[ProbeTarget] = Field(min_length=1)
    rule: ProbeRuleSpec = Field(default_factory=ProbeRuleSpec)

    @field_validator("interval", "timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        if duration_ms(value) <= 0:
            raise ValueError("must be positive")
        return value
