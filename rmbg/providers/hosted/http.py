"""Shared HTTP plumbing for hosted providers: retries, errors, data URIs.

Everything here is provider-neutral. A hosted provider builds its requests,
hands them to `send()`, and gets back a 2xx `httpx.Response` or a
`ProviderHTTPError` subclass whose message says what a person can do.

Retry rules (docs/architecture.md, "Hosted clients"), and never paying twice:
- GET/PUT (polls, results, downloads, cancels) are idempotent: retried on
  HTTP 408, 429, every 5xx (except an answer the vendor marks final,
  `Endpoint.final`: a 504 that says the caller's own start timeout
  expired), connection failures and timeouts;
- the paid request (`send(..., paid=True)`, a POST) records where it got to
  in the call's charge meter (rmbg.money.charging) and is sent again only while
  that says it was not billed: the connection could not be opened (nothing
  was sent), or an answer the provider defines as "not accepted, not billed"
  (`Endpoint.not_accepted`: 408 and 429 everywhere; a vendor's 5xx too where
  it documents them as never billed; docs/providers.md). A paid request whose
  connection dropped or timed out after it was sent, or that got a 5xx the
  vendor does not document as unbilled, may have been accepted and billed: it
  is not re-sent, and the error says so;
- never retried: 400, 401, 402, 403, 404, 422 and every other 4xx;
- waits grow exponentially with jitter; a `Retry-After` header is honoured
  (up to `RetryPolicy.max_retry_after` seconds, beyond that we give up);
- every call has an overall deadline (`RetryPolicy.deadline_s`).

Keys never appear in text: every message and body excerpt goes through
`payload.scrub()` with the provider's secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import (
    ProviderAuthError,
    ProviderCreditError,
    ProviderHTTPError,
    ProviderRateLimitError,
    ProviderRejectedError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from ...money.charging import Charge, charge_of_status, current
from .payload import excerpt, scrub
from .retry import Deadline, RetryPolicy, network_words, retry_after_seconds, wait_words

if TYPE_CHECKING:
    import httpx

RETRYABLE_STATUS = frozenset({408, 429})
# The most any answer may be when its caller names no limit: a JSON answer carrying the base64 of the
# largest result image (128 MiB, 4/3 larger in base64) with room to spare; read as it streams, never whole.
MAX_BODY_BYTES = 180 * 2**20


# --- HTTP with retries ----------------------------------------------------------


ReasonFn = Callable[["httpx.Response"], str]


@dataclass(frozen=True)
class Endpoint:
    """Who we are talking to, for messages: provider id, the env var that
    holds its key, and the secrets to scrub."""

    provider_id: str
    key_env: str  # where the key came from, for messages: the vendor's variable, or "the key you entered"
    secrets: tuple[str, ...]
    reason: ReasonFn  # a provider's own error text from a response body
    # Optional: a provider's own reading of an error body (e.g. a vendor's
    # error codes), tried before the mapping by HTTP status.
    classify: Callable[[httpx.Response], ProviderHTTPError | None] | None = None
    # Statuses that prove a POST was not accepted (so not billed): it may be sent again.
    # 408: the server gave up waiting for the request; 429: refused for the rate.
    not_accepted: Callable[[int], bool] = lambda status: status in (408, 429)
    # Optional: what an answer to the paid request says about its charge
    # (rmbg.money.charging); default charge_of_status with `not_accepted` as unbilled.
    charge_of: Callable[[httpx.Response], Charge] | None = None
    # Optional: an answer that sending again cannot change (a vendor's 504 saying the caller's own
    # start timeout ran out), though its status is one that is otherwise retried.
    final: Callable[[httpx.Response], bool] = lambda response: False

    def charge(self, response: httpx.Response) -> Charge:
        if self.charge_of is not None:
            return self.charge_of(response)
        return charge_of_status(response.status_code, self.not_accepted)


def send(
    client: httpx.Client,
    endpoint: Endpoint,
    policy: RetryPolicy,
    deadline: Deadline,
    method: str,
    url: str,
    *,
    max_bytes: int | None = None,
    paid: bool | None = None,
    idempotent: bool | None = None,
    **kwargs,
) -> httpx.Response:
    """One logical request with retries; returns a 2xx response or raises.

    paid: this is the request the vendor bills (a submit): every attempt is
    recorded in the call's charge meter (rmbg.money.charging.current()), and it is
    sent again only while the meter says nothing was billed. Default: a POST
    is paid, anything else is not (a provider that forgets to say so errs on
    the side of keeping the money).
    idempotent: a request that may be repeated safely although its method
    says otherwise (a POST that only reads, such as a vendor's status
    poll); default: GET, PUT, HEAD and DELETE that are not paid.
    max_bytes: refuse a body longer than this (ProviderResponseError, not
    retried), read as it streams in, so an oversized answer is never held
    whole; every body is bounded (MAX_BODY_BYTES when not given).
    A paid request's answer is recorded in the meter as soon as its status
    arrives, before the body is read: an answer the vendor sent with success
    stays billable whatever then happens to its body (too large, cut off).
    """
    import httpx

    max_bytes = MAX_BODY_BYTES if max_bytes is None else max_bytes

    if paid is None:
        paid = method.upper() == "POST"
    if idempotent is None:
        idempotent = method.upper() in ("GET", "PUT", "HEAD", "DELETE")
    idempotent = idempotent and not paid
    meter = current() if paid else None
    attempt = 0
    while True:
        attempt += 1
        if deadline.expired():
            raise timeout_error(endpoint, deadline)
        try:
            response = _request(client, endpoint, method, url, deadline, max_bytes, kwargs, meter)
        except httpx.TimeoutException as exc:
            unsent = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            if meter is not None and not unsent:
                meter.dropped()
            if (unsent or idempotent) and attempt < policy.max_attempts:
                _pause(policy, deadline, policy.wait(attempt, None), endpoint)
                continue
            error = ProviderTimeoutError(
                endpoint.provider_id, f"did not answer in time ({network_words(exc)}); try again later."
            )
            raise _noted(error, meter) from None
        except httpx.TransportError as exc:
            unsent = isinstance(exc, httpx.ConnectError)
            if meter is not None and not unsent:
                meter.dropped()
            retryable = unsent or (idempotent and isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)))
            if retryable and attempt < policy.max_attempts:
                _pause(policy, deadline, policy.wait(attempt, None), endpoint)
                continue
            if not unsent and not idempotent:
                dropped = ProviderUnavailableError(
                    endpoint.provider_id, f"dropped the connection after our request was sent ({network_words(exc)})."
                )
                raise _noted(dropped, meter) from None
            raise ProviderUnavailableError(
                endpoint.provider_id,
                f"could not be reached ({network_words(exc)}). Check your connection or try again later.",
            ) from None
        if response.is_success:
            return response
        unbilled = meter is None or not meter.state.billable
        may_retry = _retryable(response, endpoint) and (
            idempotent or (unbilled and endpoint.not_accepted(response.status_code))
        )
        if may_retry and attempt < policy.max_attempts:
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            wait = policy.wait(attempt, retry_after)
            # a wait past the deadline ends the call with the provider's answer (rate limited, unavailable)
            if (retry_after is None or retry_after <= policy.max_retry_after) and wait < deadline.remaining():
                policy.sleep(wait)
                continue
        raise _noted(http_error(endpoint, response, attempts=attempt), meter)


def _noted(error: ProviderHTTPError, meter) -> ProviderHTTPError:
    """The error of a paid request, saying so when it may have been billed."""
    return error if meter is None else meter.annotate(error)


def _request(
    client: httpx.Client,
    endpoint: Endpoint,
    method: str,
    url: str,
    deadline: Deadline,
    max_bytes: int,
    kwargs: dict,
    meter,
) -> httpx.Response:
    """One attempt, within the time `deadline` leaves in all, headers included (on a client of ours, make_client; a
    caller's own bounds each read only): the body is streamed and counted (after any content decoding, so a
    compressed bomb is caught too); the meter hears the whole answer, or, when its body is refused or cut off,
    its status; transport errors while reading reach send()'s handlers like any other."""
    import httpx

    from ...image.deadline import within

    request = client.build_request(method, url, timeout=_timeout_for(client, deadline), **kwargs)
    with within(deadline.remaining()):
        response = client.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(endpoint, int(declared), max_bytes)
            chunks, total = [], 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise _too_large(endpoint, total, max_bytes)
                chunks.append(chunk)
        except BaseException as exc:
            if meter is not None:  # answered, then its body was refused or cut off: by its status (2xx: may be billed)
                meter.answered(charge_of_status(response.status_code, endpoint.not_accepted))
                if isinstance(exc, ProviderHTTPError):
                    meter.annotate(exc)  # an oversized billed body: the message says it may have been billed
            raise
        finally:
            response.close()
    headers = [
        (k, v) for k, v in response.headers.multi_items() if k.lower() not in ("content-encoding", "content-length")
    ]
    whole = httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=request)
    if meter is not None:
        meter.answered(endpoint.charge(whole))
    return whole


def _too_large(endpoint: Endpoint, size: int, limit: int) -> ProviderResponseError:
    return ProviderResponseError(
        endpoint.provider_id, f"sent {size / 2**20:.1f} MiB or more, over the {limit / 2**20:g} MiB limit; refused."
    )


def _timeout_for(client: httpx.Client, deadline: Deadline):
    """The client's own timeouts, with read/write shortened to the time left."""
    import httpx

    base = client.timeout
    left = max(0.001, deadline.remaining())

    def cut(value):
        return left if value is None else min(value, left)

    return httpx.Timeout(connect=cut(base.connect), read=cut(base.read), write=cut(base.write), pool=cut(base.pool))


def _retryable(response: httpx.Response, endpoint: Endpoint) -> bool:
    status = response.status_code
    return (status in RETRYABLE_STATUS or status >= 500) and not endpoint.final(response)


def _pause(policy: RetryPolicy, deadline: Deadline, seconds: float, endpoint: Endpoint) -> None:
    if seconds >= deadline.remaining():
        raise timeout_error(endpoint, deadline)
    policy.sleep(seconds)  # called even for 0 s, so a recording sleep sees every retry


def timeout_error(endpoint: Endpoint, deadline: Deadline, request_id: str = "") -> ProviderTimeoutError:
    rid = f" (request {request_id})" if request_id else ""
    return ProviderTimeoutError(
        endpoint.provider_id,
        f"timed out after {deadline.policy.deadline_s:g} s{rid}. The provider may be busy; try again later.",
    )


def http_error(endpoint: Endpoint, response: httpx.Response, attempts: int = 1) -> ProviderHTTPError:
    """The right ProviderHTTPError subclass for a non-2xx response."""
    if endpoint.classify is not None and (own := endpoint.classify(response)) is not None:
        return own
    status = response.status_code
    secrets = endpoint.secrets
    reason = scrub(endpoint.reason(response), secrets) or f"HTTP {status}"
    body = excerpt(response.text, secrets)
    pid, env = endpoint.provider_id, endpoint.key_env
    tried = f" after {attempts} attempts" if attempts > 1 else ""
    if status == 401:
        return ProviderAuthError(
            pid, f"the API key was rejected (HTTP 401: {reason}). Check {env}.", status=status, excerpt=body
        )
    if status == 402 or (status == 403 and _is_credit(reason)):
        return ProviderCreditError(
            pid,
            f"the account is out of credit (HTTP {status}: {reason}). Top up your balance.",
            status=status,
            excerpt=body,
        )
    if status == 403:
        return ProviderAuthError(
            pid,
            f"the API key is not allowed to do this (HTTP 403: {reason}). Check {env}.",
            status=status,
            excerpt=body,
        )
    if status in (400, 413, 415, 422):
        return ProviderRejectedError(pid, f"rejected the image (HTTP {status}): {reason}", status=status, excerpt=body)
    if status == 429:
        wait = retry_after_seconds(response.headers.get("retry-after"))
        hint = f" The provider asks to wait {wait_words(wait)}." if wait else ""
        return ProviderRateLimitError(
            pid, f"rate limited (HTTP 429){tried}.{hint} Try again later.", status=status, excerpt=body
        )
    if status == 408 or (status == 504 and endpoint.final(response)):  # the vendor's own timeout ran out
        return ProviderTimeoutError(
            pid, f"timed out on the provider's side (HTTP {status}){tried}: {reason}", status=status, excerpt=body
        )
    if status >= 500:
        return ProviderUnavailableError(
            pid, f"is unavailable (HTTP {status}){tried}: {reason}. Try again later.", status=status, excerpt=body
        )
    return ProviderHTTPError(pid, f"answered HTTP {status}: {reason}", status=status, excerpt=body)


def _is_credit(reason: str) -> bool:
    text = reason.lower()
    return any(word in text for word in ("balance", "credit", "top_up", "top up", "billing"))


def json_body(response: httpx.Response, provider_id: str, what: str, secrets: Iterable[str] = ()):
    """Parsed JSON of a 2xx response; anything else -> ProviderResponseError."""
    try:
        return response.json()
    except ValueError:
        ctype = response.headers.get("content-type", "?")
        raise ProviderResponseError(
            provider_id,
            f"{what} is not JSON (content-type {ctype}).",
            status=response.status_code,
            excerpt=excerpt(response.text, secrets),
        ) from None


def same_origin(url: str, base: str) -> bool:
    """True when `url` is on the same scheme://host:port as `base`; keys are
    only ever sent there."""
    import httpx

    try:
        a, b = httpx.URL(url), httpx.URL(base)
    except (httpx.InvalidURL, TypeError):
        return False
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)
