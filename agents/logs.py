"""tailwatch's own logs: one JSON object per line on stderr, secrets redacted.

Every value of an environment variable whose name says it is secret (TOKEN, KEY, SECRET, PASSWORD, WEBHOOK)
is replaced by `***` wherever it appears in a message or field, and URLs' user-info and query strings are
masked by `mask_url` before anything logs them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|WEBHOOK", re.IGNORECASE)
_MIN_SECRET_LEN = 6


def secret_values() -> list[str]:
    values = [value for name, value in os.environ.items()
              if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LEN]
    return sorted(set(values), key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    for secret in secrets if secrets is not None else secret_values():
        if secret in text:
            text = text.replace(secret, "***")
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
        if isinstance(fields, dict):
            entry["fields"] = fields
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        text = orjson.dumps(entry, default=str).decode()
        return redact(text, self.secrets)


def setup_logging(level: str = "INFO", service: str = "tailwatch") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
