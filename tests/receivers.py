"""Loopback receivers for notification tests: an HTTP server (aiohttp) and an SMTP server (aiosmtpd), each in
its own thread on 127.0.0.1, so they serve the test's own event loop and child processes alike.

    with HttpReceiver() as http:
        http.program("/hook", Reply(500), Reply(429, headers={"Retry-After": "1"}))  # then the default (200 ok)
        ... send to http.url("/hook") ...
        requests = http.wait_for(3, path="/hook")       # or: await http.wait_for_async(3, path="/hook")
        assert requests[-1].json()["text"] == ...

    with SmtpReceiver(auth={"user": "secret"}) as smtp:
        smtp.program(SmtpReply(451, "try later"))        # then 250
        messages = smtp.wait_for(1); messages[0].message["Subject"]

`program_matching` answers the next request (or e-mail) whose body contains some bytes, whatever order the
messages come in. A reply with `hold=threading.Event()` is recorded as soon as the request (or the e-mail's
DATA) arrives and answered only once the event is set (at most HOLD_LIMIT_S): the receiver has the message, its
sender does not know yet — the window a test kills the sender in.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, TypeVar

import orjson
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

T = TypeVar("T")
HOLD_LIMIT_S = 120.0


async def _held(hold: threading.Event | None) -> None:
    deadline = time.monotonic() + HOLD_LIMIT_S
    while hold is not None and not hold.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(get: Callable[[], list[T]], count: int, timeout_s: float, what: str) -> list[T]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        items = get()
        if len(items) >= count:
            return items
        time.sleep(0.02)
    items = get()
    raise AssertionError(f"expected {count} {what} within {timeout_s}s, got {len(items)}")


async def _wait_async(get: Callable[[], list[T]], count: int, timeout_s: float, what: str) -> list[T]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        items = get()
        if len(items) >= count:
            return items
        await asyncio.sleep(0.02)
    items = get()
    raise AssertionError(f"expected {count} {what} within {timeout_s}s, got {len(items)}")


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait this long before answering (to hold a request in flight)
    hold: threading.Event | None = field(default=None, compare=False)  # answer only once it is set


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    reply: Reply
    answered: bool = False  # False while held, or if the client had gone when the answer was due
    done: bool = False  # the answer was due (given, or found no client)

    def json(self) -> Any:
        return orjson.loads(self.body)


class HttpReceiver:
    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.port = free_port()
        self._lock = threading.Lock()
        self._programs: dict[str, list[Reply]] = {}
        self._matching: list[tuple[str, bytes, Reply]] = []
        self._requests: list[HttpRequest] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def program(self, path: str, *replies: Reply) -> None:
        """Answer the next requests to `path` with these replies, in order; then the default."""
        with self._lock:
            self._programs.setdefault(path, []).extend(replies)

    def program_matching(self, path: str, contains: bytes, reply: Reply) -> None:
        """Answer the next request to `path` whose body contains `contains` with `reply` (once), before any
        program of `program`."""
        with self._lock:
            self._matching.append((path, contains, reply))

    def requests(self, path: str | None = None) -> list[HttpRequest]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def answered(self, path: str | None = None) -> list[HttpRequest]:
        return [r for r in self.requests(path) if r.answered]

    def wait_for(self, count: int, path: str | None = None, timeout_s: float = 20.0) -> list[HttpRequest]:
        return _wait(lambda: self.requests(path), count, timeout_s, f"requests to {path or 'any path'}")

    async def wait_for_async(self, count: int, path: str | None = None,
                             timeout_s: float = 20.0) -> list[HttpRequest]:
        return await _wait_async(lambda: self.requests(path), count, timeout_s,
                                 f"requests to {path or 'any path'}")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            match = next((m for m in self._matching if m[0] == request.path and m[1] in body), None)
            queue = self._programs.get(request.path)
            if match is not None:
                self._matching.remove(match)
                reply = match[2]
            else:
                reply = queue.pop(0) if queue else self.default
            record = HttpRequest(request.method, request.path, dict(request.headers), body, reply)
            self._requests.append(record)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        await _held(reply.hold)
        transport = request.transport
        record.answered = transport is not None and not transport.is_closing()
        record.done = True
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    def start(self) -> HttpReceiver:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="http-receiver", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the HTTP receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclass(frozen=True)
class SmtpReply:
    code: int = 250
    text: str = "OK"
    hold: threading.Event | None = field(default=None, compare=False)  # the message is kept; the reply waits


@dataclass
class SmtpMessage:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None

    def part(self, content_type: str) -> str:
        body = self.message.get_body(preferencelist=(content_type.split("/")[1],))
        assert body is not None, f"no {content_type} part"
        return str(body.get_content())


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        receiver = self.receiver
        with receiver._lock:
            match = next((m for m in receiver._matching if m[0] in envelope.content), None)
            if match is not None:
                receiver._matching.remove(match)
                reply = match[1]
            else:
                reply = receiver._programs.pop(0) if receiver._programs else SmtpReply()
            receiver.attempts += 1
            if reply.code == 250:
                login = session.auth_data.login.decode() if session.auth_data else None
                parsed = message_from_bytes(envelope.content, policy=policy.default)
                assert isinstance(parsed, EmailMessage)
                receiver._messages.append(SmtpMessage(envelope.mail_from, list(envelope.rcpt_tos), parsed, login))
        await _held(reply.hold)
        return f"{reply.code} {reply.text}"


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1 (no TLS). With `auth`, clients must log in (AUTH PLAIN/LOGIN without TLS)."""

    def __init__(self, auth: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.auth = auth
        self._lock = threading.Lock()
        self._programs: list[SmtpReply] = []
        self._matching: list[tuple[bytes, SmtpReply]] = []
        self._messages: list[SmtpMessage] = []
        self.attempts = 0
        kwargs: dict[str, Any] = {}
        if auth is not None:
            kwargs = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and self.auth is not None
              and self.auth.get(data.login.decode()) == data.password.decode())
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def program(self, *replies: SmtpReply) -> None:
        """Answer the next DATA commands with these replies, in order; then 250."""
        with self._lock:
            self._programs.extend(replies)

    def program_matching(self, contains: bytes, reply: SmtpReply) -> None:
        """Answer the next message whose raw content contains `contains` with `reply` (once), before `program`'s."""
        with self._lock:
            self._matching.append((contains, reply))

    def messages(self) -> list[SmtpMessage]:
        with self._lock:
            return list(self._messages)

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[SmtpMessage]:
        return _wait(self.messages, count, timeout_s, "e-mails")

    async def wait_for_async(self, count: int, timeout_s: float = 20.0) -> list[SmtpMessage]:
        return await _wait_async(self.messages, count, timeout_s, "e-mails")

    def start(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpReceiver:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
