"""`python -m bench push`: one `tailwatch ingest --listen` process on the embedded broker vs `tailwatch parse`'s
reader on the same events, same run.

- events: `--events` (default 40,000) seeded synthetic tail events (`pipeline.synthetic`, as `bench parse`).
- parse: `LogParser` over the events printed in wrangler's 4-space layout (1 MiB chunks), each record written as
  a JSON line to nowhere (what `tailwatch parse` does, without the pipe), best of `--repeat`.
- push: the events as JSON arrays of `--batch` (500) events, pre-serialized (gzipped with `--gzip`), POSTed by
  `--clients` (4) concurrent clients in this process to one listener subprocess publishing to an embedded broker;
  timed from the first request to the last 200 (every record acknowledged by Kafka), best of `--repeat` (a new
  topic prefix each pass, so each publishes everything).

Prints events/s of both, the listener's CPU seconds, the load average, and last `ratio=<push events/s / parse
events/s>`; exits 1 below 0.5 (one listener should carry well over 10,000 events/s).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import aiohttp
import orjson

from agents.embedded_broker import EmbeddedBroker
from pipeline.parsing import LogParser
from pipeline.synthetic import DEMO_START_MS, generate_events, render_capture

MIB = 1 << 20
TARGET = 0.5


def synthetic(events: int, seed: int) -> list[dict[str, Any]]:
    stream = generate_events(seed, DEMO_START_MS, events // 540 + 2, 600, disorder_ms=2_000)
    return [event for _, event in zip(range(events), stream, strict=False)]


def parse_pass(capture: bytes) -> tuple[float, int]:
    started = time.perf_counter()
    parser = LogParser("bench")
    sink = 0
    for start in range(0, len(capture), MIB):
        out = parser.feed(capture[start:start + MIB])
        sink += sum(len(orjson.dumps(record)) for record in out.records)
    out = parser.finish()
    sink += sum(len(orjson.dumps(record)) for record in out.records)
    return time.perf_counter() - started, parser.stats.records


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):  # bounded: 60 s
            if process.poll() is not None:
                raise RuntimeError(f"the listener exited with {process.returncode}")
            try:
                async with session.get(f"{url}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the listener did not become ready in 60 s")


async def post_all(url: str, bodies: list[bytes], clients: int, token: str, gzipped: bool) -> float:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    queue = list(reversed(bodies))
    failures: list[int] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def client() -> None:
            while queue:
                body = queue.pop()
                async with session.post(f"{url}/v1/tail", data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        failures.append(response.status)
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        seconds = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed: {sorted(set(failures))}")
    return seconds


def push_pass(bootstrap: str, bodies: list[bytes], clients: int, gzipped: bool) -> tuple[float, float, str]:
    """One listener process, a fresh topic prefix: (seconds, listener CPU seconds, its summary line)."""
    port = free_port()
    token = secrets.token_hex(16)
    env = {**os.environ, "TAILWATCH_INGEST_TOKEN": token}
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "ingest", "--listen", f"127.0.0.1:{port}", "--bootstrap", bootstrap,
         "--topic-prefix", f"bench{uuid.uuid4().hex[:8]}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(url, process))
        cpu_before = process_cpu_s(process.pid)
        seconds = asyncio.run(post_all(url, bodies, clients, token, gzipped))
        cpu = process_cpu_s(process.pid) - cpu_before
    finally:
        process.terminate()
        _, err = process.communicate(timeout=120)
    summary = next((line for line in err.decode(errors="replace").splitlines() if line.startswith("events=")), "")
    return seconds, cpu, summary


def process_cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench push", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=500, help="events per request")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--repeat", type=int, default=2, help="passes of each, best taken")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gzip", action="store_true", help="gzip the request bodies (as the Tail Worker does)")
    args = parser.parse_args(argv)

    events = synthetic(args.events, args.seed)
    capture = b"".join(render_capture(events))
    bodies = [orjson.dumps(events[start:start + args.batch]) for start in range(0, len(events), args.batch)]
    if args.gzip:
        bodies = [gzip.compress(body, compresslevel=1) for body in bodies]
    count = len(events)
    del events  # the parse pass runs on a heap like `tailwatch parse`'s: no 40k decoded events for gc to scan
    gc.collect()
    print(f"events: {count:,}; capture {len(capture) / 1e6:.0f} MB; {len(bodies)} requests of {args.batch}, "
          f"{sum(map(len, bodies)) / 1e6:.0f} MB{' gzipped' if args.gzip else ''}; {args.clients} clients")
    parse_best = push_best = float("inf")
    records = 0
    with EmbeddedBroker() as broker:
        for _ in range(args.repeat):
            seconds, records = parse_pass(capture)
            parse_best = min(parse_best, seconds)
            seconds, cpu, summary = push_pass(broker.bootstrap, bodies, args.clients, args.gzip)
            push_best = min(push_best, seconds)
            print(f"pass: parse {seconds_text(parse_best)}; push {seconds:.2f} s "
                  f"({count / seconds:,.0f} events/s, listener CPU {cpu:.2f} s); {summary[:120]}")
    parse_rate = count / parse_best
    push_rate = count / push_best
    print(f"parse (LogParser + JSON lines, best of {args.repeat}): {parse_best:.2f} s, {parse_rate:,.0f} events/s, "
          f"{records:,} records")
    print(f"push (one listener, embedded broker, acks=all, best of {args.repeat}): {push_best:.2f} s, "
          f"{push_rate:,.0f} events/s")
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())} on {os.cpu_count()} CPUs")
    ratio = push_rate / parse_rate
    print(f"ratio={ratio:.3f}")
    return 0 if ratio >= TARGET else 1


def seconds_text(seconds: float) -> str:
    return f"{seconds:.2f} s"
