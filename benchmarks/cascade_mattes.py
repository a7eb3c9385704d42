"""The mattes benchmarks/confidence.py scores, made once and kept on disk.

    python benchmarks/cascade_mattes.py --clips CLIPS --step 5   # U2-Net-p and trained IS-Net on every 5th frame
    python benchmarks/cascade_mattes.py                           # the same on data/davis2016-sample

A frame set is the DAVIS 2016 sample in data/ (images/ + masks/, 30 frames of
10 sequences) or a folder of sequences (`<seq>/images/*.jpg`, `<seq>/masks/*.png`:
whole DAVIS clips, passed on the command line). Each provider's matte of each
frame is written as an 8-bit PNG under the bench cache (RMBG_BENCH_CACHE,
`confidence-mattes/<provider>/<seq>/<frame>.png`), so the analysis runs again
without a model. Frames are taken in the order (frame number, sequence): a run
stopped early has covered every sequence evenly.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import speed_setup

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "davis2016-sample"
PROVIDERS = ("u2netp", "isnet-general")


@dataclass(frozen=True)
class Frame:
    """One labelled frame: its sequence, its name (the file stem), the image and the human mask."""

    seq: str
    name: str
    image: Path
    mask: Path


def frames(clips: Path | None, step: int) -> list[Frame]:
    """The frames of the sample (clips None) or every `step`-th frame of each sequence under `clips`."""
    found: list[tuple[int, Frame]] = []
    if clips is None:
        for image in sorted((SAMPLE / "images").glob("*.jpg")):
            seq, number = image.stem.rsplit("_", 1)
            found.append((int(number), Frame(seq, image.stem, image, SAMPLE / "masks" / f"{image.stem}.png")))
    else:
        for folder in sorted(p for p in clips.iterdir() if (p / "masks").is_dir()):
            for i, image in enumerate(sorted((folder / "images").glob("*.jpg"))):
                if i % step == 0:
                    found.append((i, Frame(folder.name, image.stem, image, folder / "masks" / f"{image.stem}.png")))
    return [f for _, f in sorted(found, key=lambda pair: (pair[0], pair[1].seq))]


def cache_root() -> Path:
    return speed_setup.bench_cache() / "confidence-mattes"


def matte_path(provider: str, frame: Frame) -> Path:
    return cache_root() / provider / frame.seq / f"{frame.name}.png"


def build(provider_id: str):
    """U2-Net-p (RMBG_U2NETP_PATH or its download) or IS-Net general on the trained weights."""
    if provider_id == "isnet-general":
        import trained_isnet

        return trained_isnet.provider()
    import rmbg

    return rmbg.get_provider(provider_id)


def make(frame_list: list[Frame], provider_ids: list[str]) -> None:
    from PIL import Image

    built = {pid: build(pid) for pid in provider_ids}
    start = time.perf_counter()
    for n, frame in enumerate(frame_list, 1):
        for pid, provider in built.items():
            out = matte_path(pid, frame)
            if out.is_file():
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            matte = provider.matte(Image.open(frame.image).convert("RGB"))
            tmp = out.with_suffix(".part.png")
            matte.alpha.save(tmp)
            tmp.replace(out)
        print(f"{n}/{len(frame_list)} {frame.seq}/{frame.name} {time.perf_counter() - start:.0f} s", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clips", type=Path, help="folder of sequences (<seq>/images, <seq>/masks); default: the sample"
    )
    parser.add_argument("--step", type=int, default=5, help="every N-th frame of each sequence (default 5)")
    parser.add_argument("--provider", "-p", action="append", choices=PROVIDERS, help="default: both")
    args = parser.parse_args(argv)
    make(frames(args.clips, args.step), args.provider or list(PROVIDERS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
