"""What Ray workers ask for their GPUs, on a local Ray that declares one GPU (Ray hands it out and
counts it; no GPU is behind it, so U2-Net-p still runs on the CPU): video workers hold the GPU, or
their share of it, while they run; a cluster with room for fewer workers than asked runs those, and
says so once, for video and images alike. The workers run U2-Net-p's stand-in
(tests/support/stand_in_u2netp.py): what is checked is what they hold and how many run, not their
mattes; the real model cost each worker about 1 s more CPU to load and run (this file in a fresh
`RMBG_FRESH_PROCESS=1 python -m pytest -n 0`, every process counted: 36 s of CPU with it, 30 s with the stand-in)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.cli.many import remove_many
from rmbg.providers.local.u2netp_file import ENV_PATH
from rmbg.video.ray_video import RayVideo
from tests.support.local_ray import local_ray
from tests.support.stand_in_u2netp import write_stand_in_u2netp
from tests.video_clips import davis, write_clip

ray = pytest.importorskip("ray")

FRAMES = 2  # two chunks of one frame: what the workers hold is seen once per chunk


@pytest.fixture(scope="module")
def one_gpu(tmp_path_factory):
    """Workers inherit RMBG_U2NETP_PATH at Ray's start (as the engine's local Ray's): the stand-in's."""
    stand_in = write_stand_in_u2netp(tmp_path_factory.mktemp("stand-in") / "u2netp.onnx")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(ENV_PATH, str(stand_in))
        with local_ray(gpus=1):
            yield


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "dog.mp4", davis("dog", FRAMES), gop=1)


def said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rmbg.ray_cluster"]


@pytest.mark.parametrize(
    ("gpus", "room", "free"),
    [
        (1, 1, (0.0, 1.0)),  # one worker fits: it holds the GPU and one of the 2 CPUs while the clip runs
        (0.5, 2, (0.0, 0.0)),  # two share the GPU, a CPU each
    ],
)
def test_video_workers_hold_the_gpus_they_ask_for(one_gpu, clip, tmp_path, caplog, gpus, room, free):
    held = []

    def progress(done, total):  # in this process, while the workers are up
        left = ray.available_resources()
        held.append((left.get("GPU", 0.0), left.get("CPU", 0.0)))

    engine = RayVideo(workers=2, chunk_frames=1, gpus_per_worker=gpus)
    with caplog.at_level(logging.WARNING, logger="rmbg.ray_cluster"):
        with rmbg.remove_video(  # no temporal filter: a chunk is its own frame (what is held is the same)
            clip, "u2netp", output=tmp_path / "dog.webm", engine=engine, progress=progress, smooth=False
        ) as result:
            assert result.frames == FRAMES
    assert held == [free, free]  # two chunks of 1 frame, each seen done with the workers holding their share
    fewer = "the Ray cluster has 1 GPU(s) and 2 CPU(s) in all: room for 1 of the 2 workers asked (1 GPU and 1 CPU each)"
    assert said(caplog) == ([f"{fewer}; running 1."] if room == 1 else [])


def test_an_image_batch_runs_on_the_workers_the_gpus_hold(one_gpu, tmp_path, caplog):
    rng = np.random.default_rng(3)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(tmp_path / f"p{i}.png")
    with caplog.at_level(logging.WARNING, logger="rmbg.ray_cluster"):
        outcomes = remove_many(
            [str(tmp_path)], tmp_path / "out", "u2netp", engine="ray", workers=3, gpus_per_worker=0.5
        )
    assert sorted(o.status for o in outcomes) == ["done"] * 3
    assert said(caplog) == [
        "the Ray cluster has 1 GPU(s) and 2 CPU(s) in all: room for 2 of the 3 workers asked (0.5 GPU and 1 CPU each); "
        "running 2."
    ]


@pytest.mark.parametrize(("gpus", "shown"), [(0, ""), (1, "0")])
def test_a_worker_given_no_gpu_is_shown_none(one_gpu, gpus, shown):
    """Ray shows an actor given GPUs only those, but one given none every GPU of its node: a worker's
    model (device "auto") would land on a GPU Ray does not count. Built as both engines build it; its CPU
    work runs on the 1 CPU Ray gave it (rmbg.threads' budget), not on every core of the machine."""

    @ray.remote(num_cpus=1, num_gpus=gpus)
    class Worker:
        def __init__(self):
            import os

            from rmbg.ray_cluster import worker_provider
            from rmbg.threads import usable_cores

            self.provider = worker_provider("u2netp", {}, ray.get_gpu_ids())
            self.visible, self.threads = os.environ.get("CUDA_VISIBLE_DEVICES"), usable_cores()

        def seen(self):
            return self.visible, self.provider.id, self.threads

    worker = Worker.remote()
    try:
        assert ray.get(worker.seen.remote()) == (shown, "u2netp", 1)
    finally:
        ray.kill(worker)
