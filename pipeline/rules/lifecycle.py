"""The alert lifecycle of one rule for one group (e.g. one endpoint): inactive → pending → firing → resolved.

Evaluated in event time only, when a pane of the group closes (`evaluate(state, pane_start_ms, pane_end_ms,
verdict, …)`); nothing here reads a clock. The semantics:

- `verdict` is what the condition says of the window ending at the pane's end: True (breached), False (clear) or
  None (unknown: no data, too few requests). **Unknown holds the state**: a silent endpoint neither fires nor
  resolves.
- Breached: an inactive alert becomes pending; `active_since_ms` is the start of that first pane. It fires once
  the panes that breached since then add up to `for` (unknown panes hold the state but are no evidence, so they
  do not count); `starts_at_ms` is the end of the pane that completed it. With `for: 0` it fires at once.
- Not breached while pending: back to inactive, silently.
- **`for` means continuous.** A group is evaluated only when one of its panes closes, i.e. when it had traffic.
  A pending alert whose previous evaluation lies out of reach of this one — the previous evaluated pane ended
  before this evaluation's window starts (`pane_end - max(window, pane)`), so some time between them was seen by
  no evaluated window — starts over as inactive before this evaluation applies: a breach makes it pending again
  with this pane's start as `active_since_ms`. So ten breaching panes an hour apart never fire a `for: 10m` rule.
  With a 1-minute window a single minute without any pane breaks continuity; a 5-minute window bridges up to 4.
  Evaluated unknown panes (too few requests) are evaluations: they keep continuity and hold the state.
- A long gap changes nothing for a firing alert: it resolves only at an evaluation where it is clear (a silent
  endpoint is not a healthy one), `keep_firing_for` counts from its last breach, and a `repeat` goes out at its
  first breaching evaluation after `repeat_interval`.
- While firing, it resolves at the first evaluation where it is clear — `cleared` is the clear condition when the
  rule has one (hysteresis), else "not breached" — and the last breach ended at least `keep_firing_for` ago;
  `ends_at_ms` is that pane's end.
- While firing, a change of severity (tiers) is a transition too: a higher tier escalates at once; a lower one
  takes over only after the higher one stayed clear `keep_firing_for` (as for resolving). A reminder every
  `repeat_interval` is one too.

Flapping is damped by construction: a resolved alert must hold for `for` again before it fires again, and
`keep_firing_for` plus a clear threshold keep a borderline value from toggling it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

State = Literal["inactive", "pending", "firing"]
Change = Literal["firing", "resolved", "escalated", "deescalated", "repeat"]


@dataclass(frozen=True, slots=True)
class Timing:
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    repeat_interval_ms: int | None = None
    window_ms: int = 0  # the rule's window: how far back an evaluation sees (at least its own pane)


@dataclass(frozen=True, slots=True)
class AlertState:
    state: State = "inactive"
    active_since_ms: int | None = None
    starts_at_ms: int | None = None
    last_breach_end_ms: int | None = None
    last_notified_ms: int | None = None
    severity: str | None = None
    severity_held_ms: int | None = None  # end of the last pane where the current severity (or higher) held
    breached_ms: int = 0  # while pending: how much breaching pane time has been seen
    silenced: bool = False  # the last notification (firing, escalated, …) was muted by a silence
    # while pending: the end of the last evaluated pane (any verdict), to tell continuity; None in checkpoints
    # written before it existed (then the last breach's end stands in)
    evaluated_end_ms: int | None = None


INACTIVE = AlertState()  # what a group without an alert state is in (compared by identity first: most are)


@dataclass(frozen=True, slots=True)
class Transition:
    change: Change
    severity: str | None
    active_since_ms: int
    starts_at_ms: int
    ends_at_ms: int | None  # set when resolved
    at_ms: int  # the end of the pane that decided it


def evaluate(state: AlertState, pane_start_ms: int, pane_end_ms: int, verdict: bool | None,
             severity: str | None, timing: Timing, cleared: bool | None = True) -> tuple[AlertState, Transition | None]:
    """One evaluation at the close of the pane `[pane_start_ms, pane_end_ms)`.

    `verdict`: the condition (for tiered rules: whether any tier holds); `severity`: the tier that holds, if any;
    `cleared`: for a rule with a clear condition (hysteresis), its value — a firing alert resolves only when it
    is True; leave it True for rules without one.
    """
    if state.state == "pending" and not _continuous(state, pane_start_ms, pane_end_ms, timing):
        state = INACTIVE  # unknown time since its last evaluation: `for` starts over
    if verdict is None:
        if state.state == "pending":
            return replace(state, evaluated_end_ms=pane_end_ms), None
        return state, None
    if verdict:
        return _breached(state, pane_start_ms, pane_end_ms, severity, timing)
    return _not_breached(state, pane_end_ms, cleared, timing)


def _continuous(state: AlertState, pane_start_ms: int, pane_end_ms: int, timing: Timing) -> bool:
    """Whether the previous evaluation of this pending alert is within reach of this one: its pane ended at or
    after the start of this evaluation's window (the window, or this pane when the window is shorter)."""
    previous = state.evaluated_end_ms if state.evaluated_end_ms is not None else state.last_breach_end_ms
    if previous is None:
        return True
    return previous >= min(pane_start_ms, pane_end_ms - timing.window_ms)


def _breached(state: AlertState, pane_start_ms: int, now: int, severity: str | None,
              timing: Timing) -> tuple[AlertState, Transition | None]:
    """One copy of the state per evaluation (`replace` with every change at once: it is most of the cost)."""
    if state.state == "inactive":
        state = AlertState("pending", active_since_ms=pane_start_ms, severity=severity)
    since = state.active_since_ms if state.active_since_ms is not None else pane_start_ms
    if state.state == "pending":
        breached = state.breached_ms + (now - pane_start_ms)
        if breached < timing.for_ms:
            return replace(state, last_breach_end_ms=now, breached_ms=breached, severity=severity,
                           evaluated_end_ms=now), None
        fired = replace(state, state="firing", last_breach_end_ms=now, starts_at_ms=now, last_notified_ms=now,
                        severity=severity, severity_held_ms=now, breached_ms=0, evaluated_end_ms=None)
        return fired, Transition("firing", severity, since, now, None, now)
    starts = state.starts_at_ms if state.starts_at_ms is not None else now
    rank, held_rank = _rank(severity), _rank(state.severity)
    # the current severity (or a higher one) holds in this pane: held until now
    held_ms = now if rank >= held_rank else state.severity_held_ms
    if rank > held_rank:
        updated = replace(state, last_breach_end_ms=now, severity_held_ms=now, severity=severity, last_notified_ms=now)
        return updated, Transition("escalated", severity, since, starts, None, now)
    held = held_ms if held_ms is not None else now
    if rank < held_rank and now - held >= timing.keep_firing_for_ms:
        # like resolving: a lower tier takes over only after the higher one stayed clear `keep_firing_for`
        updated = replace(state, last_breach_end_ms=now, severity=severity, severity_held_ms=now, last_notified_ms=now)
        return updated, Transition("deescalated", severity, since, starts, None, now)
    last = state.last_notified_ms if state.last_notified_ms is not None else starts
    if timing.repeat_interval_ms and now - last >= timing.repeat_interval_ms:
        updated = replace(state, last_breach_end_ms=now, severity_held_ms=held_ms, last_notified_ms=now)
        return updated, Transition("repeat", severity, since, starts, None, now)
    return replace(state, last_breach_end_ms=now, severity_held_ms=held_ms), None


def _not_breached(state: AlertState, now: int, cleared: bool | None,
                  timing: Timing) -> tuple[AlertState, Transition | None]:
    if state.state == "pending":
        return INACTIVE, None
    if state.state == "inactive":
        return state, None
    last_breach = state.last_breach_end_ms if state.last_breach_end_ms is not None else now
    if cleared is not True or now - last_breach < timing.keep_firing_for_ms:
        return state, None
    since = state.active_since_ms if state.active_since_ms is not None else now
    starts = state.starts_at_ms if state.starts_at_ms is not None else now
    return INACTIVE, Transition("resolved", state.severity, since, starts, now, now)


SEVERITY_RANK = {"INFO": 0, "LOW": 1, "MEDIUM": 2, "WARNING": 2, "HIGH": 3, "CRITICAL": 4}


def _rank(severity: str | None) -> int:
    return SEVERITY_RANK.get((severity or "").upper(), -1)
