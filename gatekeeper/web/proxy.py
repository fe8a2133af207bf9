"""Which requests came through a trusted reverse proxy, and who the client really is.

Only a peer in `web_trusted_proxies` is believed about the client's address
(`X-Forwarded-For`), the scheme (`X-Forwarded-Proto`) and, for single sign-on,
who is signed in. The decision is made here, on the connection's own peer, and
stored in the request's state (`peer_trusted`) for the sign-on check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """Parsed CIDRs; raises ValueError naming a bad one."""
    out = []
    for cidr in cidrs:
        try:
            out.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"web_trusted_proxies: {cidr!r} is not an address or network"
            ) from None
    return tuple(out)


def is_trusted(peer: str | None, trusted: tuple[Network, ...]) -> bool:
    if not peer or not trusted:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in trusted)


class TrustedProxies:
    """ASGI middleware: resolves the real client from a trusted proxy's headers."""

    def __init__(self, app: ASGIApp, trusted: tuple[Network, ...]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        peer = client[0] if client else None
        trusted = is_trusted(peer, self.trusted)
        state = scope.setdefault("state", {})
        state["peer_trusted"] = trusted
        state["peer"] = peer
        if trusted:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            forwarded = [h.strip() for h in headers.get("x-forwarded-for", "").split(",")]
            if forwarded and forwarded[-1]:
                # The right-most entry is the one our proxy added: the rest the client wrote.
                scope["client"] = (forwarded[-1], 0)
            proto = headers.get("x-forwarded-proto", "").strip().lower()
            if proto in ("http", "https"):
                scope["scheme"] = proto
        await self.app(scope, receive, send)
