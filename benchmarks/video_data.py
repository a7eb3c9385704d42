"""The DAVIS clips the video benchmarks score, and each model's frame-by-frame mattes of them, kept.

A clip folder holds one folder per sequence, each with `masks/<frame>.png` and
either `clip.mp4` (data/davis2016-clips, the repository's three) or
`images/<frame>.jpg` (a whole DAVIS sequence as its JPEG frames). JPEG frames
are encoded into one H.264 clip first, as data/davis2016-clips' were made
(libx264, CRF 23, preset slow, yuv420p, 24 fps), so every sequence goes
through the model as a compressed clip, the way a user's would.

The model runs once per clip and model: its mattes (uint8, one per frame,
`rmbg.remove_video(..., smooth=False)`) are kept in the bench cache as a
compressed .npz named by the model, the sequence and the clip's bytes' hash
(rmbg's own code is not part of the name: `--fresh` runs the model again after
a change to it), and every filter setting is then scored on the same mattes without
running the model again.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_DATA = Path(__file__).resolve().parents[1] / "data" / "davis2016-clips"


def cache_dir() -> Path:
    """Where the clips made from JPEG frames and the kept mattes go (RMBG_BENCH_CACHE, else ~/.cache/rmbg-bench)."""
    path = Path(os.environ.get("RMBG_BENCH_CACHE") or Path.home() / ".cache" / "rmbg-bench").expanduser() / "video"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sequences(data: Path) -> list[str]:
    """The sequences of a clip folder: each subfolder with masks and a clip or its frames, by name."""
    return sorted(
        p.name
        for p in data.iterdir()
        if (p / "masks").is_dir() and ((p / "clip.mp4").is_file() or (p / "images").is_dir())
    )


def masks(data: Path, seq: str) -> list[np.ndarray]:
    from PIL import Image

    return [np.asarray(Image.open(p).convert("L")) for p in sorted((data / seq / "masks").glob("*.png"))]


def clip(data: Path, seq: str) -> Path:
    """The sequence as an H.264 clip: its clip.mp4, or its JPEG frames encoded once into the cache."""
    given = data / seq / "clip.mp4"
    if given.is_file():
        return given
    images = sorted((data / seq / "images").glob("*.jpg"))
    digest = hashlib.sha256(b"".join(hashlib.sha256(p.read_bytes()).digest() for p in images)).hexdigest()[:16]
    path = cache_dir() / f"{seq}-{digest}.mp4"
    if not path.is_file():
        _encode(images, path)
    return path


def _encode(images: list[Path], path: Path) -> None:
    import av
    from PIL import Image

    tmp = path.with_name(f".{path.name}.part.mp4")
    with av.open(str(tmp), "w") as c:
        s = c.add_stream("libx264", rate=24, options={"crf": "23", "preset": "slow"})
        first = Image.open(images[0])
        s.width, s.height, s.pix_fmt = first.width, first.height, "yuv420p"
        for p in images:
            frame = av.VideoFrame.from_ndarray(np.asarray(Image.open(p).convert("RGB")), format="rgb24")
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    tmp.replace(path)


@dataclass
class Sequence:
    """One scored sequence: its name, clip, decoded frames (RGB), masks and the model's mattes."""

    name: str
    clip: Path
    rgbs: list[np.ndarray]
    gts: list[np.ndarray]
    raw: list[np.ndarray]


def load(data: Path, seq: str, provider, model: str, fresh: bool = False) -> Sequence:
    """The sequence with `provider`'s frame-by-frame mattes (kept under `model`'s name, module doc)."""
    import rmbg
    from rmbg.video.decode import frames, probe
    from rmbg.video.limits import VideoLimits

    path = clip(data, seq)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    kept = cache_dir() / f"mattes-{model}-{seq}-{digest}.npz"
    limits = VideoLimits()
    rgbs = [f.rgb for f in frames(probe(path, limits), limits)]
    if kept.is_file() and not fresh:
        raw = list(np.load(kept)["mattes"])
    else:
        with rmbg.remove_video(path, provider, smooth=False) as result:
            raw = list(result.mattes())
        np.savez_compressed(kept, mattes=np.stack(raw))
    gts = masks(data, seq)
    if not len(rgbs) == len(raw) == len(gts):
        raise SystemExit(f"{seq}: {len(rgbs)} frames, {len(raw)} mattes, {len(gts)} masks")
    return Sequence(seq, path, rgbs, gts, raw)
