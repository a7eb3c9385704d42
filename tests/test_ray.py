"""The Ray engine on a local Ray (2 CPUs): the same outputs and manifest rows
as the local engine, resume, one budget across workers for a paid provider
(counted at the fake fal server), GPUs the cluster does not have refused before
any worker is made, and the message without Ray. U2-Net-p is a stand-in with its inputs and outputs
(tests/support/stand_in_u2netp.py): what is compared is the engines' outputs for the same model, and its
mattes follow each photo's pixels, for about 1 % of the real forward's CPU (the real model's mattes are
compared across Ray's processes in tests/test_ray_video.py)."""

from __future__ import annotations

import csv
import os
import shutil
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rmbg.cli.main import main
from rmbg.cli.many import remove_many
from rmbg.ray_cluster import ClusterTooSmall
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal import FalFake
from tests.fakes.runware import TEST_KEY as RUNWARE_KEY
from tests.fakes.runware import RunwareFake
from tests.support.local_ray import local_ray
from tests.support.stand_in_u2netp import write_stand_in_u2netp
from tests.u2netp_fixture import u2netp_path  # noqa: F401

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def fal():
    with FalFake() as fake:
        yield fake


@pytest.fixture(scope="module")
def runware():
    """Runware reporting $0.0025 for a call its price table puts at $0.0013 (within the 2x bound)."""
    with RunwareFake(costs={"runware:109@1": 0.0025}) as fake:
        yield fake


@pytest.fixture(scope="module")
def cluster(fal, runware, tmp_path_factory):
    # workers inherit these from the environment, as a local Ray's that the engine starts (ray_cluster.runtime_env)
    names = ("RMBG_FAL_QUEUE_URL", "FAL_KEY", "RMBG_RUNWARE_URL", "RUNWARE_API_KEY", "RMBG_U2NETP_PATH")
    saved = {k: os.environ.get(k) for k in names}
    stand_in = write_stand_in_u2netp(tmp_path_factory.mktemp("stand-in") / "u2netp.onnx")
    os.environ["RMBG_U2NETP_PATH"] = str(stand_in)  # this process's U2-Net-p and the workers'
    os.environ["RMBG_FAL_QUEUE_URL"] = fal.url
    os.environ["FAL_KEY"] = FAL_KEY
    os.environ["RMBG_RUNWARE_URL"] = runware.url
    os.environ["RUNWARE_API_KEY"] = RUNWARE_KEY
    try:
        with local_ray():
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class CpuHolder:
    """An actor that only holds the CPU Ray gave it (an idle video worker's share)."""


def photos(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(7)
    for i in range(n):
        arr = rng.integers(0, 256, (60 + 4 * i, 80, 3), dtype=np.uint8)
        arr[15:45, 20:60] = 250  # a bright block: something to keep
        sub = folder / ("deep" if i % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(sub / f"p{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


def rows(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as fh:
        found = list(csv.DictReader(fh))
    for row in found:  # timing columns: seconds, and a compute estimate made from them
        row.pop("seconds")
        if row["cost_source"] == "compute":
            row.pop("cost_usd")
    return sorted(found, key=lambda r: r["output"])


def test_ray_gives_the_local_engines_outputs_and_manifest(cluster, tmp_path, monkeypatch, capsys):
    """A folder and an object-store style URI (file:// here; s3:// and gs:// go the same way through
    pyarrow) in one Ray run (each run starts its workers anew: one run, not two): the folder's outputs
    and rows are the local engine's, and the URI's images, read by the workers, the same pixels. Idle
    video workers this process kept (rmbg.ray_cluster.IDLE) hold both of the Ray's CPUs when it starts:
    the run lets them go first (its actors would wait for those CPUs for ever)."""
    from rmbg.ray_cluster import IDLE

    holder = ray.remote(num_cpus=1)(CpuHolder)
    IDLE.take(ray, ("cpu-holders",), 0)
    IDLE.give_back(ray, ("cpu-holders",), [holder.remote(), holder.remote()])
    assert len(IDLE.held()) == 2
    src = photos(tmp_path / "in", 3)  # one in the folder, one in deep/, one more: the model runs on each
    store = tmp_path / "store"  # two of the same photos under other names: their outputs do not clash
    (store / "deep").mkdir(parents=True)
    shutil.copyfile(src / "p0.png", store / "s0.png")
    shutil.copyfile(src / "deep" / "p1.png", store / "deep" / "s1.png")
    uri = "file://" + str(store.resolve())
    monkeypatch.chdir(tmp_path)
    assert main(["remove", "in", "-o", "local", "-p", "u2netp"]) == 1  # the broken file fails, the rest are done
    capsys.readouterr()
    assert main(["remove", "in", uri, "-o", "onray", "-p", "u2netp", "--engine", "ray", "--workers", "3"]) == 1
    # a worker holds 1 CPU: the local Ray's 2 CPUs hold 2 of the 3 asked, said once, and the run goes on
    room = "rmbg: the Ray cluster has 0 GPU(s) and 2 CPU(s) in all: room for 2 of the 3 workers asked (1 CPU each)"
    assert capsys.readouterr().err.count(room + "; running 2.\n") == 1
    made = sorted(p.relative_to(tmp_path / "local").as_posix() for p in (tmp_path / "local").rglob("*.png"))
    assert len(made) == 3 and sorted([*made, "deep/s1.png", "s0.png"]) == sorted(
        p.relative_to(tmp_path / "onray").as_posix() for p in (tmp_path / "onray").rglob("*.png")
    )
    for name, theirs in [(name, name) for name in made] + [("p0.png", "s0.png"), ("deep/p1.png", "deep/s1.png")]:
        with Image.open(tmp_path / "local" / name) as a, Image.open(tmp_path / "onray" / theirs) as b:
            assert a.mode == b.mode == "RGBA" and np.array_equal(np.asarray(a), np.asarray(b))
    from_store = [r for r in rows(tmp_path / "onray") if r["file"].startswith("file://")]
    assert [(r["file"], r["output"], r["status"]) for r in from_store] == [
        (f"{uri}/deep/s1.png", "deep/s1.png", "done"),
        (f"{uri}/s0.png", "s0.png", "done"),
    ]
    assert rows(tmp_path / "local") == [r for r in rows(tmp_path / "onray") if r not in from_store]
    assert [r["status"] for r in rows(tmp_path / "onray")].count("failed") == 1
    assert src.exists() and IDLE.held() == []

    # resume: nothing left to schedule but the broken file, so one worker starts of the 2 asked (each starts a
    # process and loads the model: a second would never get an image), counted at Ray's own table of the
    # actors it made (dead ones included)
    before = (tmp_path / "onray" / "p0.png").stat().st_mtime_ns
    made_before = removers()
    outcomes = remove_many(["in"], tmp_path / "onray", "u2netp", engine="ray", workers=2)
    assert sorted(o.status for o in outcomes) == ["failed"] + ["skipped"] * 3
    assert (tmp_path / "onray" / "p0.png").stat().st_mtime_ns == before
    assert removers() - made_before == 1


def removers() -> int:
    """Remover actors Ray has made in this cluster, dead ones included."""
    from ray._private import state

    return sum("Remover" in actor["ActorClassName"] for actor in state.actors().values())


def test_one_budget_across_ray_workers_for_a_paid_provider(cluster, fal, tmp_path):
    fal.reset()
    src = photos(tmp_path / "in", 6)
    (src / "broken.png").unlink()
    outcomes = remove_many([str(src)], tmp_path / "out", "fal-bria", engine="ray", workers=2, max_cost=Decimal("0.05"))
    statuses = sorted(o.status for o in outcomes)
    # $0.018 an image: two fit $0.05 whichever worker asks; the rest are not run
    assert statuses == ["done", "done", "not_run", "not_run", "not_run", "not_run"]
    assert sum(1 for c in fal.calls if c.method == "POST") == 2
    assert sum(o.cost.usd for o in outcomes if o.cost) == Decimal("0.036")


def test_under_a_cap_the_first_paid_call_on_ray_runs_alone(cluster, runware, tmp_path):
    """Two workers, a cap of $0.005, a vendor reporting $0.0025 where the table says $0.0013: the first
    call runs alone, the second holds the room left at the cap's edge, the others are refused."""
    runware.reset()
    src = photos(tmp_path / "in", 4)
    (src / "broken.png").unlink()
    outcomes = remove_many(
        [str(src)], tmp_path / "out", "runware-rembg", engine="ray", workers=2, max_cost=Decimal("0.005")
    )
    assert sorted(o.status for o in outcomes) == ["done", "done", "not_run", "not_run"]
    assert sum(1 for c in runware.calls if c.method == "POST") == 2
    assert sum(o.cost.usd for o in outcomes if o.cost) == Decimal("0.005")


def test_without_ray_the_engine_says_how_to_install_it(tmp_path, monkeypatch, capsys, u2netp_path):  # noqa: F811
    photos(tmp_path / "in", 1)
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["remove", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-p", "u2netp", "--engine", "ray"]) == 2
    assert 'The Ray engine needs Ray Data: pip install "ray[data]"' in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_worker_that_cannot_build_the_provider_is_one_readable_error(cluster, tmp_path):
    import rmbg
    from rmbg import registry
    from rmbg.errors import RmbgError
    from tests.support.providers import CountingProvider

    photos(tmp_path / "in", 2)
    rmbg.register("driver-only", lambda **_: CountingProvider("driver-only"))  # unknown in the workers
    try:
        with pytest.raises(RmbgError, match=r"A Ray worker failed: .*driver-only.*run the same command again") as e:
            remove_many([str(tmp_path / "in")], tmp_path / "out", "driver-only", engine="ray", workers=1)
        assert "Traceback" not in str(e.value) and len(str(e.value)) < 700
    finally:
        registry.unregister("driver-only")


def test_gpus_the_cluster_lacks_are_refused_at_once_with_nothing_written(cluster, fal, tmp_path, capsys):
    """The local Ray has no GPU: a worker asking for one would wait forever, so the run stops before any
    worker is made (nothing written, no paid call), saying what was asked and what the cluster has."""
    fal.reset()
    photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    run = ["remove", str(tmp_path / "in"), "-o", str(out), "--engine", "ray", "--workers", "2"]
    started = time.monotonic()
    assert main([*run, "-p", "fal-bria", "--yes", "--gpus-per-worker", "1"]) == 2
    assert time.monotonic() - started < 20  # refused at once (Ray is up: the fixture's); a hang would never return
    assert capsys.readouterr().err.endswith(
        "rmbg: error: Each Ray worker asks for 1 GPU and 1 CPU (--gpus-per-worker 1), and the Ray cluster has "
        "0 GPU(s) and 2 CPU(s) in all: not one worker can start (Ray would wait for one forever). Run with "
        "--gpus-per-worker 0 (on the CPUs), or on a cluster with GPUs (--address).\n"
    )
    with pytest.raises(ClusterTooSmall, match=r"asks for 0\.5 GPU and 1 CPU \(--gpus-per-worker 0\.5\), and the Ray"):
        remove_many([str(tmp_path / "in")], out, "fal-bria", engine="ray", gpus_per_worker=0.5, max_cost=Decimal(1))
    assert fal.calls == [] and not out.exists()
    for bad, why in (("-1", "must be 0 or more GPUs: '-1'"), ("2.5", "more than 1 GPU must be a whole number")):
        assert main([*run, "-p", "u2netp", "--gpus-per-worker", bad]) == 2
        assert f"rmbg remove: error: argument --gpus-per-worker: {why}" in capsys.readouterr().err
    assert not out.exists()


def test_no_secret_travels_in_the_runtime_env():
    from rmbg.ray_cluster import worker_env

    env = {
        "RMBG_FAL_QUEUE_URL": "http://q",
        "HF_HOME": "/hf",
        "HF_TOKEN": "hf_x",
        "FAL_KEY": "id:secret",
        "RUNWARE_API_KEY": "rw",
        "RMBG_SOME_API_KEY": "k",
        "HUGGINGFACE_HUB_TOKEN": "t",
        "PATH": "/bin",
    }
    assert worker_env(env) == {"RMBG_FAL_QUEUE_URL": "http://q", "HF_HOME": "/hf"}


def test_the_settings_travel_in_a_runtime_env_only_to_a_ray_already_up(monkeypatch, tmp_path):
    """A local Ray the engine starts is this process's children: its workers inherit the settings, and
    a runtime_env would only slow each worker's start (Ray's setup step, no worker started ahead). A Ray
    already up (an address, RAY_ADDRESS, the one a `ray start` left on this machine) gets them in the
    runtime_env, secrets left out. Ray's own files are looked for under a folder of this test's (RAY_TMPDIR),
    so a `ray start` on the machine running the suite does not decide it."""
    from rmbg.ray_cluster import runtime_env

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.setenv("RMBG_FAL_QUEUE_URL", "http://q")
    monkeypatch.setenv("FAL_KEY", "id:secret")
    assert runtime_env(ray, None) is None
    for address in ("auto", "ray://head:10001", "10.0.0.1:6379"):
        env = runtime_env(ray, address)
        assert env is not None and env["env_vars"]["RMBG_FAL_QUEUE_URL"] == "http://q"
        assert "FAL_KEY" not in env["env_vars"]
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("127.0.0.1:6379")  # what `ray start --head` leaves
    env = runtime_env(ray, None)
    assert env is not None and env["env_vars"]["RMBG_FAL_QUEUE_URL"] == "http://q"
    (tmp_path / "ray" / "ray_current_cluster").unlink()
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    env = runtime_env(ray, None)
    assert env is not None and env["env_vars"]["RMBG_FAL_QUEUE_URL"] == "http://q"
