"""The default model loads before the first visitor (rmbg.webapp.warmup): a local model that
is ready is loaded in the background; a hosted default is never called, a model that is not
ready is not loaded, and a failure leaves the page as it was."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from rmbg.providers.local import onnx_backend  # noqa: E402
from rmbg.webapp import AppConfig, Keys, catalog
from rmbg.webapp.context import App  # noqa: E402
from rmbg.webapp.look import OutputStore  # noqa: E402
from rmbg.webapp.remove import actions
from rmbg.webapp.warmup import warm, warm_up  # noqa: E402
from tests.fakes.fal import FalFake  # noqa: E402
from tests.u2netp_fixture import u2netp_path  # noqa: E402,F401


def _app(tmp_path, config: AppConfig | None = None) -> App:
    return App.create(config or AppConfig(), store=OutputStore(tmp_path), cache=None)


def test_a_ready_local_default_is_loaded_in_the_background(tmp_path, u2netp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("RMBG_U2NETP_ENGINE", "onnxruntime")  # its load is then an ONNX Runtime session
    app = _app(tmp_path)
    provider = catalog.build_provider("u2netp", Keys(), app.config)
    assert actions.waiting_text(provider, app.warm).endswith("the first run loads the model…")
    thread = warm_up(app, "u2netp")
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert [key[0] for key in onnx_backend.loaded_sessions()] == [str(u2netp_path)]
    assert actions.waiting_text(provider, app.warm) == f"Running {provider.label}…"  # no "loads the model"


def test_the_launched_pages_warm_up_loads_its_default(tmp_path, u2netp_path, monkeypatch):  # noqa: F811
    import app as app_module

    monkeypatch.setattr(catalog, "default_choice", lambda: ("u2netp", "the test's default"))
    monkeypatch.setenv("RMBG_U2NETP_ENGINE", "onnxruntime")
    demo = app_module.build_demo(AppConfig())
    assert onnx_backend.loaded_sessions() == []  # building the page loads nothing
    thread = app_module.warm_up(demo)
    thread.join(timeout=120)
    assert [key[0] for key in onnx_backend.loaded_sessions()] == [str(u2netp_path)]


def test_a_hosted_default_is_never_called(tmp_path, monkeypatch):
    monkeypatch.setenv("FAL_KEY", "server-key:secret")  # the server's own key, shared with visitors
    with FalFake() as fake:
        config = AppConfig(provider_config={"fal-bria": {"base_url": fake.url}}, allow_server_keys=True)
        assert warm(_app(tmp_path, config), "fal-bria") is False
        assert fake.calls == []


def _skipped_with(tmp_path, caplog, provider_id: str) -> str:
    """warm() of `provider_id` on a fresh app: it must run nothing and mark nothing warm; its log."""
    app = _app(tmp_path)
    with caplog.at_level(logging.INFO, logger="rmbg.webapp"):
        assert warm(app, provider_id) is False
    assert app.warm == set() and onnx_backend.loaded_sessions() == []
    return caplog.text


@pytest.mark.uses("torch")  # what it reaches runs `import torch` (a local torch model's state or build)
def test_a_model_that_is_not_ready_here_is_not_loaded(tmp_path, caplog):
    """BiRefNet_lite's weights are not in the (offline, empty) Hub cache: nothing is fetched."""
    assert "no warm-up of birefnet-lite" in _skipped_with(tmp_path, caplog, "birefnet-lite")


@pytest.mark.uses("onnxruntime")  # the warm-up runs U2-Net-p
def test_a_failing_warm_up_is_logged_and_the_page_goes_on(tmp_path, caplog, monkeypatch):
    """A broken weights file: the warm-up says why, raises nothing, and marks nothing warm."""
    broken = tmp_path / "u2netp.onnx"
    broken.write_bytes(b"not an onnx file")
    monkeypatch.setenv("RMBG_U2NETP_PATH", str(broken))
    monkeypatch.setenv("RMBG_U2NETP_ENGINE", "onnxruntime")
    assert "the warm-up of u2netp failed" in _skipped_with(tmp_path, caplog, "u2netp")


@pytest.fixture(autouse=True)
def _no_sessions_before_or_after():
    onnx_backend.clear_sessions()
    yield
    onnx_backend.clear_sessions()


def test_the_warm_up_imports_opencv_whatever_the_default(tmp_path):
    """A server's cut-outs use OpenCV's loops at every size once it is loaded: the warm-up loads
    it, even for a default it does not run (a fresh process, where nothing had imported it)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from rmbg.webapp import AppConfig\n"
        "from rmbg.webapp.context import App\n"
        "from rmbg.webapp.look import OutputStore\n"
        "from rmbg.webapp.warmup import warm\n"
        "app = App.create(AppConfig(), store=OutputStore(sys.argv[1]), cache=None)\n"
        "before = 'cv2' in sys.modules\n"
        "print(before, warm(app, 'fal-bria'), 'cv2' in sys.modules)\n"
    )
    env = {**os.environ, "FAL_KEY": ""}
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-3:] == ["False", "False", "True"]
