"""The service stage (stage 2): endpoint panes merged per (service, minute), service-wide rules, held alerts.

Stage 1 (`pipeline.partition_operator`, one per logs partition) sends, per step and per metrics partition, its
closed endpoint panes and held alerts and then its progress (`stage_messages`); stage 2 (`ServiceOperator`, one per
metrics partition) merges a service's panes of one minute once every logs partition's progress has passed the
minute's end — so a slow partition delays a service pane and never makes it partial — evaluates the service rules
and releases the held alerts. What stage 2 decides depends only on each logs partition's own sequence, not on how
the partitions interleave, so one process (replay) decides what N live workers decide.
"""

from pipeline.service.messages import InvalidMetricsValue, decode_metrics_value, service_partition, stage_messages
from pipeline.service.operator import ServiceOperator, ServiceStep
from pipeline.service.store import (
           ServicePaneEvent,
           ServiceStore,
           service_pane_from_dict,
           service_pane_to_dict,
           service_snapshot,
)

__all__ = ["InvalidMetricsValue", "ServiceOperator", "ServicePaneEvent", "ServiceStep",
           "ServiceStore", "decode_metrics_value", "service_pane_from_dict", "service_pane_to_dict",
           "service_partition", "service_snapshot", "stage_messages"]
