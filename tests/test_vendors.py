"""Each hosted vendor is declared once (rmbg.vendors) and every door derives
its key from that declaration: the page's key box and the named API's key
parameter, the REST header (in the OpenAPI document and as the one a refusal
names), the MCP tool's argument (in its schema and as the one a refusal
names), and the library's words and variables."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import pytest  # noqa: E402

from rmbg.registry import info, list_providers, list_replacers  # noqa: E402
from rmbg.vendors import BY_ENV, KEY_VARS, VENDORS, Vendor  # noqa: E402
from rmbg.video.providers import HOSTED_VIDEO  # noqa: E402
from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.support.app import EXAMPLE, app_config, serve  # noqa: E402

HOSTED = [pid for pid in (*list_providers(), *list_replacers(), *HOSTED_VIDEO) if info(pid).kind != "local"]
# The vendors with an image provider (the REST and MCP image doors refuse a call without their key);
# Cloudflare's only service takes video.
IMAGE_VENDORS = [v for v in VENDORS if any(info(pid).key_env in v.env for pid in list_providers())]


def first_provider(vendor: Vendor) -> str:
    """A removal provider billed to `vendor`'s key."""
    return next(pid for pid in list_providers() if info(pid).key_env in vendor.env)


@pytest.fixture(scope="module")
def served():
    with FalFake() as fal, RunwareFake() as runware:
        config = app_config(fal, runware)
        with serve(config) as url:
            yield url


def test_every_hosted_provider_is_billed_to_a_declared_vendor_and_each_vendor_has_one():
    assert {pid: info(pid).key_env in BY_ENV for pid in HOSTED} == {pid: True for pid in HOSTED}
    for vendor in VENDORS:
        billed = [pid for pid in HOSTED if info(pid).key_env in vendor.env]
        assert billed and {info(pid).key_page for pid in billed} == {vendor.help}, vendor.slot
    for name in ("slot", "header", "argument", "label"):
        values = [getattr(v, name).lower() for v in VENDORS]
        assert len(set(values)) == len(values), name
    assert KEY_VARS == tuple(env for v in VENDORS for env in v.env)


def test_a_declaration_is_refused_when_it_cannot_become_a_field_or_a_header():
    with pytest.raises(ValueError, match="lower-case letters, not 'Fal-AI'"):
        Vendor("Fal-AI", ("FAL_KEY",), "fal.ai", "X-Fal-Key", "https://fal.ai")
    with pytest.raises(ValueError, match="should start with X-, not 'Authorization'"):
        Vendor("fal", ("FAL_KEY",), "fal.ai", "Authorization", "https://fal.ai")
    with pytest.raises(ValueError, match="names no environment variable"):
        Vendor("fal", (), "fal.ai", "X-Fal-Key", "https://fal.ai")


def test_each_vendor_has_its_key_box_on_the_page_and_its_parameter_in_the_named_api():
    import gradio as gr

    import app
    from rmbg.webapp import AppConfig

    demo = app.build_demo(AppConfig())
    boxes = [c for c in demo.blocks.values() if isinstance(c, gr.Textbox) and c.type == "password"]
    assert [(b.label, b.placeholder, b.elem_id) for b in boxes] == [
        (v.box_label, v.hint, f"key-{v.slot}") for v in VENDORS
    ]
    named = demo.get_api_info()["named_endpoints"]
    keyed = {name: [p["parameter_name"] for p in ep["parameters"]] for name, ep in named.items()}
    arguments = [v.argument for v in VENDORS]
    for name in ("/remove", "/compare", "/replace", "/benchmark", "/remove_background"):
        taken = [p for p in keyed[name] if p.endswith("_key")]
        assert taken == arguments, name
    labels = {p["parameter_name"]: p["label"] for p in named["/remove"]["parameters"]}
    assert [labels[v.argument] for v in VENDORS] == [v.box_label for v in VENDORS]


def test_each_vendor_has_its_rest_header_and_a_refusal_names_it(served, monkeypatch):
    for env in KEY_VARS:
        monkeypatch.delenv(env, raising=False)
    document = httpx.get(served + "api/openapi.json", timeout=30).json()
    headers = [p["name"] for p in document["paths"]["/api/remove"]["post"]["parameters"] if p["in"] == "header"]
    assert headers == [v.header for v in VENDORS]
    image = {"image": ("cat.jpg", EXAMPLE.read_bytes(), "image/jpeg")}
    assert [v.slot for v in VENDORS if v not in IMAGE_VENDORS] == ["cloudflare"]
    for vendor in IMAGE_VENDORS:
        provider = first_provider(vendor)
        answer = httpx.post(served + "api/remove", files=image, data={"provider": provider}, timeout=60)
        assert (answer.status_code, answer.json()) == (
            401,
            {
                "error": f"{provider} needs an API key (this server does not share its own keys with visitors). "
                f"Send your key in the {vendor.header} header, or choose a local provider."
            },
        )


def test_each_vendor_has_its_mcp_argument_and_a_refusal_names_it(served):
    pytest.importorskip("mcp")
    from tests.support.mcp import data_uri, session_run

    async def work(session):
        tools = (await session.list_tools()).tools
        refusals = []
        for vendor in IMAGE_VENDORS:
            answer = await session.call_tool(
                "remove_background", {"image": data_uri(EXAMPLE), "provider": first_provider(vendor)}
            )
            refusals.append((answer.isError, " ".join(c.text for c in answer.content if hasattr(c, "text"))))
        return tools[0].inputSchema["properties"], refusals

    properties, refusals = session_run(served, work)
    assert "a Cloudflare API key, not needed here (its services take whole clips)" in str(properties["cloudflare_key"])
    for vendor, (failed, text) in zip(IMAGE_VENDORS, refusals, strict=True):
        assert (
            f"a {vendor.label} API key, needed for {first_provider(vendor)}"
            in properties[vendor.argument]["description"]
        )
        assert failed and f"Pass your key as {vendor.argument}, or choose a local provider." in text, text


def _hook(name: str):
    import importlib.util
    import sys
    from pathlib import Path

    hooks = Path(__file__).resolve().parent.parent / "docs" / "hooks"
    sys.path.insert(0, str(hooks))  # readme_vendors imports the results hook beside it
    try:
        spec = importlib.util.spec_from_file_location(f"_hook_{name}", hooks / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(hooks))
    return module


def test_readme_and_the_docs_show_the_table_the_declarations_render():
    from rmbg.vendors import markdown_table

    readme = _hook("readme_vendors")
    text = readme.README.read_text(encoding="utf-8")
    assert readme.rendered(text) == text, "README.md is stale: run python docs/hooks/readme_vendors.py"
    assert f"<!-- vendors: start -->\n{markdown_table()}\n<!-- vendors: end -->" in text
    page = _hook("results").on_page_markdown("Keys:\n\n<!-- vendors -->\n")
    assert page == f"Keys:\n\n{markdown_table()}\n"
    assert [line.split(" | ")[3] for line in markdown_table().splitlines()[2:]] == [f"`{v.header}`" for v in VENDORS]
