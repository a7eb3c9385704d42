"""Images from http(s) URLs, behind a guard against server-side request forgery.

The rules (each refusal is an InvalidImageError that says which):
- http and https only; no user:password@ in the URL;
- the host is resolved and refused when ANY of its addresses is not globally
  reachable by IANA's special-purpose registries: loopback, private,
  link-local (169.254.169.254 included), multicast, reserved, unspecified,
  shared, benchmarking, documentation and the rest (rmbg.image.addresses; an
  IPv6 address carrying an IPv4 one is judged by the IPv4 address);
- the connection goes to the address that was checked, not to a second
  lookup (the URL's host becomes the Host header and the TLS server name, so
  certificates are still verified for it): a DNS answer that changes between
  check and connect cannot slip through;
- redirects are followed by hand, at most 5, each target checked the same way;
- the body is counted while it streams and the download stops past
  `max_bytes` (default 25 MB, as uploads); connect and read timeouts bound
  each wait, and one overall deadline (RMBG_URL_DEADLINE_S, default 30 s)
  bounds the whole fetch, headers and redirects included: every socket
  read is given at most the time left (rmbg.image.deadline), so a server that
  trickles one header byte every few seconds is cut at the deadline;
- the bytes must open as an image (the content is sniffed; Content-Type is
  not trusted); decoding, and the pixel limit before it, is load_image's.

Hosts in `allow_hosts` (or RMBG_URL_ALLOW_HOSTS, comma-separated) skip the
address check: for tests and trusted deployments that fetch from their own
network. The default allows no such host.
"""

from __future__ import annotations

import io
import logging
import socket
import time
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, BinaryIO, TypedDict
from urllib.parse import urljoin, urlsplit

from ..errors import InvalidImageError
from ..settings import current
from .addresses import why_not_public
from .formats import allowed_formats, damaged

if TYPE_CHECKING:  # Python 3.10 has no typing.Unpack; annotations are not evaluated
    import httpx
    from typing_extensions import Unpack

log = logging.getLogger(__name__)
MAX_REDIRECTS = 5
DEFAULT_MAX_BYTES = 25 * 2**20
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0
DEADLINE_S = 30.0


def deadline_default() -> float:
    """The overall deadline of one fetch: RMBG_URL_DEADLINE_S, else DEADLINE_S."""
    return current().number("RMBG_URL_DEADLINE_S", DEADLINE_S)


class URLRefused(InvalidImageError):
    """A URL the guard will not fetch (scheme, credentials, an address that is not public)."""


def shown(url: str) -> str:
    """The URL for messages: scheme, host and path only (a query may hold a signed token)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a broken IPv6 literal: the text before any query
        parts = urlsplit(url.split("?", 1)[0].split("#", 1)[0].replace("[", "").replace("]", ""))
    if not parts.hostname:  # "http:photo.png", "example.com/a.png": the text as written, to the query
        text = url.strip().split("?", 1)[0].split("#", 1)[0]
        text = f"{text.partition(':')[0]}:...@{text.rpartition('@')[2]}" if "@" in text else text
    else:
        port = f":{written}" if (written := _port_text(parts.netloc)) else ""
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        text = f"{parts.scheme + ':' if parts.scheme else ''}//{host}{port}{parts.path}"
    return text if len(text) <= 120 else text[:117] + "..."


def _port_text(netloc: str) -> str:
    """The port as the URL writes it ("" when none): after the last colon past the host."""
    after_host = netloc.rpartition("@")[2].rpartition("]")[2]
    return after_host.partition(":")[2]


def allowed_hosts(extra: Iterable[str] | None = None) -> frozenset[str]:
    env = {h.lower() for h in current().listed("RMBG_URL_ALLOW_HOSTS")}
    return frozenset(env | {h.lower() for h in extra or ()})


def resolve(host: str, port: int, allow: frozenset[str]) -> str:
    """The address to connect to: the first of the host's addresses, after
    every one of them has been checked (unless the host is allowed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise InvalidImageError(f"The host {host} could not be found.") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise InvalidImageError(f"The host {host} has no address.")
    if host.lower() not in allow:
        for address in addresses:
            why = why_not_public(address)
            if why:
                raise URLRefused(f"Refused to fetch from {f'[{host}]' if ':' in host else host}: {why}.")
    return addresses[0]


def _target(url: str, allow: frozenset[str]) -> tuple[str, str, int, str]:
    """(scheme, host, port, address) of a URL the guard accepts."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise URLRefused(f"The URL cannot be read: {shown(url)}") from None
    scheme = parts.scheme.lower()
    if not scheme:
        raise URLRefused(f"The URL must start with http:// or https://: {shown(url) or 'nothing was given'}")
    if scheme not in ("http", "https"):
        raise URLRefused(f"Only http and https URLs are fetched, not {scheme}: {shown(url)}")
    if parts.username is not None or parts.password is not None:
        raise URLRefused("URLs with a user name or password are not fetched.")
    host = parts.hostname
    if not host:
        raise URLRefused(f"The URL has no host: {shown(url)}")
    written = _port_text(parts.netloc)
    if written and not (written.isascii() and written.isdigit()):
        raise URLRefused(f"The URL's port is not a number: {shown(url)}")
    port = int(written) if written else (443 if scheme == "https" else 80)
    if not 1 <= port <= 65535:
        raise URLRefused(f"The URL's port {written} is out of range (1-65535): {shown(url)}")
    return scheme, host, port, resolve(host, port, allow)


def check_url(url: str, allow_hosts: Iterable[str] | None = None) -> None:
    """Refuse (URLRefused, InvalidImageError) a URL this guard would not
    fetch, without fetching it: for URLs handed on to code that fetches by
    itself (gradio's file inputs)."""
    _target(url.strip(), allowed_hosts(allow_hosts))


class FetchLimits(TypedDict, total=False):
    """fetch_bytes's keywords, which fetch_image takes too: the hosts allowed beyond the public ones, the
    byte cap, the connect and read timeouts, one deadline for the whole exchange."""

    allow_hosts: Iterable[str] | None
    max_bytes: int
    connect_timeout: float
    read_timeout: float
    deadline_s: float | None


def fetch_image(url: str, **limits: Unpack[FetchLimits]) -> bytes:
    """The bytes of the image at `url`, fetched under the rules above (`limits`: FetchLimits)."""
    data, content_type, final = fetch_bytes(url, **limits)
    _check_is_image(data, final, content_type)
    return data


class FetchFailed(InvalidImageError):
    """The server could not be reached, failed (5xx, 429) or was too slow:
    `retryable` says whether asking again may help."""

    def __init__(self, message: str, retryable: bool = True, timed_out: bool = False):
        super().__init__(message)
        self.retryable, self.timed_out = retryable, timed_out


class TooLarge(InvalidImageError):
    """The body is over the byte limit: `size` bytes or more (`declared`: said so in Content-Length)."""

    def __init__(self, message: str, size: int, limit: int):
        super().__init__(message)
        self.size, self.limit = size, limit


def fetch_bytes(
    url: str,
    *,
    allow_hosts: Iterable[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    read_timeout: float = READ_TIMEOUT_S,
    deadline_s: float | None = None,
) -> tuple[bytes, str, str]:
    """(body, its Content-Type, the URL it came from after redirects), under the
    rules above except the image check (the caller's, who knows what it expects)."""
    chunks: list[bytes] = []
    content_type, final = _fetch(
        url, chunks.append, allow_hosts, max_bytes, (connect_timeout, read_timeout), deadline_s, "image/*"
    )
    return b"".join(chunks), content_type, final


def fetch_file(
    url: str,
    into: BinaryIO,
    *,
    allow_hosts: Iterable[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_s: float | None = None,
    accept: str = "*/*",
) -> tuple[int, str, str]:
    """(bytes written, Content-Type, final URL): the body streamed into the open
    file `into` as it arrives (a large file, a video, is never held whole),
    under the same rules as fetch_bytes. A refused or failed fetch may leave
    part of the body in `into`: the caller truncates or deletes it."""
    written = [0]

    def write(chunk: bytes) -> None:
        into.write(chunk)
        written[0] += len(chunk)

    content_type, final = _fetch(
        url, write, allow_hosts, max_bytes, (CONNECT_TIMEOUT_S, READ_TIMEOUT_S), deadline_s, accept
    )
    return written[0], content_type, final


def _fetch(
    url: str,
    write: Callable[[bytes], object],
    allow_hosts: Iterable[str] | None,
    max_bytes: int,
    timeouts: tuple[float, float],
    deadline_s: float | None,
    accept: str,
) -> tuple[str, str]:
    """Fetch `url` hop by hop (every hop through the guard), handing the body's
    chunks to `write`; (Content-Type, final URL)."""
    import httpx

    from .deadline import deadline_transport

    allow = allowed_hosts(allow_hosts)
    deadline = time.monotonic() + (deadline_default() if deadline_s is None else deadline_s)
    connect, read = timeouts
    timeout = httpx.Timeout(connect=connect, read=read, write=read, pool=connect)
    current = url.strip()
    transport = deadline_transport(deadline)
    # Each request goes to the transport itself: the client's redirect handling, which reads
    # the Location before this guard does (and raised on a data: or mailto: one), never runs.
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, transport=transport) as client:
        for _ in range(MAX_REDIRECTS + 1):
            scheme, host, port, address = _target(current, allow)
            parts = urlsplit(current)
            literal = f"[{address}]" if ":" in address else address
            pinned = parts._replace(netloc=f"{literal}:{port}").geturl()
            default_port = port == (443 if scheme == "https" else 80)
            headers = {"Host": host if default_port else f"{host}:{port}", "Accept": accept}
            extensions = {"sni_hostname": host} if scheme == "https" else {}
            try:
                request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
            except httpx.InvalidURL:
                raise URLRefused(f"The URL cannot be read: {shown(current)}") from None
            try:
                response = transport.handle_request(request)
                response.request = request
                try:
                    log.info("GET %s: HTTP %s", shown(current), response.status_code)
                    if response.is_redirect:
                        current = _redirected(current, response.headers.get("location"))
                        continue
                    if response.status_code >= 400:
                        status = response.status_code
                        raise FetchFailed(
                            f"{shown(current)} answered HTTP {status}.", retryable=status >= 500 or status in (408, 429)
                        )
                    _read(response, max_bytes, deadline, current, write)
                finally:
                    response.close()
            except httpx.TimeoutException:
                raise FetchFailed(f"{shown(current)} did not answer in time.", timed_out=True) from None
            except httpx.HTTPError as exc:
                raise FetchFailed(f"{shown(current)} could not be fetched: {type(exc).__name__}.") from None
            return response.headers.get("content-type", ""), current
    raise InvalidImageError(f"{shown(url)} redirected more than {MAX_REDIRECTS} times.")


def _redirected(current: str, location: str | None) -> str:
    """The URL a redirect from `current` names, checked on the next hop by _target as the first was."""
    import httpx

    if not location:
        raise InvalidImageError(f"{shown(current)} redirected without a Location.")
    try:
        target = urljoin(current, location.strip())
        if urlsplit(target).scheme.lower() in ("http", "https"):
            httpx.URL(target)  # a control character, a broken IPv6 literal or port: no request can be made of it
    except (ValueError, httpx.InvalidURL):
        raise URLRefused(f"{shown(current)} redirected to a URL that cannot be read.") from None
    return target


def _read(
    response: httpx.Response, max_bytes: int, deadline: float, url: str, write: Callable[[bytes], object]
) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(
            f"{shown(url)} is {int(declared) / 2**20:.3g} MB, over the {max_bytes / 2**20:.3g} MB limit.",
            int(declared),
            max_bytes,
        )
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(
                f"{shown(url)} is over the {max_bytes / 2**20:.3g} MB limit (stopped reading).", size, max_bytes
            )
        if time.monotonic() > deadline:
            raise FetchFailed(f"{shown(url)} took too long to download.", timed_out=True)
        write(chunk)


def _check_is_image(data: bytes, url: str, content_type: str) -> None:
    from PIL import Image, UnidentifiedImageError

    from .formats import embedded_size, register_optional_openers

    register_optional_openers(data[:64])
    try:
        if embedded_size(io.BytesIO(data)) is not None:
            return  # an icon, whose image Pillow would decode on opening: load_image checks its size first
    except InvalidImageError:
        raise InvalidImageError(f"{shown(url)} is not an image we can read.") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=allowed_formats()):
                pass
    except Image.DecompressionBombError:
        return  # an image, too large: load_image says so in its words
    except UnidentifiedImageError:
        said = f" (it said {content_type.split(';')[0]})" if content_type else ""
        raise InvalidImageError(f"{shown(url)} is not an image we can read{said}.") from None
    except (OSError, SyntaxError, ValueError):  # an image's header cut short: load_image's one sentence
        raise InvalidImageError(damaged(f"The image at {shown(url)}")) from None
