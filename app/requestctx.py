"""Facts about the current request: the client address and whether it is internal (F21)."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from flask import current_app, request


@lru_cache(maxsize=16)
def _networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


INVALID_ADDRESS = "invalid"
_MAX_ADDRESS = 64  # what the audit and application rows keep
_V4_WITH_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")
_V6_WITH_PORT = re.compile(r"\[([0-9A-Fa-f:.]+(?:%[^\]]*)?)\](?::\d{1,5})?")


def _address(raw: str) -> str:
    """`raw` as one canonical IP address text (a port some proxies append and an IPv6 zone
    dropped, an IPv4-mapped IPv6 address as IPv4), so one client is one rate-limit
    bucket; INVALID_ADDRESS if it is none."""
    text = raw.strip()
    bracketed = _V6_WITH_PORT.fullmatch(text) or _V4_WITH_PORT.fullmatch(text)
    if bracketed:
        text = bracketed.group(1)
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return INVALID_ADDRESS
    mapped = getattr(address, "ipv4_mapped", None)
    canonical = str(mapped or address)
    return canonical if len(canonical) <= _MAX_ADDRESS else INVALID_ADDRESS


def client_ip() -> str:
    """The caller's address; `X-Forwarded-For` was already unwrapped by ProxyFix for
    exactly `YDX_TRUSTED_PROXIES` proxies, so a client cannot forge it. What a trusted
    proxy passed on that is no address (a miscounted proxy chain, a proxy forwarding
    junk) is INVALID_ADDRESS: never internal, one bucket for the rate limits, and a
    bounded value in the audit trail."""
    cached = request.environ.get("ydx.client_ip")
    if cached is None:
        cached = request.environ["ydx.client_ip"] = _address(request.remote_addr or "")
    return cached


def is_internal_client() -> bool:
    """True when the caller's address is inside `YDX_INTERNAL_NETWORKS`."""
    try:
        address = ipaddress.ip_address(client_ip())
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped  # type: ignore[assignment]
    return any(address in net for net in _networks(current_app.config["YDX_INTERNAL_NETWORKS"]))
