"""What the install smoke's steps share: running a step and reporting it, and reading what the app and
the CLI wrote (an image's alpha, a video's frames and alpha, a 1-s clip to send). App packages only."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / "data" / "davis2016-clips"


def expect(ok: Any, what: str, got: Any) -> None:
    """Fails the step with what was expected and what came instead."""
    if not ok:
        raise AssertionError(f"expected {what}; got {str(got)[:600]}")


class Smoke:
    """Runs named steps, says how each went, and lists every failure at the end."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, str]] = []
        self.started = time.monotonic()

    def say(self, line: str) -> None:
        print(line, flush=True)

    def run(self, name: str, step: Callable[[], None]) -> None:
        began = time.monotonic()
        try:
            step()
        except AssertionError as broke:
            self.failed(name, str(broke) or traceback.format_exc(limit=2))
        except Exception:
            self.failed(name, traceback.format_exc(limit=4))
        else:
            self.say(f"ok    {name} ({time.monotonic() - began:.1f} s)")

    def failed(self, name: str, why: str) -> None:
        self.failures.append((name, why))
        self.say(f"FAIL  {name}: {why}")

    def report(self) -> int:
        took = time.monotonic() - self.started
        if not self.failures:
            self.say(f"install smoke: everything worked ({took:.0f} s)")
            return 0
        self.say(f"install smoke: {len(self.failures)} failed ({took:.0f} s):")
        for name, why in self.failures:
            lines = why.strip().splitlines() or [""]
            first = lines[0] if why.startswith("expected") else lines[-1]
            self.say(f"  {name}: {first[:200]}")
        return 1


def alpha_range(path: Path) -> tuple[int, int]:
    """(lowest, highest) alpha of an RGBA image file; fails for an image without alpha."""
    with Image.open(path) as image:
        expect(image.mode == "RGBA", f"an RGBA image in {path.name}", image.mode)
        low, high = image.getchannel("A").getextrema()
    return int(low), int(high)


def clip_1s(path: Path, seq: str = "dog", rate: int = 24, size: tuple[int, int] = (214, 120)) -> Path:
    """The first second of a DAVIS clip from data/, scaled down, as an H.264 MP4 (PyAV)."""
    import av

    with av.open(str(CLIPS / seq / "clip.mp4")) as source, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for n, frame in enumerate(source.decode(video=0)):
            if n == rate:
                break
            image = frame.to_image().resize(size, Image.Resampling.BILINEAR)
            out.mux(stream.encode(av.VideoFrame.from_image(image)))
        out.mux(stream.encode(None))
    return path


def video_alpha(path: Path) -> tuple[int, int, int]:
    """(frames, lowest alpha, highest alpha) of a VP9 WebM with alpha, decoded by libvpx-vp9 (which keeps it)."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        expect(stream.codec_context.name == "vp9", f"VP9 video in {path.name}", stream.codec_context.name)
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        frames = [f for packet in c.demux(stream) if packet.size for f in decoder.decode(packet)]
        frames += list(decoder.decode(None))
    alphas = [np.asarray(f.to_ndarray(format="rgba"))[..., 3] for f in frames]
    expect(alphas, f"frames in {path.name}", 0)
    return len(alphas), int(min(a.min() for a in alphas)), int(max(a.max() for a in alphas))
