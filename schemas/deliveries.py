"""The notifier's records: the deliveries ledger (`<prefix>.deliveries`, compacted) and notification dead letters
(`<prefix>.notify.deadletter`, key = the delivery key).

The ledger holds three kinds of record, told apart by the key (pipeline/notify/keys.py):
- `Delivery`, key `fingerprint/transition/channel`: a delivery's final outcome; tombstoned once its alert
  event is acknowledged;
- `AlertState`, key `alert/<fingerprint>`: an alert after its last acknowledged event; tombstoned once it is
  closed and an hour of event time older than the newest acknowledged event;
- `AlertsRead`, key `read/<partition>`: how far the notifier has handled that alerts-topic partition.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DeliveryKind = Literal["trigger", "resolve"]


class AlertSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    partition: int = Field(description="alerts-topic partition of the alert event that asked for this delivery")
    offset: int


class Delivery(BaseModel):
    """One (fingerprint, transition, channel) whose outcome is final. A restarted notifier skips these keys."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    key: str = Field(description="`fingerprint/transition/channel`: the delivery's identity")
    fingerprint: str
    transition: str = Field(description="`change@window_end` of the alert event (its deciding pane's end)")
    channel: str
    kind: DeliveryKind = Field(description="trigger: the alert is shown (opens it on the channel); resolve: closes it")
    outcome: Literal["delivered", "dead_lettered"]
    attempts: int = Field(ge=1)
    finished_at: str = Field(description="ISO 8601 UTC wall-clock time of the outcome")
    rule: str
    severity: str
    source: AlertSource


class AlertState(BaseModel):
    """An alert as the notifier left it after its last acknowledged event: a restart routes from here."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    fingerprint: str
    open: list[str] = Field(description="the channels that show the alert open (got its trigger, no resolve yet)")
    transition: str = Field(description="`change@window_end` of its last event; no newer event is stale")
    window_end_ms: int = Field(description="that event's window end, epoch ms")
    source: AlertSource


class AlertsRead(BaseModel):
    """Every alert event of one alerts-topic partition before `next_offset` has all its outcomes recorded (and is
    acknowledged): a notifier in any consumer group skips them."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    partition: int
    next_offset: int = Field(ge=0)


class NotificationDeadLetter(BaseModel):
    """A delivery given up after its last attempt (or at once for a permanent error), with the alert to re-drive;
    or an alert event the notifier could not read (`key`, `channel`, `kind` null; `excerpt` set)."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    key: str | None
    channel: str | None
    kind: DeliveryKind | None
    attempts: int = Field(ge=0)
    reason: str = Field(description="why the last attempt failed; never holds a secret")
    last_status: int | None = Field(description="the last HTTP status or SMTP reply code, if any")
    failed_at: str
    alert: dict[str, Any] | None = Field(description="the alert event (alert-event.json)")
    excerpt: str | None = Field(default=None, max_length=512, description="the start of an unreadable event")
