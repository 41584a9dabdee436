"""A shorter fetch long-poll for Faust's consumer.

Faust builds its aiokafka consumer with `fetch_max_wait_ms=1500` and no setting to change it. One fetch request
covers every assigned partition of a broker, and on the embedded broker a request in which some partitions have
nothing new waited the whole 1.5 s even when another partition had data: once the small partitions of an input
were read, the big one advanced one fetch per ~1.3 s (a 300k-record benchmark took 7-9 s instead of 3). Both the
stream worker and the notifier lower the wait when their partitions are assigned; an idle consumer then polls ten
times a second, which costs the broker next to nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

FETCH_MAX_WAIT_MS = 100
log = logging.getLogger("tailwatch.fetch")


def shorten_fetch_wait(app: faust.App, wait_ms: int = FETCH_MAX_WAIT_MS) -> bool:
    """Set the wait on the consumer's fetcher (its next request uses it); False when the consumer is not there
    (not started yet, or a Faust version that keeps it elsewhere)."""
    thread: Any = getattr(app.consumer, "_thread", None)
    consumer: Any = getattr(thread, "_consumer", None)
    fetcher: Any = getattr(consumer, "_fetcher", None)
    if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
        return False
    fetcher._fetch_max_wait_ms = wait_ms
    return True


def keep_fetch_wait_short(app: faust.App, wait_ms: int = FETCH_MAX_WAIT_MS) -> None:
    """Lower the wait whenever partitions are assigned (the consumer exists by then; a new one after a restart of
    the consumer gets it too)."""

    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        if shorten_fetch_wait(app, wait_ms):
            log.info("fetch wait shortened", extra={"fields": {"fetch_max_wait_ms": wait_ms}})
        else:
            log.warning("fetch wait not shortened: this Faust keeps its consumer elsewhere", extra={"fields": {}})

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
