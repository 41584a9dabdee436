"""Grouping records into per-partition batches: one Kafka message per batch, shaped like `LogBatch`.

The producer's event-time watermark (max event time seen − allowed lateness) is stamped on every record (its
value as the record is read, the record included: what decides, deterministically, whether it is late) and on every
batch (its value when the batch was sent: what lets a consumer close panes). `flush(heartbeat=True)` also emits
empty batches for the partitions that had no records, so a consumer's watermark advances on quiet partitions.

Invariant the stream workers rely on: on any partition, a batch's stamp is never above the record watermark of a
record sent after it; so a record that is not late always finds its pane still open, however input is chunked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.partitioning import Partitioner
from pipeline.watermarks import SourceWatermark

DEFAULT_BATCH_RECORDS = 500
DEFAULT_LATENESS_MS = 10_000


class BatchBuilder:
    def __init__(self, producer: str, source: str, num_partitions: int,
                 max_records: int = DEFAULT_BATCH_RECORDS, lateness_ms: int = DEFAULT_LATENESS_MS) -> None:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        if lateness_ms < 0:
            raise ValueError("lateness_ms must not be negative")
        self.producer = producer
        self.source = source
        self.max_records = max_records
        self.lateness_ms = lateness_ms
        self.partitioner = Partitioner(num_partitions)
        self._pending: list[list[dict[str, Any]]] = [[] for _ in range(num_partitions)]
        self._seq = [0] * num_partitions
        self.watermark = SourceWatermark(lateness_ms)

    @property
    def watermark_ms(self) -> int | None:
        return self.watermark.value

    @property
    def pending(self) -> int:
        return sum(len(records) for records in self._pending)

    def add(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Route records to their partitions; returns the batches that filled up."""
        full: list[dict[str, Any]] = []
        pending = self._pending
        partition_of = self.partitioner.partition
        limit = self.max_records
        stamp = self.watermark.stamp
        for record in records:
            stamp((record,))
            partition = partition_of(record["service"], record["endpoint"])
            bucket = pending[partition]
            bucket.append(record)
            if len(bucket) >= limit:
                full.append(self._take(partition))
        return full

    def flush(self, heartbeat: bool = False, final: bool = False) -> list[dict[str, Any]]:
        """Every pending batch; with `heartbeat`, an empty batch for each partition that had none; with `final`
        (the input has ended), a batch marked final on every partition."""
        out = []
        for partition, bucket in enumerate(self._pending):
            if bucket or final or (heartbeat and self.watermark_ms is not None):
                out.append(self._take(partition, final))
        return out

    def _take(self, partition: int, final: bool = False) -> dict[str, Any]:
        records = self._pending[partition]
        self._pending[partition] = []
        seq = self._seq[partition]
        self._seq[partition] = seq + 1
        return {"v": 1, "producer": self.producer, "source": self.source, "seq": seq, "partition": partition,
                "watermark_ms": self.watermark_ms, "final": final, "records": records}
