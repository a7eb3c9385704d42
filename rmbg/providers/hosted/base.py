"""The shell every hosted client shares: its key, its HTTP client, its status,
its price and its one way of sending a request.

A subclass sets the class attributes (id, label, the key's environment
variable, the host's variable and default) and writes only its protocol:
what to send and how to read the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from ...charging import Charge
from ...errors import MissingCredentialsError
from ...pricing import price_estimate
from ...settings import current
from ...types import Cost
from ..base import ProviderStatus
from .client import LazyClient
from .http import Endpoint, ReasonFn, send
from .payload import check_key, read_key, remember
from .retry import Deadline, RetryPolicy

if TYPE_CHECKING:
    import httpx

ENTERED_KEY = "the key you entered"


class HostedClient:
    """Base of the hosted clients: a removal provider (HostedProvider) or a
    background replacer (rmbg.providers.hosted.fal_replace).

    api_key: the key; else the environment variable KEY_ENV at call time.
    base_url: the host; else URL_ENV; else DEFAULT_URL (tests point it at the fakes).
    client: an httpx.Client to use (never closed by us); else one is made
        on first use with explicit timeouts (`timeout`) and closed by close().
    retry: RetryPolicy (deadline, backoff, polling).
    """

    id: str
    label: str
    KEY_ENV: ClassVar[str]
    KEY_PAGE: ClassVar[str]
    KEY_WHAT: ClassVar[str]  # e.g. "a fal.ai API key"
    URL_ENV: ClassVar[str]
    DEFAULT_URL: ClassVar[str]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        retry: RetryPolicy | None = None,
        timeout: Any = None,
    ):
        self._api_key = api_key or None
        self.base_url = (base_url or current().raw(self.URL_ENV) or self.DEFAULT_URL).rstrip("/")
        self.retry = retry or RetryPolicy()
        self._clients = LazyClient(client, timeout)

    def __repr__(self) -> str:
        key = "set" if self._key() else "missing"
        return f"{type(self).__name__}(id={self.id!r}, base_url={self.base_url!r}, key={key})"

    def status(self) -> ProviderStatus:
        if not self._key():
            return ProviderStatus("needs_key", f"needs {self.KEY_ENV} ({self.KEY_WHAT})")
        return ProviderStatus("ready", f"{self.KEY_WHAT.removeprefix('a ').removeprefix('an ')} set")

    def estimate(self) -> Cost:
        return price_estimate(self.id)

    def close(self) -> None:
        """Close the HTTP client if we created it."""
        self._clients.close()

    # --- for subclasses ------------------------------------------------------

    def _key(self) -> str | None:
        return read_key(self._api_key, self.KEY_ENV)

    def _key_hint(self) -> str:
        """Where the key came from, for messages: the caller's key or the variable."""
        return ENTERED_KEY if self._api_key else self.KEY_ENV

    def _secrets(self) -> tuple[str, ...]:
        key = self._key()
        remember(key)  # log lines are scrubbed of it too (payload.SecretFilter)
        return (key,) if key else ()

    def _http(self) -> httpx.Client:
        return self._clients.get()

    def _require_key(self) -> str:
        """The key, or MissingCredentialsError; refused (unechoed) if it cannot be sent."""
        key = self._key()
        if not key:
            raise MissingCredentialsError(self.id, self.KEY_ENV, self.KEY_PAGE)
        check_key(self.id, key, self._key_hint())
        return key

    def _endpoint(
        self,
        reason: ReasonFn,
        classify: Callable[..., Any] | None = None,
        *,
        not_accepted: Callable[[int], bool] | None = None,
        charge_of: Callable[..., Charge] | None = None,
    ) -> Endpoint:
        """The Endpoint of one call. not_accepted: statuses that prove the paid
        request was not accepted (not billed, may be re-sent); charge_of: the
        provider's own reading of an answer to the paid request (rmbg.charging)."""
        extra: dict[str, Any] = {} if not_accepted is None else {"not_accepted": not_accepted}
        return Endpoint(self.id, self._key_hint(), self._secrets(), reason, classify, charge_of=charge_of, **extra)

    def _send(self, endpoint: Endpoint, deadline: Deadline, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """http.send with this client; `paid=True` for the request the vendor bills."""
        return send(self._http(), endpoint, self.retry, deadline, method, url, **kwargs)


class HostedProvider(HostedClient):
    """Base of the hosted removal providers (Provider protocol: options and matte are the subclass's)."""

    kind: ClassVar[Literal["hosted"]] = "hosted"


def with_deadline(retry: RetryPolicy | None, deadline_s: float | None) -> RetryPolicy:
    """A factory's retry policy, with its overall deadline replaced when given."""
    policy = retry or RetryPolicy()
    return policy if deadline_s is None else replace(policy, deadline_s=deadline_s)
