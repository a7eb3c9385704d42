"""The launched app as an MCP server, through the official `mcp` client over streamable HTTP."""

from __future__ import annotations

import asyncio
import base64


def session_run(url: str, work):
    """Run `work(session)` in an initialised MCP client session against the app."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def main():
        async with streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)

    return asyncio.run(asyncio.wait_for(main(), 60))


def data_uri(path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()


INIT = {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
JSON_RPC = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def http_rpc(url: str, method: str, params: dict, query: str = "", path: str = "gradio_api/mcp/") -> dict:
    """One JSON-RPC request over streamable HTTP, as a client writes it by hand (any query it
    likes); the JSON-RPC answer."""
    import json

    import httpx

    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    answer = httpx.post(url + path + query, json=body, headers=JSON_RPC, timeout=120)
    answer.raise_for_status()
    data = [line[5:].strip() for line in answer.text.splitlines() if line.startswith("data:")]
    return json.loads(data[-1] if data else answer.text)


class SseSession:
    """An MCP SSE session opened by hand: its stream stays open while the session is used, its
    messages are posted to the route the server named, under any spelling of its id."""

    def __init__(self, url: str):
        import httpx

        self.url, self.client, self.ids = url, httpx.Client(timeout=120), iter(range(1, 10**6))
        self.stream = self.client.stream("GET", url + "gradio_api/mcp/sse")
        self.lines = self.stream.__enter__().iter_lines()
        self.endpoint = self._event()  # /gradio_api/mcp/messages/?session_id=<32 hex digits>
        self.session_id = self.endpoint.rsplit("=", 1)[1]
        self.request("initialize", INIT)
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _event(self) -> str:
        for line in self.lines:
            if line.startswith("data:"):
                return line[5:].strip()
        raise AssertionError("the SSE stream ended")

    def post(self, body: dict, session_id: str | None = None) -> int:
        path = self.endpoint.split("?", 1)[0].lstrip("/")
        query = {"session_id": session_id or self.session_id}
        return self.client.post(self.url + path, params=query, json=body).status_code

    def request(self, method: str, params: dict, session_id: str | None = None) -> dict:
        """The JSON-RPC answer, as it comes on the stream."""
        import json

        rid = next(self.ids)
        status = self.post({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}, session_id)
        assert status == 202, status
        while (answer := json.loads(self._event())).get("id") != rid:
            pass
        return answer

    def close(self) -> None:
        self.stream.__exit__(None, None, None)
        self.client.close()
