from __future__ import annotations

import pytest

from pipeline.windows import DAY_MS, PANE_MS, day_start, pane_end, pane_start, window_panes


@pytest.mark.parametrize(
    ("ts_ms", "start", "end"),
    [
        (0, 0, PANE_MS),  # on the boundary: the pane it starts
        (59_999, 0, PANE_MS),  # last ms of a pane
        (60_000, 60_000, 120_000),  # an end is exclusive: the next pane
        (-1, -PANE_MS, 0),  # before the epoch, floor not truncation
        (1_767_700_830_123, 1_767_700_800_000, 1_767_700_860_000),
    ],
)
def test_pane_bounds_are_half_open(ts_ms: int, start: int, end: int) -> None:
    assert pane_start(ts_ms) == start
    assert pane_end(ts_ms) == end


def test_day_start_is_midnight_utc() -> None:
    assert day_start(1_767_700_830_123) == 1_767_657_600_000  # 2026-01-06T00:00:00Z
    assert day_start(DAY_MS) == DAY_MS
    assert day_start(DAY_MS - 1) == 0


def test_window_panes_are_the_panes_of_the_half_open_window() -> None:
    assert window_panes(300_000, 300_000) == [0, 60_000, 120_000, 180_000, 240_000]
    assert window_panes(120_000, 60_000) == [60_000]


@pytest.mark.parametrize(("end", "window"), [(90_000, 60_000), (120_000, 90_000), (120_000, 0)])
def test_window_panes_rejects_partial_panes(end: int, window: int) -> None:
    with pytest.raises(ValueError, match="whole"):
        window_panes(end, window)
