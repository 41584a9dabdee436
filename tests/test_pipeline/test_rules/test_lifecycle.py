"""Alert lifecycle table tests. Each row is a run of one-minute panes: the verdict of each pane close
(B = breached, . = not breached, ? = unknown, _ = no pane closed: nothing evaluated), and the transitions
expected, as (change, minute of the deciding pane's end, active_since minute, starts_at minute, ends_at minute or
None)."""

from __future__ import annotations

import pytest

from pipeline.rules.lifecycle import AlertState, Timing, evaluate

MIN = 60_000
T0 = 1_767_700_800_000


def run(verdicts: str, timing: Timing, severities: list[str | None] | None = None,
        cleared: str | None = None) -> list[tuple]:
    state = AlertState()
    out = []
    for minute, mark in enumerate(verdicts):
        if mark == "_":
            continue
        verdict = {"B": True, ".": False, "?": None}[mark]
        severity = severities[minute] if severities else ("HIGH" if verdict else None)
        clear = True if cleared is None else {"c": True, "-": False, "?": None}[cleared[minute]]
        state, transition = evaluate(state, T0 + minute * MIN, T0 + (minute + 1) * MIN, verdict, severity, timing,
                                     clear)
        if transition:
            out.append((transition.change, (transition.at_ms - T0) // MIN, (transition.active_since_ms - T0) // MIN,
                        (transition.starts_at_ms - T0) // MIN,
                        None if transition.ends_at_ms is None else (transition.ends_at_ms - T0) // MIN))
    return out


@pytest.mark.parametrize(
    ("verdicts", "timing", "expected"),
    [
        # for 5m: the condition holds on panes 0-4, so it fires at the end of pane 4 (minute 5)
        ("BBBBB", Timing(for_ms=5 * MIN), [("firing", 5, 0, 5, None)]),
        ("BBBB.", Timing(for_ms=5 * MIN), []),  # broke off while pending: silently back to inactive
        ("BBB.BBBBB", Timing(for_ms=5 * MIN), [("firing", 9, 4, 9, None)]),  # `for` starts over
        # unknown (no data) holds the state — neither OK nor breached — and is no evidence: `for` counts only
        # breaching panes (0, 1, 4, 5, 6 here), so quiet minutes cannot run out a pending alert's `for`
        ("BB??BBB", Timing(for_ms=5 * MIN), [("firing", 7, 0, 7, None)]),
        ("B????????B", Timing(for_ms=5 * MIN), []),
        ("B", Timing(), [("firing", 1, 0, 1, None)]),  # for 0: at once
        # resolves at the first clear pane; ends_at is that pane's end
        ("BB..", Timing(), [("firing", 1, 0, 1, None), ("resolved", 3, 0, 1, 3)]),
        ("BB??..", Timing(), [("firing", 1, 0, 1, None), ("resolved", 5, 0, 1, 5)]),  # no data does not resolve
        # keep_firing_for 2m: the last breach ended at minute 2; clear panes until it is 2 minutes past
        ("BB...", Timing(keep_firing_for_ms=2 * MIN), [("firing", 1, 0, 1, None), ("resolved", 4, 0, 1, 4)]),
        ("BB.B...", Timing(keep_firing_for_ms=2 * MIN), [("firing", 1, 0, 1, None), ("resolved", 6, 0, 1, 6)]),
        # repeat every 3m while firing
        ("BBBBBBB", Timing(repeat_interval_ms=3 * MIN),
         [("firing", 1, 0, 1, None), ("repeat", 4, 0, 1, None), ("repeat", 7, 0, 1, None)]),
    ],
)
def test_lifecycle(verdicts: str, timing: Timing, expected: list[tuple]) -> None:
    assert run(verdicts, timing) == expected


HOUR_GAP = "_" * 59


@pytest.mark.parametrize(
    ("verdicts", "timing", "expected"),
    [
        # `for` means continuous: with a 1-minute window, a minute with no pane at all is time no evaluation saw
        ("BB_BBB", Timing(for_ms=5 * MIN, window_ms=MIN), []),
        ("BB_BBBBB", Timing(for_ms=5 * MIN, window_ms=MIN), [("firing", 8, 3, 8, None)]),  # starts over at 3
        # a 5-minute window sees back 4 panes before its own: up to 4 minutes without a pane are bridged ...
        ("BB____BBB", Timing(for_ms=5 * MIN, window_ms=5 * MIN), [("firing", 9, 0, 9, None)]),
        # ... 5 are not (the previous pane ended at minute 2, the window of pane 7 starts at minute 3)
        ("BB_____BBB", Timing(for_ms=5 * MIN, window_ms=5 * MIN), []),
        # evaluated unknown panes (too few requests) are evaluations: they keep continuity and hold the state
        ("BB???BBB", Timing(for_ms=5 * MIN, window_ms=MIN), [("firing", 8, 0, 8, None)]),
        # after a gap, an unknown pane ends the stale pending alert: the next breach starts over
        ("BB__?BBB", Timing(for_ms=5 * MIN, window_ms=MIN), []),
        # a firing alert is untouched by a gap: it resolves only at a clear evaluation, an hour later here
        ("BB" + HOUR_GAP + ".", Timing(window_ms=MIN), [("firing", 1, 0, 1, None), ("resolved", 62, 0, 1, 62)]),
        ("BB" + HOUR_GAP + "B", Timing(window_ms=MIN, repeat_interval_ms=30 * MIN),
         [("firing", 1, 0, 1, None), ("repeat", 62, 0, 1, None)]),
    ],
)
def test_for_means_continuous(verdicts: str, timing: Timing, expected: list[tuple]) -> None:
    assert run(verdicts, timing) == expected


@pytest.mark.parametrize("window_minutes", [1, 5, 60])
def test_one_breach_an_hour_never_fires_a_for_10m_rule(window_minutes: int) -> None:
    # ten breaching panes an hour apart: 10 minutes of breaches, but 9 hours apart (a window of an hour still
    # sees the previous pane, so that rule is tested with two hours between them)
    gap = HOUR_GAP if window_minutes < 60 else HOUR_GAP * 2
    verdicts = gap.join("B" * 10)
    assert run(verdicts, Timing(for_ms=10 * MIN, window_ms=window_minutes * MIN)) == []
    # and the eleventh hour, breaching 10 minutes straight, fires with active_since at its own first breach
    transitions = run(verdicts + gap + "B" * 10, Timing(for_ms=10 * MIN, window_ms=window_minutes * MIN))
    start = len(verdicts + gap)
    assert transitions == [("firing", start + 10, start, start + 10, None)]


def test_a_pending_state_from_an_older_checkpoint_uses_its_last_breach_for_continuity() -> None:
    # checkpoints written before `evaluated_end_ms` existed: the end of the last breach stands in
    old = AlertState("pending", active_since_ms=T0, last_breach_end_ms=T0 + MIN, severity="HIGH", breached_ms=MIN)
    timing = Timing(for_ms=2 * MIN, window_ms=MIN)
    state, transition = evaluate(old, T0 + MIN, T0 + 2 * MIN, True, "HIGH", timing)
    assert transition is not None and transition.active_since_ms == T0  # continuous: fires as before
    state, transition = evaluate(old, T0 + 60 * MIN, T0 + 61 * MIN, True, "HIGH", timing)
    assert transition is None and state.active_since_ms == T0 + 60 * MIN  # an hour later: starts over


def test_hysteresis_resolves_only_when_the_clear_condition_holds() -> None:
    # breached on 0-1; not breached on 2-4 but the clear condition holds only on pane 4 (unknown on 3)
    transitions = run("BB...", Timing(), cleared="---?c")
    assert transitions == [("firing", 1, 0, 1, None), ("resolved", 5, 0, 1, 5)]


def test_tiers_escalate_and_deescalate_one_alert() -> None:
    severities = ["MEDIUM", "HIGH", "CRITICAL", "HIGH", None]
    transitions = run("BBBB.", Timing(), severities=severities)
    assert [(t[0], t[1]) for t in transitions] == [("firing", 1), ("escalated", 2), ("escalated", 3),
                                                   ("deescalated", 4), ("resolved", 5)]
    assert {t[3] for t in transitions} == {1}  # one alert: starts_at never changes


def test_a_resolved_alert_must_hold_for_again_before_it_fires_again() -> None:
    transitions = run("BBB.BB.BBB", Timing(for_ms=3 * MIN))
    assert transitions == [("firing", 3, 0, 3, None), ("resolved", 4, 0, 3, 4), ("firing", 10, 7, 10, None)]


def test_deescalation_waits_for_keep_firing_for_like_a_resolve() -> None:
    severities = ["CRITICAL", "HIGH", "CRITICAL", "HIGH", "HIGH", "HIGH"]
    transitions = run("BBBBBB", Timing(keep_firing_for_ms=2 * MIN), severities=severities)
    assert [(t[0], t[1]) for t in transitions] == [("firing", 1), ("deescalated", 5)]


def test_flapping_is_damped_by_keep_firing_for() -> None:
    # a value toggling every minute: without damping, a page every other minute
    assert len(run("B.B.B.B.", Timing())) == 8
    # kept 2 minutes after its last breach: one alert for the whole episode, resolved once it settles
    assert run("B.B.B.B...", Timing(keep_firing_for_ms=2 * MIN)) == [("firing", 1, 0, 1, None),
                                                                     ("resolved", 9, 0, 1, 9)]
    # and `for` makes the toggling value never fire at all
    assert run("B.B.B.B.", Timing(for_ms=2 * MIN)) == []
