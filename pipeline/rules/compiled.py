"""Rule files compiled: each rule checked (names, groups, windows, inhibitions) and its conditions parsed, once,
into `CompiledRule`s the engine evaluates. The first problem raises `RuleError` naming the rule, field and place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pipeline.metrics import METRIC_NAMES
from pipeline.rules.expression import Expression, ExpressionError, parse
from pipeline.rules.lifecycle import Timing

if TYPE_CHECKING:
    from schemas.rules import GroupLabel, Rule, RuleFile


class RuleError(ValueError):
    """`loc`: where in the rule file the problem is (keys and indexes from its root), when not the rule itself."""

    def __init__(self, rule: str, field: str, message: str, loc: tuple[str | int, ...] | None = None) -> None:
        super().__init__(f"rule {rule!r}, {field}: {message}")
        self.rule = rule
        self.field = field
        self.loc = loc


_ENDPOINT_GROUP = ("endpoint", "service")  # sorted: per endpoint, in its logs partition's worker (stage 1)
_SERVICE_GROUP = ("service",)  # per service, in the service stage (stage 2)
Stage = Literal["endpoint", "service"]
Matcher = tuple[tuple[str, str], ...]  # (label, value) pairs that must all equal


@dataclass(frozen=True)
class CompiledTier:
    severity: str
    condition: Expression
    channels: tuple[str, ...]


@dataclass(frozen=True)
class CompiledRule:
    spec: Rule
    tiers: tuple[CompiledTier, ...]  # most severe first
    clear: Expression | None
    window_ms: int
    timing: Timing
    only: tuple[Matcher, ...] = ()  # the groups the rule is evaluated for (empty: all)
    exclude: tuple[Matcher, ...] = ()  # the groups it skips

    @property
    def service_wide(self) -> bool:
        """`group_by: [service]`: evaluated by the service stage on service panes."""
        return tuple(self.spec.group_by) == _SERVICE_GROUP

    @property
    def filtered(self) -> bool:
        return bool(self.only or self.exclude)

    def applies_to(self, labels: dict[str, str]) -> bool:
        """Whether the rule is evaluated for the group with these labels (`only`, then `exclude`)."""
        if self.only and not any(_matches(matcher, labels) for matcher in self.only):
            return False
        return not any(_matches(matcher, labels) for matcher in self.exclude)


def _matches(matcher: Matcher, labels: dict[str, str]) -> bool:
    return all(labels[name] == value for name, value in matcher)


def _matchers(items: list[dict[GroupLabel, str]]) -> tuple[Matcher, ...]:
    return tuple(tuple(sorted(item.items())) for item in items)


def compile_rules(rule_file: RuleFile) -> list[CompiledRule]:
    """Check and compile every rule; the first problem raises RuleError naming the rule and field."""
    from schemas.rules import duration_ms  # noqa: PLC0415  # the schemas (pydantic) load with the rules only
    compiled = []
    seen: set[str] = set()
    for index, rule in enumerate(rule_file.rules):
        if rule.name in seen:
            raise RuleError(rule.name, "name", "defined twice")
        seen.add(rule.name)
        _check_group(rule, index)
        names = METRIC_NAMES | frozenset(rule_file.params) | frozenset(rule.params)
        for override in rule.overrides:
            names |= frozenset(override.params)
        tiers = rule.tiers or []
        specs = [(t.severity, t.condition, t.channels, f"tiers[{i}].condition") for i, t in enumerate(tiers)]
        if rule.condition is not None and rule.severity is not None:
            specs = [(rule.severity, rule.condition, None, "condition")]
        built = []
        for severity, text, channels, field in specs:
            try:
                expression = parse(text, names)
            except ExpressionError as error:
                raise RuleError(rule.name, field, str(error)) from error
            built.append(CompiledTier(severity, expression, tuple(channels if channels is not None else rule.channels)))
        clear = None
        if rule.clear is not None:
            try:
                clear = parse(rule.clear, names)
            except ExpressionError as error:
                raise RuleError(rule.name, "clear", str(error)) from error
        window = duration_ms(rule.window)
        if window % 60_000:
            raise RuleError(rule.name, "window", "must be whole minutes")
        repeat = duration_ms(rule.repeat_interval) or None
        compiled.append(CompiledRule(rule, tuple(built), clear, window,
                                     Timing(duration_ms(rule.for_), duration_ms(rule.keep_firing_for), repeat,
                                            window),
                                     _matchers(rule.only), _matchers(rule.exclude)))
    service_wide = {rule.spec.name: rule.service_wide for rule in compiled}
    for index, inhibition in enumerate(rule_file.inhibit):
        for name in (inhibition.source, *inhibition.targets):
            if name not in seen:
                raise RuleError(name, f"inhibit[{index}]", "no such rule", ("inhibit", index))
        _check_inhibition(inhibition.source, tuple(sorted(inhibition.equal)), service_wide, index)
    return compiled


def _check_group(rule: Rule, index: int) -> None:
    """`group_by` is [service, endpoint] (stage 1) or [service] (stage 2); a service-wide rule cannot name an
    endpoint in `only`, `exclude` or an override's `match` (its labels have none)."""
    group = tuple(sorted(rule.group_by))
    if group not in (_ENDPOINT_GROUP, _SERVICE_GROUP):
        raise RuleError(rule.name, "group_by", "only [service, endpoint] (per endpoint) or [service] (service-wide, "
                        "on the service stage's merged panes) is supported", ("rules", index, "group_by"))
    if group != _SERVICE_GROUP:
        return
    for field in ("only", "exclude"):
        for item, matcher in enumerate(getattr(rule, field)):
            if "endpoint" in matcher:
                raise RuleError(rule.name, field, "a group_by: [service] rule has no endpoint label to match",
                                ("rules", index, field, item))
    for item, override in enumerate(rule.overrides):
        if "endpoint" in override.match:
            raise RuleError(rule.name, "overrides", "a group_by: [service] rule has no endpoint label to match",
                            ("rules", index, "overrides", item, "match"))


def _check_inhibition(source: str, equal: tuple[str, ...], service_wide: dict[str, bool], index: int) -> None:
    """`equal: [service, endpoint]`: source and targets per endpoint (inside stage 1). `equal: [service]`: a
    service-wide source (its state is in stage 2), targets of either kind. Anything else is refused."""
    where = ("inhibit", index, "equal")
    if equal == _ENDPOINT_GROUP:
        if service_wide[source]:
            raise RuleError(source, f"inhibit[{index}].equal", "the source is a group_by: [service] rule, which has "
                            "no endpoint: use equal: [service]", where)
        return
    if equal == _SERVICE_GROUP:
        if not service_wide[source]:
            raise RuleError(source, f"inhibit[{index}].equal", "equal: [service] needs a group_by: [service] source: "
                            "an endpoint rule's state lives in its own partition's worker", where)
        return
    raise RuleError(source, f"inhibit[{index}].equal", "only [service, endpoint] (same endpoint) or [service] (a "
                    "service-wide source) is supported", where)
