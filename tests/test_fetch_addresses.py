"""Every address the URL guard refuses (rmbg.image.addresses): whatever IANA's special-purpose
registries do not mark globally reachable, IPv4 and IPv6 alike, with the IPv4 address an IPv6 one
carries judged as itself; each refusal one sentence naming the address and what it is. Address
literals need no lookup; names reach the same table through a stand-in resolver (no connection is
ever made)."""

from __future__ import annotations

import socket

import pytest

from rmbg.image import fetch
from rmbg.image.addresses import why_not_public
from rmbg.image.fetch import URLRefused

TEREDO_8888 = "2001:0:4136:e378:8000:63bf:f7f7:f7f7"  # Teredo: server 65.54.227.120, client 8.8.8.8
REFUSED = {
    # IPv4
    "0.0.0.0": "0.0.0.0 is an unspecified address",
    "0.1.2.3": "0.1.2.3 is a 'this network' address",
    "10.0.0.1": "10.0.0.1 is a private address",
    "100.64.0.1": "100.64.0.1 is a shared (carrier-grade NAT) address",
    "100.127.255.254": "100.127.255.254 is a shared (carrier-grade NAT) address",
    "127.0.0.2": "127.0.0.2 is a loopback address",
    "169.254.169.254": "169.254.169.254 is a link-local address",
    "172.31.255.1": "172.31.255.1 is a private address",
    "192.0.0.0": "192.0.0.0 is an IETF protocol assignment, not globally reachable",
    "192.0.0.8": "192.0.0.8 is an IETF protocol assignment, not globally reachable",  # Python 3.12.1: "global"
    "192.0.0.11": "192.0.0.11 is an IETF protocol assignment, not globally reachable",
    "192.0.0.170": "192.0.0.170 is an IETF protocol assignment, not globally reachable",
    "192.0.0.255": "192.0.0.255 is an IETF protocol assignment, not globally reachable",
    "192.0.2.1": "192.0.2.1 is a documentation address",
    "192.88.99.1": "192.88.99.1 is a deprecated 6to4 relay anycast address",
    "192.168.1.20": "192.168.1.20 is a private address",
    "198.18.0.1": "198.18.0.1 is a benchmarking address",
    "198.19.255.255": "198.19.255.255 is a benchmarking address",
    "198.51.100.7": "198.51.100.7 is a documentation address",
    "203.0.113.9": "203.0.113.9 is a documentation address",
    "224.0.0.1": "224.0.0.1 is a multicast address",
    "239.255.255.250": "239.255.255.250 is a multicast address",
    "240.0.0.1": "240.0.0.1 is a reserved address",
    "255.255.255.254": "255.255.255.254 is a reserved address",
    "255.255.255.255": "255.255.255.255 is a broadcast address",
    # IPv6
    "::": ":: is an unspecified address",
    "::1": "::1 is a loopback address",
    "::ffff:10.1.2.3": "10.1.2.3 is a private address",  # IPv4-mapped: the IPv4 address it carries
    "::ffff:192.0.0.8": "192.0.0.8 is an IETF protocol assignment, not globally reachable",
    "::10.0.0.5": "10.0.0.5 is a private address",  # IPv4-compatible (deprecated)
    "::8.8.8.8": "::808:808 is a deprecated IPv4-compatible address",
    "64:ff9b::a00:1": "10.0.0.1 is a private address",  # NAT64 of 10.0.0.1
    "64:ff9b::c000:8": "192.0.0.8 is an IETF protocol assignment, not globally reachable",
    "64:ff9b:1::808:808": "64:ff9b:1::808:808 is a local-use NAT64 address",
    "100::1": "100::1 is a discard-only address",
    "2001::1": "0.0.0.0 is an unspecified address",  # Teredo, server 0.0.0.0
    TEREDO_8888: f"{TEREDO_8888} is a Teredo address, not globally reachable",  # server and client public
    "2001:0:4136:e378:8000:63bf:f5ff:fffe": "10.0.0.1 is a private address",  # Teredo, client 10.0.0.1
    "2001:1::4": "2001:1::4 is an IETF protocol assignment, not globally reachable",
    "2001:2::1": "2001:2::1 is a benchmarking address",
    "2001:10::1": "2001:10::1 is a deprecated ORCHID address",
    "2001:100::1": "2001:100::1 is an IETF protocol assignment, not globally reachable",
    "2001:db8::1": "2001:db8::1 is a documentation address",
    "2002:a00:5::1": "10.0.0.5 is a private address",  # 6to4 of 10.0.0.5
    "2002:c000:8::": "192.0.0.8 is an IETF protocol assignment, not globally reachable",
    "2002:c0a8:1::": "192.168.0.1 is a private address",
    "3fff::1": "3fff::1 is a documentation address",
    "5f00::1": "5f00::1 is a reserved address",
    "4000::1": "4000::1 is a reserved address",
    "fc00::1": "fc00::1 is a private (unique local) address",
    "fd12:3456::1": "fd12:3456::1 is a private (unique local) address",
    "fe80::1": "fe80::1 is a link-local address",
    "fe80::1%eth0": "fe80::1 is a link-local address",
    "fec0::1": "fec0::1 is a site-local address",
    "ff02::1": "ff02::1 is a multicast address",
    "ff0e::1": "ff0e::1 is a multicast address",
}

PUBLIC = [
    "8.8.8.8",
    "93.184.216.34",
    "100.63.255.255",  # just below shared address space
    "100.128.0.0",  # just above it
    "192.0.0.9",  # Port Control Protocol anycast
    "192.0.0.10",  # TURN anycast
    "192.31.196.1",  # AS112-v4
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "2606:4700::1111",
    "2001:1::1",
    "2001:1::2",
    "2001:1::3",
    "2001:3::1",  # AMT
    "2001:4:112::1",  # AS112-v6
    "2001:20::1",  # ORCHIDv2
    "2001:30::1",  # drone remote ID
    "2001:200::1",  # past 2001::/23
    "2620:4f:8000::1",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]


@pytest.mark.parametrize("address", list(REFUSED))
def test_every_address_not_globally_reachable_is_refused_with_its_sentence(address):
    assert why_not_public(address) == REFUSED[address]


@pytest.mark.parametrize("address", PUBLIC)
def test_globally_reachable_addresses_pass(address):
    assert why_not_public(address) is None


@pytest.mark.parametrize("address", [a for a in REFUSED if "%" not in a])
def test_a_literal_in_a_url_is_refused_in_one_sentence(monkeypatch, address):
    monkeypatch.delenv("RMBG_URL_ALLOW_HOSTS", raising=False)
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(URLRefused) as refused:
        fetch.check_url(f"http://{host}/a.png")
    assert str(refused.value) == f"Refused to fetch from {host}: {REFUSED[address]}."


@pytest.mark.parametrize("address", ["192.0.0.8", "198.18.0.1", "64:ff9b:1::808:808", "3fff::1", "2001:2::1"])
def test_a_name_resolving_to_one_is_refused_before_any_connection(monkeypatch, address):
    def resolver(host, port, *args, **kwargs):
        assert host == "images.example"
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        public = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))
        return [public, (family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(fetch.socket, "getaddrinfo", resolver)
    monkeypatch.delenv("RMBG_URL_ALLOW_HOSTS", raising=False)
    with pytest.raises(URLRefused) as refused:
        fetch.fetch_image("https://images.example/photo.jpg")
    assert str(refused.value) == f"Refused to fetch from images.example: {REFUSED[address]}."
