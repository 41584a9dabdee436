"""Headless Chromium for page tests, driven over the DevTools protocol (aiohttp's websocket client).

`open_page(url)` loads a page, waits for its load event (and optionally for a JS condition), and returns what a
test asserts on: console errors and uncaught exceptions, values of JS expressions, and a PNG screenshot.
Without a `chromium` binary the tests skip with a message; with CI=true (or TAILWATCH_REQUIRE_BROWSER=1) that is a
failure instead, as for the Apache Kafka tier.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SKIP_MESSAGE = "browser tests skipped: no chromium on PATH (apt-get install chromium)"
REQUIRE_ENV = "TAILWATCH_REQUIRE_BROWSER"
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def chromium() -> str:
    """The browser binary, or skip (fail under CI=true or TAILWATCH_REQUIRE_BROWSER=1)."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true" or os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"CI=true or {REQUIRE_ENV}=1 but no chromium on PATH ({', '.join(BINARIES)})")
    pytest.skip(SKIP_MESSAGE)


@dataclass
class PageResult:
    errors: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, failed loads
    values: dict[str, Any] = field(default_factory=dict)
    screenshot: bytes = b""
    ink: dict[str, Any] = field(default_factory=dict)  # the screenshot: width, height, inked share, colors


class _Session:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse, result: PageResult) -> None:
        self.socket = socket
        self.result = result
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.loaded = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            data = message.json()
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
                continue
            method, params = data.get("method"), data.get("params", {})
            if method == "Page.loadEventFired":
                self.loaded.set()
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                self.result.errors.append(details.get("exception", {}).get("description") or details["text"])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                self.result.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                self.result.errors.append(params["entry"]["text"])

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.socket.send_json({"id": ident, "method": method, "params": params})
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        reply = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")


async def open_page(url: str, expressions: dict[str, str], wait_for: str | None = None,
                    on_load: dict[str, str] | None = None, loaded: asyncio.Event | None = None,
                    width: int = 1400, height: int = 1000, timeout_s: float = 60.0) -> PageResult:
    """Load `url` in a fresh headless Chromium; evaluate `on_load` right after its load event (then set `loaded`),
    and `expressions` once `wait_for` is true."""
    binary = chromium()
    result = PageResult()
    # Chromium's helper processes can still write into the profile as it is removed: the whole process group is
    # killed, and what one of them wrote at the last moment does not fail the test.
    with tempfile.TemporaryDirectory(prefix="tailwatch-chromium-", ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-extensions", "--remote-debugging-port=0", "--remote-allow-origins=*",
             f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            endpoint = await asyncio.wait_for(asyncio.to_thread(_devtools_url, browser), timeout_s)
            port = endpoint.split("/")[2]
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://{port}/json/list") as response:
                    pages = [t for t in await response.json() if t["type"] == "page"]
                async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                    session = _Session(socket, result)
                    for domain in ("Page", "Runtime", "Log"):
                        await session.call(f"{domain}.enable")
                    await session.call("Page.navigate", url=url)
                    await asyncio.wait_for(session.loaded.wait(), timeout_s)
                    for name, expression in (on_load or {}).items():
                        result.values[name] = await session.evaluate(expression)
                    if loaded is not None:
                        loaded.set()
                    if wait_for is not None:
                        deadline = asyncio.get_running_loop().time() + timeout_s
                        while not await session.evaluate(wait_for):
                            if asyncio.get_running_loop().time() > deadline:
                                raise AssertionError(f"page never satisfied {wait_for}")
                            await asyncio.sleep(0.2)
                    for name, expression in expressions.items():
                        result.values[name] = await session.evaluate(expression)
                    shot = await session.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                    result.screenshot = base64.b64decode(shot["data"])
                    # The screenshot decoded by the browser's own PNG decoder: how much of it is not background.
                    result.ink = await session.evaluate(INK_JS % shot["data"])
                    await asyncio.sleep(0.2)  # late console messages
                    session.reader.cancel()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(timeout=10)
    return result


def _devtools_url(browser: subprocess.Popen[str]) -> str:
    assert browser.stderr is not None
    for line in browser.stderr:
        found = _LISTENING.search(line)
        if found:
            with contextlib.suppress(Exception):
                os.set_blocking(browser.stderr.fileno(), False)
            return found.group(1)
    raise RuntimeError("chromium exited before it listened for DevTools")


INK_JS = """(async () => {
  const img = new Image();
  img.src = "data:image/png;base64,%s";
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0, sampled = 0;
  const colors = new Set();
  for (let i = 0; i < data.length; i += 4 * 7) {
    sampled++;
    colors.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    if (Math.min(data[i], data[i + 1], data[i + 2]) < 235) inked++;
  }
  return {width: canvas.width, height: canvas.height, inked: inked / sampled, colors: colors.size};
})()"""
