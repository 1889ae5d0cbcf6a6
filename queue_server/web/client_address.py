"""The client's address that the per-address limits and the audit count, behind a reverse proxy too.

A request's peer is the client unless the peer is one of ``[server] trusted_proxies``. Then the
client is read from the one header the proxies set (``[server] proxy_header``: ``X-Forwarded-For``
or RFC 7239 ``Forwarded``): walking the chain of hops from the right, the first address that is not
itself a trusted proxy. Whatever a client wrote into the header itself stands to the left of what
the proxies appended, so it is never reached unless every hop after it is trusted. The metrics
allow-list keeps checking the direct peer (``metrics.allowed``): a header cannot open ``/metrics``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from aiohttp import web

from ..config import IPNetwork
from .keys import CONFIG

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(text: str) -> IPAddress | None:
    """An address as a peer or a header gives it: ``"203.0.113.7"``, ``"::ffff:10.0.0.1"``, ``"fe80::1%eth0"``,
    ``"[2001:db8::1]:4711"``, ``"192.0.2.43:47011"``; None for ``unknown``, ``_hidden`` and garbage."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    return address


def is_in(address: IPAddress | None, networks: Iterable[IPNetwork]) -> bool:
    """Is ``address`` inside one of ``networks`` (an IPv4 address is never inside an IPv6 network)?"""
    return address is not None and any(address.version == n.version and address in n for n in networks)


def forwarded_hops(request: web.Request, header: str) -> list[str]:
    """The hops the proxies named, left (the first) to right (the last proxy's own peer)."""
    if header == "Forwarded":
        return [hop.get("for", "") for hop in request.forwarded]
    return [part for value in request.headers.getall("X-Forwarded-For", ()) for part in value.split(",")]


def client_of(peer: str, hops: Sequence[str], trusted: Sequence[IPNetwork]) -> str:
    """The client's address from the direct ``peer`` and the forwarded ``hops`` (see the module's doc)."""
    address = parse_address(peer)
    if not is_in(address, trusted):
        return str(address) if address is not None else (peer or "unknown")
    for hop in reversed(hops):
        before, address = address, parse_address(hop)
        if address is None:
            # A trusted proxy that could not name its client (``unknown``, a unix socket, garbage):
            # count the request as that proxy's own rather than guess.
            return str(before)
        if not is_in(address, trusted):
            return str(address)
    return str(address)  # every hop is a trusted proxy (or none was named): the left-most one


def client_address(request: web.Request) -> str:
    """The address per-address limits and the audit count: the peer's, or the client's behind a trusted proxy."""
    server = request.app[CONFIG].server
    peer = request.remote or ""
    if not server.trusted_proxies:
        return client_of(peer, (), ())
    return client_of(peer, forwarded_hops(request, server.proxy_header), server.trusted_proxies)
