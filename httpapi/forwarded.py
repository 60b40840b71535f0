"""Which address a request comes from, behind reverse proxies (HAProxy in front of nodes).

Behind a proxy every connection's peer is the proxy, so a limit per client address, or a
log line, would lump every client together. The proxy names the client in the
`X-Forwarded-For` header, which it appends to: `client, proxy1, proxy2`. But anyone can
send that header, so it is believed only from a proxy we trust (`server.trusted_proxies`):

- When the peer is not a trusted proxy, the client is the peer, and the header is ignored.
- When it is, the client is the rightmost address of the header that is not itself a
  trusted proxy: each trusted proxy vouches for the address to its left, nobody vouches
  for what a client wrote further left.
- When the header runs out (or is missing) with only trusted proxies in it, the client is
  the leftmost of those. An entry that is not an address stops the walk at the trusted
  proxy that passed it on, which is then the client: a made-up entry cannot become a key.

The same rule serves the HTTP endpoint (aiohttp) and the chargers' WebSocket handshake
(websockets): `client_address` takes the peer and the header's values, whichever server
they come from. Addresses come back in canonical text (IPv4-mapped IPv6 as IPv4).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
HEADER = "X-Forwarded-For"
UNKNOWN = "unknown"  # a peer without an address (a Unix socket, a closed transport)


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose `X-Forwarded-For` is believed; empty (the default): nobody's."""

    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """From the setting: addresses or CIDR networks, comma-separated; empty entries are
        skipped. ValueError naming the first entry that is neither (a network with host
        bits set, such as 10.0.0.1/8, is one: it would trust more than it says)."""
        networks = []
        for entry in (part.strip() for part in text.split(",")):
            if not entry:
                continue
            networks.append(_network(entry))
        return cls(tuple(networks))

    def __contains__(self, address: object) -> bool:
        return isinstance(address, IPAddress) and any(address in n for n in self.networks)


def _network(entry: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(entry, strict=True)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an address or a CIDR network") from None
    raise ValueError(f"{entry!r} has host bits set: the network is {loose}")


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: TrustedProxies) -> str:
    """The client's address: the peer's, or from `X-Forwarded-For` (every value of the
    header, in order) when the peer is a trusted proxy. See the module's rule."""
    nearest = _address(peer or "")
    if nearest is None:
        return peer or UNKNOWN
    if nearest not in trusted:
        return str(nearest)
    for entry in _right_to_left(forwarded_for):
        hop = _address(entry)
        if hop is None:
            break
        nearest = hop
        if hop not in trusted:
            break
    return str(nearest)


def _right_to_left(values: Iterable[str]) -> Iterator[str]:
    """The header's entries, the nearest hop first (several headers count as one list)."""
    entries = [entry.strip() for value in values for entry in value.split(",")]
    return reversed(entries)


def _address(text: str) -> IPAddress | None:
    """An address as a proxy writes it (`192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
    `[2001:db8::1]:4711`); IPv4-mapped IPv6 as IPv4; None when it is none of these."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
