"""`rmbg remove photo.jpg` from a new process imports what one photo needs and nothing else:
no torch, gradio, transformers, scipy or matplotlib, none of the video path (rmbg.video,
PyAV, asyncio), no progress bar off a terminal, and one model runtime, the chosen one
(archived benchmarks/vs_rembg_serving.py measures the cold start against `rembg i`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PHOTO = REPO / "data" / "davis2016-sample" / "images" / "blackswan_00000.jpg"
NEVER = (
    "torch",
    "gradio",
    "transformers",
    "scipy",
    "matplotlib",
    "av",
    "ray",
    "huggingface_hub",
    "rmbg.video",
    "rmbg.eval.run",
    "asyncio",
    "tqdm",
)
PROBE = """
import json, sys
from rmbg.cli.main import main
code = main(["remove", sys.argv[1], "-o", sys.argv[2], "-p", "u2netp"])
print(json.dumps({"code": code, "modules": sorted(m for m in sys.modules if "." not in m or m.startswith("rmbg."))}))
"""


def _modules_of_one_photo(tmp_path: Path, engine: str) -> set[str]:
    env = {**os.environ, "RMBG_U2NETP_ENGINE": engine, "RMBG_CACHE_DIR": str(tmp_path / "cache")}
    env["RMBG_LEDGER"] = str(tmp_path / "ledger.sqlite3")
    argv = [sys.executable, "-c", PROBE, str(PHOTO), str(tmp_path / "out")]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["code"] == 0 and (tmp_path / "out" / "blackswan_00000.png").is_file()
    return set(answer["modules"])


def test_one_photo_with_onnx_runtime_loads_neither_openvino_nor_the_heavy_rest(u2netp_path, tmp_path):
    modules = _modules_of_one_photo(tmp_path, "onnxruntime")
    assert {"onnxruntime", "numpy", "PIL"} <= modules
    assert sorted(modules & {*NEVER, "openvino"}) == []


@pytest.mark.uses("openvino")
def test_one_photo_with_openvino_does_not_load_onnx_runtime_too(u2netp_path, tmp_path):
    modules = _modules_of_one_photo(tmp_path, "auto")  # auto on a CPU with the extra: OpenVINO
    assert "openvino" in modules
    assert sorted(modules & {*NEVER, "onnxruntime"}) == []
