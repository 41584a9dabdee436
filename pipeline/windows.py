"""Window arithmetic: half-open `[start, end)` intervals of integer milliseconds, aligned to the epoch."""

from __future__ import annotations

PANE_MS = 60_000
DAY_MS = 86_400_000


def pane_start(ts_ms: int, pane_ms: int = PANE_MS) -> int:
    """Start of the pane holding `ts_ms` (floor, also for times before the epoch)."""
    return ts_ms - ts_ms % pane_ms


def pane_end(ts_ms: int, pane_ms: int = PANE_MS) -> int:
    return pane_start(ts_ms, pane_ms) + pane_ms


def day_start(ts_ms: int) -> int:
    """00:00 UTC of the day holding `ts_ms`."""
    return ts_ms - ts_ms % DAY_MS


def window_panes(end_ms: int, window_ms: int, pane_ms: int = PANE_MS) -> list[int]:
    """Starts of the panes that make up the window `[end_ms - window_ms, end_ms)`, oldest first.

    `end_ms` must be a pane boundary and `window_ms` a multiple of `pane_ms`.
    """
    if end_ms % pane_ms or window_ms % pane_ms or window_ms <= 0:
        raise ValueError(f"window {window_ms} ms ending at {end_ms} is not made of whole {pane_ms} ms panes")
    return list(range(end_ms - window_ms, end_ms, pane_ms))
