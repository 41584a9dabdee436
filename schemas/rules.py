"""Rule files: what an alert rule says, validated strictly (an unknown key or a bad value is an error)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

GroupLabel = Literal["service", "endpoint"]


def _service_and_endpoint() -> list[GroupLabel]:
    return ["service", "endpoint"]

Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def duration_ms(text: str | int) -> int:
    """`90s`, `5m`, `4h`, `1d` (or a number of milliseconds) to milliseconds."""
    if isinstance(text, int):
        return text
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 5m, 4h, 1d)")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    severity: Severity
    condition: str
    channels: list[str] | None = Field(default=None, description="channels for this tier (default: the rule's)")


class Override(_Strict):
    """Parameters for the groups whose labels match (e.g. one endpoint's own latency target)."""

    match: dict[str, str]
    params: dict[str, float]


class Rule(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str | None = None
    condition: str | None = Field(default=None, description="breach condition; or give `tiers`")
    tiers: list[Tier] | None = Field(default=None, description="most severe first: one alert changes severity")
    clear: str | None = Field(default=None, description="hysteresis: a firing alert resolves only when this holds")
    window: str = Field(default="1m", description="the window the metrics are computed over, ending at the pane")
    for_: str = Field(default="0s", alias="for", description="how long the condition must hold before firing")
    keep_firing_for: str = "0s"
    repeat_interval: str = Field(default="4h", description=(
        "while firing, re-notify (`repeat`) at the first breaching evaluation this long after the last "
        "notification; 0s: never. Default 4h, as Alertmanager's"))
    min_requests: int = Field(default=0, ge=0, description="fewer requests in the window: unknown, state holds")
    group_by: list[GroupLabel] = Field(default_factory=_service_and_endpoint, description=(
        "[service, endpoint] (default): evaluated per endpoint on its panes; [service]: service-wide, on the "
        "service stage's panes (every endpoint's pane of the minute merged), labels without `endpoint`"))
    severity: Severity | None = None
    channels: list[str] = Field(default_factory=list)
    actions: list[str] = Field(default_factory=list)
    params: dict[str, float] = Field(default_factory=dict)
    overrides: list[Override] = Field(default_factory=list)
    only: list[dict[GroupLabel, str]] = Field(default_factory=list, description=(
        "when given, the groups this rule is evaluated for: each item gives labels (service, endpoint) that must "
        "all equal; a group matching any item is evaluated"))
    exclude: list[dict[GroupLabel, str]] = Field(default_factory=list, description=(
        "groups this rule is not evaluated for (no state, no alert), given like `only`; e.g. "
        "{endpoint: <unmatched>} keeps scanner traffic from paging"))
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    runbook_url: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("only", "exclude")
    @classmethod
    def _matchers_not_empty(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        if any(not matcher for matcher in value):
            raise ValueError("each item needs at least one label (service or endpoint): {} matches every group")
        return value

    @field_validator("window", "for_", "keep_firing_for", "repeat_interval")
    @classmethod
    def _is_duration(cls, value: str | None) -> str | None:
        if value is not None:
            duration_ms(value)
        return value

    def model_post_init(self, _context: object) -> None:
        if (self.condition is None) == (self.tiers is None):
            raise ValueError("give either `condition` (with `severity`) or `tiers`")
        if self.condition is not None and self.severity is None:
            raise ValueError("a rule with a `condition` needs a `severity`")


class Inhibition(_Strict):
    """While `source` fires for a group, alerts of `targets` on a group with the same `equal` labels are
    suppressed: they keep their state, and their transitions carry `inhibited_by` so the notifier skips them."""

    source: str
    targets: list[str]
    equal: list[GroupLabel] = Field(default_factory=_service_and_endpoint, description=(
        "labels whose values the source and the target must share: [service, endpoint] (source and targets per "
        "endpoint: the source must fire on the same endpoint) or [service] (a group_by: [service] source mutes "
        "targets of its service, service-wide or per endpoint); anything else is refused"))
    severities: list[Severity] | None = Field(default=None, description=(
        "the target severities this inhibition mutes (like Alertmanager's target_matchers on severity); "
        "default: every severity"))


class RuleFile(_Strict):
    version: Literal[1] = 1
    params: dict[str, float] = Field(default_factory=dict, description="parameters every rule can use")
    rules: list[Rule]
    inhibit: list[Inhibition] = Field(default_factory=list)
