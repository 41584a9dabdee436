"""`DeadLetter`: one piece of input that could not be used, with why, where, and a bounded excerpt."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EXCERPT_MAX_CHARS = 512

RejectKind = Literal["malformed_json", "truncated_object", "oversized_object", "not_an_event", "no_event_time",
                     "invalid_factory_log", "invalid_field", "invalid_log_batch", "damaged_input",
                     "invalid_metrics_value"]


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    source: str = Field(description="where the input came from: a file path, `stdin`, `wrangler:<worker>`, or "
                                    "`kafka:<logs topic>/<partition>` for a logs-topic message the worker rejected "
                                    "(`kafka:<metrics topic>/<partition>` for a metrics-topic value its "
                                    "service stage rejected)")
    line: int | None = Field(description="1-based line of the input where the piece starts")
    offset: int | None = Field(description="byte offset of the input where the piece starts; for a logs-topic "
                                           "message (`kind` invalid_log_batch) or metrics-topic value "
                                           "(`invalid_metrics_value`), its offset in the partition; for "
                                           "`damaged_input` (a truncated or corrupt `.gz`), where the damage is in "
                                           "the file as stored")
    kind: RejectKind
    reason: str
    excerpt: str = Field(max_length=EXCERPT_MAX_CHARS, description="the start of the raw text, bounded")
