"""One deadline for a whole HTTP exchange, headers included.

httpx's timeouts bound each socket operation, not the exchange: a server
that sends one header byte every few seconds never trips a 10 s read
timeout, and holds the request for minutes. This network backend for
httpcore (the pool under httpx) gives every connect, TLS handshake, read
and write at most the time left before one monotonic deadline, and times
out once none is left. A URL fetch has one deadline for its pool
(deadline_transport); a hosted provider's client is long-lived, so its pool
reads the deadline of the call in progress on this thread (bound_by_calls,
within). Imported only when a URL is fetched or a hosted call is made.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import ssl
import time
import typing
from collections.abc import Callable, Iterator

import httpcore
import httpx

End = Callable[[], "float | None"]  # the deadline now (a time.monotonic() value); None: none

# The deadline of the hosted call this thread is making (rmbg.providers.hosted.http), for its client's sockets.
_CALL_END: contextvars.ContextVar[float | None] = contextvars.ContextVar("rmbg_call_end", default=None)


def _left(deadline: float | None, timeout: float | None, late: type[Exception] = httpcore.ReadTimeout) -> float | None:
    """The timeout for one socket operation: at most the time left; none left -> `late` now (a ConnectTimeout
    before a connection exists: nothing was sent, which a paid request's retry rule reads from its type)."""
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise late("the overall deadline passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose waits end at the deadline `end()` names."""

    def __init__(self, inner: httpcore.NetworkStream, end: End):
        self.inner, self.end = inner, end

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _left(self.end(), timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _left(self.end(), timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self.inner.start_tls(ssl_context, server_hostname, _left(self.end(), timeout, httpcore.ConnectTimeout))
        return DeadlineStream(tls, self.end)

    def get_extra_info(self, info: str) -> typing.Any:
        return self.inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """A pool's network backend (`inner`, else httpcore's sockets), every stream it opens bounded by `end()`."""

    def __init__(self, end: End, inner: httpcore.NetworkBackend | None = None):
        self.end, self.inner = end, inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(self.end(), timeout, httpcore.ConnectTimeout)
        stream = self.inner.connect_tcp(host, port, left, local_address, socket_options)
        return DeadlineStream(stream, self.end)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[typing.Any] | None = None
    ) -> httpcore.NetworkStream:
        stream = self.inner.connect_unix_socket(
            path, _left(self.end(), timeout, httpcore.ConnectTimeout), socket_options
        )
        return DeadlineStream(stream, self.end)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def deadline_transport(deadline: float) -> httpx.HTTPTransport:
    """httpx's own transport over a connection pool whose sockets never wait past
    `deadline` (a time.monotonic() value); no proxy, no environment settings."""
    context = tls_context(trust_env=False)
    transport = httpx.HTTPTransport(trust_env=False, verify=context)
    # httpx takes no network backend itself; its pool is httpcore's, which does. The
    # test of a trickling server (tests/test_limits.py) fails if this stops holding.
    transport._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=DeadlineBackend(lambda: deadline))
    return transport


def bound_by_calls(client: httpx.Client) -> httpx.Client:
    """`client` (made here, not a caller's), its pools (a proxy's from the environment too) bounded by the
    deadline of the call in progress (within): a hosted answer that trickles ends at its call's deadline
    (tests/test_hosted_deadline.py fails if this stops holding)."""
    for transport in (client._transport, *client._mounts.values()):
        pool = getattr(transport, "_pool", None)
        if isinstance(pool, httpcore.ConnectionPool):  # an HTTP proxy's pool is one too
            pool._network_backend = DeadlineBackend(_CALL_END.get, pool._network_backend)
    return client


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """The sockets of a client bound_by_calls wait at most `seconds` in all while this block runs (this thread)."""
    token = _CALL_END.set(time.monotonic() + max(0.0, seconds))
    try:
        yield
    finally:
        _CALL_END.reset(token)


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
