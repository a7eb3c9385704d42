"""The licence switch through the launched app's doors: REST (a 403 JSON error), the MCP
tool, the gradio named API of the page (Remove, Compare, Benchmark). The app runs with
RMBG_COMMERCIAL_ONLY=1; a provider declared non-commercial on the fake fal server shows
that nothing refused reaches a paid API, while a commercial one still runs."""

from __future__ import annotations

import os
from dataclasses import replace
from decimal import Decimal

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import pytest  # noqa: E402

from rmbg import registry  # noqa: E402
from rmbg.declarations import Licence, ProviderInfo  # noqa: E402
from tests.fakes.fal import TEST_KEY as FAL_KEY  # noqa: E402
from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.support.app import EXAMPLE, app_config, serve, submits  # noqa: E402
from tests.support.mcp import data_uri, session_run  # noqa: E402

FACTORY = "rmbg.providers.hosted.fal:fal_bria"
NC_HOSTED = ProviderInfo(
    "fal-nc",
    "fal.ai · a non-commercial test model",
    "hosted",
    FACTORY,
    price_usd=Decimal("0.018"),
    key_env="FAL_KEY",
    licence=Licence("non-commercial", "test-nc", "https://example.org/nc"),
)
REFUSED = (
    "BRIA RMBG-1.4 (IS-Net, local) is not available here: its licence, bria-rmbg-1.4 (non-commercial), does not "
    "allow commercial use, and only models licensed for commercial use are offered here."
)
NC_REFUSED = (
    "fal.ai · a non-commercial test model is not available here: its licence, test-nc (non-commercial), does not "
    "allow commercial use, and only models licensed for commercial use are offered here."
)


@pytest.fixture(scope="module")
def served():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RMBG_COMMERCIAL_ONLY", "1")
        registry.register("fal-nc", FACTORY, NC_HOSTED)
        try:
            with FalFake() as fal, RunwareFake() as runware:
                config = app_config(fal, runware)
                config = replace(
                    config, provider_config={**config.provider_config, "fal-nc": {"base_url": fal.url}}, hf_repos=("*",)
                )
                with serve(config) as url:
                    yield url, fal
        finally:
            registry.unregister("fal-nc")


@pytest.fixture
def fal(served):
    served[1].reset()
    return served[1]


def post(url: str, provider: str) -> httpx.Response:
    files = {"image": ("cat.jpg", EXAMPLE.read_bytes(), "image/jpeg")}
    return httpx.post(
        url + "api/remove", files=files, data={"provider": provider}, headers={"X-Fal-Key": FAL_KEY}, timeout=60
    )


def test_rest_refuses_with_a_403_and_the_reason_and_sends_nothing(served, fal):
    url, _ = served
    answer = post(url, "rmbg-1.4")
    assert answer.status_code == 403
    assert answer.json() == {"error": f'{REFUSED} Send another "provider"; leave it out for this server\'s default.'}
    paid = post(url, "fal-nc")
    assert paid.status_code == 403 and paid.json()["error"].startswith(NC_REFUSED)
    assert submits(fal) == 0  # the refused paid provider was never called
    hub = post(url, "hf:acme/no-card")  # the operator allows any Hub repository; its licence is not known
    assert hub.status_code == 403 and hub.json()["error"].startswith(
        "hf:acme/no-card is not available here: its licence is not known to allow commercial use (its model card "
        "could not be read here: "
    )
    allowed = post(url, "fal-bria")  # commercial terms: still served
    assert allowed.status_code == 200 and allowed.headers["x-rmbg-provider"] == "fal-bria" and submits(fal) == 1


def test_mcp_lists_and_refuses_only_by_the_switch(served, fal):
    pytest.importorskip("mcp")
    url, _ = served

    async def tools(session):
        return (await session.list_tools()).tools

    (tool,) = session_run(url, tools)
    properties = tool.inputSchema["properties"]
    assert properties["provider"]["default"] == "u2netp" and "fal-bria $0.018" in properties["provider"]["description"]
    assert "fal-nc" not in str(tool.inputSchema) and "fal-bria" in properties["fal_key"]["description"]

    async def call(session):
        arguments = {"image": data_uri(EXAMPLE), "provider": "fal-nc", "fal_key": FAL_KEY}
        return await session.call_tool("remove_background", arguments)

    result = session_run(url, call)
    assert result.isError
    assert result.content[0].text == f"{NC_REFUSED} Pass another provider, or leave it empty for this server's default."
    assert submits(fal) == 0


def test_the_page_offers_only_what_the_switch_allows_and_refuses_the_rest(served, fal):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, _ = served
    client = Client(url, verbose=False)
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    menu = next(p for p in named["/remove"]["parameters"] if p["parameter_name"] == "provider")
    assert menu["parameter_default"] == "u2netp"
    with pytest.raises(AppError) as refused:
        client.predict(image=handle_file(str(EXAMPLE)), provider="fal-nc", fal_key=FAL_KEY, api_name="/remove")
    # a program's call of the page's named API gets the API's words (a browser, the page's: test_licences)
    assert str(refused.value) == f"{NC_REFUSED} Pass another provider, or leave it empty for this server's default."
    assert "RMBG_COMMERCIAL_ONLY" not in str(refused.value)  # no variable names for visitors
    gallery, table, *_ = client.predict(
        image=handle_file(str(EXAMPLE)), providers=["rmbg-1.4", "fal-nc"], fal_key=FAL_KEY, api_name="/compare"
    )
    page = " Pick another model from the Provider list: it shows only the models this server offers."
    assert gallery == [] and table["data"] == [
        ["rmbg-1.4", "", "", REFUSED + page, ""],
        ["fal-nc", "", "", NC_REFUSED + page, ""],
    ]
    with pytest.raises(AppError) as benchmark:  # the Benchmark refuses the run before any call
        client.predict(
            images=[handle_file(str(EXAMPLE))],
            truth=None,
            providers=["fal-nc", "fal-bria"],
            monthly_volume=1000,
            fal_key=FAL_KEY,
            api_name="/benchmark",
        )
    assert str(benchmark.value) == f"{NC_REFUSED} Pass another provider, or leave it empty for this server's default."
    assert submits(fal) == 0
