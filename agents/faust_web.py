"""Which of Faust's own web views tailwatch's Faust apps (the stream worker, the notifier) serve: none that shows
state. Faust serves `/table` (table keys and values: the worker's panes and checkpoints), `/router` (which worker
owns which key, and every worker's URL), and with `debug` `/graph`, `/` (sensor statistics) and `/assignment`;
none asks for credentials. tailwatch's own views (/health, /metrics, /dashboard) are registered by
`agents/health.py`, `agents/dashboard.py` and `agents/notify/web.py`; `/` answers `{"status": "OK"}`.
"""

from __future__ import annotations

from typing import Any

# faust.App settings (faust-streaming ≥ 0.15: one setting per built-in blueprint)
BUILT_IN_VIEWS_OFF: dict[str, Any] = {
    "web_tables_enabled": False,
    "web_router_enabled": False,  # only `@table_route` needs it, and tailwatch routes no request between workers
    "web_graph_enabled": False,
    "web_stats_enabled": False,
    "web_metrics_enabled": False,
}
