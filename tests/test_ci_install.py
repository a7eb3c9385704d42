"""CI's install smoke (.ci/run's first job, .ci/smoke_app.py) stays what the README promises: a Python
3.12 virtualenv gets exactly the README's first command (requirements.txt, what a Space installs, with
torch at a version ZeroGPU lists) before the smoke, and the dev requirements only after it; the stand-in
models the smoke writes without the `onnx` package are valid ONNX that ONNX Runtime runs as the channel
mean they claim to be."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# The torch versions ZeroGPU runs (hub-docs docs/hub/spaces-zerogpu.md, last changed 2026-07-21);
# requirements.txt's comment says why its pin is one of them.
ZEROGPU_TORCH = ("2.8.0", "2.9.1", "2.10.0", "2.11.0")


def quick_start() -> list[str]:
    """The README's quick-start commands, one per line of its first bash block after "## Quick start"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^## Quick start\n+```bash\n(.*?)^```", text, re.M | re.S)
    assert block, "README.md has no ```bash block under ## Quick start"
    return block.group(1).strip().splitlines()


def ci_app_install() -> list[list[str]]:
    """The pip installs .ci/run makes into .venv before the smoke (the pip upgrade aside), as argument lists."""
    installs = []
    for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if words[:4] == [".venv/bin/python", "-m", "pip", "install"] and "--upgrade" not in words:
            installs.append([w for w in words[4:] if w != "-q"])
    return installs


def test_the_quick_start_is_two_commands_and_ci_installs_exactly_its_first():
    first, second = quick_start()
    install, start = (part.strip() for part in first.split("&&"))
    assert start == "python app.py" and second.startswith("pip install -r requirements-dev.txt && ")
    assert shlex.split(install)[:2] == ["pip", "install"]
    assert ci_app_install() == [shlex.split(install)[2:]]


def test_ci_runs_the_smoke_on_python_312_after_the_install_and_the_dev_requirements_after_it():
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    install = lines.index(".venv/bin/python -m pip install -q -e . -r requirements.txt")
    made = lines.index('"$PYTHON312" -m venv .venv')
    assert lines.index('PYTHON312="$(python312)"') < lines.index("rm -rf .venv .venv-app") < made < install
    assert lines[install + 1] == ".venv/bin/python .ci/smoke_app.py"
    # the ZeroGPU rehearsal runs here, on the app's own install, once (not again inside the suite): a failure
    # in it fails CI as the suite's would
    assert install + 1 < lines.index(".venv/bin/python .ci/zerogpu_rehearsal.py") < lines.index("python -m pytest -q")
    dev = lines.index("python -m pip install -q -r requirements-dev.txt")
    assert install + 1 < lines.index(". .venv/bin/activate") < dev < lines.index("python -m pytest -q")
    assert [n for n, line in enumerate(lines) if " -m venv " in line] == [made]  # one virtualenv: the suite's too
    # the long checks the README's command leaves out (pyproject's addopts) run after the suite, in the same venv
    assert lines.index("python -m pytest -q") + 1 < lines.index("python -m pytest -q -m long") == len(lines) - 1
    assert any("sys.version_info[:2] == (3, 12)" in line for line in lines)  # each candidate is run to know


def test_requirements_pin_torch_at_a_version_zerogpu_runs():
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    (torch,) = [line.split("#")[0].strip() for line in requirements if line.startswith("torch")]
    assert torch.startswith("torch==") and torch.removeprefix("torch==") in ZEROGPU_TORCH
    dev = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    assert "-r requirements.txt" in dev and not [line for line in dev if line.startswith("torch")]


def _smoke_weights():
    spec = importlib.util.spec_from_file_location("smoke_weights", ROOT / ".ci" / "smoke_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_smoke_stand_ins_are_onnx_models_of_the_channel_mean(tmp_path):
    import onnx
    import onnxruntime as ort

    weights = _smoke_weights()
    env = weights.write_models(tmp_path)
    isnet = tmp_path / "isnet-general-use.onnx"
    assert env["RMBG_CACHE_DIR"] == str(tmp_path) and len(env["RMBG_ISNET_GENERAL_SHA256"]) == 64
    x = np.random.default_rng(0).random((1, 3, 9, 13), dtype=np.float32)
    for path, (source, target) in (
        (Path(env["RMBG_U2NETP_PATH"]), weights.U2NETP_IO),
        (isnet, weights.ISNET_GENERAL_IO),
    ):
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == [source] and [o.name for o in session.get_outputs()] == [
            target
        ]
        (y,) = session.run([target], {source: x})
        assert y.shape == (1, 1, 9, 13)
        np.testing.assert_allclose(y, x.mean(axis=1, keepdims=True), rtol=1e-6)
