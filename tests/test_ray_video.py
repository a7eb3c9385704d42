"""`rmbg video --engine ray` on a local Ray (2 CPUs): U2-Net-p on a DAVIS clip cut into chunks
(edges inside the smoothing's window, a last chunk shorter than it, 1-frame chunks) gives the
local run's output frame for frame; a stop leaves nothing; a hosted video service is refused
with nothing sent."""

from __future__ import annotations

import os
import sys
import threading

import av
import numpy as np
import pytest

import rmbg
from rmbg.cli.main import main
from rmbg.video import VideoStopped
from rmbg.video.ray_video import RayVideo
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal_video import FalVideoFake
from tests.support.local_ray import local_ray
from tests.u2netp_fixture import u2netp_path  # noqa: F401
from tests.video_clips import davis, decoded, write_clip

ray = pytest.importorskip("ray")

FRAMES = 11


@pytest.fixture(scope="module")
def cluster(u2netp_path):  # noqa: F811
    with local_ray():  # the workers get RMBG_U2NETP_PATH (set by the fixture) through the engine's runtime_env
        yield


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """11 DAVIS frames (214x120, 24 fps) with a keyframe every 4 (so chunks seek), and a tone."""
    return write_clip(tmp_path_factory.mktemp("clips") / "dog.mp4", davis("dog", FRAMES), gop=4, tone_hz=440)


@pytest.fixture(scope="module")
def local(clip, tmp_path_factory):
    """The local engine's run: its mattes, its WebM and the same mattes as an H.264 matte video."""
    folder = tmp_path_factory.mktemp("local")
    with rmbg.remove_video(clip, "u2netp", output=folder / "dog.webm") as result:
        result.save(folder / "dog-matte.mp4", format="matte")
        return list(result.mattes()), folder


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


def same_webm(a, b) -> None:
    """The same frames at the same times; the pixels as close as two local runs' (libvpx's realtime
    VP9 is not bit-exact from run to run: two local encodes of the same frames differ in a few 8x8
    blocks; measured up to 64 of a frame's 25,680 pixels), so at most 1 % of the clip's alpha differs."""
    (frames_a, times_a), (frames_b, times_b) = decoded(a, alpha=True), decoded(b, alpha=True)
    assert len(frames_a) == len(frames_b) == FRAMES and times_a == times_b
    differ = sum(int((x[..., 3] != y[..., 3]).sum()) for x, y in zip(frames_a, frames_b, strict=True))
    assert differ <= 0.01 * FRAMES * frames_a[0][..., 3].size


@pytest.mark.parametrize(
    "chunk_frames",
    [
        4,  # chunks 0-3, 4-7, 8-10: every edge inside the window of 2 before and 2 after, the last 3 frames
        10,  # 0-9 and 10: the last chunk one frame, shorter than the window; the first ends at the clip's end
        pytest.param(1, marks=pytest.mark.slow),  # every frame its own chunk, decoding 2 more on each side (40 s)
    ],
)
def test_ray_output_is_the_local_output_frame_for_frame(cluster, clip, local, tmp_path, chunk_frames):
    mattes, folder = local
    out = tmp_path / "dog.webm"
    seen = []
    engine = RayVideo(workers=2, chunk_frames=chunk_frames)
    with rmbg.remove_video(clip, "u2netp", output=out, engine=engine, progress=lambda *a: seen.append(a)) as result:
        assert result.frames == FRAMES and result.smooth and result.cost.source == "free"
        ray_mattes = list(result.mattes())
    # the mattes bit for bit (U2-Net-p gives the same matte for the same frame in every process)
    assert len(ray_mattes) == FRAMES and mattes[0].std() > 20  # real mattes, not blank ones
    assert differing(mattes, ray_mattes) == []
    same_webm(folder / "dog.webm", out)
    assert audio_seconds(out) == pytest.approx(audio_seconds(folder / "dog.webm"))
    done = [d for d, _ in seen]  # frames finished by the workers, in chunks, whatever order they finish in
    assert done == sorted(done) and done[-1] == FRAMES and all(t == FRAMES for _, t in seen)


def test_cli_engine_ray_writes_the_local_output_and_resumes(cluster, clip, local, tmp_path, capsys):
    out = tmp_path / "dog-matte.mp4"
    run = ["video", str(clip), "-o", str(out), "-p", "u2netp", "-f", "matte", "--engine", "ray", "--workers", "2"]
    assert main([*run, "--chunk-seconds", "0.2"]) == 0  # 5 frames a chunk at 24 fps
    assert f"dog-matte.mp4  {FRAMES} frames" in capsys.readouterr().out
    # the matte video (H.264, deterministic) decodes to the local run's, frame for frame, at the same times
    (ours, our_times), (theirs, their_times) = decoded(out), decoded(local[1] / "dog-matte.mp4")
    assert len(ours) == FRAMES and our_times == their_times
    assert differing(ours, theirs) == []
    assert main([*run, "--chunk-frames", "3"]) == 0
    assert "Skipping 1 clip(s) already done" in capsys.readouterr().err
    assert main([*run, "--chunk-frames", "3", "--chunk-seconds", "1"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main([*run, "--chunk-frames", "0", "--overwrite"]) == 2
    assert "at least 1 frame" in capsys.readouterr().err


def test_a_stop_leaves_nothing_at_the_output(cluster, clip, tmp_path):
    stop = threading.Event()

    def progress(done, total):
        stop.set()  # the first chunk done

    with pytest.raises(VideoStopped):
        rmbg.remove_video(
            clip, "u2netp", output=tmp_path / "out.webm", engine=RayVideo(chunk_frames=2), progress=progress, stop=stop
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


def test_chunks_handed_out_are_bounded(cluster, clip):
    """in_flight=1: while a chunk's frames are written, no other chunk has been handed out, so the
    frames the workers have finished never run more than that one chunk ahead of the writing."""
    from rmbg.video.decode import probe
    from rmbg.video.limits import VideoLimits
    from rmbg.video.ray_video import ray_mattes
    from rmbg.video.smooth import SmoothParams

    limits, finished = VideoLimits(), [0]
    engine = RayVideo(workers=2, chunk_frames=2, in_flight=1)
    stream = ray_mattes(
        probe(clip, limits), rmbg.get_provider("u2netp"), engine, limits=limits, smooth=SmoothParams(),
        progress=lambda done, total: finished.__setitem__(0, done),
    )  # fmt: skip
    ahead = [finished[0] - 2 * (frame.index // 2) for frame in stream]
    assert len(ahead) == FRAMES and max(ahead) == 2 and finished[0] == FRAMES
