"""Versioned envelopes: the value of every message tailwatch puts on Kafka."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.record import LogRecord


class LogBatch(BaseModel):
    """The value on the logs topic: a batch of records that all belong to `partition`.

    A batch with no records is a watermark heartbeat: it advances event time on a partition with no traffic.
    """

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    producer: str = Field(description="id of the ingest process that produced the batch")
    source: str = Field(description="the input the records came from")
    seq: int = Field(ge=0, description="the producer's batch counter for this partition")
    partition: int = Field(ge=0)
    watermark_ms: int | None = Field(
        description="the producer's event-time watermark when it sent the batch: max event time seen − lateness"
    )
    final: bool = Field(default=False, description="the producer's input has ended: it sends nothing more")
    records: list[LogRecord]
