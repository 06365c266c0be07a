"""Who is asking: a request's client address, seen through the trusted proxies.

Behind a reverse proxy every request comes from the proxy; the proxy names the client
in X-Forwarded-For, appending the address it saw to what the request carried. So the
list is read from its end: each trusted proxy's entry is skipped, and the first address
no trusted proxy owns is the client. A request that does not come from a trusted proxy
is its own client, whatever it claims.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(value: str) -> Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def client_address(request: web.Request, proxies: Sequence[Network]) -> str:
    """Return the address of the client behind a request (through trusted proxies)."""
    peer = _address(request.remote or "")
    if peer is None:
        return request.remote or "unknown"
    client = peer
    if _trusted(peer, proxies):
        hops = ",".join(request.headers.getall("X-Forwarded-For", []))
        for entry in reversed(hops.split(",")):
            hop = _address(entry)
            if hop is None:
                break  # not an address: nothing further left can be believed
            client = hop
            if not _trusted(hop, proxies):
                break
    return str(client)
