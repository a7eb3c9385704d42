"""The launched app on ZeroGPU hardware (tests/support/zerogpu: a stand-in for
Hugging Face's `spaces` package that runs each GPU function in a forked
worker, its arguments and result pickled across, as ZeroGPU does).

A local model's call reaches that worker as something it can pickle (the
provider's recipe, not the provider object holding a loaded model: every
local cut-out failed with PicklingError before), and a clip asks for one GPU
allocation per group of frames, not one per frame.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.webapp.guard import ZEROGPU_FRAMES
from rmbg.webapp.zerogpu import mattes_seconds, refine_seconds
from tests.support.launched import app_process
from tests.u2netp_fixture import u2netp_path  # noqa: F401
from tests.video_clips import davis, write_clip

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "examples" / "cat.jpg"
FRAMES = ZEROGPU_FRAMES + 1  # two groups of frames: a full one and one frame (each frame is a U2-Net-p run)


def allocations(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.slow  # an app process, a forked worker and a 17-frame clip: about 15 s on 2 cores
@pytest.mark.uses("gradio")
def test_local_models_run_in_the_gpu_worker_one_allocation_per_photo_and_per_group_of_frames(
    u2netp_path,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """The app as a ZeroGPU Space starts it: a photo through REST asks for a duration sized to the work,
    evaluated by the stand-in with the call's own arguments (it was a fixed 120 s: one photo a day
    unsigned; each model's ask is in tests/test_zerogpu_quota.py), runs in the forked worker, and another
    render of it asks for nothing; a clip asks once per group of frames, not once per frame."""
    log = tmp_path / "allocations.jsonl"
    clip = write_clip(tmp_path / "dog.mp4", davis("dog", FRAMES))
    with app_process(space_env(tmp_path, log, u2netp_path, monkeypatch), tmp_path / "app.log") as (url, proc):
        before = len(allocations(log))  # a warm-up runs in the app's own process, not in an allocation
        answer = httpx.post(
            url + "api/remove",
            files={"image": ("cat.jpg", PHOTO.read_bytes(), "image/jpeg")},
            data={"provider": "u2netp"},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text + (tmp_path / "app.log").read_text()[-3000:]
        photo = allocations(log)[before:]
        # 0.3 s a photo + 3 s margin, rounded up: U2-Net-p was loaded before the worker forked
        assert [(a["fn"], a["items"], a["duration"]) for a in photo] == [("_local_mattes", [1], 4)]
        assert photo[0]["worker"] != proc.pid  # it ran in the forked worker
        alpha = np.asarray(Image.open(io.BytesIO(answer.content)).getchannel("A"))
        here = np.asarray(rmbg.remove_background(PHOTO, provider="u2netp", cache=None).alpha)
        assert np.abs(alpha.astype(int) - here).max() <= 1  # the worker's matte is the model's
        again = httpx.post(
            url + "api/remove",
            files={"image": ("cat.jpg", PHOTO.read_bytes(), "image/jpeg")},
            data={"provider": "u2netp", "format": "webp"},  # another render: the matte comes from the cache
            timeout=120,
        )
        assert again.status_code == 200 and len(allocations(log)) == before + 1

        answer = httpx.post(
            url + "api/video",
            files={"video": ("dog.mp4", clip.read_bytes(), "video/mp4")},
            data={"provider": "u2netp"},
            timeout=180,
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-rmbg-frames"] == str(FRAMES)
        groups = allocations(log)[before + 1 :]
        assert [a["items"] for a in groups] == [[ZEROGPU_FRAMES], [FRAMES - ZEROGPU_FRAMES]]
        assert len(groups) == math.ceil(FRAMES / ZEROGPU_FRAMES)
        assert {a["worker"] for a in groups} == {photo[0]["worker"]}  # the idle worker was kept, model loaded


def fake_spaces():
    """The stand-in `spaces` module, loaded under a name of its own (not put in sys.modules as `spaces`)."""
    path = ROOT / "tests" / "support" / "zerogpu" / "spaces" / "__init__.py"
    spec = importlib.util.spec_from_file_location("fake_zerogpu_spaces", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # tiny ViTMatte and SAM 2 loaded in a forked worker: about 10 s on 2 cores
def test_refinement_and_picking_run_in_the_gpu_worker_and_give_what_they_give_here(
    u2netp_path,  # noqa: F811
    tmp_path,
    hf_cache,
    monkeypatch,
):
    from rmbg.providers.local.hf_transformers import clear_models
    from rmbg.webapp import AppConfig, Keys, Look, guard
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore
    from rmbg.webapp.remove import actions, marks
    from tests.tiny_transformers import add_folder, tiny_sam2, tiny_vitmatte

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("RMBG_U2NETP_PATH", str(u2netp_path))
    add_folder(hf_cache, "hustvl/vitmatte-small-composition-1k", tiny_vitmatte(tmp_path / "vitmatte"))
    add_folder(hf_cache, "facebook/sam2.1-hiera-tiny", tiny_sam2(tmp_path / "sam2"))
    app = App.create(AppConfig(), store=OutputStore(tmp_path / "out"), cache=None)
    points, _ = marks.prompts_of("200, 150, keep; 20, 20, drop", "")

    def picked():
        result, _ = actions.run(str(PHOTO), "u2netp", Look(), Keys(), app, refine="vitmatte", points=points)
        return result

    try:
        here = picked()  # no ZeroGPU: everything in this process
        log = tmp_path / "allocations.jsonl"
        monkeypatch.setenv("FAKE_ZEROGPU_LOG", str(log))
        monkeypatch.setenv("SPACES_ZERO_GPU", "true")
        spaces = fake_spaces()
        monkeypatch.setattr(guard, "local_mattes", spaces.GPU(duration=mattes_seconds)(guard._local_mattes))
        monkeypatch.setattr(guard, "local_refine", spaces.GPU(duration=refine_seconds)(guard._local_refine))
        monkeypatch.setattr(guard, "ZEROGPU", True)
        there = picked()
    finally:
        clear_models()
    assert [a["fn"] for a in allocations(log)] == ["_local_mattes", "_local_refine"]
    assert all(a["worker"] != os.getpid() for a in allocations(log))
    assert there.meta["refine"] == here.meta["refine"] == "sam2-pick+vitmatte"
    assert np.array_equal(np.asarray(there.alpha), np.asarray(here.alpha))


@pytest.mark.fast
def test_a_provider_that_cannot_be_a_weak_key_is_built_and_sent_as_it_is():
    """A registered provider class may be an unhashable dataclass: the app still builds it (it has no
    recipe; on ZeroGPU it is sent as it is, as any provider without one)."""
    import dataclasses

    from rmbg.webapp.catalog import Recipe, recipe, remember_recipe

    @dataclasses.dataclass
    class Plain:
        id: str = "plain"
        kind: str = "local"

    made = Plain()
    remember_recipe(made, Recipe("plain", {}))
    assert recipe(made) is made
    kept = type("Kept", (), {"id": "kept", "kind": "local"})()
    remember_recipe(kept, Recipe("kept", {"a": 1}))
    assert recipe(kept) == Recipe("kept", {"a": 1})


def space_env(tmp_path: Path, log: Path, u2netp: Path, monkeypatch) -> dict[str, str]:
    """The environment a ZeroGPU Space gives the app (SPACE_ID, SYSTEM=spaces, SPACES_ZERO_GPU), the
    stand-in `spaces` first on the path, an empty offline Hub cache, and the CPU models' speed already
    measured (slow, so the default is U2-Net-p and the app starts without timing the larger models on these
    2 cores first; rmbg.providers.local.calibration)."""
    from rmbg.providers.local import calibration
    from tests.hfcache import HFCache

    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "rmbg-cache"))
    for model in ("birefnet-lite", "rmbg-1.4", "isnet-general"):
        calibration.store(model, calibration.config_of(model), 60.0)
    cache = HFCache(tmp_path / "hub")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "support" / "zerogpu"), str(ROOT)]),
        "FAKE_ZEROGPU_LOG": str(log),
        "SPACES_ZERO_GPU": "true",
        "SYSTEM": "spaces",
        "SPACE_ID": "rehearsal/rmbg",
        "HF_HUB_CACHE": str(cache.root),
        "HF_HUB_OFFLINE": "1",
        "RMBG_U2NETP_PATH": str(u2netp),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_SERVER_NAME": "127.0.0.1",
    }
