"""Every exported schema by file name. `tailwatch schemas export` writes each as `schemas/json/<name>.json`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from schemas.alerts import AlertEvent
from schemas.channels import ChannelFile
from schemas.config import TailwatchConfig
from schemas.deadletter import DeadLetter
from schemas.deliveries import AlertsRead, AlertState, Delivery, NotificationDeadLetter
from schemas.envelopes import ColumnarLogBatch, LogBatch
from schemas.factory_log import FactoryLog
from schemas.metrics import HeldAlert, PaneSnapshot, PartitionProgress, ServicePaneSnapshot
from schemas.probes import ProbeConfig, ProbeResult
from schemas.record import LogRecord
from schemas.rule_tests import RuleTestFile
from schemas.rules import RuleFile
from schemas.silences import Silence
from schemas.tail_event import TailEvent

SCHEMAS: dict[str, type[BaseModel]] = {
    "tail-event": TailEvent,  # input: what wrangler prints
    "factory-log": FactoryLog,  # input: the app's structured log
    "log-record": LogRecord,  # one normalized request
    "log-batch": LogBatch,  # value on <prefix>.logs, version 1 (rows; older topics)
    "columnar-log-batch": ColumnarLogBatch,  # value on <prefix>.logs, versions 2 and 3 (ingest writes 3)
    "dead-letter": DeadLetter,  # value on <prefix>.deadletter
    "pane-snapshot": PaneSnapshot,  # value on <prefix>.metrics
    "partition-progress": PartitionProgress,  # value on <prefix>.metrics (kind: progress)
    "held-alert": HeldAlert,  # value on <prefix>.metrics (kind: held_alert)
    "service-pane-snapshot": ServicePaneSnapshot,  # value on <prefix>.metrics.service
    "alert-event": AlertEvent,  # value on <prefix>.alerts
    "silence": Silence,  # value on <prefix>.silences (compacted, key: id)
    "rule-file": RuleFile,  # a rules YAML file
    "probe-result": ProbeResult,  # value on <prefix>.probes
    "probe-config": ProbeConfig,  # a probe YAML file
    "channel-file": ChannelFile,  # a channels YAML file
    "delivery": Delivery,  # value on <prefix>.deliveries (compacted; key: the delivery key)
    "alert-state": AlertState,  # value on <prefix>.deliveries (key: alert/<fingerprint>)
    "alerts-read": AlertsRead,  # value on <prefix>.deliveries (key: read/<partition>)
    "notification-dead-letter": NotificationDeadLetter,  # value on <prefix>.notify.deadletter
    "rule-test-file": RuleTestFile,  # a rule unit-test YAML file (`tailwatch rules test`)
    "config-file": TailwatchConfig,  # tailwatch.yaml (`tailwatch config show|check`)
}


def json_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema()
        schema["$id"] = f"https://tailwatch.dev/schemas/{name}.json"
        out[name] = schema
    return out
