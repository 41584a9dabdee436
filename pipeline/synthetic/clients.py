"""Who sends the synthetic requests, and the `event.request` a request leaves: headers and `request.cf`.

Clients are weighted: browsers in several places (some on newer runtimes, with TLS fingerprints and
`tlsClientAuth` in `request.cf`), API clients that write, and a health checker.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from pipeline.synthetic.profiles import EndpointProfile, TrafficMix


@dataclass(frozen=True, slots=True)
class _Place:
    """Where a client is, as `request.cf` tells it."""

    colo: str
    asn: int
    as_organization: str
    country: str
    is_eu: bool
    city: str
    continent: str
    region: str
    region_code: str
    timezone: str
    longitude: str
    latitude: str
    postal_code: str
    metro_code: str | None = None


@dataclass(frozen=True, slots=True)
class Client:
    """Who sends requests: its share of the traffic (`weight`), headers, place and tenants."""

    weight: float
    ip: str
    user_agent: str
    accept: str
    place: _Place
    rich_cf: bool  # TLS fingerprints, tlsClientAuth and edgeL4 (newer runtimes); all of request.cf can be missing
    http_protocol: str = "HTTP/2"
    origin: str | None = None
    credential: str | None = None  # the redacted header it authenticates with
    tenants: tuple[str, ...] = ()  # empty: none (x-tenant-id absent)


_ASHBURN = _Place("IAD", 701, "Verizon Business", "US", False, "Ashburn", "NA", "Virginia", "VA",
                  "America/New_York", "-77.48749", "39.04372", "20147", "511")
_LONDON = _Place("LHR", 2856, "British Telecommunications PLC", "GB", False, "London", "EU", "England", "ENG",
                 "Europe/London", "-0.12574", "51.50853", "EC1A")
_SAO_PAULO = _Place("GRU", 28573, "Claro NXT Telecomunicacoes Ltda", "BR", False, "São Paulo", "SA",
                    "São Paulo", "SP", "America/Sao_Paulo", "-46.63611", "-23.54750", "01000-000")
_ZURICH = _Place("ZRH", 3303, "Swisscom (Schweiz) AG", "CH", False, "Zürich", "EU", "Zurich", "ZH",
                 "Europe/Zurich", "8.55000", "47.36667", "8001")
_MUNICH = _Place("MUC", 3320, "Deutsche Telekom AG", "DE", True, "München", "EU", "Bavaria", "BY",
                 "Europe/Berlin", "11.57549", "48.13743", "80331")
_FRANKFURT_DC = _Place("FRA", 16509, "Amazon.com, Inc.", "DE", True, "Frankfurt am Main", "EU", "Hesse", "HE",
                       "Europe/Berlin", "8.68417", "50.11552", "60311")
_SAN_JOSE_DC = _Place("SJC", 13335, "Cloudflare, Inc.", "US", False, "San Jose", "NA", "California", "CA",
                      "America/Los_Angeles", "-121.89496", "37.33939", "95113", "807")

_CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/143.0.0.0 Safari/537.36")
_FIREFOX_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:146.0) Gecko/20100101 Firefox/146.0"
_SAFARI_IOS = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
               "Version/18.2 Mobile/15E148 Safari/604.1")
_APP_ORIGIN = "https://app.factory.example.com"

_CLIENTS: tuple[Client, ...] = (
    Client(30, "203.0.113.24", _CHROME_MAC, "application/json", _ASHBURN, True, origin=_APP_ORIGIN,
            tenants=("tnt_acme", "default")),
    Client(18, "198.51.100.77", _FIREFOX_WIN, "application/json", _LONDON, False, origin=_APP_ORIGIN,
            tenants=("tnt_initech",)),
    Client(8, "203.0.113.91", _SAFARI_IOS, "application/json", _SAO_PAULO, False, origin=_APP_ORIGIN,
            tenants=("tnt_umbrella", "default")),
    Client(6, "198.51.100.23", _CHROME_MAC, "application/json", _ZURICH, True, origin=_APP_ORIGIN,
            tenants=("tnt_hooli",)),
    Client(6, "203.0.113.150", _FIREFOX_WIN, "application/json", _MUNICH, False, origin=_APP_ORIGIN,
            tenants=("tnt_stark", "tnt_wayne")),
    Client(20, "192.0.2.140", "python-httpx/0.28.1", "application/json", _FRANKFURT_DC, False,
            http_protocol="HTTP/1.1", credential="x-api-key", tenants=("tnt_globex",)),
    Client(8, "192.0.2.17", "curl/8.11.1", "*/*", _ASHBURN, False, http_protocol="HTTP/1.1",
            credential="authorization", tenants=("tnt_wonka", "tnt_acme")),
)
_HEALTH_CHECKER = Client(1, "192.0.2.200", "Cloudflare-Healthchecks/1.0", "*/*", _SAN_JOSE_DC, False,
                         http_protocol="HTTP/1.1")
_WRITE_CLIENTS = tuple(client for client in _CLIENTS if client.credential is not None)
_TLS_CLIENT_AUTH: Mapping[str, str] = {
    "certPresented": "0", "certVerified": "NONE", "certRevoked": "0", "certIssuerDN": "", "certSubjectDN": "",
    "certIssuerDNRFC2253": "", "certSubjectDNRFC2253": "", "certIssuerDNLegacy": "", "certSubjectDNLegacy": "",
    "certSerial": "", "certIssuerSerial": "", "certSKI": "", "certIssuerSKI": "", "certFingerprintSHA1": "",
    "certFingerprintSHA256": "", "certNotBefore": "", "certNotAfter": "",
}

_HOSTS = {"gateway": "api.factory.example.com", "planning-machine": "planning.internal"}

_CLIENT_CUM_WEIGHTS = list(accumulate(client.weight for client in _CLIENTS))
_WRITE_CLIENT_CUM_WEIGHTS = list(accumulate(client.weight for client in _WRITE_CLIENTS))


def pick_client(rng: random.Random, profile: EndpointProfile) -> Client:
    """Who sends a request to `profile`'s endpoint: the health checker, a client that writes, or any client."""
    if profile.route == "/api/health":
        return _HEALTH_CHECKER
    if profile.method in ("POST", "PUT", "PATCH", "DELETE"):
        return rng.choices(_WRITE_CLIENTS, cum_weights=_WRITE_CLIENT_CUM_WEIGHTS)[0]
    return rng.choices(_CLIENTS, cum_weights=_CLIENT_CUM_WEIGHTS)[0]


def fetch_event(rng: random.Random, mix: TrafficMix, profile: EndpointProfile, client: Client, tenant: str | None,
                path: str, status: int | None) -> dict[str, Any]:
    """The tail event's `event`: the request (url, method, headers, `cf`) and the response's status, if any."""
    host = _HOSTS.get(profile.service, f"{profile.service}.example.com")
    headers = {
        "accept": client.accept, "accept-encoding": "gzip, br", "cf-connecting-ip": client.ip,
        "cf-ipcountry": client.place.country, "cf-ray": f"{rng.getrandbits(64):016x}",
        "cf-visitor": '{"scheme":"https"}', "connection": "Keep-Alive", "host": host,
        "user-agent": client.user_agent, "x-forwarded-proto": "https", "x-real-ip": client.ip,
    }
    if client.origin is not None:
        headers["origin"] = client.origin
    if client.credential is not None:
        headers[client.credential] = "REDACTED"
    if tenant is not None:
        headers["x-tenant-id"] = tenant
    if profile.method == "OPTIONS":
        headers["access-control-request-method"] = "GET"
        headers["access-control-request-headers"] = "x-tenant-id"
    elif profile.method == "POST":
        headers["content-type"] = "application/json"
        headers["content-length"] = str(rng.randrange(180, 2400))
    request: dict[str, Any] = {"url": f"https://{host}{path}", "method": profile.method,
                               "headers": dict(sorted(headers.items()))}
    if profile.service == "gateway" and mix.request_cf != "none":  # planning-machine: a service binding
        request["cf"] = _request_cf(rng, mix, client)
    event: dict[str, Any] = {"request": request}
    if status is not None:
        event["response"] = {"status": status}
    return event


def _request_cf(rng: random.Random, mix: TrafficMix, client: Client) -> dict[str, Any]:
    """`request.cf`: where the client is and, per `mix.request_cf`, its TLS details."""
    place = client.place
    cf: dict[str, Any] = {
        "httpProtocol": client.http_protocol, "clientAcceptEncoding": "gzip, deflate, br, zstd",
        "requestPriority": "", "edgeRequestKeepAliveStatus": 1, "requestHeaderNames": {},
        "clientTcpRtt": rng.randrange(3, 120), "colo": place.colo, "asn": place.asn,
        "asOrganization": place.as_organization, "country": place.country, "isEUCountry": place.is_eu,
        "city": place.city, "continent": place.continent, "region": place.region,
        "regionCode": place.region_code, "timezone": place.timezone, "longitude": place.longitude,
        "latitude": place.latitude, "postalCode": place.postal_code,
    }
    if place.metro_code is not None:
        cf["metroCode"] = place.metro_code
    cf["tlsVersion"] = "TLSv1.3"
    cf["tlsCipher"] = "AEAD-AES128-GCM-SHA256"
    if client.rich_cf and mix.request_cf == "per_client":
        cf["tlsClientRandom"] = base64.b64encode(rng.randbytes(32)).decode()
        cf["tlsClientCiphersSha1"] = "Is6jizD50MfU/oEcr1ILzN9NN38="
        cf["tlsClientExtensionsSha1"] = "jc53jwp9Oi/fMw0qEIzxCGijhIo="
        cf["tlsClientExtensionsSha1Le"] = "tBVAwmUvLPcvgY3CUVgUHETUEOA="
        cf["tlsClientHelloLength"] = "1754"
        cf["tlsClientAuth"] = dict(_TLS_CLIENT_AUTH)
        cf["verifiedBotCategory"] = ""
        cf["edgeL4"] = {"deliveryRate": rng.randrange(200_000, 8_000_000)}
    return cf
