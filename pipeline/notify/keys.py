"""A delivery's identity: (fingerprint, transition, channel). The transition is the alert event's change and
the end of the pane that decided it, so the same event published twice has the same key, and two firings of
one alert (fire, resolve, fire again) have different ones.

The deliveries ledger also holds one record per alert (`alert/<fingerprint>`) and one per alerts-topic partition
(`read/<partition>`); fingerprints are hex digests, so these never look like a delivery key."""

from __future__ import annotations

from schemas.alerts import AlertEvent


def transition_of(alert: AlertEvent) -> str:
    return f"{alert.change}@{alert.provenance.window_end}"


def delivery_key(fingerprint: str, transition: str, channel: str) -> str:
    return f"{fingerprint}/{transition}/{channel}"


ALERT_PREFIX = "alert/"
READ_PREFIX = "read/"


def alert_state_key(fingerprint: str) -> str:
    return f"{ALERT_PREFIX}{fingerprint}"


def alerts_read_key(partition: int) -> str:
    return f"{READ_PREFIX}{partition}"
