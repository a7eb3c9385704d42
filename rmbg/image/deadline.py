"""One deadline for a whole HTTP exchange, headers included.

httpx's timeouts bound each socket operation, not the exchange: a server
that sends one header byte every few seconds never trips a 10 s read
timeout, and holds the request for minutes. This network backend for
httpcore (the pool under httpx) gives every connect, TLS handshake, read
and write at most the time left before one monotonic deadline, and times
out once none is left. Imported only when a URL is fetched.
"""

from __future__ import annotations

import functools
import os
import ssl
import time
import typing

import httpcore
import httpx


def _left(deadline: float, timeout: float | None) -> float:
    """The timeout for one socket operation: at most the time left; none left -> a timeout now."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the overall deadline passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose waits end at `deadline`."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float):
        self.inner, self.deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _left(self.deadline, timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _left(self.deadline, timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self.inner.start_tls(ssl_context, server_hostname, _left(self.deadline, timeout))
        return DeadlineStream(tls, self.deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self.inner.get_extra_info(info)


class DeadlineBackend(httpcore.SyncBackend):
    """httpcore's socket backend, every stream it opens bounded by `deadline`."""

    def __init__(self, deadline: float):
        self.deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = super().connect_tcp(host, port, _left(self.deadline, timeout), local_address, socket_options)
        return DeadlineStream(stream, self.deadline)


def deadline_transport(deadline: float) -> httpx.HTTPTransport:
    """httpx's own transport over a connection pool whose sockets never wait past
    `deadline` (a time.monotonic() value); no proxy, no environment settings."""
    context = tls_context(trust_env=False)
    transport = httpx.HTTPTransport(trust_env=False, verify=context)
    # httpx takes no network backend itself; its pool is httpcore's, which does. The
    # test of a trickling server (tests/test_limits.py) fails if this stops holding.
    transport._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=DeadlineBackend(deadline))
    return transport


def tls_context(*, trust_env: bool = True) -> ssl.SSLContext:
    """httpx's own client TLS context (certifi's CAs; with trust_env, SSL_CERT_FILE or SSL_CERT_DIR
    when set), made once per CA source and shared: loading the CA bundle is most of what making a
    client costs, and every hosted call and URL fetch made its own before."""
    if not trust_env:
        return _tls_context(False, None, None)
    return _tls_context(True, os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None)


@functools.lru_cache(maxsize=8)
def _tls_context(trust_env: bool, cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    # cert_file and cert_dir are the cache key: httpx reads the same two settings itself
    return httpx.create_ssl_context(trust_env=trust_env)
