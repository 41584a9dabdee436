"""`AlertEvent`: one state change of one alert, as published on the alerts topic (key: `fingerprint`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class InputOffsets(BaseModel):
    """The logs-topic messages that fed the evaluated window: every message whose records fell in one of the
    window's panes lies in `[first_offset, last_offset]` of `partition` (the range may include messages of other
    endpoints of that partition)."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    partition: int = Field(ge=0)
    first_offset: int = Field(ge=0)
    last_offset: int = Field(ge=0)


class Provenance(BaseModel):
    model_config = ConfigDict(extra="allow")

    window_start: str = Field(description="ISO 8601 UTC: the window the deciding metrics were computed over")
    window_end: str
    sample_count: int = Field(description="requests in that window")
    rules_hash: str = Field(description="sha256 of the rule file that decided")
    input: InputOffsets | None = Field(default=None, description="the logs-topic offsets that fed the window, live "
                                       "and in `replay --topic` (null in a replay of files, and when not known)")


class AlertEvent(BaseModel):
    """Times are ISO 8601 UTC in event time. `active_since`: start of the first pane of the run that fired;
    `starts_at`: end of the pane that completed `for`; `ends_at`: end of the pane that resolved it."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    rule: str
    state: Literal["firing", "resolved"]
    change: Literal["firing", "escalated", "deescalated", "repeat", "resolved"]
    severity: str
    labels: dict[str, str] = Field(description="rule labels plus `service`, `endpoint` and `rule`")
    annotations: dict[str, str]
    fingerprint: str = Field(description="stable hash of the rule and its group labels: the alert's identity")
    active_since: str
    starts_at: str
    ends_at: str | None
    value: float | None = Field(description="the left side of the deciding comparison")
    threshold: float | None = Field(description="its right side")
    condition: str
    channels: list[str]
    actions: list[str]
    runbook_url: str | None
    inhibited_by: list[str] = Field(description="firing rules that suppress this one's notifications")
    silenced_by: list[str] = Field(default_factory=list, description=(
        "ids of the silences that mute this transition (the notifier skips it); never set on `resolved`"))
    provenance: Provenance
