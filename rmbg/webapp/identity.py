"""Who a call belongs to, for the per-visitor spending cap: an identity the
caller cannot choose at will.

- the page and the gradio API: the gradio session (a fresh one per page load
  or client, like opening a new tab; the server-wide daily cap still holds);
- REST (`POST /api/remove`): the client's address. `X-Forwarded-For` is
  believed only when the connection comes from a proxy the operator named in
  RMBG_TRUSTED_PROXIES (addresses or networks, comma-separated; empty by
  default: no proxy is trusted and the header is ignored). The app hands
  that list to uvicorn (its FORWARDED_ALLOW_IPS) before it starts, so the
  address uvicorn reports is the last one that no trusted proxy added;
- MCP: gradio's MCP server runs every tool call through one shared gradio
  client, so the gradio session says nothing about the caller. `McpStamp`
  (ASGI middleware) marks each request to the MCP server with its caller,
  signed with a secret of this process: the SSE session when the caller
  posts to the SSE transport's message route (`session_id`, which that
  transport refuses unless it made it and the stream is open), else its
  address, as REST's (the streamable HTTP transport of gradio's MCP server is
  stateless: it has no sessions, and a `session_id` in its query is no
  identity). A new SSE stream is a new caller, as a new page load is. The stamp travels
  with the request's headers into the tool call, where `call_identity`
  checks the signature; an unsigned or forged stamp counts for nothing.

Like the page's sessions, every identity's total is forgotten after an hour
without calls (rmbg.webapp.spending), so no caller stays blocked until a
restart. The daily cap on the server's own keys is one total across all of
them.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from ..settings import of as settings_of

TRUSTED_PROXIES_ENV = "RMBG_TRUSTED_PROXIES"
UVICORN_TRUST_ENV = "FORWARDED_ALLOW_IPS"
STAMP = "x-rmbg-mcp-caller"
MCP_PATH = "/gradio_api/mcp"
SSE_MESSAGES = (MCP_PATH + "/messages", MCP_PATH + "/messages/")  # where an SSE client posts its calls
_SECRET = secrets.token_bytes(32)  # per process: a stamp is only ever checked by the server that made it


def trusted_proxies(environ: Mapping[str, str]) -> tuple[str, ...]:
    """RMBG_TRUSTED_PROXIES as a tuple of addresses or networks; ValueError
    (naming the entry) for anything else, so a typo never trusts everyone."""
    entries = settings_of(environ).listed(TRUSTED_PROXIES_ENV)
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"{TRUSTED_PROXIES_ENV}: {entry!r} is not an IP address or network (e.g. 10.0.0.0/8, 127.0.0.1)."
            ) from None
    return tuple(entries)


def trust_only(proxies: tuple[str, ...], environ: Any = os.environ) -> None:
    """Tell uvicorn (read when the server starts) to believe X-Forwarded-For
    only from `proxies`; none -> from nobody (uvicorn's own default trusts
    127.0.0.1, which lets any local caller name its own address)."""
    environ[UVICORN_TRUST_ENV] = ",".join(proxies)


def rest_identity(client_host: str | None) -> str:
    """The REST caller's identity: its address as uvicorn resolved it."""
    return f"rest:{client_host or 'unknown'}"


def _sign(caller: str) -> str:
    return hmac.new(_SECRET, caller.encode(), hashlib.sha256).hexdigest()[:32]


def stamp(caller: str) -> str:
    """The header value naming `caller`, signed."""
    return f"{caller}|{_sign(caller)}"


def stamped_caller(value: str | None) -> str | None:
    """The caller a stamp names when its signature holds, else None."""
    caller, _, signature = (value or "").rpartition("|")
    return caller if caller and hmac.compare_digest(signature, _sign(caller)) else None


def mcp_caller(scope: Mapping[str, Any]) -> str:
    """Who an MCP request comes from: its SSE session on the SSE transport's message route, else
    its address (the streamable HTTP transport, whatever its query says). The SSE transport
    answers 404 to a session_id it did not make, before any tool runs, and reads the id as a
    UUID (any spelling of one: so is it here); a query with more than one is keyed by address."""
    client = scope.get("client")
    address = f"mcp:{client[0] if client else 'unknown'}"
    if scope.get("path") not in SSE_MESSAGES:
        return address
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    given = [value for key, value in query if key == "session_id"]
    try:
        return f"mcp:sse:{uuid.UUID(hex=given[0]).hex}" if len(given) == 1 else address
    except ValueError:
        return address


Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class McpStamp:
    """ASGI middleware: every request to the MCP server gets the STAMP header
    naming its caller (any STAMP it brought is dropped first)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http" and str(scope.get("path", "")).startswith(MCP_PATH):
            name = STAMP.encode()
            headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != name]
            headers.append((name, stamp(mcp_caller(scope)).encode("latin-1")))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def call_identity(session_hash: str | None, headers: Mapping[str, str] | None) -> str:
    """The identity of a gradio call (page, gradio API or MCP tool): the MCP
    caller when the call carries a valid stamp, else the gradio session."""
    caller = stamped_caller((headers or {}).get(STAMP))
    return caller or str(session_hash or "anonymous")
