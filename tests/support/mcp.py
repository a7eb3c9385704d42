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
