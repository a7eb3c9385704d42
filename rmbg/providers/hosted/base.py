"""The shell every hosted client shares: its key, its HTTP client, its status,
its price and its one way of sending a request.

A subclass sets the class attributes (id, label, the key's environment
variable, the host's variable and default) and writes only its protocol:
what to send and how to read the answer.

How a client reaches its service is one value, a Connection (the key, the
host, the HTTP client, the retry policy, the timeouts and the overall
deadline): `connected` turns a registry factory's keywords into it, so a
factory is `def fal_bria(connection: Connection) -> FalBria`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from ...errors import MissingCredentialsError, without_credentials
from ...money.charging import Charge
from ...money.pricing import price_estimate
from ...settings import current
from ...types import Cost
from ..base import ProviderStatus
from .client import LazyClient
from .http import Endpoint, ReasonFn, send
from .payload import check_key, read_key, remember
from .retry import Deadline, RetryPolicy

if TYPE_CHECKING:
    import httpx

    from ...vendors import Vendor

ENTERED_KEY = "the key you entered"
T = TypeVar("T")


@dataclass(frozen=True)
class Connection:
    """How a hosted client reaches its service; every field optional.

    api_key: the key; else the vendor's environment variable at call time.
    base_url: the host; else its URL variable; else its default (tests point it at the fakes).
    client: an httpx.Client to use (never closed by us); else one is made on
        first use with explicit timeouts (`timeout`) and closed by close().
    retry: RetryPolicy (deadline, backoff, polling); deadline_s replaces its
        overall deadline when given.
    """

    api_key: str | None = field(default=None, repr=False)  # never shown
    base_url: str | None = None
    client: Any = None
    retry: RetryPolicy | None = None
    timeout: Any = None
    deadline_s: float | None = None

    def policy(self) -> RetryPolicy:
        """The retry policy, with deadline_s as its overall deadline when given."""
        return with_deadline(self.retry, self.deadline_s)


CONNECTION_FIELDS = tuple(f.name for f in fields(Connection))


def connected(build: Callable[..., T]) -> Callable[..., T]:
    """A registry factory from `build(connection, *args, **options)`: the
    keywords named as Connection's fields (api_key=, base_url=, ...; what
    provider_config and get_provider pass) become one Connection."""

    @functools.wraps(build)
    def factory(*args: Any, **kwargs: Any) -> T:
        connection = Connection(**{name: kwargs.pop(name) for name in CONNECTION_FIELDS if name in kwargs})
        return build(connection, *args, **kwargs)

    return factory


class HostedClient:
    """Base of the hosted clients: a removal provider (HostedProvider) or a
    background replacer (rmbg.providers.hosted.fal_replace).

    Built from a Connection, or from its fields by name (FalBria(api_key=...,
    base_url=...)): the key (else KEY_ENV at call time), the host (else
    URL_ENV, else DEFAULT_URL), the HTTP client, the retry policy.
    """

    id: str
    label: str
    VENDOR: ClassVar[Vendor]  # whose key it is (rmbg.vendors): KEY_ENV, KEY_PAGE and KEY_WHAT come from it
    KEY_ENV: ClassVar[str]
    KEY_PAGE: ClassVar[str]
    KEY_WHAT: ClassVar[str]  # e.g. "a fal.ai API key"
    URL_ENV: ClassVar[str]
    DEFAULT_URL: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "VENDOR" in vars(cls):
            cls.KEY_ENV, cls.KEY_PAGE, cls.KEY_WHAT = cls.VENDOR.key_env, cls.VENDOR.help, cls.VENDOR.what

    def __init__(self, connection: Connection | None = None, /, **settings: Any):
        if connection is not None and settings:
            raise TypeError(f"{type(self).__name__}: pass a Connection or its fields, not both")
        connection = connection or Connection(**settings)
        self._api_key = connection.api_key or None
        self.base_url = (connection.base_url or current().raw(self.URL_ENV) or self.DEFAULT_URL).rstrip("/")
        self.retry = connection.policy()
        self._clients = LazyClient(connection.client, connection.timeout)

    def __repr__(self) -> str:
        """Its class, id and endpoint, without the key or the endpoint's user name and password (a proxy's,
        from RMBG_*_URL): a repr reaches logs and tracebacks."""
        key = "set" if self._key() else "missing"
        return f"{type(self).__name__}(id={self.id!r}, base_url={without_credentials(self.base_url)!r}, key={key})"

    def status(self) -> ProviderStatus:
        if not self._key():
            return ProviderStatus("needs_key", f"needs {self.KEY_ENV} ({self.KEY_WHAT})")
        return ProviderStatus("ready", f"{self.KEY_WHAT.removeprefix('a ').removeprefix('an ')} set")

    def estimate(self) -> Cost:
        return price_estimate(self.id)

    def close(self) -> None:
        """Close the HTTP client if we created it."""
        self._clients.close()

    def key_scope(self) -> str:
        """Whose account pays this client's calls: a digest of its host and key (never the key itself;
        salted per process, as every cache that keeps paid answers is the process's own). What a
        paid answer is kept under beside its input (rmbg.cache.payer_scope): a matte or clip one key
        paid for is not handed to a caller who gave another key, or a made-up one."""
        return key_digest(self.base_url, self._key() or "")

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
        final: Callable[..., bool] | None = None,
    ) -> Endpoint:
        """The Endpoint of one call. not_accepted: statuses that prove the paid
        request was not accepted (not billed, may be re-sent); charge_of: the
        provider's own reading of an answer to the paid request (rmbg.money.charging);
        final: answers that sending again cannot change (http.Endpoint.final)."""
        extra: dict[str, Any] = {} if not_accepted is None else {"not_accepted": not_accepted}
        if final is not None:
            extra["final"] = final
        return Endpoint(self.id, self._key_hint(), self._secrets(), reason, classify, charge_of=charge_of, **extra)

    def _send(self, endpoint: Endpoint, deadline: Deadline, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """http.send with this client; `paid=True` for the request the vendor bills."""
        return send(self._http(), endpoint, self.retry, deadline, method, url, **kwargs)

    def call(
        self,
        reason: ReasonFn,
        *,
        not_accepted: Callable[[int], bool] | None = None,
        charge_of: Callable[..., Charge] | None = None,
        final: Callable[..., bool] | None = None,
    ) -> Call:
        """One call's way out (Call), for a helper that speaks a vendor's protocol on this client's
        behalf (fal's queue, rmbg.providers.hosted.fal): the key checked first (MissingCredentialsError
        before anything is sent), then the call's Endpoint and its deadline, which starts now."""
        key = self._require_key()
        endpoint = self._endpoint(reason, not_accepted=not_accepted, charge_of=charge_of, final=final)
        return Call(key, endpoint, Deadline(self.retry), self._http(), self.retry)


_SCOPE_SALT = secrets.token_bytes(32)


def key_digest(*parts: str) -> str:
    """A digest of an account's host and credentials, salted for this process (HostedClient.key_scope)."""
    return hmac.new(_SCOPE_SALT, "\n".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Call:
    """What a helper needs to send one call for a client (HostedClient.call), and nothing of the
    client itself: the key, the Endpoint (its reason for errors, its secrets, its reading of a
    charge), the call's deadline, the HTTP client and the retry policy."""

    key: str = field(repr=False)  # never shown
    endpoint: Endpoint
    deadline: Deadline
    http: httpx.Client
    retry: RetryPolicy

    def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """http.send within the call's deadline; `paid=True` for the request the vendor bills."""
        return send(self.http, self.endpoint, self.retry, self.deadline, method, url, **kwargs)


class HostedProvider(HostedClient):
    """Base of the hosted removal providers (Provider protocol: options and matte are the subclass's)."""

    kind: ClassVar[Literal["hosted"]] = "hosted"


def with_deadline(retry: RetryPolicy | None, deadline_s: float | None) -> RetryPolicy:
    """A factory's retry policy, with its overall deadline replaced when given."""
    policy = retry or RetryPolicy()
    return policy if deadline_s is None else replace(policy, deadline_s=deadline_s)
