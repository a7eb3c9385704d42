"""Which model downloads a visitor may start (rmbg.webapp.downloads): Hub
repositories named as hf:OWNER/REPO only where the operator lists them, and
on a public deployment only the declared models it allows; checked through
the app's REST and MCP doors (nothing reaches the Hub: it is offline here,
and a refusal comes before any attempt)."""

from __future__ import annotations

import io
import os
import re

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx
import pytest
from PIL import Image

from rmbg.providers.base import ProviderStatus
from rmbg.webapp import AppConfig, Keys, Look, Session
from rmbg.webapp.config import public_deployment
from rmbg.webapp.context import App
from rmbg.webapp.downloads import DownloadRefused, check_declared, check_hub_repo
from rmbg.webapp.look import OutputStore
from rmbg.webapp.remove import actions
from tests.fakes.fal import FalFake
from tests.fakes.runware import RunwareFake
from tests.support.app import EXAMPLE, app_config, serve


class Declared:
    """A declared local model as the app sees it: its id and whether its weights are here."""

    kind = "local"

    def __init__(self, provider_id: str, cached: bool):
        self.id, self.cached = provider_id, cached

    def status(self) -> ProviderStatus:
        return ProviderStatus("ready", "weights cached" if self.cached else f"downloads x/{self.id} on first use")


def test_hub_repositories_only_from_the_operators_list():
    check_hub_repo("u2netp", ())  # not a Hub repository: not this rule's business
    check_hub_repo("hf:Owner/Seg", ("owner/seg",))
    check_hub_repo("hf:anyone/anything", ("*",))
    with pytest.raises(DownloadRefused, match="does not download Hub models its visitors name"):
        check_hub_repo("hf:owner/other", ("owner/seg",))


def test_a_public_deployment_downloads_only_the_declared_models_it_allows():
    check_declared(Declared("birefnet", cached=False), False, None, "u2netp")  # local use: as before
    check_declared(Declared("birefnet", cached=True), True, None, "u2netp")  # already here: runs
    check_declared(Declared("u2netp", cached=False), True, None, "u2netp")  # the default model
    check_declared(Declared("birefnet", cached=False), True, ("birefnet",), "u2netp")
    with pytest.raises(DownloadRefused, match="birefnet is not downloaded on this server"):
        check_declared(Declared("birefnet", cached=False), True, None, "u2netp")


@pytest.mark.parametrize(
    "env, public",
    [
        ({}, False),
        ({"SPACE_ID": "me/app"}, True),
        ({"SPACE_ID": "me/app", "RMBG_PUBLIC": "0"}, False),
        ({"RMBG_PUBLIC": "1"}, True),
        ({"GRADIO_SERVER_NAME": "0.0.0.0"}, True),
    ],
)
def test_what_counts_as_public(env, public):
    assert public_deployment(env) is public


@pytest.mark.uses("torch")
def test_a_listed_repository_goes_on_to_the_hub(tmp_path):
    """With the repository listed, the app goes on to fetch it: the Hub is offline in
    the tests, so that fails for that reason, not for the operator's."""
    from rmbg.errors import ModelUnavailableError

    app = App.create(AppConfig(hf_repos=("someone/huge-model",)), store=OutputStore(tmp_path), cache=None)
    with pytest.raises(ModelUnavailableError) as caught:
        actions.remove(Session(), str(EXAMPLE), "hf:someone/huge-model", Look(), Keys(), app, 100)
    assert not isinstance(caught.value, DownloadRefused)
    unlisted = App.create(AppConfig(), store=OutputStore(tmp_path), cache=None)
    with pytest.raises(DownloadRefused):
        actions.remove(Session(), str(EXAMPLE), "hf:someone/huge-model", Look(), Keys(), unlisted, 100)


@pytest.fixture(scope="module")
def served():
    with FalFake() as fal, RunwareFake() as runware, serve(app_config(fal, runware)) as url:
        yield url


def test_rest_refuses_a_hub_repository_a_visitor_names(served):
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (9, 9, 9)).save(buf, "PNG")
    reply = httpx.post(
        served + "api/remove",
        files={"image": ("a.png", buf.getvalue(), "image/png")},
        data={"provider": "hf:someone/huge-model"},
        timeout=60,
    )
    assert reply.status_code == 403 and "does not download Hub models" in reply.json()["error"]


def test_mcp_refuses_a_hub_repository_a_visitor_names(served):
    pytest.importorskip("mcp")
    from tests.support.mcp import data_uri, session_run

    async def work(session):
        return await session.call_tool(
            "remove_background", {"image": data_uri(EXAMPLE), "provider": "hf:someone/huge-model"}
        )

    result = session_run(served, work)
    assert result.isError and "does not download Hub models" in result.content[0].text


def test_refining_models_are_held_to_the_same_rule_as_providers():
    """ViTMatte and SAM 2 are models too: on a public server a visitor never starts their download
    unless the operator allows it, and one that cannot run here is refused before any provider call."""
    from rmbg.errors import ModelUnavailableError
    from rmbg.webapp.downloads import check_refiners

    def models(cached: bool, model_id: str = "vitmatte"):
        return [(model_id, Declared(model_id, cached=cached))]

    check_refiners(models(False), False, None)  # local use: downloads as before
    check_refiners(models(True), True, None)  # already here: runs
    check_refiners(models(False), True, ("vitmatte",))  # the operator allows it
    check_refiners(models(False, "sam2"), True, ("*",))
    with pytest.raises(
        DownloadRefused, match=r"Refining edges \(vitmatte\) is not downloaded.*VISITOR_DOWNLOADS=vitmatte"
    ):
        check_refiners(models(False), True, ("birefnet",))
    with pytest.raises(DownloadRefused, match=r"Subject picking \(SAM 2\) is not downloaded.*=sam2"):
        check_refiners(models(False, "sam2"), True, None)

    class Offline:
        def status(self):
            return ProviderStatus("unavailable", "x/vitmatte is not on this machine and HF_HUB_OFFLINE is set")

    with pytest.raises(ModelUnavailableError, match="cannot run on this server: x/vitmatte is not on this machine"):
        check_refiners([("vitmatte", Offline())], False, None)


@pytest.fixture(scope="module")
def public_fal():
    with FalFake() as fal, RunwareFake() as runware, serve(app_config(fal, runware, public=True)) as url:
        yield url, fal


@pytest.mark.parametrize(
    "options, says",
    [
        ({"vitmatte": True}, "Refining edges (vitmatte) cannot run on this server"),
        ({"points": "10, 10, keep"}, "Subject picking (SAM 2) cannot run on this server"),
        ({"box": "0, 0, 20, 20"}, "Subject picking (SAM 2) cannot run on this server"),
    ],
)
def test_a_paid_run_with_a_refiner_that_cannot_load_is_refused_before_the_vendor_is_called(public_fal, options, says):
    """The weights are not here (the Hub is offline in the tests): refused before fal sees a request,
    so the visitor pays nothing for a cut-out that could not be finished."""
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    url, fal = public_fal
    before = len(fal.calls)
    client = Client(url, verbose=False)
    with pytest.raises(AppError, match=re.escape(says)):
        client.predict(
            image=handle_file(str(EXAMPLE)), provider="fal-bria", fal_key="id:secret", api_name="/remove", **options
        )
    assert len(fal.calls) == before
