"""Routing an alert event to channels, and remembering which channels show each alert as open.

- A firing transition (firing, escalated, deescalated, repeat) goes to the event's channels that are active,
  unless the alert is inhibited. Channels that showed the alert before but are not among them any more (a tier
  change, e.g. CRITICAL → HIGH leaves PagerDuty) get a resolve, so no page stays open.
- A resolve goes to the channels that show the alert open: never to a channel that did not see it fire (an
  inhibited firing is not resolved either), and only where the channel sends resolves (PagerDuty always does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pipeline.notify.keys import delivery_key, transition_of
from pipeline.timestamps import iso_to_ms
from schemas.alerts import AlertEvent
from schemas.deliveries import DeliveryKind


@dataclass(frozen=True)
class PlannedDelivery:
    key: str
    channel: str
    kind: DeliveryKind
    transition: str
    alert: AlertEvent


@dataclass(frozen=True)
class Routed:
    deliveries: list[PlannedDelivery]
    unavailable: list[str] = field(default_factory=list)  # channels named by the alert that are not active
    inhibited: bool = False
    stale: bool = False  # no newer than the alert's last event: changes nothing


@dataclass(frozen=True)
class AlertStatus:
    """One alert as the router knows it after an event: the channels that show it open, its last transition."""

    fingerprint: str
    open: tuple[str, ...]
    transition: str
    window_end_ms: int

    @property
    def closed(self) -> bool:
        return not self.open


class Router:
    def __init__(self, send_resolved: Mapping[str, bool]) -> None:
        """`send_resolved`: every active channel, and whether it gets resolves."""
        self.send_resolved = dict(send_resolved)
        self.open: dict[str, set[str]] = {}
        self.last: dict[str, tuple[int, str]] = {}  # fingerprint → (window end ms, transition) of its last event

    def restore(self, statuses: Iterable[AlertStatus]) -> None:
        for status in statuses:
            self.last[status.fingerprint] = (status.window_end_ms, status.transition)
            if status.open:
                self.open[status.fingerprint] = set(status.open)
            else:
                self.open.pop(status.fingerprint, None)

    def status(self, fingerprint: str) -> AlertStatus | None:
        """The alert's state now (None: never routed, or forgotten)."""
        last = self.last.get(fingerprint)
        if last is None:
            return None
        return AlertStatus(fingerprint, tuple(sorted(self.open.get(fingerprint, ()))), last[1], last[0])

    def forget(self, status: AlertStatus) -> bool:
        """Drop a closed alert whose last event is still `status`'s (the ledger expired it); whether it did."""
        if status.fingerprint in self.open or self.last.get(status.fingerprint) != (status.window_end_ms,
                                                                                       status.transition):
            return False
        del self.last[status.fingerprint]
        return True

    @property
    def alerts_held(self) -> int:
        return len(self.last)

    def route(self, alert: AlertEvent) -> Routed:
        fingerprint = alert.fingerprint
        transition = transition_of(alert)
        unavailable = [name for name in alert.channels if name not in self.send_resolved]
        window_end_ms = iso_to_ms(alert.provenance.window_end)
        last = self.last.get(fingerprint)
        if last is not None and (window_end_ms < last[0] or (window_end_ms, transition) == last):
            return Routed([], unavailable, stale=True)
        self.last[fingerprint] = (window_end_ms, transition)
        opened = self.open.get(fingerprint, set())
        planned: list[tuple[str, DeliveryKind]] = []
        if alert.state == "resolved":
            planned = [(name, "resolve") for name in sorted(opened)]
            self.open.pop(fingerprint, None)
        elif alert.inhibited_by or alert.silenced_by:  # muted: a firing cause, or a silence (never on resolves)
            return Routed([], unavailable, inhibited=True)
        else:
            wanted = [name for name in dict.fromkeys(alert.channels) if name in self.send_resolved]
            planned = [(name, "trigger") for name in wanted]
            planned += [(name, "resolve") for name in sorted(opened - set(wanted))]
            if wanted:
                self.open[fingerprint] = set(wanted)
            else:
                self.open.pop(fingerprint, None)
        deliveries = [PlannedDelivery(delivery_key(fingerprint, transition, name), name, kind, transition, alert)
                      for name, kind in planned if kind == "trigger" or self.send_resolved.get(name, False)]
        return Routed(deliveries, unavailable)
