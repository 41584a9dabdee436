"""Rule unit-test files (`tailwatch rules test PATH…`), like `promtool test rules`: log fixtures in, the
expected alert transitions out. Times in a test are offsets from its `start` (`90s`, `5m30s`, `1h`) or ISO 8601.

```yaml
rules: ../rules.yaml            # the rule file under test, relative to this file (default: the default rules)
start: 2026-01-06T12:00:00Z
lateness: 10s                   # allowed lateness of the input, as ingest's --lateness-ms
tests:
  - name: fires after 10 minutes above 5 %, resolves at the first clear minute
    rules: [factory-high-error-rate]    # the rules whose transitions are checked (all of them: every one listed)
    input:                              # fed in arrival order: event time + delay
      - series: {endpoint: /api/x, status: 200, every: 1s, count: 1800}
      - series: {endpoint: /api/x, status: 500, every: 10s, count: 60, from: 5m}
      - record: {at: 14m50s, endpoint: /api/x, status: 500, delay: 40s}   # late beyond 10 s: dropped, counted
    expect:
      - {rule: factory-high-error-rate, change: firing, severity: CRITICAL, active_since: 5m, starts_at: 15m}
      - {rule: factory-high-error-rate, change: resolved, ends_at: 16m}
```
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_OFFSET = re.compile(r"^(?:\d+(?:ms|s|m|h|d))+$")
_PART = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def offset_ms(text: str) -> int:
    """`0s`, `90s`, `5m30s`, `1h`, `1500ms` to milliseconds."""
    if not _OFFSET.match(text.strip()):
        raise ValueError(f"not a duration: {text!r} (e.g. 0s, 90s, 5m30s, 1h)")
    return sum(int(n) * _UNIT_MS[unit] for n, unit in _PART.findall(text))


def _iso_text(value: Any) -> Any:
    """YAML reads an unquoted ISO time as a datetime: take it back as ISO 8601 text (UTC when it has no zone)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.isoformat()
    return value


def _is_time(value: str | None) -> str | None:
    """An offset (`5m`) or an ISO 8601 time."""
    if value is not None and not _OFFSET.match(value) and not re.match(r"^\d{4}-\d\d-\d\dT", value):
        raise ValueError(f"not an offset (5m, 90s) or an ISO 8601 time: {value!r}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class D1Entry(_Strict):
    query_type: Literal["read", "write"] = "read"
    duration_ms: float = Field(default=5.0, ge=0)
    rows_read: int = Field(default=1, ge=0)
    rows_written: int = Field(default=0, ge=0)
    error_code: str | None = None


class _RequestFields(_Strict):
    endpoint: str
    service: str = "factory-api"
    method: str = "GET"
    status: int | None = 200
    outcome: str = "ok"
    duration_ms: float | None = Field(default=20.0, ge=0)
    cpu_ms: int | None = Field(default=2, ge=0)
    d1: list[D1Entry] = Field(default_factory=list)
    delay: str = Field(default="0s", description="arrives this long after its event time (out of order, late)")

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str) -> str:
        offset_ms(value)
        return value


class Series(_RequestFields):
    """`count` requests, one `every` interval apart, the first at `from`."""

    every: str
    count: int = Field(ge=1, le=1_000_000)
    from_: str = Field(default="0s", alias="from")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("every", "from_")
    @classmethod
    def _offsets(cls, value: str) -> str:
        offset_ms(value)
        return value


class Record(_RequestFields):
    at: str

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        offset_ms(value)
        return value


class InputItem(_Strict):
    series: Series | None = None
    record: Record | None = None

    @model_validator(mode="after")
    def _one(self) -> InputItem:
        if (self.series is None) == (self.record is None):
            raise ValueError("give one of `series` or `record`")
        return self


class TestMatcher(_Strict):
    name: str
    op: Literal["=", "!=", "=~", "!~"] = "="
    value: str


class TestSilence(_Strict):
    id: str
    matchers: list[TestMatcher] = Field(min_length=1)
    starts_at: str
    ends_at: str

    _text = field_validator("starts_at", "ends_at", mode="before")(_iso_text)
    _check = field_validator("starts_at", "ends_at")(_is_time)


class Expected(_Strict):
    """One transition; the fields given must match (others are not checked)."""

    rule: str
    change: Literal["firing", "escalated", "deescalated", "repeat", "resolved"]
    severity: str | None = None
    at: str | None = Field(default=None, description="the end of the deciding pane (provenance.window_end)")
    active_since: str | None = None
    starts_at: str | None = None
    ends_at: str | None = None
    labels: dict[str, str] = Field(default_factory=dict, description="must be among the alert's labels")
    value: float | None = None
    threshold: float | None = None
    inhibited_by: list[str] | None = None
    silenced_by: list[str] | None = None

    _text = field_validator("at", "active_since", "starts_at", "ends_at", mode="before")(_iso_text)
    _check = field_validator("at", "active_since", "starts_at", "ends_at")(_is_time)


class RuleTestCase(_Strict):
    name: str
    rules: list[str] | None = Field(default=None, description="rules whose transitions are checked (default: all)")
    input: list[InputItem] = Field(min_length=1)
    silences: list[TestSilence] = Field(default_factory=list)
    expect: list[Expected] = Field(description="every transition of the checked rules, in order; [] for none")


class RuleTestFile(_Strict):
    rules: str | None = Field(default=None, description="the rule file, relative to this file (default: defaults)")
    start: str = "2026-01-06T12:00:00Z"
    lateness: str = "10s"
    tests: list[RuleTestCase] = Field(min_length=1)

    @field_validator("lateness")
    @classmethod
    def _lateness(cls, value: str) -> str:
        offset_ms(value)
        return value

    _text = field_validator("start", mode="before")(_iso_text)

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        if not re.match(r"^\d{4}-\d\d-\d\dT", value):
            raise ValueError(f"not an ISO 8601 time: {value!r}")
        return value
