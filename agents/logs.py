"""tailwatch's own logs: one JSON object per line on stderr, secrets redacted.

Each line: `timestamp` (ISO 8601, UTC, ms), `level`, `service` (`tailwatch-<command>`), `logger`, `message`,
`fields` (the record's structured fields, `{}` when none) and `exception` when there is one.

A command that prints a human-readable screen (`tailwatch demo`) sends its log lines, and the lines of the
children it relays (`relay_line`), to a file instead (`logs_to_file`).

Every value of an environment variable whose name says it is secret (TOKEN, KEY, SECRET, PASSWORD, WEBHOOK)
is replaced by `***` wherever it appears in a line, and every URL in a line is masked by `mask_url`: an
http(s) or kafka URL keeps its scheme, host and port only; any other scheme (apprise's `slack://`,
`pagerduty://`, `mailto://` … carry keys anywhere) keeps only its scheme.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson
import re2

_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|WEBHOOK", re.IGNORECASE)
_MIN_SECRET_LEN = 6
# RE2 (linear time): lines can carry log-derived text, and with Python's `re` this pattern is quadratic in a long
# run like `a.a.a.…` (a 100,000-character one took 44 s); RE2 takes under a millisecond and masks the same URLs.
_RE2_QUIET = re2.Options()
_RE2_QUIET.log_errors = False
_URL = re2.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^\s\"'<>\\]+)", _RE2_QUIET)
_HOST_SCHEMES = frozenset({"http", "https", "kafka"})


_REGISTERED: set[str] = set()  # secrets that are not in the environment (read from a file, `${NAME}` in tailwatch.yaml)


def register_secrets(values: list[str]) -> None:
    """Redact these values from every log line from now on (agents/config_file.py registers Kafka's secrets)."""
    _REGISTERED.update(value for value in values if value)


def secret_values() -> list[str]:
    values = [value for name, value in os.environ.items()
              if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LEN]
    return sorted(set(values) | _REGISTERED, key=len, reverse=True)


def mask_url(url: str) -> str:
    """`https://user:pw@hooks.example.com/services/T/B/x?key=y` → `https://***@hooks.example.com/***`;
    `slack://T1/B2/token` → `slack://***`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if scheme.lower() not in _HOST_SCHEMES:
        return f"{scheme}://***"
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    _user, at, host = authority.rpartition("@")
    return f"{scheme}://{'***@' if at else ''}{host}{'/***' if tail.strip('/') else tail}"


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every secret value replaced by `***` and every URL masked."""
    for secret in secrets if secrets is not None else secret_values():
        if secret in text:
            text = text.replace(secret, "***")
    if "://" in text:
        text = _URL.sub(lambda match: mask_url(match.group(0)), text)
    return text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "tailwatch") -> None:
        super().__init__()
        self.service = service
        self.secrets = secret_values()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        entry["fields"] = fields if isinstance(fields, dict) else {}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        text = orjson.dumps(entry, default=str).decode()
        return redact(text, self.secrets if not _REGISTERED else secret_values())


def setup_logging(level: str = "INFO", service: str = "tailwatch") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Kafka client and Faust: warnings and up, unless TAILWATCH_FRAMEWORK_LOG_LEVEL says otherwise (diagnosing a
    # rebalance or a table recovery wants their INFO lines).
    framework = os.environ.get("TAILWATCH_FRAMEWORK_LOG_LEVEL", "").upper() or max(logging.WARNING, root.level)
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(framework)


_FILE_HANDLER: logging.StreamHandler[TextIO] | None = None  # set by `logs_to_file` while it runs


@contextmanager
def logs_to_file(path: Path) -> Iterator[None]:
    """Inside the block, this process's log lines and the child lines it relays go to `path` (truncated first),
    not to stderr. Raises OSError when `path` cannot be written."""
    global _FILE_HANDLER  # noqa: PLW0603 - one log destination per process
    stream: TextIO = path.open("w", encoding="utf-8")
    root = logging.getLogger()
    previous = root.handlers[:]
    formatter = next((h.formatter for h in previous if isinstance(h.formatter, JsonFormatter)), None)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter or JsonFormatter())
    root.handlers[:] = [handler]
    _FILE_HANDLER = handler
    try:
        yield
    finally:
        root.handlers[:] = previous
        handler.acquire()  # a relay thread still writing finishes its line first
        try:
            _FILE_HANDLER = None
            stream.close()
        finally:
            handler.release()


_LEVEL_FIELD = re.compile(r'"level":"([a-z]+)"')


def child_log_env(env: dict[str, str]) -> dict[str, str]:
    """A child process's environment with its log level at INFO at least: its parent watches its INFO lines
    ("worker ready", "input fully processed", "deliveries settled") and relays what its own level lets through."""
    level = min(logging.getLogger().getEffectiveLevel(), logging.INFO)
    return {**env, "TAILWATCH_LOG_LEVEL": logging.getLevelName(level)}


def relay_line(line: str) -> None:
    """Write a child process's log line (already JSON) where this process's log lines go — stderr, or the file of
    `logs_to_file` — if this process's level lets its level through."""
    found = _LEVEL_FIELD.search(line, 0, 120)
    if found is not None and logging.getLevelName(found[1].upper()) < logging.getLogger().getEffectiveLevel():
        return
    handler = _FILE_HANDLER
    if handler is None:
        sys.stderr.write(line)
        return
    handler.acquire()
    try:
        if handler is _FILE_HANDLER:
            handler.stream.write(line)
            handler.stream.flush()
        else:  # the file was closed meanwhile
            sys.stderr.write(line)
    finally:
        handler.release()
