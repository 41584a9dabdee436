"""What travels from stage 1 to stage 2 on the metrics topic, and which metrics partition it goes to.

One stage-1 step publishes, per metrics partition, first its endpoint panes (`PaneSnapshot`) and held alerts
(`HeldAlert`), each to its service's partition, then its progress (`PartitionProgress`) to every partition. One
producer's sends to one partition keep their order, so a progress record promises that the panes it covers are
already in that partition.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.metrics import encoded_digest, snapshot
from pipeline.partition_operator import Step
from pipeline.partitioning import partition_for_key

if TYPE_CHECKING:
    from pydantic import BaseModel

StageMessage = tuple[str | None, dict[str, Any]]  # (service, or None for every metrics partition; the value)


def service_partition(service: str, metrics_partitions: int) -> int:
    """The metrics partition of every value of `service`: Kafka's default partitioner on the service name."""
    return partition_for_key(service.encode(), metrics_partitions)


def stage_messages(step: Step, partition: int, partitions: int) -> list[StageMessage]:
    """What stage 1 sends for one step of logs partition `partition` (of `partitions`), in order: the closed
    endpoint panes, the held alerts, then the progress when it changed (to every metrics partition). Each value is
    ready for `orjson.dumps`: a snapshot's digests are already their JSON text (`encoded_digest`)."""
    out: list[StageMessage] = [(event.service, snapshot(event, encoded_digest)) for event in step.closed]
    out += [(alert["labels"]["service"], {"v": 1, "kind": "held_alert", "partition": partition, "alert": alert})
            for alert in step.held]
    if step.progress is not None:
        out.append((None, {"v": 1, "kind": "progress", "partition": partition, "partitions": partitions,
                           "closed_until_ms": step.progress.closed_until_ms, "ended": step.progress.ended}))
    return out


@cache
def _models() -> dict[str | None, type[BaseModel]]:
    """The schema of each kind of value, imported on first use (a file replay never decodes a metrics value, and
    starts without pydantic)."""
    from schemas.metrics import HeldAlert, PaneSnapshot, PartitionProgress  # noqa: PLC0415

    return {"progress": PartitionProgress, "held_alert": HeldAlert, None: PaneSnapshot}


class InvalidMetricsValue(ValueError):
    """A metrics-topic value stage 2 cannot use: not JSON, not one of the three schemas, a tombstone."""


def decode_metrics_value(value: bytes | None, pane_ms: int) -> dict[str, Any]:
    """One metrics-topic value, checked against its schema (by `kind`); raises InvalidMetricsValue with the reason."""
    from pydantic import ValidationError  # noqa: PLC0415  # loaded with the schemas, by `_models`

    if value is None:
        raise InvalidMetricsValue("a tombstone (no value)")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise InvalidMetricsValue(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidMetricsValue(f"not a JSON object but {type(data).__name__}")
    kind = data.get("kind")
    model = _models().get(kind)
    if model is None:
        raise InvalidMetricsValue(f"unknown kind {str(kind)[:64]!r}")
    try:
        checked = model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "value"
        raise InvalidMetricsValue(f"not a {model.__name__}: {where}: {first['msg']}") from None
    decoded: dict[str, Any] = checked.model_dump(mode="json")
    if kind is None:  # a PaneSnapshot
        start, end = decoded["window_start_ms"], decoded["window_end_ms"]
        if end - start != pane_ms or start % pane_ms:
            raise InvalidMetricsValue(f"not a {pane_ms} ms pane: [{start}, {end})")
    return decoded
