"""Fail fast, tell the truth: models whose weights are not on the machine,
with the Hugging Face Hub out of reach.

The Hub endpoint is a real address on this machine: a closed port (the
connection is refused at once) or a listening socket that never answers
(the probe's own timeout). Every model family that downloads from the Hub
(ViTMatte, SAM 2, BiRefNet, `hf:` repositories) must fail within 3 s with
a sentence that says so, asking the Hub once for all of them; the page
must not call them ready, and Compare must not tick them.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

import rmbg
from rmbg.errors import ModelUnavailableError
from rmbg.providers.local.hub import PROBE_TIMEOUT_S, forget_hub_reachability
from rmbg.refine import get_refiner
from rmbg.webapp import AppConfig, Keys, catalog

ROOT = Path(__file__).resolve().parent.parent
BOUND_S = 3.0  # what a visitor may wait for "cannot be had" (the bound)


@pytest.fixture
def closed_port() -> str:
    """http://127.0.0.1:<a port nobody listens on>."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class SilentServer:
    """Accepts connections and never answers; counts them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def online(hf_cache, monkeypatch):
    """An empty HF cache, online mode; returns a function pointing the Hub at a URL."""
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    forget_hub_reachability()

    def point(url: str) -> None:
        monkeypatch.setattr(constants, "ENDPOINT", url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")

    yield point
    forget_hub_reachability()


def photo() -> Image.Image:
    return Image.new("RGB", (48, 32), (200, 90, 40))


def load_each() -> dict[str, object]:
    """Each Hub-backed model family, asked for its weights; returns what each raised (and how long each
    took, torch's first import not counted: an app has imported it at its warm-up, and it is not the Hub's)."""
    import torch  # noqa: F401

    attempts = {
        "vitmatte": lambda: get_refiner("vitmatte", device="cpu").network(),
        "sam2": lambda: rmbg.get_provider("sam2", device="cpu").matte(photo()),
        "birefnet-lite": lambda: rmbg.get_provider("birefnet-lite", device="cpu").matte(photo()),
        "hf:": lambda: rmbg.get_provider("hf:someone/segmenter", device="cpu").matte(photo()),
    }
    raised: dict[str, object] = {}
    for name, attempt in attempts.items():
        start = time.perf_counter()
        with pytest.raises(ModelUnavailableError) as info:
            attempt()
        raised[name] = (time.perf_counter() - start, str(info.value))
    return raised


@pytest.mark.uses("torch", "onnxruntime", "pooch")  # every hub model
def test_every_hub_model_fails_within_3_s_when_the_port_is_closed(online, closed_port):
    online(closed_port)
    for name, (seconds, message) in load_each().items():
        assert seconds < BOUND_S, f"{name} took {seconds:.1f} s to fail"
        assert "could not be reached" in message and "connection failed" in message, (name, message)


@pytest.mark.uses("torch", "onnxruntime", "pooch")  # every hub model
def test_a_hub_that_never_answers_is_asked_once_for_every_model(online, closed_port):
    # The baseline, in the same run and on the same load: the four refused at once (a closed port).
    online(closed_port)
    baseline = sum(seconds for seconds, _ in load_each().values())
    forget_hub_reachability()
    server = SilentServer()
    try:
        online(server.url)
        start = time.perf_counter()
        raised = load_each()
        total = time.perf_counter() - start
    finally:
        server.close()
    assert len(server.held) == 1  # one probe, its answer shared by the four models
    waited = total - baseline  # one probe's timeout (the sentences below say it ran out); four would be 4 x
    assert waited < 3 * PROBE_TIMEOUT_S, (waited, baseline)
    for name, (_, message) in raised.items():
        assert f"did not answer within {PROBE_TIMEOUT_S:g} s" in message, (name, message)


@pytest.mark.uses("torch")  # what it reaches runs `import torch` (a local torch model's state or build)
def test_models_that_cannot_be_fetched_are_not_ready_nor_ticked(online, closed_port):
    online(closed_port)
    config = AppConfig(provider_config={"u2netp": {}})
    status = catalog.provider_status("birefnet-lite", Keys(), config)
    assert status.state == "unavailable"
    assert "cannot be reached" in status.message
    assert not get_refiner("vitmatte").status().ready
    assert not rmbg.get_provider("sam2").status().ready
    assert not rmbg.get_provider("hf:someone/segmenter").status().ready
    ticked = catalog.default_selection("u2netp", Keys(), config)
    assert not any(pid.startswith(("birefnet", "rmbg-2.0")) for pid in ticked), ticked


@pytest.mark.uses("torch")  # what it reaches runs `import torch` (a local torch model's state or build)
def test_a_reachable_hub_makes_them_ready_again(online, closed_port):
    from tests.fakehub import FakeHub

    online(closed_port)
    assert not rmbg.get_provider("birefnet-lite").status().ready
    with FakeHub() as hub:
        online(hub.url)  # another endpoint: its own answer, not the closed port's
        status = rmbg.get_provider("birefnet-lite").status()
    assert status.ready and "downloads" in status.message


def test_hub_log_lines_appear_once_in_the_app_log():
    code = (
        "from rmbg.webapp.logs import configure_logging\n"
        "configure_logging()\n"
        "from huggingface_hub.utils import logging as hub_logging\n"
        "hub_logging.get_logger('huggingface_hub.utils._http').warning('Retrying in 1s [Retry 1/5].')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("Retrying in 1s [Retry 1/5].") == 1, out.stderr
