"""Which endpoint keys exist: bounded cardinality, decided where records get their key, before partitioning.

The route table (`pipeline.routes`) turns a path into a key; every scanned path (`/wp-login.php`, `/.env`) would
still be its own endpoint. `EndpointCatalog.assign` is a post-pass over the records of a batch, in input order:

- a key keeps its own endpoint when it is a configured route template (exactly), or once a record of it was not a
  404 (any other status, or none: the Worker threw before responding) — it is *learned*, and its later 404s stay
  on it;
- the 404s of keys that are neither fold into `<unmatched>`, one per service;
- at most `max_endpoints` learned keys per service (templates do not count), and no key longer than
  `MAX_KEY_CHARS`: other new keys fold into `<overflow>`, one per service; the first refusal of a service is
  reported once (`take_notices`);
- at most `max_services` services: records of further services become service `<overflow>`, endpoint
  `<overflow>`.

So a service has at most `max_endpoints` + templates + 2 endpoint keys, and the catalog holds at most
`max_services` × (2 × `max_endpoints` + templates) keys and hashes (kept keys, and the hashes of refused ones it
counts). Decisions depend
only on the records in order: replay of a capture decides as the ingest that read it did. The catalog lives as long
as its process: a restarted ingest learns again (a learned key's 404s fold into `<unmatched>` until it serves
another status).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

import numpy as np

from pipeline.log_columns import LogColumns

UNMATCHED = "<unmatched>"
OVERFLOW = "<overflow>"
FOLDED_ENDPOINTS = frozenset((UNMATCHED, OVERFLOW))
DEFAULT_MAX_ENDPOINTS = 2000
DEFAULT_MAX_SERVICES = 256
MAX_KEY_CHARS = 512


@dataclass(slots=True)
class _ServiceKeys:
    keys: set[str] = field(default_factory=set)  # templates seen and learned keys: kept as they are
    learned: int = 0
    refused: set[int] = field(default_factory=set)  # hashes of keys refused at the cap (counted up to the cap)


@dataclass(slots=True)
class CatalogStats:
    folded: Counter[str] = field(default_factory=Counter)  # records folded, by endpoint (<unmatched>, <overflow>)
    refused_keys: int = 0  # distinct keys refused at the cap (exact up to max_endpoints per service)
    services_refused: int = 0  # records of services past max_services

    def summary(self) -> str:
        return (f"folded_unmatched={self.folded[UNMATCHED]} folded_overflow={self.folded[OVERFLOW]} "
                f"refused_keys={self.refused_keys} services_refused={self.services_refused}")


class EndpointCatalog:
    """The endpoint keys each service has; `assign(records)` rewrites the keys of a batch's records in place."""

    def __init__(self, templates: Iterable[str] = (), max_endpoints: int = DEFAULT_MAX_ENDPOINTS,
                 max_services: int = DEFAULT_MAX_SERVICES) -> None:
        if max_endpoints < 1 or max_services < 1:
            raise ValueError("max_endpoints and max_services must be at least 1")
        self.templates = frozenset(templates)
        self.max_endpoints = max_endpoints
        self.max_services = max_services
        self.stats = CatalogStats()
        self._services: dict[str, _ServiceKeys] = {}
        self._notices: list[str] = []
        self._services_capped = False

    def assign(self, records: list[dict[str, Any]], start: int = 0) -> None:
        """Decide the endpoint of `records[start:]`, in order. A record whose key is known costs two lookups."""
        service_keys = self._services.get
        for record in islice(records, start, None):
            known = service_keys(record["service"])
            if known is None or record["endpoint"] not in known.keys:
                self._decide(record, known)

    def assign_columns(self, batch: LogColumns) -> LogColumns:
        """`assign` for records already in columns (a split capture's second half): the same decisions, record by
        record in order, on the batch's (service, endpoint) dictionary; the batch with its keys rewritten."""
        service_keys = self._services.get
        endpoints = batch.endpoints
        statuses = batch.statuses
        codes = batch.endpoint.tolist()
        status_codes = batch.status.tolist()
        index: dict[tuple[str, str], int] | None = None  # the new dictionary's codes, once a key is rewritten
        for i, code in enumerate(codes):
            service, key = endpoints[code]
            known = service_keys(service)
            if known is not None and key in known.keys:
                continue
            record = {"service": service, "endpoint": key, "status": statuses[status_codes[i]]}
            self._decide(record, known)
            decided = (record["service"], record["endpoint"])
            if decided != (service, key):
                if index is None:
                    index = {pair: number for number, pair in enumerate(endpoints)}
                    endpoints = list(endpoints)
                new_code = index.get(decided)
                if new_code is None:
                    new_code = index[decided] = len(endpoints)
                    endpoints.append(decided)
                codes[i] = new_code
        if index is None:
            return batch
        return replace(batch, endpoints=endpoints, endpoint=np.array(codes, dtype=np.int32))

    def _decide(self, record: dict[str, Any], known: _ServiceKeys | None) -> None:
        if known is None:
            if len(self._services) >= self.max_services:
                self._refuse_service(record)
                return
            known = self._services[record["service"]] = _ServiceKeys()
        key = record["endpoint"]
        if key in self.templates:
            known.keys.add(key)
        elif record["status"] == 404:
            record["endpoint"] = UNMATCHED
            self.stats.folded[UNMATCHED] += 1
        elif known.learned < self.max_endpoints and len(key) <= MAX_KEY_CHARS:
            known.keys.add(key)
            known.learned += 1
        else:
            self._refuse_key(record, known)

    def _refuse_key(self, record: dict[str, Any], known: _ServiceKeys) -> None:
        key = record["endpoint"]
        record["endpoint"] = OVERFLOW
        self.stats.folded[OVERFLOW] += 1
        digest = hash(key)
        if digest not in known.refused and len(known.refused) < self.max_endpoints:
            if not known.refused:
                self._notices.append(
                    f"service {record['service']!r} reached its endpoint cap ({self.max_endpoints} keys, or a key "
                    f"over {MAX_KEY_CHARS} characters): further new endpoints fold into {OVERFLOW}")
            known.refused.add(digest)
            self.stats.refused_keys += 1

    def _refuse_service(self, record: dict[str, Any]) -> None:
        if not self._services_capped:
            self._services_capped = True
            self._notices.append(f"{self.max_services} services tracked: records of service {record['service']!r} "
                                 f"and any further one go to service {OVERFLOW}, endpoint {OVERFLOW}")
        record["service"] = OVERFLOW
        record["endpoint"] = OVERFLOW
        self.stats.folded[OVERFLOW] += 1
        self.stats.services_refused += 1

    def take_notices(self) -> list[str]:
        """What happened once (a cap reached) since the last call, for the caller to log."""
        notices, self._notices = self._notices, []
        return notices

    def keys_held(self) -> int:
        """Keys kept and refused-key hashes held, over all services (the catalog's size)."""
        return sum(len(known.keys) + len(known.refused) for known in self._services.values())

    def endpoints(self, service: str) -> frozenset[str]:
        """The keys `service` keeps as they are (templates seen and learned keys)."""
        known = self._services.get(service)
        return frozenset(known.keys) if known is not None else frozenset()
