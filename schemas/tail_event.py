"""The raw event `wrangler tail --format json` prints: the Workers runtime's TraceItem, passed through as is.

Everything the runtime may omit is optional, and unknown keys are kept (`extra="allow"`): the backend adds
fields over time, and tailwatch must never reject an event because it learned something new.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TailLog(_Open):
    """One `console.*` call: `message` is the array of its arguments."""

    message: list[Any] = Field(default_factory=list)
    level: str = "log"
    timestamp: int | None = None


class TailException(_Open):
    name: str = "Error"
    message: Any = None
    timestamp: int | None = None
    stack: str | None = None


class FetchRequest(_Open):
    url: str
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    cf: dict[str, Any] | None = None


class FetchResponse(_Open):
    status: int


class FetchEventInfo(_Open):
    request: FetchRequest
    response: FetchResponse | None = None


class ScheduledEventInfo(_Open):
    cron: str
    scheduledTime: int


class AlarmEventInfo(_Open):
    scheduledTime: str


class QueueEventInfo(_Open):
    queue: str
    batchSize: int | None = None


class EmailEventInfo(_Open):
    mailFrom: str
    rcptTo: str
    rawSize: int | None = None


class RpcEventInfo(_Open):
    """A JS RPC call (into a Durable Object or a named entrypoint: see `TailEvent.entrypoint`)."""

    rpcMethod: str


class ConsumedEvent(_Open):
    scriptName: str | None = None


class TailEventInfo(_Open):
    """A tail Worker's own invocation: the events it consumed."""

    consumedEvents: list[ConsumedEvent]


class WebSocketEvent(_Open):
    webSocketEventType: str  # message, close, error
    code: int | None = None
    wasClean: bool | None = None


class HibernatableWebSocketEventInfo(_Open):
    getWebSocketEvent: WebSocketEvent


class TailInfo(_Open):
    """A notice from the tail itself, e.g. `{"type": "overload", "message": "Tail is currently in sampling mode…"}`."""

    type: str
    message: str | None = None


class TailEvent(_Open):
    """One event as wrangler prints it. `outcome` is an open string (`ok`, `exception`, `exceededCpu`, …)."""

    outcome: str = "unknown"
    scriptName: str | None = None
    entrypoint: str | None = Field(default=None, description="the Durable Object class or named entrypoint that ran; "
                                                             "absent for the Worker's default handler")
    executionModel: str | None = Field(default=None, description="`stateless` or `durableObject`")
    durableObjectId: str | None = None
    truncated: bool = False
    wallTime: int | float | None = None
    cpuTime: int | float | None = None
    eventTimestamp: int | None = None
    logs: list[TailLog] = Field(default_factory=list)
    exceptions: list[TailException] = Field(default_factory=list)
    diagnosticsChannelEvents: list[Any] = Field(default_factory=list)
    scriptVersion: dict[str, Any] | None = None
    scriptTags: list[str] | None = None
    event: (
        FetchEventInfo | ScheduledEventInfo | AlarmEventInfo | QueueEventInfo | EmailEventInfo | RpcEventInfo
        | TailEventInfo | HibernatableWebSocketEventInfo | TailInfo | dict[str, Any] | None
    ) = None
