"""Identities the spending caps key on (rmbg.webapp.identity), against the
launched app: a REST caller cannot mint new identities with X-Forwarded-For,
each MCP session has its own cap, and the server-wide daily cap holds across
every door at once. Paid calls are counted at the fake fal server."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import threading
from decimal import Decimal

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx
import numpy as np
import pytest
from PIL import Image

from rmbg.errors import BudgetError
from rmbg.webapp.identity import STAMP, call_identity, stamp, trusted_proxies
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal import FalFake
from tests.fakes.runware import RunwareFake
from tests.support.app import app_config, serve


@pytest.fixture(scope="module")
def fakes():
    with FalFake() as fal, RunwareFake() as runware:
        yield fal, runware


@pytest.fixture(autouse=True)
def _fresh(fakes):
    for fake in fakes:
        fake.reset()


def posts(fal: FalFake) -> int:
    return sum(1 for call in fal.calls if call.method == "POST")


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def rest(base: str, seed: int, key: str | None = FAL_KEY, **headers: str) -> int:
    files = {"image": ("photo.png", png(seed), "image/png")}
    sent = {**({"X-Fal-Key": key} if key else {}), **headers}
    return httpx.post(
        base + "api/remove", files=files, data={"provider": "fal-bria"}, headers=sent, timeout=60
    ).status_code


def test_trusted_proxies_are_addresses_or_networks():
    assert trusted_proxies({"RMBG_TRUSTED_PROXIES": " 10.0.0.0/8, 127.0.0.1 "}) == ("10.0.0.0/8", "127.0.0.1")
    assert trusted_proxies({}) == ()
    with pytest.raises(ValueError, match="'\\*' is not an IP address or network"):
        trusted_proxies({"RMBG_TRUSTED_PROXIES": "*"})


def test_an_mcp_call_is_its_signed_caller_and_anything_else_its_gradio_session():
    assert call_identity("abc", {STAMP: stamp("mcp:203.0.113.7")}) == "mcp:203.0.113.7"
    assert call_identity("abc", {STAMP: "mcp:203.0.113.7|" + "0" * 32}) == "abc"  # forged: not ours
    assert call_identity("abc", {STAMP: "mcp:203.0.113.7"}) == "abc"
    assert call_identity(None, None) == "anonymous"


def test_x_forwarded_for_does_not_make_a_new_rest_visitor(fakes):
    """Defect 4: a new X-Forwarded-For per call got a fresh per-visitor cap every time."""
    fal, _ = fakes
    with serve(app_config(*fakes, cap_usd=Decimal("0.10"))) as base:
        codes = [rest(base, i, **{"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(12)]
    assert codes == [200] * 5 + [402] * 7 and posts(fal) == 5  # 5 x $0.018 within $0.10


def test_x_forwarded_for_is_believed_from_a_configured_proxy(fakes):
    fal, _ = fakes
    with serve(app_config(*fakes, cap_usd=Decimal("0.05"), trusted_proxies=("127.0.0.1",))) as base:
        codes = [rest(base, i, **{"X-Forwarded-For": f"203.0.113.{i % 2}"}) for i in range(6)]
    assert codes == [200, 200, 200, 200, 402, 402] and posts(fal) == 4  # two visitors, two calls each


SEEDS = iter(range(1000, 10**6))  # every call a new image: a cached matte would cost nothing


async def mcp_calls(url: str, n: int, key: str | None = FAL_KEY, sse: bool = False) -> list[str]:
    """n concurrent fal-bria calls in one new MCP client session (streamable
    HTTP, or SSE), each on a new image: "paid" for each that was, else its error's text."""
    from mcp import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamablehttp_client

    args = [
        {
            "image": "data:image/png;base64," + base64.b64encode(png(next(SEEDS))).decode(),
            "provider": "fal-bria",
            **({"fal_key": key} if key else {}),
        }
        for _ in range(n)
    ]
    transport = sse_client(url + "gradio_api/mcp/sse") if sse else streamablehttp_client(url + "gradio_api/mcp/")
    async with transport as streams:
        async with ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            results = await asyncio.gather(*(session.call_tool("remove_background", one) for one in args))
    return [" ".join(getattr(c, "text", "") for c in r.content) if r.isError else "paid" for r in results]


def run_mcp(url: str, n: int, **kwargs) -> list[str]:
    return asyncio.run(asyncio.wait_for(mcp_calls(url, n, **kwargs), 120))


@pytest.mark.slow  # MCP sessions against a launched app and the fakes: 14-20 s on 2 cores
def test_mcp_callers_have_their_own_caps_not_one_shared_session(fakes):
    """Defect 4: every MCP caller shared one gradio client, and concurrent first calls were each paid.
    Streamable HTTP (stateless in gradio): the caller is its address; SSE: its session."""
    pytest.importorskip("mcp")
    fal, _ = fakes
    with serve(app_config(*fakes, cap_usd=Decimal("0.05"))) as url:
        first = run_mcp(url, 6)  # concurrent first calls of one caller
        again = run_mcp(url, 2)  # the same address, a new client session: the same cap
        sse_a = run_mcp(url, 3, sse=True)
        sse_b = run_mcp(url, 3, sse=True)
    paid = [first.count("paid"), again.count("paid"), sse_a.count("paid"), sse_b.count("paid")]
    assert paid == [2, 0, 2, 2], [first, again, sse_a, sse_b]
    assert posts(fal) == 6


def test_an_idle_identity_is_forgotten_like_a_page_session():
    from rmbg.webapp.spending import Ledger
    from tests.support.ledgers import hold_exactly

    now = [1000.0]
    ledger = Ledger(Decimal("0.05"), Decimal(10), clock=lambda: now[0], idle_s=3600)
    held = hold_exactly(ledger, "mcp:203.0.113.7", "fal-bria", Decimal("0.04"), server_key=False)
    now[0] += 7200
    assert ledger.session_spent("mcp:203.0.113.7") == Decimal("0.04")  # a call in flight: kept
    ledger.policy.settle(held, Decimal("0.04"))
    with pytest.raises(BudgetError):
        hold_exactly(ledger, "mcp:203.0.113.7", "fal-bria", Decimal("0.04"), server_key=False)
    now[0] += 3601
    assert ledger.session_spent("mcp:203.0.113.7") == 0
    hold_exactly(ledger, "mcp:203.0.113.7", "fal-bria", Decimal("0.04"), server_key=False)


def test_the_daily_cap_holds_across_every_door_at_once(fakes, monkeypatch, tmp_path):
    """The page's API, the gradio tool endpoint, REST and MCP, all on the server's key, fired together."""
    pytest.importorskip("mcp")
    from gradio_client import Client, handle_file

    fal, _ = fakes
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    config = app_config(*fakes, allow_server_keys=True, daily_cap_usd=Decimal("0.08"))
    paid: list[str] = []
    refused: list[str] = []
    with serve(config) as url:
        start = threading.Barrier(4)
        # each door's gradio client made before the doors fire, one at a time: made together, each fetches the
        # page's config and API description within httpx's 5 s timeout, which a loaded machine passed ("timed out")
        page_client, tool_client = Client(url, verbose=False), Client(url, verbose=False)

        def page() -> None:
            start.wait()
            for _ in range(3):
                try:
                    path = tmp_path / f"page{next(SEEDS)}.png"
                    path.write_bytes(png(next(SEEDS)))
                    page_client.predict(image=handle_file(str(path)), provider="fal-bria", api_name="/remove")
                    paid.append("page")
                except Exception as exc:  # noqa: BLE001 - the cap's refusal, as gradio_client raises it
                    refused.append(str(exc))

        def tool() -> None:
            start.wait()
            for _ in range(3):
                try:
                    uri = "data:image/png;base64," + base64.b64encode(png(next(SEEDS))).decode()
                    tool_client.predict(image=uri, provider="fal-bria", api_name="/remove_background")
                    paid.append("tool")
                except Exception as exc:  # noqa: BLE001
                    refused.append(str(exc))

        def rest_door() -> None:
            start.wait()
            paid.extend("rest" for _ in range(3) if rest(url, next(SEEDS), key=None) == 200)

        def mcp_door() -> None:
            start.wait()
            paid.extend("mcp" for said in run_mcp(url, 3, key=None) if said == "paid")

        threads = [threading.Thread(target=door) for door in (page, tool, rest_door, mcp_door)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(paid) == posts(fal) == 4  # 4 x $0.018 = $0.072; a fifth would pass $0.08
    assert refused and all("daily budget" in text for text in refused)
