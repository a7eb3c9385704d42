"""`rmbg video --engine ray` on a local Ray (2 CPUs): U2-Net-p on a DAVIS clip cut into chunks
(edges inside the smoothing's window, a last chunk shorter than it) gives the
local run's output frame for frame; a stop leaves nothing, and so does a real Ctrl-C of `rmbg video
--engine ray` in a process of its own, which takes its Ray down with it; a hosted video service is
refused with nothing sent; GPUs the cluster does not have are refused before any worker is made.

The real U2-Net-p runs where its mattes are compared across processes (Ray's against the local run's) and
in the Ctrl-C test (its forwards keep the run going until the signal); the other runs (the CLI's chunk shape
and resume, a stop, the hand-out, idle workers) run a stand-in with its inputs and outputs, whose mattes
follow each frame too, for about 1 % of the real forward's CPU (tests/support/stand_in_u2netp.py)."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

import rmbg
from rmbg.cli.main import main
from rmbg.errors import RmbgError
from rmbg.ray_cluster import ClusterTooSmall
from rmbg.video import VideoStopped
from rmbg.video.ray_video import RayVideo
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal_video import FalVideoFake
from tests.support.local_ray import local_ray
from tests.support.stand_in_u2netp import write_stand_in_u2netp
from tests.u2netp_fixture import u2netp_path  # noqa: F401
from tests.video_clips import davis, decoded, write_clip

ray = pytest.importorskip("ray")

FRAMES = 11
SHORT = 6


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory) -> Path:
    return write_stand_in_u2netp(tmp_path_factory.mktemp("stand-in") / "u2netp.onnx")


@pytest.fixture(scope="module")
def cluster(u2netp_path, stand_in):  # noqa: F811
    """Workers inherit RMBG_U2NETP_PATH at Ray's start (as the engine's local Ray's): the stand-in's, for a run
    that gives no weights (the CLI's); the real model's run gives them the real file in provider_config."""
    with pytest.MonkeyPatch.context() as env, ExitStack() as up:
        env.setenv("RMBG_U2NETP_PATH", str(stand_in))
        up.enter_context(local_ray())
        env.undo()
        yield


@pytest.fixture
def with_stand_in(stand_in, monkeypatch) -> Path:
    """This process's U2-Net-p the stand-in too, as the workers' (the CLI's local reference, and its driver)."""
    monkeypatch.setenv("RMBG_U2NETP_PATH", str(stand_in))
    return stand_in


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """11 DAVIS frames (214x120, 24 fps) with a keyframe every 4 (so chunks seek), and a tone."""
    return write_clip(tmp_path_factory.mktemp("clips") / "dog.mp4", davis("dog", FRAMES), gop=4, tone_hz=440)


@pytest.fixture(scope="module")
def local(short_clip, tmp_path_factory, u2netp_path):  # noqa: F811
    """The local engine's run of the real U2-Net-p on the short clip: its mattes and its WebM."""
    folder = tmp_path_factory.mktemp("local")
    with rmbg.remove_video(short_clip, "u2netp", output=folder / "dog.webm") as result:
        return list(result.mattes()), folder


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """The first 6 of those frames, a keyframe every 2: three 2-frame chunks."""
    return write_clip(tmp_path_factory.mktemp("short") / "dog.mp4", davis("dog", SHORT), gop=2, tone_hz=440)


def audio_seconds(path) -> float:
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        return sum(f.samples for f in c.decode(stream)) / stream.codec_context.sample_rate


def differing(ours, theirs) -> list[tuple[int, int, int]]:
    """(frame, pixels that differ, largest difference) of each frame that is not the same."""
    found = []
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        gap = np.abs(a.astype(np.int16) - b.astype(np.int16))
        if gap.any():
            found.append((i, int((gap > 0).sum()), int(gap.max())))
    return found


def same_webm(a, b, frames: int) -> None:
    """The same frames at the same times; the pixels as close as two local runs' (libvpx's realtime
    VP9 is not bit-exact from run to run: two local encodes of the same frames differ in a few 8x8
    blocks; measured up to 64 of a frame's 25,680 pixels), so at most 1 % of the clip's alpha differs."""
    (frames_a, times_a), (frames_b, times_b) = decoded(a, alpha=True), decoded(b, alpha=True)
    assert len(frames_a) == len(frames_b) == frames and times_a == times_b
    differ = sum(int((x[..., 3] != y[..., 3]).sum()) for x, y in zip(frames_a, frames_b, strict=True))
    assert differ <= 0.01 * frames * frames_a[0][..., 3].size


def test_ray_output_is_the_local_output_frame_for_frame(cluster, short_clip, local, tmp_path, u2netp_path):  # noqa: F811
    """The real U2-Net-p, the short clip in chunks of 2 (0-1, 2-3, 4-5: every edge inside the window of 2
    before and 2 after, a middle chunk whose window is the whole clip, a last chunk shorter than the window;
    3 chunks on 2 workers). The 11-frame clip's shape of 10 (a one-frame last chunk, an earlier chunk that
    ends the clip's decoding and so flushes the filter) is the CLI test's, also frame for frame; chunks of
    1, 2, 5, 11, 12 and 30 frames (seeks to a keyframe before the window included) join into the whole
    stream's mattes in tests/test_video_chunks.py (the same chunk_mattes a worker runs, without Ray)."""
    frames, (mattes, folder) = SHORT, local
    out = tmp_path / "dog.webm"
    seen = []
    engine = RayVideo(workers=2, chunk_frames=2, provider_config={"weights": str(u2netp_path)})
    with rmbg.remove_video(
        short_clip, "u2netp", output=out, engine=engine, progress=lambda *a: seen.append(a)
    ) as result:
        assert result.frames == frames and result.smooth and result.cost.source == "free"
        ray_mattes = list(result.mattes())
    # the mattes bit for bit (U2-Net-p gives the same matte for the same frame in every process)
    assert len(ray_mattes) == frames and mattes[0].std() > 20  # real mattes, not blank ones
    assert differing(mattes, ray_mattes) == []
    same_webm(folder / "dog.webm", out, frames)
    assert audio_seconds(out) == pytest.approx(audio_seconds(folder / "dog.webm"))
    done = [d for d, _ in seen]  # frames finished by the workers, in chunks, whatever order they finish in
    assert done == sorted(done) and done[-1] == frames and all(t == frames for _, t in seen)


def test_cli_engine_ray_writes_the_local_output_and_resumes(cluster, clip, with_stand_in, tmp_path, capsys):
    """The stand-in (the workers' and this process's U2-Net-p): the chunk shape is what is compared, on the
    alpha of ProRes 4444 (kept losslessly, one encoder thread), so that the mattes themselves are compared
    and not an encoder's choices (an H.264 matte of the same frames once differed from the local run's in
    10 of 11 frames in a full suite run, up to 19 levels, and never alone)."""
    local = tmp_path / "local.mov"  # the local engine's run
    with rmbg.remove_video(clip, "u2netp", output=local, format="mov") as result:
        mattes = list(result.mattes())
    out = tmp_path / "dog.mov"
    run = ["video", str(clip), "-o", str(out), "-p", "u2netp", "-f", "mov", "--engine", "ray", "--workers", "3"]
    # 10 frames a chunk at 24 fps: 0-9 (its window ends the clip: the filter's flush) and 10 (one frame,
    # shorter than the window); the model runs on 14 frames, where chunks of 5 ran it on 19
    assert main([*run, "--chunk-seconds", "0.4"]) == 0
    said = capsys.readouterr()
    assert f"dog.mov  {FRAMES} frames" in said.out
    # a worker holds 1 CPU: the local Ray's 2 CPUs hold 2 of the 3 asked, said once, and the run goes on
    room = "rmbg: the Ray cluster has 0 GPU(s) and 2 CPU(s) in all: room for 2 of the 3 workers asked (1 CPU each)"
    assert said.err.count(room + "; running 2.\n") == 1
    # the alpha decodes to the local run's, frame for frame, at the same times, and to its mattes
    (ours, our_times), (theirs, their_times) = decoded(out, alpha=True), decoded(local, alpha=True)
    assert len(ours) == FRAMES and our_times == their_times
    ours, theirs = [f[..., 3] for f in ours], [f[..., 3] for f in theirs]
    assert differing(ours, theirs) == []  # and no two frames' mattes alike: one given another's would show
    assert differing(ours, [np.asarray(m) for m in mattes]) == []
    assert all(len(differing([a], [b])) == 1 for a, b in zip(mattes, mattes[1:]))
    assert main([*run, "--chunk-frames", "3"]) == 0
    assert "Skipping 1 clip(s) already done" in capsys.readouterr().err
    assert main([*run, "--chunk-frames", "3", "--chunk-seconds", "1"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main([*run, "--chunk-frames", "0", "--overwrite"]) == 2
    assert "argument --chunk-frames: must be 1 or more: '0'" in capsys.readouterr().err  # as the line is read


def test_a_stop_leaves_nothing_at_the_output(cluster, clip, with_stand_in, tmp_path):
    """One worker (each starts a process and loads its model; how many there are does not matter to a stop),
    no temporal filter (a chunk is its own 2 frames, not 2 more after them: the stop is the same)."""
    stop = threading.Event()

    def progress(done, total):
        stop.set()  # the first chunk done

    with pytest.raises(VideoStopped):
        rmbg.remove_video(
            clip,
            "u2netp",
            output=tmp_path / "out.webm",
            engine=RayVideo(workers=1, chunk_frames=2),
            progress=progress,
            stop=stop,
            smooth=False,
        )
    assert list(tmp_path.iterdir()) == []


def test_a_hosted_video_service_is_refused_under_ray_with_nothing_sent(clip, tmp_path, capsys, monkeypatch):
    with FalVideoFake(polls_before_done=0) as fal:
        monkeypatch.setenv("FAL_KEY", FAL_KEY)
        monkeypatch.setenv("RMBG_FAL_QUEUE_URL", fal.url)
        out = tmp_path / "o.webm"
        code = main(["video", str(clip), "-o", str(out), "-p", "fal-bria-video", "--yes", "--engine", "ray"])
        assert code == 2
        assert "takes the whole clip in one paid call: there is nothing to split" in capsys.readouterr().err
        with pytest.raises(rmbg.InvalidRequestError, match="never split into several calls"):
            rmbg.remove_video(clip, "fal-bria-video", output=out, engine="ray")
        assert fal.calls == [] and fal.billed == [] and not os.listdir(tmp_path)


def test_without_ray_the_engine_says_how_to_install_it(clip, tmp_path, monkeypatch, capsys, u2netp_path):  # noqa: F811
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["video", str(clip), "-o", str(tmp_path / "o.webm"), "-p", "u2netp", "--engine", "ray"]) == 2
    assert 'The Ray engine needs Ray Data: pip install "ray[data]"' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_chunks_handed_out_are_bounded(cluster, short_clip, with_stand_in):
    """in_flight=1: while a chunk's frames are written, no other chunk has been handed out, so the
    frames the workers have finished never run more than that one chunk ahead of the writing (the 6-frame
    clip in 6 chunks of 1: a second chunk handed out, and finished before the first is written, would show
    as 2 frames ahead). Without the temporal filter, a chunk is its own frame, not 2 more on each side: the
    hand-out is the same, and the idle worker's chunk ends sooner, so a regression shows more often."""
    from rmbg.video.decode import probe
    from rmbg.video.limits import VideoLimits
    from rmbg.video.ray_video import ray_mattes

    limits, finished = VideoLimits(), [0]
    engine = RayVideo(workers=2, chunk_frames=1, in_flight=1)
    stream = ray_mattes(
        probe(short_clip, limits), rmbg.get_provider("u2netp"), engine, limits=limits, smooth=None,
        progress=lambda done, total: finished.__setitem__(0, done),
    )  # fmt: skip
    ahead = [finished[0] - frame.index for frame in stream]
    assert len(ahead) == SHORT and max(ahead) == 1 and finished[0] == SHORT


def test_the_next_clip_takes_the_workers_the_last_one_gave_back(cluster, short_clip, with_stand_in, tmp_path):
    """Clips with one provider: a finished run gives its worker actors back, models loaded, and the next
    run takes them whatever its chunks and filter (a stopped one, here, which then kills them instead of
    giving them back). (The image engine lets idle workers go before it starts: tests/test_ray.py.)"""
    from rmbg.ray_cluster import IDLE

    # the first run (two chunks of 3, the filter on) takes what earlier tests of this file gave back, if
    # anything, and makes the rest: it gives back exactly its two workers either way
    engine = RayVideo(workers=2, chunk_frames=3)
    rmbg.remove_video(short_clip, "u2netp", output=tmp_path / "a.webm", engine=engine)
    assert len(IDLE.held()) == 2
    stop = threading.Event()
    with pytest.raises(VideoStopped):  # chunks of 2, no filter: a chunk is its own 2 frames
        rmbg.remove_video(
            short_clip, "u2netp", output=tmp_path / "b.webm", engine=replace(engine, chunk_frames=2),
            progress=lambda *a: stop.set(), stop=stop, smooth=False,
        )  # fmt: skip
    # both idle actors taken by the stopped run (none left idle, none made: workers=2), and killed with it
    assert IDLE.held() == []
    assert [p.name for p in tmp_path.iterdir()] == ["a.webm"]


def test_gpus_the_cluster_lacks_are_refused_at_once_with_nothing_written(cluster, clip, tmp_path, capsys):
    """The local Ray has no GPU: a worker asking for one would wait forever, so the run stops before any
    worker is made, saying what was asked and what the cluster has."""
    out = tmp_path / "o.webm"
    run = ["video", str(clip), "-o", str(out), "-p", "u2netp", "--engine", "ray", "--workers", "2"]
    started = time.monotonic()
    assert main([*run, "--gpus-per-worker", "1"]) == 2
    assert time.monotonic() - started < 20  # refused at once (Ray is up: the fixture's); a hang would never return
    assert capsys.readouterr().err == (
        "rmbg: error: Each Ray worker asks for 1 GPU and 1 CPU (--gpus-per-worker 1), and the Ray cluster has "
        "0 GPU(s) and 2 CPU(s) in all: not one worker can start (Ray would wait for one forever). Run with "
        "--gpus-per-worker 0 (on the CPUs), or on a cluster with GPUs (--address).\n"
    )
    with pytest.raises(ClusterTooSmall, match=r"asks for 0\.25 GPU and 1 CPU \(--gpus-per-worker 0\.25\), and the Ray"):
        rmbg.remove_video(clip, "u2netp", output=out, engine=RayVideo(gpus_per_worker=0.25))
    assert list(tmp_path.iterdir()) == []
    for bad, why in (("-1", "must be 0 or more GPUs: '-1'"), ("1.5", "more than 1 GPU must be a whole number")):
        assert main([*run, "--gpus-per-worker", bad]) == 2
        assert f"rmbg video: error: argument --gpus-per-worker: {why}" in capsys.readouterr().err
    with pytest.raises(RmbgError, match="gpus_per_worker must be 0 or more GPUs: '-0.5'"):
        RayVideo(gpus_per_worker=-0.5)
    assert list(tmp_path.iterdir()) == []


def processes_under(pid: int) -> dict[int, str]:
    """Every process below `pid` (Linux /proc): pid -> name."""
    parent, name = {}, {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # gone meanwhile
            continue
        if stat:
            name[int(entry.name)] = stat[stat.index("(") + 1 : stat.rindex(")")]
            parent[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found, todo = {}, [pid]
    while todo:
        above = todo.pop()
        for child in [p for p, up in parent.items() if up == above]:
            found[child] = name[child]
            todo.append(child)
    return found


def pidfds(pids) -> dict[int, int]:
    """A pidfd for each process still there (readable once it ends)."""
    found = {}
    for pid in pids:
        try:
            found[pid] = os.pidfd_open(pid)
        except ProcessLookupError:  # ended already
            pass
    return found


@pytest.mark.uses("ray")  # in the process it starts
def test_ctrl_c_stops_the_ray_run_leaves_nothing_and_takes_its_ray_down(clip, tmp_path, u2netp_path):  # noqa: F811
    """`rmbg video --engine ray` in a process of its own (its own local Ray), Ctrl-C as a terminal sends
    it (SIGINT to the process group: the command and the Ray processes it started) once a chunk is done:
    the command's exit code for Ctrl-C (130, as the local engine), nothing at the output, and every
    process it started gone."""
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own Ray, not one this test knows
    command = [sys.executable, "-m", "rmbg", "video", str(clip), "-o", str(out / "dog.webm"), "-p", "u2netp"]
    # one worker, chunks of one frame, no filter (a chunk is its one frame, not 2 more each side): the stop is the same
    command += ["--engine", "ray", "--workers", "1", "--chunk-frames", "1", "--no-smooth"]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(command, cwd=root, env=env, stderr=subprocess.PIPE, start_new_session=True)
    said = b""
    try:
        while not any(int(n) > 0 for n in re.findall(rb"(\d+)/%d \[" % FRAMES, said)):  # a chunk done
            more = proc.stderr.read1(4096)  # blocks until the command writes
            assert more, f"the command ended before a chunk was done: {said.decode(errors='replace')}"
            said += more
        started = processes_under(proc.pid)
        watched = pidfds(started)  # no pid reuse, and a wait without polling
        os.killpg(proc.pid, signal.SIGINT)
        said += proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = said.decode(errors="replace")
    assert proc.returncode == 130, text
    assert "rmbg: stopped; run the same command again to resume" in text
    assert list(out.iterdir()) == []  # no output, no hidden temporary file
    assert {"raylet", "gcs_server"} <= set(started.values()), started
    left, deadline = {p: n for p, n in started.items() if p in watched}, time.monotonic() + 30
    try:
        while left and time.monotonic() < deadline:  # each wait returns as soon as one of them ends
            ended, _, _ = select.select([watched[p] for p in left], [], [], deadline - time.monotonic())
            left = {p: n for p, n in left.items() if watched[p] not in ended}
    finally:
        for fd in watched.values():
            os.close(fd)
    assert left == {}, f"still running after the command ended: {left}"
