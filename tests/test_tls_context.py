"""Hosted-provider clients and URL fetches share one TLS context (its CA bundle loaded once), made
again only when SSL_CERT_FILE or SSL_CERT_DIR names other CAs; it still checks certificates."""

from __future__ import annotations

import ssl
import time

import certifi

from rmbg.image.deadline import deadline_transport, tls_context
from rmbg.providers.hosted.client import make_client


def _context_of(transport) -> ssl.SSLContext:
    return transport._pool._ssl_context


def test_every_hosted_client_uses_the_one_context(monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with make_client() as first, make_client(5.0) as second:
        shared = _context_of(first._transport)
        assert _context_of(second._transport) is shared is tls_context()
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname


def test_every_fetch_uses_the_one_context_with_no_environment_settings(monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())  # a fetch reads no environment setting
    first, second = (deadline_transport(time.monotonic() + 5) for _ in range(2))
    shared = _context_of(first)
    assert _context_of(second) is shared is tls_context(trust_env=False) is not tls_context()
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    first.close()
    second.close()


def test_other_cas_named_in_the_environment_get_their_own_context(monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    default = tls_context()
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    named = tls_context()
    assert named is not default and tls_context() is named
    with make_client() as client:
        assert _context_of(client._transport) is named
