"""The httpx client a hosted provider talks through: explicit timeouts, our
User-Agent, no redirects followed (a redirect could carry the key elsewhere),
made on first use unless one is injected (tests, callers with their own pool).
"""

from __future__ import annotations

import threading

from ..._version import __version__

USER_AGENT = f"rmbg/{__version__} (+https://huggingface.co/spaces)"


def default_timeout(read: float = 60.0):
    """Explicit httpx timeouts: 5 s to connect, `read` s per read."""
    import httpx

    return httpx.Timeout(connect=5.0, read=read, write=30.0, pool=5.0)


def make_client(timeout=None):
    """An httpx.Client with explicit timeouts (used when none is injected)."""
    import httpx

    from ...image.deadline import bound_by_calls, tls_context

    if timeout is None:
        timeout = default_timeout()
    elif isinstance(timeout, (int, float)):
        timeout = default_timeout(float(timeout))
    # the TLS context (its CA bundle) is made once and shared, not loaded again for each client
    headers = {"User-Agent": USER_AGENT}
    # its sockets wait no longer than the call in progress has left (a vendor trickling its answer)
    client = httpx.Client(timeout=timeout, headers=headers, follow_redirects=False, verify=tls_context())
    return bound_by_calls(client)


class LazyClient:
    """The httpx.Client a provider uses: the injected one (never closed by
    us), or one made on first use with explicit timeouts (closed by close())."""

    def __init__(self, client=None, timeout=None):
        from ...image.url_logs import hide_queries

        hide_queries()  # httpx logs each request's URL: never its query (a signed URL's token)
        self._client = client
        self._owned = client is None
        self._timeout = timeout
        self._lock = threading.Lock()

    def get(self):
        with self._lock:
            if self._client is None:
                self._client = make_client(self._timeout)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._owned and self._client is not None:
                self._client.close()
                self._client = None
