"""Silences: which alert transitions are muted. Pure matching, in event time.

A silence matches a transition when every matcher holds on the alert's labels (its rule labels, `service`,
`endpoint`, `rule`, and `severity`) and the transition's event time — the end of the pane that decided it — lies
in `[starts_at, ends_at)`. Matching reads event time only, so a replay with the same silences marks the same
transitions the live worker marked.

Policy (what keeps "no lost resolves" true): a silenced transition is still published, with `silenced_by`
naming the silences, and the notifier skips it. A `resolved` transition is never silenced: the notifier resolves
exactly the channels it opened, so the resolve of an alert whose firing was silenced reaches no one, and the
resolve of an alert that was paged before a silence began still closes the page. A firing alert whose last
notification was silenced is notified again (`repeat`) at its first evaluation after every matching silence has
ended, so a silence never hides an incident that outlives it.

Regex matchers are RE2 (`schemas.label_regex`): linear in the label's length whatever the pattern, since label
values such as the endpoint come from logs. A record whose matcher RE2 does not accept is skipped, with its reason
in `SilenceSet.rejected`: it costs only itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.timestamps import iso_to_ms
from schemas.label_regex import LabelRegex, LabelRegexError, compile_label_regex

_OPERATORS = ("=~", "!~", "!=", "=")  # longest first, for parsing `name<op>value`
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MatcherError(ValueError):
    pass


class SilenceRecordError(ValueError):
    pass


def parse_matcher(text: str) -> dict[str, str]:
    """`rule=factory-404-spike`, `endpoint=~/api/.*`, `severity!=INFO`, `endpoint!~/health.*` → a matcher dict."""
    positions = [(text.find(op), -len(op), op) for op in _OPERATORS if op in text]
    if not positions:
        raise MatcherError(f"not a matcher: {text!r} (use name=value, name!=value, name=~regex or name!~regex)")
    index, _, op = min(positions)
    name, value = text[:index].strip(), text[index + len(op):].strip()
    if not _NAME.match(name):
        raise MatcherError(f"not a label name in {text!r}: {name!r}")
    if op in ("=~", "!~"):
        try:
            compile_label_regex(value)
        except LabelRegexError as error:
            raise MatcherError(f"bad regex in {text!r}: {error}") from None
    return {"name": name, "op": op, "value": value}


@dataclass(frozen=True, slots=True)
class ActiveSilence:
    id: str
    matchers: tuple[tuple[str, str, str, LabelRegex | None], ...]  # (name, op, value, compiled regex)
    starts_ms: int
    ends_ms: int

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ActiveSilence:
        """Raises SilenceRecordError naming what is wrong (a regex RE2 does not accept, a missing field)."""
        try:
            matchers = tuple((m["name"], m.get("op", "="), m["value"],
                              compile_label_regex(m["value"]) if m.get("op") in ("=~", "!~") else None)
                             for m in record["matchers"])
            return cls(record["id"], matchers, iso_to_ms(record["starts_at"]), iso_to_ms(record["ends_at"]))
        except LabelRegexError as error:
            raise SilenceRecordError(f"bad regex: {error}") from None
        except (KeyError, TypeError, ValueError) as error:
            raise SilenceRecordError(f"not a silence record: {error!r}") from None

    def matches(self, labels: Mapping[str, str], at_ms: int) -> bool:
        if not self.starts_ms <= at_ms < self.ends_ms:
            return False
        for name, op, value, pattern in self.matchers:
            have = labels.get(name, "")
            if op == "=":
                ok = have == value
            elif op == "!=":
                ok = have != value
            else:
                assert pattern is not None
                ok = pattern.fullmatch(have) == (op == "=~")
            if not ok:
                return False
        return True


class SilenceSet:
    """The silences known now, by id; `put` replaces one (an expired record too), `remove` drops it (a
    tombstone on the compacted topic). A record that cannot be used is skipped: `rejected` holds its id (or its
    position when it has none) and the reason, at most one entry per record given."""

    def __init__(self, records: Iterable[Mapping[str, Any]] = ()) -> None:
        self._by_id: dict[str, ActiveSilence] = {}
        self.rejected: dict[str, str] = {}
        self.reset(records)

    def reset(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Hold exactly these silences (in place: engines sharing this set see the change)."""
        self._by_id, self.rejected = {}, {}
        for index, record in enumerate(records):
            self._put(record, f"#{index}")

    def put(self, record: Mapping[str, Any]) -> str | None:
        """Add or replace one silence; the reason when it is skipped (an earlier version of it stays then)."""
        return self._put(record, f"#{len(self._by_id) + len(self.rejected)}")

    def _put(self, record: Mapping[str, Any], position: str) -> str | None:
        try:
            silence = ActiveSilence.from_record(record)
        except SilenceRecordError as error:
            name = record.get("id") if isinstance(record, Mapping) else None
            self.rejected[name if isinstance(name, str) else position] = str(error)
            return str(error)
        self._by_id[silence.id] = silence
        self.rejected.pop(silence.id, None)
        return None

    def remove(self, silence_id: str) -> None:
        self._by_id.pop(silence_id, None)
        self.rejected.pop(silence_id, None)

    def __len__(self) -> int:
        return len(self._by_id)

    def matching(self, labels: Mapping[str, str], at_ms: int) -> list[str]:
        """The ids of the silences that mute a transition with these labels at this event time, sorted."""
        return sorted(s.id for s in self._by_id.values() if s.matches(labels, at_ms))
