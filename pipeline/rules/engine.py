"""The rule engine: on every closed pane, evaluate each rule for that pane's group and turn lifecycle
transitions into alert events (dicts shaped like `schemas.alerts.AlertEvent`).

Two stages hold one engine each: stage 1 (`stage="endpoint"`, one per logs partition) evaluates the rules grouped
by [service, endpoint] on endpoint panes; stage 2 (`stage="service"`, `pipeline.service`) evaluates the rules
grouped by [service] on service panes. Inhibitions: `equal: [service, endpoint]` lives inside stage 1;
`equal: [service]` has a service-wide source — its service targets are muted inside stage 2, its endpoint targets
are held by stage 1 (`held_rules`, published as `HeldAlert`s) and released by stage 2 with `service_inhibitors`.

Deterministic: closed panes come in (start, service, endpoint) order, rules in file order, and everything reads
event time only — so replay gives the alerts live gave.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from pipeline.metrics import derived
from pipeline.pane_store import ClosedPaneEvent, PaneStore
from pipeline.panes import ClosedPane
from pipeline.rules.compiled import CompiledRule, CompiledTier, Stage
from pipeline.rules.expression import Binary, Expression
from pipeline.rules.lifecycle import INACTIVE, AlertState, Transition, evaluate
from pipeline.rules.silences import SilenceSet
from pipeline.timestamps import ms_to_iso

if TYPE_CHECKING:
    from schemas.rules import RuleFile


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    """Stable id of one alert: the rule and its group labels."""
    text = rule + "\x00" + "\x00".join(f"{key}={labels[key]}" for key in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sides(expression: Expression, values: dict[str, Any]) -> tuple[float | None, float | None]:
    """(value, threshold) of a comparison: its left and right side. None when the condition is not one."""
    root = expression.root
    if isinstance(root, Binary) and root.op in ("<", "<=", ">", ">=", "==", "!="):
        left = Expression("", root.left, frozenset()).evaluate(values)
        right = Expression("", root.right, frozenset()).evaluate(values)
        return (None if left is None else float(left)), (None if right is None else float(right))
    return None, None


class _SafeFormatter(string.Formatter):
    """`{name}` and `{name:.1%}` only: no attribute or index access in templates."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        if not field_name.isidentifier():
            raise KeyError(field_name)
        return kwargs.get(field_name, "{" + field_name + "}"), field_name


_FORMATTER = _SafeFormatter()


def render(template: str, values: dict[str, Any]) -> str:
    try:
        return _FORMATTER.vformat(template, (), values)
    except (KeyError, ValueError, TypeError, IndexError):
        return template


InputOf = Callable[[int, int], dict[str, Any] | None]  # (window start, end) -> the input offsets that fed it
GROUP_RULES_KEPT = 10_000  # groups whose rules and parameters `RuleEngine._rules_for` keeps worked out


WindowOf = Callable[[int], ClosedPane]  # window length (ms) -> the group's closed panes over it, merged


class RuleEngine:
    """`silences`: what mutes transitions (shared and updated by the caller; see `pipeline.rules.silences`).
    `input_of`: live only, the logs-topic offsets that fed a window, for the provenance (replay leaves it null).
    `stage`: which rules it holds — "endpoint" (stage 1: group_by [service, endpoint]) or "service" (stage 2:
    group_by [service]); both are given every compiled rule and keep theirs."""

    def __init__(self, rules: list[CompiledRule], rule_file: RuleFile, rules_hash: str,
                 silences: SilenceSet | None = None, input_of: InputOf | None = None, *,
                 stage: Stage = "endpoint") -> None:
        self.stage = stage
        self.compiled = rules
        self.rules = [rule for rule in rules if rule.service_wide == (stage == "service")]
        self.rule_file = rule_file
        self.rules_hash = rules_hash
        self.silences = silences if silences is not None else SilenceSet()
        self.input_of = input_of
        self.states: dict[tuple[str, str, str], AlertState] = {}  # (rule, service, endpoint or "" service-wide)
        wide = {rule.spec.name for rule in rules if rule.service_wide}
        # (source, targets, the target severities it mutes or None for all), for the inhibitions inside this stage
        self._inhibits = [(i.source, set(i.targets) & ({r.spec.name for r in self.rules}),
                           None if i.severities is None else set(i.severities))
                          for i in rule_file.inhibit if (i.source in wide) == (stage == "service")]
        # across stages: service-wide sources muting endpoint targets (stage 1 holds those, stage 2 releases them)
        self._across = [(i.source, set(i.targets) - wide, None if i.severities is None else set(i.severities))
                        for i in rule_file.inhibit if i.source in wide]
        self.held_rules = frozenset(name for _source, targets, _sev in self._across for name in targets)
        self._group_rules: dict[tuple[str, str], list[tuple[CompiledRule, dict[str, Any]]]] = {}

    def for_stage(self, stage: Stage) -> RuleEngine:
        """An engine of `stage` with the same rules, rule file and silences (no input offsets: a service alert
        has none)."""
        return RuleEngine(self.compiled, self.rule_file, self.rules_hash, self.silences, stage=stage)

    def export_states(self) -> list[list[Any]]:
        """The alert states, JSON-ready (what a stream worker keeps in its checkpoint)."""
        return [[rule, service, endpoint, asdict(state)]
                for (rule, service, endpoint), state in sorted(self.states.items())]

    def import_states(self, rows: list[list[Any]]) -> None:
        known = {rule.spec.name for rule in self.rules}
        self.states = {(rule, service, endpoint): AlertState(**state)
                       for rule, service, endpoint, state in rows if rule in known}

    def on_panes_closed(self, events: Iterable[ClosedPaneEvent], store: PaneStore) -> list[dict[str, Any]]:
        alerts = []
        for event in events:
            alerts.extend(self.on_pane_closed(event, store))
        return alerts

    def on_pane_closed(self, event: ClosedPaneEvent, store: PaneStore) -> list[dict[str, Any]]:
        """Stage 1: an endpoint pane closed."""
        def window_of(window_ms: int) -> ClosedPane:
            return store.window(event.service, event.endpoint, event.end_ms, window_ms)
        return self._evaluate({"service": event.service, "endpoint": event.endpoint}, event.start_ms, event.end_ms,
                              event.d1_rows_read_today, window_of)

    def on_service_pane_closed(self, service: str, start_ms: int, end_ms: int, d1_rows_read_today: int,
                               window_of: WindowOf) -> list[dict[str, Any]]:
        """Stage 2: the service pane `[start_ms, end_ms)` of `service` closed; `window_of` merges its windows."""
        return self._evaluate({"service": service}, start_ms, end_ms, d1_rows_read_today, window_of)

    def service_inhibitors(self, alert: dict[str, Any]) -> list[str]:
        """Stage 2: the service-wide sources firing now that mute this endpoint alert (a held one)."""
        service = alert["labels"].get("service", "")
        return [source for source, targets, severities in self._across
                if alert["rule"] in targets and (severities is None or alert["severity"] in severities)
                and self.states.get((source, service, ""), INACTIVE).state == "firing"]

    def _evaluate(self, labels: dict[str, str], start_ms: int, end_ms: int, rows_today: int,
                  window_of: WindowOf) -> list[dict[str, Any]]:
        alerts = []
        windows: dict[int, tuple[ClosedPane, dict[str, Any]]] = {}  # rules sharing a window length share its metrics
        values_of: dict[tuple[int, int], dict[str, Any]] = {}  # ... and, with equal parameters, the values they read
        service, endpoint = labels["service"], labels.get("endpoint", "")
        states = self.states
        for rule, params in self._rules_for(service, endpoint, labels):
            if rule.window_ms not in windows:
                merged = window_of(rule.window_ms)
                windows[rule.window_ms] = (merged, derived(merged, rows_today))
            window, metrics = windows[rule.window_ms]
            values = values_of.get((rule.window_ms, id(params)))
            if values is None:
                values = values_of[(rule.window_ms, id(params))] = metrics | params
            verdict, tier = self._verdict(rule, values, window.total)
            cleared: bool | None = True
            if rule.clear is not None:
                outcome = rule.clear.evaluate(values)
                cleared = None if outcome is None else bool(outcome)
            key = (rule.spec.name, service, endpoint)
            state = states.get(key, INACTIVE)
            new_state, transition = evaluate(state, start_ms, end_ms, verdict,
                                             tier.severity if tier else None, rule.timing, cleared)
            new_state, transition, silenced_by = self._silence(rule, labels, new_state, transition, end_ms)
            if new_state is INACTIVE or new_state == INACTIVE:
                states.pop(key, None)
            else:
                states[key] = new_state
            if transition is not None:
                alerts.append(self._alert(rule, tier, transition, labels, values, end_ms, window, silenced_by))
        return alerts

    def _silence(self, rule: CompiledRule, labels: dict[str, str], state: AlertState,
                 transition: Transition | None, at_ms: int) -> tuple[AlertState, Transition | None, list[str]]:
        """Mark a transition with the silences that mute it (never a resolve); re-notify (`repeat`) a firing
        alert whose last notification was muted once no silence matches it any more."""
        if state.state != "firing" or (transition is None and not state.silenced):
            return state, transition, []
        severity = transition.severity if transition is not None else state.severity
        silenced_by = self.silences.matching({**rule.spec.labels, **labels, "rule": rule.spec.name,
                                              "severity": severity or ""}, at_ms)
        if transition is None:
            if silenced_by:
                return state, None, []
            since = state.active_since_ms if state.active_since_ms is not None else at_ms
            starts = state.starts_at_ms if state.starts_at_ms is not None else at_ms
            transition = Transition("repeat", state.severity, since, starts, None, at_ms)
            state = replace(state, last_notified_ms=at_ms)
        return replace(state, silenced=bool(silenced_by)), transition, silenced_by

    def _rules_for(self, service: str, endpoint: str, labels: dict[str, str]) -> list[tuple[CompiledRule,
                                                                                              dict[str, Any]]]:
        """The rules evaluated for a group, each with the parameters it adds to the metrics (the file's, the rule's,
        its overrides matching the group, in that order): they depend on the group only, so they are worked out
        once per group, not per pane, and equal ones are one dict (`_evaluate` merges each into the metrics once).
        At most `GROUP_RULES_KEPT` groups are kept (then the cache starts over)."""
        key = (service, endpoint)
        found = self._group_rules.get(key)
        if found is None:
            found = []
            equal: dict[tuple[tuple[str, float], ...], dict[str, Any]] = {}
            for rule in self.rules:
                if rule.filtered and not rule.applies_to(labels):
                    continue
                params = {**self.rule_file.params, **rule.spec.params}
                for override in rule.spec.overrides:
                    if all(labels.get(name) == want for name, want in override.match.items()):
                        params.update(override.params)
                found.append((rule, equal.setdefault(tuple(params.items()), params)))
            if len(self._group_rules) >= GROUP_RULES_KEPT:
                self._group_rules.clear()
            self._group_rules[key] = found
        return found

    @staticmethod
    def _verdict(rule: CompiledRule, values: dict[str, Any], total: int) -> tuple[bool | None, CompiledTier | None]:
        if total < rule.spec.min_requests:
            return None, None
        unknown = False
        for tier in rule.tiers:
            outcome = tier.condition.evaluate(values)
            if outcome is None:
                unknown = True
            elif outcome:
                return True, tier
        return (None if unknown else False), None

    def _alert(self, rule: CompiledRule, tier: CompiledTier | None, transition: Transition, labels: dict[str, str],
               values: dict[str, Any], end_ms: int, window: ClosedPane,
               silenced_by: list[str]) -> dict[str, Any]:
        spec = rule.spec
        shown = tier or next((t for t in rule.tiers if t.severity == transition.severity), rule.tiers[-1])
        value, threshold = _sides(shown.condition, values)
        all_labels = {**spec.labels, **labels, "rule": spec.name}
        severity = transition.severity or shown.severity
        context = {**{k: v for k, v in values.items() if v is not None}, **all_labels, "value": value,
                   "threshold": threshold, "severity": severity}
        inhibited = [source for source, targets, severities in self._inhibits
                     if spec.name in targets and (severities is None or severity in severities)
                     and self.states.get((source, labels["service"], labels.get("endpoint", "")),
                                         INACTIVE).state == "firing"]
        return {
            "v": 1,
            "rule": spec.name,
            "state": "resolved" if transition.change == "resolved" else "firing",
            "change": transition.change,
            "severity": severity,
            "labels": all_labels,
            "annotations": {name: render(text, context) for name, text in spec.annotations.items()},
            "fingerprint": fingerprint(spec.name, labels),
            "active_since": ms_to_iso(transition.active_since_ms),
            "starts_at": ms_to_iso(transition.starts_at_ms),
            "ends_at": None if transition.ends_at_ms is None else ms_to_iso(transition.ends_at_ms),
            "value": None if value is None else round(value, 6),
            "threshold": None if threshold is None else round(threshold, 6),
            "condition": shown.condition.text,
            "channels": list(shown.channels),
            "actions": list(spec.actions),
            "runbook_url": spec.runbook_url,
            "inhibited_by": inhibited,
            "silenced_by": silenced_by,
            "provenance": {
                "window_start": ms_to_iso(end_ms - rule.window_ms),
                "window_end": ms_to_iso(end_ms),
                "sample_count": window.total,
                "rules_hash": self.rules_hash,
                "input": None if self.input_of is None else self.input_of(end_ms - rule.window_ms, end_ms),
            },
        }

