"""The progressive Remove's better model, ready for a test: IS-Net general with a
tiny ONNX graph on a local weights server, calibrated as slower than the budget."""

from __future__ import annotations

import hashlib

import pytest

from rmbg.providers.local import calibration, isnet_general
from rmbg.providers.local.hub import forget_hub_reachability
from rmbg.webapp.remove import progressive
from tests.support.models import WeightsServer, tiny_isnet_graph

SLOWER = 6.0  # seconds for a 1 MP photo "on this CPU": over the 3 s budget, under progressive.MAX_S


@pytest.fixture
def better(tmp_path, monkeypatch, u2netp_path):
    """IS-Net general ready to download from a local server, and calibrated as slower than the budget."""
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RMBG_OFFLINE", raising=False)
    monkeypatch.delenv(progressive.ENV, raising=False)
    graph = tiny_isnet_graph()
    served = WeightsServer(graph)
    monkeypatch.setenv(isnet_general.ENV_URL, served.url)
    monkeypatch.setenv(isnet_general.ENV_SHA256, hashlib.sha256(graph).hexdigest())
    calibration.store("isnet-general", calibration.config_of("isnet-general"), SLOWER)
    forget_hub_reachability()
    yield served
    served.close()
    forget_hub_reachability()


def on_download(served, hook):
    """Call `hook` when the better model's weights are requested: its run has started."""

    class Hooked(served.server.RequestHandlerClass):
        def do_GET(self):
            hook()
            super().do_GET()

    served.server.RequestHandlerClass = Hooked
