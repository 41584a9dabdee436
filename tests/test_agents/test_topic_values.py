"""Metrics-topic values for reports: a PaneSnapshot is kept, a record for the service stage (a `kind`) is skipped
without being invalid, anything else is invalid; service snapshots are checked against their own schema."""

from __future__ import annotations

import orjson

from agents.topic_values import decode_endpoint_snapshot, decode_service_snapshot
from pipeline.metrics import snapshot
from pipeline.pane_store import PaneStore
from schemas.metrics import HeldAlert, PartitionProgress
from tests.alert_samples import alert_event
from tests.test_pipeline.records import BASE_MS, record
from tests.test_pipeline.test_report.service_panes import service_snapshots


def test_metrics_values_service_stage_records_and_garbage() -> None:
    store = PaneStore()
    store.add([record(BASE_MS + i * 1000) for i in range(30)])
    [pane] = [snapshot(event) for event in store.close_until(BASE_MS + 60_000)]
    progress = PartitionProgress(partition=1, partitions=4, closed_until_ms=BASE_MS + 60_000, ended=False)
    held = HeldAlert(partition=0, alert=alert_event())
    assert decode_endpoint_snapshot(orjson.dumps(pane)) == pane
    assert decode_endpoint_snapshot(progress.model_dump_json().encode()) == "progress"
    assert decode_endpoint_snapshot(held.model_dump_json().encode()) == "held_alert"
    assert decode_endpoint_snapshot(b'{"kind": "a-kind-added-later", "v": 2}') == "a-kind-added-later"
    for garbage in (None, b"", b"not json", b"[1, 2]", b'{"kind": 5}', orjson.dumps({**pane, "total": "many"})):
        assert decode_endpoint_snapshot(garbage) is None, garbage
    [service] = service_snapshots([pane])
    assert decode_service_snapshot(orjson.dumps(service)) == service
    assert decode_service_snapshot(orjson.dumps(pane)) is None  # an endpoint pane is not a service pane
    assert decode_endpoint_snapshot(orjson.dumps(service)) is None  # … nor the other way round
