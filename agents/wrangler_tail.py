"""Supervising `wrangler tail <worker> --format json`: one subprocess per Worker, restarted when it ends.

Restart delay grows 1 s, 2 s, 4 s … up to `backoff_max_s`, and starts over after a run that lasted
`stable_after_s`. stderr lines go to tailwatch's log. On stop the child gets SIGTERM and everything it already
printed is still read and published before the supervisor returns (SIGKILL after `stop_grace_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
from collections.abc import Sequence

from agents.child_process import death_signal_preexec
from agents.ingest import Ingestor, reader_chunks

log = logging.getLogger("tailwatch.wrangler")

WRANGLER_ENV = "TAILWATCH_WRANGLER"


def wrangler_command() -> list[str]:
    """The wrangler executable (and leading args), from `$TAILWATCH_WRANGLER`, default `wrangler` on PATH."""
    return shlex.split(os.environ.get(WRANGLER_ENV, "wrangler"))


class WranglerTail:
    def __init__(self, worker: str, ingestor: Ingestor, command: Sequence[str] | None = None,
                 extra_args: Sequence[str] = (), backoff_initial_s: float = 1.0, backoff_max_s: float = 60.0,
                 stable_after_s: float = 60.0, stop_grace_s: float = 5.0) -> None:
        self.worker = worker
        self.ingestor = ingestor
        self.command = list(command) if command else wrangler_command()
        self.extra_args = list(extra_args)
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stable_after_s = stable_after_s
        self.stop_grace_s = stop_grace_s
        self.source = f"wrangler:{worker}"
        self.runs = 0
        self.exit_codes: list[int] = []

    def argv(self) -> list[str]:
        return [*self.command, "tail", self.worker, "--format", "json", *self.extra_args]

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff_initial_s
        while not stop.is_set():
            started = loop.time()
            try:
                code = await self._run_once(stop)
            except OSError as error:
                log.error("cannot start wrangler", extra={"fields": {"worker": self.worker, "error": str(error)}})
                code = None
            if stop.is_set():
                break
            if loop.time() - started >= self.stable_after_s:
                delay = self.backoff_initial_s
            log.warning("wrangler tail ended; restarting",
                        extra={"fields": {"worker": self.worker, "exit_code": code, "restart_in_s": delay}})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, self.backoff_max_s)

    async def _run_once(self, stop: asyncio.Event) -> int:
        process = await asyncio.create_subprocess_exec(  # it dies with ingest, even a killed one
            *self.argv(), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, preexec_fn=death_signal_preexec())
        self.runs += 1
        log.info("wrangler tail started", extra={"fields": {"worker": self.worker, "pid": process.pid}})
        assert process.stdout is not None and process.stderr is not None
        stderr_task = asyncio.create_task(self._pump_stderr(process.stderr))
        stopper = asyncio.create_task(self._stop_when(stop, process))
        try:
            await self.ingestor.ingest_stream(
                self.source, reader_chunks(process.stdout, self.ingestor.config.linger_ms), final=stop.is_set)
            code = await process.wait()
        finally:
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopper
            await stderr_task
        self.exit_codes.append(code)
        return code

    async def _stop_when(self, stop: asyncio.Event, process: asyncio.subprocess.Process) -> None:
        await stop.wait()
        if process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=self.stop_grace_s)
        except TimeoutError:
            process.kill()

    async def _pump_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", errors="replace").rstrip()
            if text:
                log.warning("wrangler stderr", extra={"fields": {"worker": self.worker, "line": text[:2000]}})
