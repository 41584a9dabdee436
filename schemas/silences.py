"""`Silence`: the value on the compacted `<prefix>.silences` topic (key: the silence `id`).

A silence mutes the notifications of the alert transitions whose labels match every matcher and whose event
time (the end of the deciding pane) falls in `[starts_at, ends_at)`. Expiring a silence writes the record again
with `ends_at` moved to the expiry time, so a replay of past traffic still sees what was silenced then.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.label_regex import LabelRegexError, compile_label_regex


def _parse_iso(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"not an ISO 8601 time: {text!r}") from error
    if moment.tzinfo is None:
        raise ValueError(f"give a time zone (e.g. Z for UTC): {text!r}")
    return moment


class Matcher(BaseModel):
    """Like Alertmanager's: `=` equal, `!=` not equal, `=~` regex (RE2 syntax, fully anchored), `!~` regex does
    not match. A label the alert does not have is the empty string."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="a label: rule, service, endpoint, severity…")
    op: Literal["=", "!=", "=~", "!~"] = "="
    value: str

    @model_validator(mode="after")
    def _regex_compiles(self) -> Matcher:
        if self.op in ("=~", "!~"):
            try:
                compile_label_regex(self.value)
            except LabelRegexError as error:
                raise ValueError(f"bad regex {self.value!r}: {error}") from None
        return self


class Silence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    id: str = Field(min_length=1, description="the record key on the silences topic")
    matchers: list[Matcher] = Field(min_length=1, description="all must match")
    starts_at: str = Field(description="ISO 8601 UTC, inclusive (event time)")
    ends_at: str = Field(description="ISO 8601 UTC, exclusive (event time)")
    created_by: str
    comment: str
    created_at: str = Field(description="ISO 8601 UTC, wall clock")
    expired_at: str | None = Field(default=None, description="set by `silences expire` (ends_at moved to it)")

    @field_validator("starts_at", "ends_at", "created_at", "expired_at")
    @classmethod
    def _is_iso(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_iso(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Silence:
        if _parse_iso(self.ends_at) < _parse_iso(self.starts_at):
            raise ValueError("ends_at is before starts_at")
        return self
