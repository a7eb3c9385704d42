"""The process's thread budget (rmbg.threads): read from the CPU affinity, the cgroup quota
(v2 and v1, from fake cgroup trees) and RMBG_THREADS; shared by the model's forward, the
PNG bands, the banded resizes and the edge estimate, also under concurrent requests."""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rmbg.threads import BUDGET, ThreadBudget, cgroup_cores, system_cores, usable_cores

REPO = Path(__file__).resolve().parent.parent


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    ("cpu_max", "cores"),
    [("150000 100000\n", 2), ("200000 100000", 2), ("20000 100000", 1), ("max 100000", None), ("400000", 4)],
)
def test_a_cgroup_v2_quota_is_its_ceiling_in_cores(tmp_path, cpu_max, cores):
    root = _tree(tmp_path / "fs", {"cpu.max": cpu_max})
    own = _tree(tmp_path, {"self": "0::/\n"}) / "self"
    assert cgroup_cores(root, own) == cores


def test_the_tightest_of_a_cgroup_and_its_parents_counts(tmp_path):
    root = _tree(tmp_path / "fs", {"app/web/cpu.max": "max 100000", "app/cpu.max": "300000 100000"})
    own = _tree(tmp_path, {"self": "0::/app/web\n"}) / "self"
    assert cgroup_cores(root, own) == 3
    (root / "app" / "web" / "cpu.max").write_text("110000 100000")
    assert cgroup_cores(root, own) == 2
    (root / "cpu.max").write_text("100000 100000")  # the root: what a container sees as its own
    assert cgroup_cores(root, own) == 1


def test_a_cgroup_v1_quota_and_none(tmp_path):
    root = _tree(
        tmp_path / "fs",
        {"cpu,cpuacct/docker/x/cpu.cfs_quota_us": "250000\n", "cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n"},
    )
    own = _tree(tmp_path, {"self": "5:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n0::/\n"}) / "self"
    assert cgroup_cores(root, own) == 3
    (root / "cpu,cpuacct" / "docker" / "x" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cores(root, own) is None
    # A container's view: its cgroup is the mount's root, under the host's path name.
    root2 = _tree(tmp_path / "fs2", {"cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000"})
    assert cgroup_cores(root2, _tree(tmp_path, {"self2": "3:cpu:/docker/y\n"}) / "self2") == 1


def test_no_cgroup_files_and_unreadable_ones_limit_nothing(tmp_path):
    assert cgroup_cores(tmp_path / "none", tmp_path / "no-such-file") is None
    root = _tree(tmp_path / "fs", {"cpu.max": "lots 100000"})
    assert cgroup_cores(root, tmp_path / "no-such-file") is None
    (root / "cpu.max").write_text("200000 100000")
    assert cgroup_cores(root, tmp_path / "no-such-file") == 2  # no /proc/self/cgroup: the root alone


def test_this_machine_is_the_smaller_of_affinity_and_quota():
    quota = cgroup_cores()
    affinity = len(os.sched_getaffinity(0))
    assert system_cores() == (min(affinity, quota) if quota else affinity)
    assert usable_cores({}) == system_cores()


def test_rmbg_threads_overrides_and_is_checked():
    assert usable_cores({"RMBG_THREADS": " 3 "}) == 3
    with pytest.raises(ValueError, match=r"^RMBG_THREADS must be a whole number of 1 or more, got '0'$"):
        usable_cores({"RMBG_THREADS": "0"})
    with pytest.raises(ValueError, match=r"^RMBG_THREADS must be a whole number, got 'two'$"):
        usable_cores({"RMBG_THREADS": "two"})


def test_takers_get_what_is_free_and_a_stage_inside_a_stage_no_more_than_it_holds():
    budget = ThreadBudget(3)
    with budget.take(8) as outer:
        assert outer == 3 and budget.in_use == 3
        with budget.take(2) as inner:  # the same thread: served from what it holds
            assert inner == 2 and budget.in_use == 3
    with budget.take(1) as one, ThreadPoolExecutor(1) as other:
        assert one == 1
        assert other.submit(lambda: _held(budget, 5)).result(timeout=30) == 2  # what is left
    assert budget.in_use == 0 and budget.reset_peak() == 3


def _held(budget: ThreadBudget, want: int) -> int:
    with budget.take(want) as got:
        return got


def test_a_forward_waiting_for_all_threads_is_served_before_later_takers():
    budget = ThreadBudget(2)
    order: list[str] = []
    release = threading.Event()

    def hold(name: str, want: int, exactly: bool = False) -> None:
        with budget.take(want, exactly=exactly) as got:
            order.append(f"{name}:{got}")
            if name == "encode":
                release.wait(30)

    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(hold, "encode", 1)
        assert budget.wait_for(lambda b: b.in_use == 1, 30)
        forward = pool.submit(hold, "forward", 2, True)  # needs both: waits for the encode
        assert budget.wait_for(lambda b: b.queued() == 1, 30)
        later = pool.submit(hold, "band", 1)  # one is free, but the forward came first
        assert budget.wait_for(lambda b: b.queued() == 2, 30)
        assert order == ["encode:1"]
        release.set()
        for done in (first, forward, later):
            done.result(timeout=30)
    assert order == ["encode:1", "forward:2", "band:1"]
    assert budget.reset_peak() == 2


@functools.cache
def _disc() -> tuple[np.ndarray, np.ndarray]:
    """The photos' disc, made once: (its share of the brightness, the noise's share), per pixel."""
    ys, xs = np.mgrid[0:1000, 0:1600]
    disc = np.clip((380 - np.hypot(ys - 500, xs - 800)) / 40, 0, 1)[..., None]
    return disc * 230, 1 - disc


def _photo(seed: int) -> Image.Image:
    """A 1600x1000 photo-like image: a bright disc with a soft rim on noise (soft matte edges)."""
    rng = np.random.default_rng(seed)
    lit, rest = _disc()
    noise = rng.integers(0, 90, (1000, 1600, 3))
    return Image.fromarray((lit + rest * noise).astype(np.uint8), "RGB")


@pytest.mark.slow  # concurrent requests on a launched app, threads sampled: 15-25 s on 2 cores
def test_concurrent_requests_never_hold_more_threads_than_the_budget(u2netp_path, monkeypatch):
    """Six requests at once, each a 1.6 MP photo: banded resizes in, the model, the banded
    matte out, the edge estimate and a banded PNG. The CPU threads they run on (the ONNX
    Runtime session's intra-op threads while a forward runs, the worker threads of the
    bands and the estimate, named rmbg-cpu) never outnumber the budget together."""
    import rmbg

    monkeypatch.setenv("RMBG_THREADS", "3")
    provider = rmbg.get_provider("u2netp", device="cpu", engine="onnxruntime")
    assert provider.session().get_session_options().intra_op_num_threads == 3
    photos = [_photo(seed) for seed in range(6)]
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:  # the bands' and the estimate's live worker threads, while requests run
        while not done.is_set():
            seen.append(sum(t.name.startswith("rmbg-cpu") for t in threading.enumerate()))
            BUDGET.wait_for(lambda b: done.is_set(), 0.001)

    def request(photo: Image.Image) -> bytes:
        result = rmbg.remove_background(photo, provider, cache=None)
        return result.encode("png")

    BUDGET.reset_peak()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(6) as pool:
            outputs = list(pool.map(request, photos))
    finally:
        done.set()
        watcher.join(30)
    assert BUDGET.reset_peak() == 3  # the forward took all three; nothing ever took more
    assert max(seen) <= 3 and BUDGET.in_use == 0 and BUDGET.queued() == 0
    for data in outputs:
        with Image.open(io.BytesIO(data)) as out:
            assert out.mode == "RGBA" and out.size == (1600, 1000)
            alpha = np.asarray(out.getchannel("A"))
            assert alpha[500, 800] > 200 and alpha[20, 20] < 50  # the disc kept, the noise gone


def test_a_matte_on_the_cpu_holds_its_threads_from_preprocess_to_postprocess(u2netp_path, monkeypatch):
    """Issue #46 at 1708x960 under 16 clients: a matte's banded resize back to the photo's size
    queued for threads behind other requests' PNG bands between its forward and its postprocess,
    and that wait was counted in its model seconds. Now a taker that asks once the matte has
    started (another request's PNG bands) is served after the matte's postprocess, and the
    matte's banded resizes run on the two threads it holds (U2-Net-p's own stages, on ONNX Runtime)."""
    import rmbg
    from rmbg.providers.local.processing import run_stages

    monkeypatch.setenv("RMBG_THREADS", "2")
    provider = rmbg.get_provider("u2netp", device="cpu", engine="onnxruntime")
    order: list[str] = []

    def png_bands() -> None:
        with BUDGET.take(2) as got:
            order.append(f"png bands:{got}")

    other = threading.Thread(target=png_bands)

    class Watched:  # the provider's stages, noting when each ran and what the budget held then
        device = "cpu"

        def preprocess(self, image: Image.Image) -> np.ndarray:
            order.append(f"preprocess:{BUDGET.in_use}")
            other.start()
            assert BUDGET.wait_for(lambda b: b.queued() == 1 or len(order) > 1, 30)
            return provider.preprocess(image)

        def forward(self, x: np.ndarray) -> np.ndarray:
            order.append(f"forward:{BUDGET.in_use}")
            return provider.forward(x)

        def postprocess(self, pred: np.ndarray, size: tuple[int, int]) -> Image.Image:
            order.append(f"postprocess:{BUDGET.in_use}:{BUDGET.queued()}")
            return provider.postprocess(pred, size)

    photo = _photo(0).resize((1708, 960))
    BUDGET.reset_peak()
    matte = run_stages(Watched(), photo, {}, threads=2)
    other.join(30)
    # before: ["preprocess:0", "png bands:2", "forward:2", "postprocess:0:0"], and under load the
    # postprocess's banded resize waited for the bands of requests that asked during the forward
    assert order == ["preprocess:2", "forward:2", "postprocess:2:1", "png bands:2"]
    assert BUDGET.reset_peak() == 2 and BUDGET.in_use == 0 and BUDGET.queued() == 0
    alpha = np.asarray(matte.alpha)
    assert matte.alpha.size == (1708, 960) and alpha[480, 854] > 200 and alpha[15, 15] < 50
    assert matte.meta == {"device": "cpu"} and matte.seconds > 0


# One new process for the checks of a process that loaded torch first (importing torch takes seconds): with
# nobody's choice of how OpenMP waits in its environment, and a budget of one thread. Line 1: what calm_openmp
# did once torch was loaded; line 2: torch_cpu_threads twice, then torch's own thread counts.
TORCH_FIRST = """
import os, torch
from rmbg.threads import calm_openmp
print(calm_openmp(), os.environ.get('GOMP_SPINCOUNT'))
from rmbg.providers.local.device import torch_cpu_threads as t
print(t(), t(), torch.get_num_threads(), torch.get_num_interop_threads())
"""


def _chosen_nothing() -> dict[str, str]:
    """This process's environment without an operator's choice of how OpenMP waits."""
    return {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}


@pytest.fixture(scope="module")
def torch_first() -> tuple[list[str], str]:
    env = _chosen_nothing() | {"RMBG_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", TORCH_FIRST], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    return out.stdout.splitlines(), out.stderr


@pytest.mark.uses("torch")
def test_torch_runs_on_the_budget_once_per_process(torch_first):
    lines, stderr = torch_first
    assert len(lines) == 2 and lines[1].split() == ["1", "1", "1", "1"], stderr


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, "10000"),  # nobody chose: PyTorch's threads spin 10,000 turns, not 300,000
        ({"GOMP_SPINCOUNT": "5"}, "5"),  # the operator's choice is kept
        ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
    ],
)
def test_openmp_is_calmed_only_where_nobody_chose(env, expected):
    from rmbg.threads import calm_openmp

    environ = dict(env)
    assert calm_openmp(environ, modules={}) == (expected if not env else None)  # before torch loads
    assert environ.get("GOMP_SPINCOUNT") == expected


@pytest.mark.uses("torch")
def test_once_torch_is_loaded_nothing_is_set(torch_first):
    """torch read its environment as it loaded: setting the variable then would claim what is not so."""
    lines, stderr = torch_first
    assert lines and lines[0].split() == ["None", "None"], stderr


@pytest.mark.parametrize(
    "code",
    [
        "import rmbg.webapp",  # the web app (python app.py imports it before any model)
        "from rmbg.cli.main import main; main(['--version'])",  # the CLI
        "import rmbg.providers.local.torch_backend",  # a PyTorch model, from Python
        "import rmbg.providers.local.hf_transformers",  # a transformers model, from Python
    ],
)
def test_every_door_that_loads_torch_calms_openmp_first(code):
    """The variable is set before torch is imported, in a new process with nobody's choice of how OpenMP
    waits (OpenMP reads it as torch loads); `import rmbg` alone leaves the environment as it was. That is
    read in the same process before the door: a door imports the package first in any case, so the
    process runs the same code in the same order as the door alone."""
    probe = "import os, rmbg\nprint(os.environ.get('GOMP_SPINCOUNT'))\n"
    probe += f"{code}\nimport sys\nprint(os.environ.get('GOMP_SPINCOUNT'), 'torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=_chosen_nothing(), capture_output=True, text=True, timeout=300
    )
    words = out.stdout.split()
    assert words[0] == "None" and words[-2:] == ["10000", "False"], (out.stdout, out.stderr)
