"""What the notifier keeps of its deliveries ledger, and the writes that keep the ledger topic bounded. Pure.

Held (and live on the topic), at most:
- one `Delivery` per delivery of an alert event not yet acknowledged (in flight): a restart re-reads that event
  and must not send what already has an outcome; dropped (and tombstoned) once the event is acknowledged;
- one `AlertState` per alert that is open on some channel, or closed less than `closed_kept_ms` of event time
  before the newest acknowledged event (so an event the worker publishes again is still recognised as stale);
- one `AlertsRead` per alerts-topic partition: events before it are skipped, in any consumer group.

Acknowledging events writes in three steps, each landing before the next: the alerts' states (so that a restart
past these events routes from them), then the partitions' read offsets (so that these events are skipped),
then the tombstones of what that made dead. A crash between steps leaves only records that are still true.

A ledger written before alert states existed (outcomes only) gets them at load, replayed from its outcomes, so
alerts open then still resolve; its outcome records are tombstoned once the read offsets pass them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from pipeline.notify.keys import ALERT_PREFIX, READ_PREFIX, alert_state_key, alerts_read_key
from pipeline.notify.routing import AlertStatus
from schemas.deliveries import AlertSource, AlertsRead, AlertState, Delivery

CLOSED_KEPT_MS = 3_600_000  # a closed alert's state is kept for an hour of event time after its last event
UNKNOWN_MS = -1  # the window end of a migrated alert state's last event: unknown, earlier than any

Write = tuple[str, bytes | None]  # (key, value); None: a tombstone


@dataclass(frozen=True)
class Acknowledged:
    """An alert event whose deliveries all have outcomes, with its alert's status right after it (None: the event
    changed no alert — unreadable, stale, or already handled)."""

    partition: int
    offset: int
    status: AlertStatus | None


def _encode(record: Delivery | AlertState | AlertsRead) -> bytes:
    return orjson.dumps(record.model_dump(mode="json"))


def alert_status(state: AlertState) -> AlertStatus:
    return AlertStatus(state.fingerprint, tuple(state.open), state.transition, state.window_end_ms)


class LedgerState:
    def __init__(self, closed_kept_ms: int = CLOSED_KEPT_MS) -> None:
        self.closed_kept_ms = closed_kept_ms
        self.deliveries: dict[str, Delivery] = {}
        self.alerts: dict[str, AlertState] = {}
        self.read: dict[int, int] = {}  # alerts-topic partition → next offset not handled
        self.clock_ms = 0  # the latest window end of an acknowledged event
        self.records_read = 0
        self.ends: dict[int, int] = {}  # ledger-topic partition → next offset, as far as read or written

    # -- loading ------------------------------------------------------------------------------------------------

    def load(self, key: str, value: bytes | None) -> None:
        """Apply one ledger record, in topic order (a tombstone deletes)."""
        self.records_read += 1
        if key.startswith(READ_PREFIX):
            if value is not None:
                read = AlertsRead.model_validate_json(value)
                self.read[read.partition] = max(self.read.get(read.partition, 0), read.next_offset)
        elif key.startswith(ALERT_PREFIX):
            fingerprint = key[len(ALERT_PREFIX):]
            if value is None:
                self.alerts.pop(fingerprint, None)
            else:
                state = AlertState.model_validate_json(value)
                self.alerts[fingerprint] = state
                self.clock_ms = max(self.clock_ms, state.window_end_ms)
        elif value is None:
            self.deliveries.pop(key, None)
        else:
            self.deliveries[key] = Delivery.model_validate_json(value)

    def loaded(self) -> list[list[Write]]:
        """After loading, the writes to make (in steps): the states of alerts known only from delivery records (a
        ledger written before alert states existed), then the tombstones of deliveries already behind their
        partition's read offset (a crash between the two writes)."""
        states: list[Write] = [(alert_state_key(state.fingerprint), _encode(state)) for state in self._migrate()]
        return [step for step in (states, self._passed_deliveries()) if step]

    def _migrate(self) -> list[AlertState]:
        """Alert states from the outcomes of partitions without a read offset, oldest first (trigger opens a
        channel, resolve closes it). Their last transition is left unknown, so no event is taken for stale."""
        replayed: dict[str, tuple[set[str], AlertSource]] = {}
        old = sorted((r for r in self.deliveries.values() if r.source.partition not in self.read
                      and r.fingerprint not in self.alerts), key=lambda r: (r.source.offset, r.key))
        for record in old:
            channels, _ = replayed.get(record.fingerprint, (set(), record.source))
            if record.kind == "trigger":
                channels.add(record.channel)
            else:
                channels.discard(record.channel)
            replayed[record.fingerprint] = (channels, record.source)
        migrated = [AlertState(fingerprint=fp, open=sorted(channels), transition="", window_end_ms=UNKNOWN_MS,
                               source=source) for fp, (channels, source) in replayed.items()]
        self.alerts.update((state.fingerprint, state) for state in migrated)
        return migrated

    # -- questions ----------------------------------------------------------------------------------------------

    def handled(self, partition: int, offset: int) -> bool:
        return offset < self.read.get(partition, 0)

    def has(self, delivery_key: str) -> bool:
        return delivery_key in self.deliveries

    def statuses(self) -> list[AlertStatus]:
        return [alert_status(state) for state in self.alerts.values()]

    @property
    def held(self) -> int:
        return len(self.deliveries) + len(self.alerts) + len(self.read)

    def live(self) -> list[Write]:
        """Every record the ledger needs: what a reader starting from here must see."""
        writes: list[Write] = [(key, _encode(record)) for key, record in self.deliveries.items()]
        return (writes
                + [(alert_state_key(fp), _encode(state)) for fp, state in self.alerts.items()]
                + [(alerts_read_key(p), _encode(AlertsRead(partition=p, next_offset=o)))
                   for p, o in sorted(self.read.items())])

    # -- changes ------------------------------------------------------------------------------------------------

    def record(self, records: Iterable[Delivery]) -> list[Write]:
        writes: list[Write] = []
        for record in records:
            self.deliveries[record.key] = record
            writes.append((record.key, _encode(record)))
        return writes

    def acknowledge(self, events: list[Acknowledged]) -> tuple[list[list[Write]], list[AlertStatus]]:
        """The writes for acknowledging `events` (in offset order per partition), in steps that must land one after
        the other, and the closed alerts that expired (the router forgets them)."""
        latest: dict[str, Acknowledged] = {}
        for event in events:
            self.read[event.partition] = max(self.read.get(event.partition, 0), event.offset + 1)
            if event.status is not None:
                latest[event.status.fingerprint] = event
                self.clock_ms = max(self.clock_ms, event.status.window_end_ms)
        states = {fingerprint: AlertState(
            fingerprint=fingerprint, open=list(event.status.open), transition=event.status.transition,
            window_end_ms=event.status.window_end_ms, source=AlertSource(partition=event.partition,
                                                                         offset=event.offset))
            for fingerprint, event in latest.items() if event.status is not None}
        self.alerts.update(states)
        expired = [state for state in self.alerts.values()
                   if not state.open and state.window_end_ms + self.closed_kept_ms < self.clock_ms]
        for state in expired:
            del self.alerts[state.fingerprint]
        partitions = sorted({event.partition for event in events})
        kept: list[Write] = [(alert_state_key(fp), _encode(state)) for fp, state in states.items()
                             if fp in self.alerts]
        read: list[Write] = [(alerts_read_key(p), _encode(AlertsRead(partition=p, next_offset=self.read[p])))
                             for p in partitions]
        dead = self._passed_deliveries() + [(alert_state_key(state.fingerprint), None) for state in expired]
        steps = [kept, read, dead]
        return [step for step in steps if step], [alert_status(state) for state in expired]

    def _passed_deliveries(self) -> list[Write]:
        passed = [key for key, record in self.deliveries.items() if self.handled(record.source.partition,
                                                                                 record.source.offset)]
        for key in passed:
            del self.deliveries[key]
        return [(key, None) for key in passed]
