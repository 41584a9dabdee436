"""Small helpers for kafka.sh, standard library only (so they run on any Python 3.8+).

    probe.py free-port                  print a free 127.0.0.1 TCP port
    probe.py port-free PORT             exit 0 if 127.0.0.1:PORT can be bound, else 1
    probe.py cluster-id                 print a new cluster id (as `kafka-storage.sh random-uuid` does)
    probe.py wait-ready PORT PID CLUSTER_ID TIMEOUT_S
                                        wait until the broker on 127.0.0.1:PORT answers a Metadata request
                                        that lists a broker and carries CLUSTER_ID; exit 1 if process PID
                                        ends first, 2 on timeout
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import sys
import time
import uuid

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM binds: TIME_WAIT is no conflict
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def cluster_id() -> str:
    # org.apache.kafka.common.Uuid.randomUuid(): URL-safe base64 of 16 random bytes, no padding, no leading '-'.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _recv(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def metadata(port: int, timeout_s: float = 2.0) -> tuple[int, str | None]:
    """A Metadata v4 request for no topic: (number of brokers, cluster id)."""
    client = b"kafka.sh"
    # header v1: api_key 3 (Metadata), api_version 4, correlation id, client id; body: topics=[] (not null:
    # null means all topics), allow_auto_topic_creation=false
    body = struct.pack(">hhih", 3, 4, 7, len(client)) + client + struct.pack(">i?", 0, False)
    with socket.create_connection((HOST, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", _recv(sock, 4))
        data = _recv(sock, size)
    correlation, _throttle, brokers = struct.unpack_from(">iii", data, 0)
    if correlation != 7:
        raise ConnectionError("unexpected correlation id")
    offset = 12
    for _ in range(brokers):
        (host_len,) = struct.unpack_from(">h", data, offset + 4)
        offset += 4 + 2 + host_len + 4
        (rack_len,) = struct.unpack_from(">h", data, offset)
        offset += 2 + max(rack_len, 0)
    (id_len,) = struct.unpack_from(">h", data, offset)
    cluster = data[offset + 2: offset + 2 + id_len].decode() if id_len >= 0 else None
    return brokers, cluster


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def wait_ready(port: int, pid: int, expected_cluster: str, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if not alive(pid):
            print(f"broker process {pid} ended before it was ready", file=sys.stderr)
            return 1
        try:
            brokers, cluster = metadata(port)
        except (OSError, struct.error, UnicodeDecodeError) as error:
            last_error = repr(error)
        else:
            if cluster != expected_cluster:
                print(f"127.0.0.1:{port} answers with cluster id {cluster!r}, not {expected_cluster!r}: "
                      "another Kafka holds the port", file=sys.stderr)
                return 1
            if brokers >= 1:
                return 0
            last_error = "no broker registered yet"
        time.sleep(0.1)
    print(f"broker on 127.0.0.1:{port} not ready after {timeout_s:.0f}s ({last_error})", file=sys.stderr)
    return 2


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "free-port":
        print(free_port())
        return 0
    if command == "port-free" and len(argv) == 2:
        return 0 if port_free(int(argv[1])) else 1
    if command == "cluster-id":
        print(cluster_id())
        return 0
    if command == "wait-ready" and len(argv) == 5:
        return wait_ready(int(argv[1]), int(argv[2]), argv[3], float(argv[4]))
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
