"""Second cheap looks of the free model (U2-Net-p), kept on disk for benchmarks/confidence.py.

    python benchmarks/cascade_looks.py --clips CLIPS --step 5

For each frame of benchmarks/cascade_mattes.py's set, U2-Net-p runs again on:

- flip: the frame mirrored left to right (its matte mirrored back);
- zoom: the frame cropped to the first matte's subject (its box at 0.5, grown by a quarter of
  its size on each side, inside the frame), so the subject fills the network's 320 x 320
  input (the matte pasted back, background outside the crop);

and the network's six side outputs of the first look (U2-Net-p's deep supervision, no extra
run) are kept at 320 x 320. Written under the bench cache as
`confidence-mattes/u2netp-<look>/<seq>/<frame>.png` (side outputs `u2netp-side<k>`), with
the seconds each look took in `confidence-mattes/looks-seconds.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from cascade_mattes import Frame, cache_root, frames, matte_path

LOOKS = ("flip", "zoom")
SIDES = 6
MARGIN = 0.25  # the zoom crop: the subject's box grown by this share of its size on each side


def zoom_box(alpha: np.ndarray, margin: float = MARGIN) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the subject (alpha >= 128) grown by `margin`, inside the frame;
    None for an empty matte."""
    ys, xs = np.nonzero(alpha >= 128)
    if xs.size == 0:
        return None
    h, w = alpha.shape
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    dx, dy = round(margin * (x1 - x0)), round(margin * (y1 - y0))
    return max(0, x0 - dx), max(0, y0 - dy), min(w, x1 + dx), min(h, y1 + dy)


def look(provider, image, first: np.ndarray, how: str):
    """The free model's matte of `image` seen another way (module doc), as a full-size L image."""
    from PIL import Image, ImageOps

    if how == "flip":
        return ImageOps.mirror(provider.matte(ImageOps.mirror(image)).alpha)
    box = zoom_box(first)
    if box is None:
        return Image.new("L", image.size, 0)
    out = Image.new("L", image.size, 0)
    out.paste(provider.matte(image.crop(box)).alpha, box[:2])
    return out


def sides(provider, image) -> list[np.ndarray]:
    """U2-Net-p's six side outputs of the plain look, each 320 x 320 uint8."""
    session = provider.session()
    x = provider.preprocess(image)
    raw = session.run(None, {session.get_inputs()[0].name: x})
    return [np.clip(np.asarray(r[0, 0]) * 255.0, 0, 255).astype(np.uint8) for r in raw[1 : 1 + SIDES]]


def main(argv=None) -> int:
    from PIL import Image

    import rmbg

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, help="folder of sequences; default: the sample")
    parser.add_argument("--step", type=int, default=5)
    args = parser.parse_args(argv)
    provider = rmbg.get_provider("u2netp")
    seconds: dict[str, list[float]] = {"plain": [], **{h: [] for h in LOOKS}}
    frame_list: list[Frame] = frames(args.clips, args.step)
    for n, frame in enumerate(frame_list, 1):
        first_path = matte_path("u2netp", frame)
        if not first_path.is_file():
            continue
        image = Image.open(frame.image).convert("RGB")
        first = np.asarray(Image.open(first_path))
        t = time.perf_counter()
        provider.matte(image)
        seconds["plain"].append(time.perf_counter() - t)
        for how in LOOKS:
            out = matte_path(f"u2netp-{how}", frame)
            out.parent.mkdir(parents=True, exist_ok=True)
            t = time.perf_counter()
            matte = look(provider, image, first, how)
            seconds[how].append(time.perf_counter() - t)
            matte.save(out)
        for k, side in enumerate(sides(provider, image), 1):
            out = matte_path(f"u2netp-side{k}", frame)
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(side, "L").save(out)
        print(f"{n}/{len(frame_list)} {frame.seq}/{frame.name}", file=sys.stderr)
    medians = {k: float(np.median(v)) for k, v in seconds.items() if v}
    (cache_root() / "looks-seconds.json").write_text(json.dumps({"median_s": medians, "frames": len(seconds["plain"])}))
    print(json.dumps(medians))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
