"""Which addresses a fetch may connect to: only the globally reachable ones.

The tables follow IANA's IPv4 and IPv6 Special-Purpose Address Registries
(RFC 6890 and its updates): an address is public only when no entry covers it
or the most specific entry that does is marked globally reachable. Multicast,
the reserved 240.0.0.0/4 and every IPv6 address outside 2000::/3 (global
unicast) and NAT64's 64:ff9b::/96 are refused as well. Python's
`ipaddress.is_global` is not asked: its tables differ between Python releases
(3.12.1 calls 192.0.0.8 global) and miss newer entries (3fff::/20).

An IPv6 address that carries an IPv4 address is judged by the IPv4 address it
reaches: IPv4-mapped (::ffff:a.b.c.d, the same socket as a.b.c.d), NAT64
(64:ff9b::a.b.c.d, translated to a.b.c.d) and 6to4 (2002:AABB:CCDD::, relayed
to a.b.c.d). IPv4-compatible (::a.b.c.d, deprecated) and Teredo (2001::/32)
are refused whatever they carry, named by a non-public IPv4 address inside when
there is one.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

# (network, what an address in it is); the most specific entry decides, and None says globally reachable.
V4: tuple[tuple[str, str | None], ...] = (
    ("0.0.0.0/32", "an unspecified address"),
    ("0.0.0.0/8", "a 'this network' address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol assignment, not globally reachable"),
    ("192.0.0.9/32", None),  # Port Control Protocol anycast
    ("192.0.0.10/32", None),  # TURN anycast
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a deprecated 6to4 relay anycast address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("255.255.255.255/32", "a broadcast address"),
)
V6: tuple[tuple[str, str | None], ...] = (
    ("::/0", "a reserved address"),  # outside global unicast, unless a more specific entry says otherwise
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "a deprecated IPv4-compatible address"),
    ("64:ff9b::/96", None),  # NAT64, judged by the IPv4 address it carries
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("fc00::/7", "a private (unique local) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
    ("2000::/3", None),  # global unicast
    ("2001::/23", "an IETF protocol assignment, not globally reachable"),
    ("2001::/32", "a Teredo address, not globally reachable"),
    ("2001:1::1/128", None),  # Port Control Protocol anycast
    ("2001:1::2/128", None),  # TURN anycast
    ("2001:1::3/128", None),  # DNS-SD service registration anycast
    ("2001:2::/48", "a benchmarking address"),
    ("2001:3::/32", None),  # AMT
    ("2001:4:112::/48", None),  # AS112-v6
    ("2001:10::/28", "a deprecated ORCHID address"),
    ("2001:20::/28", None),  # ORCHIDv2
    ("2001:30::/28", None),  # drone remote ID entity tags
    ("2001:db8::/32", "a documentation address"),
    ("2002::/16", None),  # 6to4, judged by the IPv4 address it carries
    ("3fff::/20", "a documentation address"),
)
_V4 = sorted(((IPv4Network(n), w) for n, w in V4), key=lambda e: e[0].prefixlen, reverse=True)
_V6 = sorted(((IPv6Network(n), w) for n, w in V6), key=lambda e: e[0].prefixlen, reverse=True)
_COMPATIBLE, _NAT64 = IPv6Network("::/96"), IPv6Network("64:ff9b::/96")


def _entry(ip: IPv4Address | IPv6Address) -> str | None:
    """What the most specific table entry covering `ip` says (None: globally reachable)."""
    for network, words in _V4 if isinstance(ip, IPv4Address) else _V6:
        if ip in network:
            return words
    return None


def carried(ip: IPv6Address) -> list[IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo's server and client)."""
    low = IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if (ip in _COMPATIBLE and int(ip) > 1) or ip in _NAT64:
        return [low]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    return list(ip.teredo) if ip.teredo is not None else []


def why_not_public(address: str) -> str | None:
    """None for a globally reachable address; else the sentence saying why not
    ("10.0.0.5 is a private address"), about the IPv4 address inside an IPv6
    one when that is the one that is not public."""
    ip = ip_address(address.split("%", 1)[0])
    if isinstance(ip, IPv6Address):
        for inner in carried(ip):
            if (words := _entry(inner)) is not None:
                return f"{inner} is {words}"
        if ip.ipv4_mapped is not None:
            return None  # the socket connects to the IPv4 address itself
    words = _entry(ip)
    return None if words is None else f"{ip} is {words}"
