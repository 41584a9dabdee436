"""What a tail event invoked, and the endpoint key its record is counted under.

A Worker request is counted under the route template of its path (`/api/items/:id`). Two kinds of invocation must
not be counted as more requests of that route:

- An invocation of a Durable Object (`executionModel: "durableObject"`, `entrypoint`: the DO class) that a Worker
  request caused carries the same request again (same URL, same `cf-ray`): a WebSocket upgrade forwarded to a DO
  gives two tail events. Its endpoint is `do:<Class>:<route>` (`do:ChatRoom:/ws`), so the Worker's `/ws` counts
  one request and the DO's own latency and errors are kept apart. A named `WorkerEntrypoint` (any other
  `entrypoint`) is keyed `<Entrypoint>:<route>` the same way; the default entrypoint has none (or `default`).
- An event without a request (cron, queue batch, DO alarm, e-mail, RPC call, tail, hibernated WebSocket event) is
  never a request of an HTTP endpoint. Without a FactoryLog it is only counted by kind in the parse counts
  (`non_request.<kind>`); with one, its record is keyed by what ran, never by the path the log names:
  `scheduled:<cron>`, `queue:<queue>`, `rpc:<method>`, `websocket:<type>`, `alarm`, `email`, `tail`, prefixed by
  the DO or entrypoint scope like a request (`do:Room:alarm`).
"""

from __future__ import annotations

from typing import Any

DURABLE_OBJECT = "durableObject"


def non_request_kind(event: Any) -> str:
    """What a tail event without a request is: `scheduled`, `alarm`, `queue`, `overload`, `null`, …"""
    if event is None:
        return "null"
    if not isinstance(event, dict):
        return "other"
    if "cron" in event:
        return "scheduled"
    if "scheduledTime" in event:
        return "alarm"
    if "queue" in event:
        return "queue"
    if "mailFrom" in event:
        return "email"
    if "rpcMethod" in event:
        return "rpc"
    if "consumedEvents" in event:
        return "tail"
    if "getWebSocketEvent" in event:
        return "websocket"
    kind = event.get("type")
    if isinstance(kind, str) and kind:
        return kind  # tail notices: "overload", "overload-stop", …
    return "other"


def _detail(kind: str, event: dict[str, Any]) -> str | None:
    """The part of a non-request event that names what ran: the cron, the queue, the RPC method, …"""
    if kind == "scheduled":
        value = event.get("cron")
    elif kind == "queue":
        value = event.get("queue")
    elif kind == "rpc":
        value = event.get("rpcMethod")
    elif kind == "websocket":
        inner = event.get("getWebSocketEvent")
        value = inner.get("webSocketEventType") if isinstance(inner, dict) else None
    else:
        return None
    return value if isinstance(value, str) and value else None


def non_request_key(kind: str, event: Any) -> str:
    """The endpoint key of a non-request event's record: `scheduled:<cron>`, `queue:<name>`, `alarm`, …"""
    detail = _detail(kind, event) if isinstance(event, dict) else None
    return kind if detail is None else f"{kind}:{detail}"


def scope_of(entrypoint: str | None, execution_model: str | None) -> str | None:
    """`do:<Class>` for a Durable Object, the entrypoint's name for a named entrypoint, None for the Worker's
    default handler (whose records keep the plain route as their endpoint)."""
    if execution_model == DURABLE_OBJECT:
        return f"do:{entrypoint or 'unknown'}"
    if entrypoint is None or entrypoint == "default":
        return None
    return entrypoint


def scoped(scope: str | None, key: str) -> str:
    return key if scope is None else f"{scope}:{key}"
