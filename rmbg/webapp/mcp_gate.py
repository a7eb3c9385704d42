"""Only the listed MCP tools can be called.

gradio's MCP server lists the endpoints marked as tools (here one,
`remove_background`), but its tools/call ran any public endpoint named by its
function (`remove`, `rerender`, `compare`...), and it runs every call through
one shared gradio client: one gradio session for all MCP callers, so a page
endpoint's gr.State held one caller's photo for the next. `McpGate` (ASGI
middleware in front of the MCP routes) makes sure, before the first MCP
request reaches gradio's server, that the server knows only the tools it
lists and that none of them keeps session state (gr.State in or out); a
tools/call for any other name gets a JSON-RPC error (invalid params), on the
streamable HTTP and SSE transports alike. That shared client is built once
(`one_loopback_client`), not once per first call of a burst. No gradio import
here: the server is gradio's, read through its attributes.

A tool's arguments are checked here too, before the MCP SDK checks them against the tool's schema
(whose refusal read "Input validation error: 'maybe' is not of type 'boolean'"): each against the
kind its parameter is annotated with (rmbg.webapp.inputs, as REST checks its fields), so a value of
the wrong kind gets REST's sentence ("crop must be true or false, got 'maybe'."); a value REST takes
in another spelling ("true" for a flag, "0.5" for a number) is passed on as the schema's type, and a
margin given as a number as the text that means what the number means (rmbg.image.framing.margin_text:
0.1 is "10%", 40 is "40px"), as REST and Python read it.

A request's body is held to what every other JSON door holds it to (rmbg.webapp.callbody, REST)
before the MCP SDK reads it: at most max_body() (a larger one is a 413 before it is read, or as soon
as it passes the limit, and the connection closed), uncompressed (any Content-Encoding: a 415), each
key once in every object (a 422 naming the key; the SDK kept the last). Each is answered in
REST's sentence as a JSON-RPC error (-32600, the request's id where it can be read, else null); an
accepted body goes on to gradio byte for byte.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import RmbgError
from .callbody import COMPRESSED, encoded, parse, read_body, repeated, replaying, reply_json
from .file_limits import image_max_bytes, request_over

MCP_PATH = "/gradio_api/mcp"
INVALID_REQUEST = -32600  # JSON-RPC's code for a request that is not a valid one

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def callable_tools(server: Any) -> dict[str, str]:
    """The tools gradio's MCP server `server` lists (no _mcp_type, or "tool"), less any that
    keeps gradio session state (a `stateful` block in or out, as gradio marks gr.State):
    {tool name: endpoint}."""
    kept = {}
    for tool, endpoint in server.tool_to_endpoint.items():
        fn = server.get_block_fn_from_endpoint_name(endpoint)
        if fn is None or fn.fn is None or getattr(fn.fn, "_mcp_type", "tool") != "tool":
            continue
        if not any(getattr(c, "stateful", False) for c in (*fn.inputs, *fn.outputs)):
            kept[tool] = endpoint
    return kept


def only_listed_tools(server: Any) -> None:
    """Make gradio's MCP server `server` call only callable_tools(server); once per server."""
    if getattr(server, "_rmbg_gated", False):
        return
    from mcp import types
    from mcp.shared.exceptions import McpError

    server.tool_to_endpoint = callable_tools(server)
    handlers = server.mcp_server.request_handlers
    call_tool = handlers[types.CallToolRequest]

    async def gated(request: types.CallToolRequest) -> Any:
        if request.params.name not in server.tool_to_endpoint:
            offered = ", ".join(sorted(server.tool_to_endpoint)) or "none"
            said = f"There is no MCP tool {request.params.name[:64]!r} here; the tools are: {offered} (see tools/list)."
            raise McpError(types.ErrorData(code=types.INVALID_PARAMS, message=said))
        try:
            request.params.arguments = read_arguments(server, request.params.name, request.params.arguments or {})
        except RmbgError as exc:  # REST's sentence for the same value, as the tool's own refusals are said
            refused = types.CallToolResult(content=[types.TextContent(type="text", text=str(exc))], isError=True)
            return types.ServerResult(refused)
        return await call_tool(request)

    handlers[types.CallToolRequest] = gated
    one_loopback_client(server)
    server._rmbg_gated = True


def one_loopback_client(server: Any) -> None:
    """Build gradio's loopback client (its tool calls go through the app's queue over HTTP) once,
    however many first calls arrive together: gradio built one per concurrent first call, each
    fetching the page's config and API description (0.4 MB) with httpx's 5-second timeout, and on
    a busy machine six at once took 6 s each, so a burst of first calls could fail together."""
    build = getattr(server, "_get_or_create_client", None)
    if build is None:
        return
    building = threading.Lock()

    def once() -> Any:
        with building:
            return build()

    server._get_or_create_client = once


def read_arguments(server: Any, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` of `tool` checked as REST checks its fields (an RmbgError with REST's sentence),
    each in the type the tool's schema gives it."""
    from ..image.framing import margin_text
    from .inputs import checks_of, number_of
    from .look import flag

    fn = server.get_block_fn_from_endpoint_name(server.tool_to_endpoint[tool]).fn
    checks = checks_of(getattr(fn, "__wrapped__", fn))
    schema = server.get_input_schema(tool)[0].get("properties", {})
    read = dict(arguments)
    for name, value in arguments.items():
        if name in checks:
            checks[name](name, value)
        kind = schema.get(name, {}).get("type") if isinstance(schema.get(name), dict) else None
        if kind == "boolean" and not isinstance(value, bool):
            read[name] = flag(value, name)
        elif kind in ("number", "integer") and isinstance(value, str):
            number = number_of(value)
            if number is not None:
                read[name] = number
            elif not value.strip():
                del read[name]  # blank: the default, as REST reads it
        elif kind == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
            # a margin (checked above: the one text field that takes a number): the number's meaning,
            # framing's (0.1 is 10 %, 40 is pixels), in its text; "0.1" would be read as pixels
            read[name] = margin_text(value) if name == "margin" else str(value)
    return read


class McpGate:
    """ASGI middleware (`Middleware(McpGate, demo=demo)`): gates the demo's MCP server
    (only_listed_tools) before any request to it passes on."""

    def __init__(self, app: Any, demo: Any):
        self.app, self.demo = app, demo

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http" and str(scope.get("path", "")).startswith(MCP_PATH):
            server = getattr(self.demo, "mcp_server_obj", None)
            if server is not None:
                only_listed_tools(server)
            if scope.get("method") == "POST":
                checked = await checked_body(scope, receive, send)
                if checked is None:
                    return
                receive = checked
        await self.app(scope, receive, send)


def max_body() -> int:
    """The most an MCP request's body may be: REST's limit for a JSON body (rmbg.webapp.rest.body), the
    image file limit (RMBG_IMAGE_MAX_MB), as the tool's image comes in the body as a data: URI."""
    return image_max_bytes()


async def checked_body(scope: dict, receive: Receive, send: Send) -> Receive | None:
    """The `receive` that replays an MCP request's body to the app behind, once it is read and passes
    (within max_body(), uncompressed, each key once); None when it was refused here (answered) or the
    client went away."""
    limit = max_body()
    declared = next((v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"), b"").strip()
    if encoded(scope):
        await refuse(send, 415, COMPRESSED)
        return None
    if declared.isdigit() and int(declared) > limit:
        await refuse(send, 413, request_over(limit))
        return None
    raw, whole = await read_body(receive, limit, drain=limit)  # the rest of a larger one never read
    if raw is None:
        return None
    if not whole:  # no length said: refused as the limit is passed
        await refuse(send, 413, request_over(limit))
        return None
    body = parse(raw)
    if body.repeated is not None:
        await refuse(send, 422, repeated(body.repeated), request_id(raw))
        return None
    return replaying(raw, receive, scope)


def request_id(raw: bytes) -> str | int | None:
    """A JSON-RPC request's id, where its body gives one id (a string or a whole number); else None."""
    try:
        top = json.loads(raw, object_pairs_hook=tuple)  # each object its pairs, so a key given twice is seen
    except (ValueError, RecursionError):
        return None
    ids = [value for key, value in top if key == "id"] if isinstance(top, tuple) else []
    if len(ids) == 1 and isinstance(ids[0], (str, int)) and not isinstance(ids[0], bool):
        return ids[0]
    return None


async def refuse(send: Send, status: int, message: str, rid: str | int | None = None) -> None:
    """Answer a JSON-RPC error (invalid request) with HTTP `status`, and close the connection after
    (the body may be unread)."""
    error = {"code": INVALID_REQUEST, "message": message}
    await reply_json(send, status, {"jsonrpc": "2.0", "id": rid, "error": error}, close=True)
