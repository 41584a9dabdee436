"""`tailwatch ingest --listen`: Tail Workers and Workers Trace Events Logpush push events over HTTP.

`POST /v1/tail` takes a JSON array of TraceItems (what a Tail Worker's `tail(events)` receives, the shape wrangler
prints), `POST /v1/logpush` Logpush's gzip NDJSON of `workers_trace_events` (`pipeline.logpush`). Both go through
the reader (`LogParser.feed_objects`) and one `SourceFeed` ("push": one producer id and watermark per listener
process), so the records are the ones `tailwatch parse` gives for the same events.

A request is answered 200 only once every record and dead letter it produced is acknowledged by Kafka (acks=all);
Kafka failing or slower than `ack_timeout_s`: 503 with `Retry-After` (the senders retry). A body already published
(same route and decompressed bytes, among the last `request_keys`) is answered 200 without publishing it again; the
same body while it is being published gets 503 (retry later). What can still be counted twice, at most the
records of one request each time: a request answered 503 after some of its batches reached Kafka (a timeout, or
a failure of some sends), then retried; a retry that arrives after `request_keys` other bodies, after a restart
of the listener, or at another replica (the keys are per process); a sender that re-batches events on retry.
Bounds: `max_concurrent` requests are read and published at once, `max_waiting` more wait for a slot, the rest get
503; a body is read up to `max_body_bytes` (decompressed too), over it 413. Malformed bodies: 400 and a dead
letter with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiokafka.errors import KafkaError

from agents.ingest import Ingestor
from agents.push_metrics import PushMetrics
from pipeline.health import ListenerFacts, evaluate_listener
from pipeline.parsing import dead_letter
from pipeline.push_bodies import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_REQUEST_KEYS,
    BodyError,
    RequestKeys,
    decompressed,
    feed_body,
    request_key,
    too_large,
)

log = logging.getLogger("tailwatch.push")

SOURCE = "push"
READ_BYTES = 1 << 16


@dataclass(frozen=True)
class ListenConfig:
    host: str = "127.0.0.1"
    port: int = 8787
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_concurrent: int = 8
    max_waiting: int = 64
    request_keys: int = DEFAULT_REQUEST_KEYS
    ack_timeout_s: float = 20.0
    retry_after_s: int = 5
    heartbeat_ms: int = 1000


class PushListener:
    def __init__(self, ingestor: Ingestor, config: ListenConfig) -> None:
        self.ingestor = ingestor
        self.config = config
        self.feed = ingestor.feed(SOURCE)
        self.metrics = PushMetrics()
        self._lock = asyncio.Lock()  # one request at a time turns records into batches: one watermark, in order
        self._slots = asyncio.Semaphore(config.max_concurrent)
        self._waiting = 0
        self._published = RequestKeys(config.request_keys)
        self._publishing: set[bytes] = set()  # at most max_concurrent
        self._since_heartbeat = False
        self._kafka_error: str | None = None
        self._last_request_ms: int | None = None
        self.port: int | None = None  # bound port, once started

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes)
        app.router.add_post("/v1/tail", self._tail)
        app.router.add_post("/v1/logpush", self._logpush)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def serve(self, stop: asyncio.Event) -> None:
        """Listen until `stop`; then finish the requests in progress and send the final batches."""
        # auto_decompress off: bodies are inflated by `decompressed`, within the size limit.
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, auto_decompress=False,
                               shutdown_timeout=self.config.ack_timeout_s)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.config.port)
        await site.start()
        server = site._server  # the bound port when 0 was asked for
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port
        log.info("listening", extra={"fields": {"host": self.config.host, "port": self.port}})
        heartbeats = asyncio.create_task(self._heartbeats(stop))
        try:
            await stop.wait()
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats
            await runner.cleanup()
            async with self._lock:
                await self.feed.flush(heartbeat=True, final=True)

    # -- requests -----------------------------------------------------------------------------------------

    async def _tail(self, request: web.Request) -> web.Response:
        return await self._counted(request, "tail")

    async def _logpush(self, request: web.Request) -> web.Response:
        return await self._counted(request, "logpush")

    async def _counted(self, request: web.Request, route: str) -> web.Response:
        response = await self._answer(request, route)
        self.metrics.request(route, response.status)
        return response

    async def _answer(self, request: web.Request, route: str) -> web.Response:
        if not self._authorized(request):
            return _json(401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": "Bearer"})
        if self._waiting >= self.config.max_waiting:
            return self._busy("too many requests waiting")
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return await self._take(request, route)
        finally:
            self._slots.release()

    def _authorized(self, request: web.Request) -> bool:
        token = self.config.token
        if token is None:  # loopback without a token (checked at start)
            return True
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

    async def _take(self, request: web.Request, route: str) -> web.Response:
        try:
            body = decompressed(await self._read(request), request.headers.get("Content-Encoding", ""),
                                self.config.max_body_bytes)
            key = request_key(route, body)
            if self._published.seen(key):
                self.metrics.duplicates.inc()
                return _json(200, {"duplicate": True})
            if key in self._publishing:
                return self._busy("the same body is being published")
        except BodyError as error:
            return await self._refuse(route, error)
        self._publishing.add(key)
        try:
            result = await self._publish(route, body)
        except BodyError as error:
            return await self._refuse(route, error)
        except (KafkaError, TimeoutError) as error:
            self._kafka_error = str(error)[:500]
            log.warning("Kafka did not acknowledge a request", extra={"fields": {"route": route, "error": str(error)}})
            return self._busy("Kafka did not acknowledge the records")
        finally:
            self._publishing.discard(key)
        self._published.add(key)
        self._kafka_error = None
        self._last_request_ms = int(time.time() * 1000)
        return _json(200, result)

    async def _read(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise too_large(limit)
        parts: list[bytes] = []
        size = 0
        while chunk := await request.content.read(READ_BYTES):
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            parts.append(chunk)
        return b"".join(parts)

    async def _publish(self, route: str, body: bytes) -> dict[str, int]:
        """Decoded under the lock: one request's decoded events alive at a time (the rest wait as bytes, bounded by
        `max_concurrent` × `max_body_bytes`); decoding is CPU on this one thread, so nothing runs slower for it."""
        publisher = self.ingestor.publisher
        loop = asyncio.get_running_loop()
        async with self._lock:
            parser = self.feed.new_parser(f"http:/v1/{route}")
            out = feed_body(parser, route, body)
            started = loop.time()
            await self.feed.push(out)
            await publisher.send_batches(self.feed.builder.flush())
            self.feed.end_run(parser)
            inflight = publisher.take_inflight()
            self._since_heartbeat = True
        await publisher.wait_acked(inflight, self.config.ack_timeout_s)
        stats = parser.stats
        self.metrics.published(route, stats.events, stats.records, stats.rejected, loop.time() - started)
        return {"events": stats.events, "records": stats.records, "rejected": stats.rejected,
                "non_request": stats.non_request}

    async def _refuse(self, route: str, error: BodyError) -> web.Response:
        """400 (and 415) cost a dead letter with the reason; 413 is only counted (its body was not read whole)."""
        self.metrics.rejected(route, error.kind)
        if error.status != 413:
            letter = dead_letter(f"http:/v1/{route}", None, None, error.kind, error.reason[:1000], "")
            with contextlib.suppress(KafkaError):
                async with self._lock:
                    await self.ingestor.publisher.send_dead_letters([letter])
                    inflight = self.ingestor.publisher.take_inflight()
                await self.ingestor.publisher.wait_acked(inflight, self.config.ack_timeout_s)
        return _json(error.status, {"error": error.reason})

    def _busy(self, reason: str) -> web.Response:
        return _json(503, {"error": reason}, {"Retry-After": str(self.config.retry_after_s)})

    async def _heartbeats(self, stop: asyncio.Event) -> None:
        """While requests come, every partition hears the producer's watermark at least every `heartbeat_ms`."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.heartbeat_ms / 1000)
            if stop.is_set() or not self._since_heartbeat:
                continue
            publisher = self.ingestor.publisher
            async with self._lock:
                self._since_heartbeat = False
                await publisher.send_batches(self.feed.builder.flush(heartbeat=True))
                inflight = publisher.take_inflight()
            try:
                await publisher.wait_acked(inflight, self.config.ack_timeout_s)
            except (KafkaError, TimeoutError) as error:
                self._kafka_error = str(error)[:500]
                log.warning("heartbeat not acknowledged", extra={"fields": {"error": str(error)}})

    # -- operations ---------------------------------------------------------------------------------------

    async def _health(self, _request: web.Request) -> web.Response:
        facts = ListenerFacts(self._kafka_error, self._waiting, self.config.max_waiting, self._last_request_ms)
        report = evaluate_listener(facts, int(time.time() * 1000))
        body = {**report.body, "request_keys": len(self._published), "watermark_ms": self.feed.builder.watermark_ms}
        return _json(report.http_status, body)

    async def _metrics(self, _request: web.Request) -> web.Response:
        body, content_type = self.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": content_type})


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)
