"""Facts about the current request: the client address and whether it is internal (F21)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from flask import current_app, request


@lru_cache(maxsize=16)
def _networks(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def client_ip() -> str:
    """The caller's address; `X-Forwarded-For` was already unwrapped by ProxyFix for
    exactly `YDX_TRUSTED_PROXIES` proxies, so a client cannot forge it."""
    return request.remote_addr or ""


def is_internal_client() -> bool:
    """True when the caller's address is inside `YDX_INTERNAL_NETWORKS`."""
    try:
        address = ipaddress.ip_address(client_ip())
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped  # type: ignore[assignment]
    return any(address in net for net in _networks(current_app.config["YDX_INTERNAL_NETWORKS"]))
