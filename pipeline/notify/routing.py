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


class Router:
    def __init__(self, send_resolved: Mapping[str, bool]) -> None:
        """`send_resolved`: every active channel, and whether it gets resolves."""
        self.send_resolved = dict(send_resolved)
        self.open: dict[str, set[str]] = {}

    def restore(self, decisions: Iterable[tuple[str, str, DeliveryKind]]) -> None:
        """Replay earlier outcomes (fingerprint, channel, kind), oldest first."""
        for fingerprint, channel, kind in decisions:
            channels = self.open.setdefault(fingerprint, set())
            if kind == "trigger":
                channels.add(channel)
            else:
                channels.discard(channel)
            if not channels:
                del self.open[fingerprint]

    def route(self, alert: AlertEvent) -> Routed:
        fingerprint = alert.fingerprint
        transition = transition_of(alert)
        opened = self.open.get(fingerprint, set())
        unavailable = [name for name in alert.channels if name not in self.send_resolved]
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
