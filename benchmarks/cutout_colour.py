"""Which colour a cut-out keeps under soft alpha: the photo's, the subject's, or the estimated foreground.

    RMBG_U2NETP_PATH=~/.cache/rmbg-test/u2netp.onnx \\
        python benchmarks/cutout_colour.py data/davis2016-sample --repeats 3

A semi-transparent pixel of a photo mixes the subject with the photographed
background. A cut-out that keeps the photo's colour there carries that
background along: composited on a new background it shows as a halo, and a
viewer that drops alpha shows a ghost of the removed scene. Three rules for
the RGB under alpha 1-254 (alpha 255 keeps the photo, alpha 0 is RGB 0 in all):

  photo     the photo's own colour (rmbg's cut-outs before this benchmark);
  subject   subject_colours below (a cheaper rule): the mean colour of the
            fully opaque subject pixels nearby (one normalised box filter);
  estimate  rmbg.image.foreground.estimate_foreground: blur-fusion
            foreground estimation (two passes, radii 90 and 6).

Mattes: U2-Net-p (or, with --isnet-trained, the trained IS-Net of
benchmarks/trained_isnet.py) through rmbg (soft edges, as a model gives them) on every
frame of a DAVIS 2016 sample folder (images/*.jpg, masks/*.png: binary human
masks). Halo: the cut-out composited on white, black and green against the
truth (the photo inside the human mask, the new background outside), mean
|error| in grey levels over the edge band (8 px either side of the mask's
edge, plus every soft pixel); "outside" is the same over the band's pixels
the mask calls background, where only the old background can show.
Per-sequence means, then the mean over sequences (frames of a sequence are
alike). Size: the cut-out as rmbg writes it (PNG, lossless WebP). Time:
median of --repeats runs (rule + PNG encode) on one 854x480 frame and on it
upscaled to 12 MP, the rules alternated, as a ratio to "photo".
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from harness import markdown, table, write_results

ROOT = Path(__file__).resolve().parents[1]

BACKGROUNDS = ((255, 255, 255), (0, 0, 0), (0, 177, 64))
BAND = 8  # px either side of the human mask's edge


SUBJECT_RADII = (4, 16, 64)  # subject_colours: window radii tried in turn for pixels still without an opaque neighbour


def subject_colours(image: Image.Image, alpha: Image.Image) -> Image.Image:
    """The cheaper rule measured here (not in the library): the image with every
    semi-transparent pixel (alpha 1-254) coloured from
    the fully opaque subject around it: the mean colour of the alpha-255
    pixels in a window (radius 4, else 16, else 64 px; the photo's own colour
    when none is that close). A cheaper rule than estimate_foreground: one
    normalised box filter of four planes over the soft pixels' bounding box,
    no solve; the photographed background never shows through at a soft edge,
    at the price of fine colour detail inside the edge band (hair keeps its
    subject's mean colour, not each strand's). Opaque and transparent pixels
    are unchanged."""
    from PIL import Image

    from rmbg.image.foreground import _box2d, check_alpha

    check_alpha(image, alpha)
    rgb = np.asarray(image.convert("RGB"))
    a8 = np.asarray(alpha)
    soft = (a8 > 0) & (a8 < 255)
    out = rgb.copy()
    rows, cols = np.flatnonzero(soft.any(axis=1)), np.flatnonzero(soft.any(axis=0))
    if not rows.size:
        return Image.fromarray(out, "RGB")
    margin = SUBJECT_RADII[-1]
    y0, y1 = max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, a8.shape[0])
    x0, x1 = max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, a8.shape[1])
    box = (slice(y0, y1), slice(x0, x1))
    solid = (a8[box] == 255).astype(np.float32)
    todo = soft[box].copy()
    planes = [np.multiply(rgb[box][..., c], solid, dtype=np.float32) for c in range(3)]
    patch = out[box]
    tmp, mean_w = np.empty_like(solid), np.empty_like(solid)
    for radius in SUBJECT_RADII:
        if not todo.any():
            break
        _box2d(solid, radius, mean_w, tmp)
        found = todo & (mean_w > 1e-4)
        if not found.any():
            continue
        weight = mean_w[found]
        for c in range(3):
            summed = _box2d(planes[c], radius, np.empty_like(solid), tmp)
            patch[..., c][found] = np.clip(np.rint(summed[found] / weight), 0, 255).astype(np.uint8)
        todo &= ~found
    return Image.fromarray(out, "RGB")


def rules():
    from rmbg.image.foreground import estimate_foreground

    return {"photo": lambda image, alpha: image, "subject": subject_colours, "estimate": estimate_foreground}


def band_of(mask: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    from PIL import Image, ImageFilter

    m = Image.fromarray(mask.astype(np.uint8) * 255)
    grown = np.asarray(m.filter(ImageFilter.MaxFilter(2 * BAND + 1))) > 0
    shrunk = np.asarray(m.filter(ImageFilter.MinFilter(2 * BAND + 1))) > 0
    return (grown & ~shrunk) | ((alpha > 0) & (alpha < 255))


def halo(photo: np.ndarray, colours: np.ndarray, alpha: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(mean |composite - truth| over the band, the same over the band's background pixels)."""
    band = band_of(mask, alpha)
    outside = band & ~mask
    a = alpha.astype(np.float32)[..., None] / 255
    errors, outer = [], []
    for colour in BACKGROUNDS:
        bg = np.array(colour, np.float32)
        composite = colours.astype(np.float32) * a + bg * (1 - a)
        truth = np.where(mask[..., None], photo.astype(np.float32), bg)
        diff = np.abs(composite - truth).mean(axis=2)
        errors.append(float(diff[band].mean()))
        outer.append(float(diff[outside].mean()) if outside.any() else 0.0)
    return float(np.mean(errors)), float(np.mean(outer))


def known_foreground(photo: np.ndarray, mask: np.ndarray, other: np.ndarray) -> tuple[float, ...]:
    """Halo per rule where the truth is known: the subject (the photo inside its
    human mask, edge softened by a Gaussian of radius 2) laid over another
    frame's scene; each rule then cuts it out with that same alpha, so only
    the colour differs. Returns each rule's mean |composite - truth| over the
    soft pixels (the same on any new background)."""
    from PIL import Image, ImageFilter

    alpha = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(2)))
    a = alpha.astype(np.float32)[..., None] / 255
    mixed = np.rint(photo * a + other * (1 - a)).astype(np.uint8)
    soft = (alpha > 0) & (alpha < 255)
    out = []
    for rule in rules().values():
        colours = np.asarray(rule(Image.fromarray(mixed), Image.fromarray(alpha))).astype(np.float32)
        # composite - truth = alpha (colours - subject) on any new background: the background terms cancel
        diff = np.abs((colours - photo) * a).mean(axis=2)
        out.append(float(diff[soft].mean()) if soft.any() else 0.0)
    return tuple(out)


def at_12mp(frames: list[Path], data: Path, count: int) -> list[list[object]]:
    """The known-foreground halo at 12 MP, where estimate_foreground takes its means on
    the soft region reduced k-fold (WORK_PIXELS): the first `count` frames and their
    masks upscaled to 4000x3000 (Lanczos; the mask's edge softened by a Gaussian of
    radius 2 x the scale, as known_foreground does at the frame's size), each rule
    against the full-size estimate (WORK_PIXELS lifted). Also the mean and 99th
    percentile of the gap |reduced - full size| over the soft pixels, the mean weighted by alpha."""
    from PIL import Image, ImageFilter

    from rmbg.image import foreground

    rows: dict[str, list[float]] = defaultdict(list)
    gaps: list[tuple[float, float]] = []
    for k, path in enumerate(frames[:count]):
        photo = Image.open(path).convert("RGB")
        scale = 4000 / photo.size[0]
        mask = Image.open(data / "masks" / (path.stem + ".png")).convert("L").resize((4000, 3000))
        alpha = mask.point(lambda v: 255 if v > 127 else 0).filter(ImageFilter.GaussianBlur(2 * scale))
        other = Image.open(frames[(k + len(frames) // 2) % len(frames)]).convert("RGB")
        big, back = (im.resize((4000, 3000), Image.Resampling.LANCZOS) for im in (photo, other))
        a8 = np.asarray(alpha)
        a = a8.astype(np.float32)[..., None] / 255
        subject = np.asarray(big).astype(np.float32)
        mixed = Image.fromarray(np.rint(subject * a + np.asarray(back) * (1 - a)).astype(np.uint8))
        soft = (a8 > 0) & (a8 < 255)
        results = {"photo": np.asarray(mixed), "estimate": np.asarray(foreground.estimate_foreground(mixed, alpha))}
        reduced_at = foreground.WORK_PIXELS
        foreground.WORK_PIXELS = 10**12
        try:
            results["estimate, full size"] = np.asarray(foreground.estimate_foreground(mixed, alpha))
        finally:
            foreground.WORK_PIXELS = reduced_at
        for name, colours in results.items():
            rows[name].append(float(np.abs((colours.astype(np.float32) - subject) * a).mean(axis=2)[soft].mean()))
        gap = np.abs(results["estimate"].astype(np.int16) - results["estimate, full size"]).max(axis=2)[soft]
        weight = a8[soft] / 255
        gaps.append((float((gap * weight).sum() / weight.sum()), float(np.percentile(gap, 99))))
        print(f"{path.name} at 12 MP: done", flush=True)
    out: list[list[object]] = [[name, round(float(np.mean(v)), 2), "", ""] for name, v in rows.items()]
    out[1][2:] = [round(float(np.mean([g[0] for g in gaps])), 2), round(float(np.mean([g[1] for g in gaps])), 1)]
    return out


def encoded_sizes(colours, alpha) -> tuple[int, int]:
    from PIL import Image

    from rmbg.image.compose import cutout, encode

    image = cutout(Image.fromarray(colours), alpha)
    return len(encode(image, "png")), len(encode(image, "webp"))


def timing(image, alpha, repeats: int) -> dict[str, float]:
    """Median seconds of each rule's cut-out + PNG encode, rules alternated each round; the
    estimate's as rmbg makes it (render: the colours and the cut-out in one array)."""
    from rmbg.image.compose import cutout, encode, render

    made = {
        "photo": lambda image, alpha: cutout(image, alpha),
        "subject": lambda image, alpha: cutout(subject_colours(image, alpha), alpha),
        "estimate": lambda image, alpha: render(image, alpha),
    }
    found: dict[str, list[float]] = defaultdict(list)
    named = [(name, made[name]) for name in rules()]
    for round_ in range(repeats):
        for name, cut in named[round_ % len(named) :] + named[: round_ % len(named)]:
            start = time.perf_counter()
            encode(cut(image, alpha), "png")
            found[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "data",
        type=Path,
        nargs="?",
        default=ROOT / "data" / "davis2016-sample",
        help="a DAVIS sample folder (images/*.jpg, masks/*.png); default data/davis2016-sample",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=0, help="use only the first N frames (0: all)")
    parser.add_argument("--large", type=int, default=3, help="frames measured again at 12 MP (0: none)")
    parser.add_argument("--isnet-trained", action="store_true", help="IS-Net's mattes (benchmarks/trained_isnet.py)")
    parser.add_argument("--results", default="cutout_colour", help="benchmarks/results/NAME.json")
    args = parser.parse_args()

    from PIL import Image

    import rmbg

    model, provider = "U2-Net-p", rmbg.get_provider("u2netp")
    if args.isnet_trained:
        import trained_isnet

        model, provider = "trained IS-Net", trained_isnet.provider()
    frames = sorted((args.data / "images").glob("*.jpg"))[: args.frames or None]
    per_seq: dict[str, dict[str, list[tuple[float, ...]]]] = defaultdict(lambda: defaultdict(list))
    first = None
    known: dict[str, list[tuple[float, ...]]] = defaultdict(list)
    for k, path in enumerate(frames):
        image = Image.open(path).convert("RGB")
        mask = np.asarray(Image.open(args.data / "masks" / (path.stem + ".png")).convert("L")) > 127
        alpha = provider.matte(image).alpha
        first = first or (image, alpha)
        a8, photo = np.asarray(alpha), np.asarray(image)
        for name, rule in rules().items():
            colours = np.asarray(rule(image, alpha))
            png_bytes, webp_bytes = encoded_sizes(colours, alpha)
            per_seq[path.stem.rsplit("_", 1)[0]][name].append((*halo(photo, colours, a8, mask), png_bytes, webp_bytes))
        other = np.asarray(Image.open(frames[(k + len(frames) // 2) % len(frames)]).convert("RGB").resize(image.size))
        known[path.stem.rsplit("_", 1)[0]].append(known_foreground(photo, mask, other))
        print(f"{path.name}: done", flush=True)

    names = list(rules())
    seq_means = {name: np.mean([np.mean(per_seq[s][name], axis=0) for s in per_seq], axis=0) for name in names}
    better = {
        name: sum(np.mean(per_seq[s][name], axis=0)[0] < np.mean(per_seq[s]["photo"], axis=0)[0] for s in per_seq)
        for name in names
    }
    image, alpha = first
    big = image.resize((4000, 3000), Image.Resampling.LANCZOS)
    big_alpha = alpha.resize((4000, 3000), Image.Resampling.BILINEAR)
    small_t, big_t = timing(image, alpha, args.repeats), timing(big, big_alpha, args.repeats)

    known_means = np.mean([np.mean(known[s], axis=0) for s in known], axis=0)
    quality_rows = [
        [
            n,
            round(float(known_means[k]), 2),
            round(seq_means[n][0], 2),
            round(seq_means[n][1], 2),
            f"{better[n]}/{len(per_seq)}",
            round(seq_means[n][2] / 1024, 1),
            round(seq_means[n][3] / 1024, 1),
        ]
        for k, n in enumerate(names)
    ]
    time_rows = [
        [
            n,
            round(small_t[n] * 1000, 1),
            round(small_t[n] / small_t["photo"], 2),
            round(big_t[n], 2),
            round(big_t[n] / big_t["photo"], 2),
        ]
        for n in names
    ]
    tables = [
        table(
            f"Halo on a new background and file size ({len(frames)} DAVIS frames, {len(per_seq)} sequences, "
            f"{model} mattes)",
            [
                "rule",
                "halo, known foreground (grey levels)",
                "halo, edge band (grey levels)",
                "halo, background side of the edge",
                "sequences with less halo than photo",
                "PNG KB",
                "WebP lossless KB",
            ],
            quality_rows,
            notes="Mean |composite - truth| on white, black and green, per-sequence means averaged over sequences. "
            "Known foreground: the subject laid over another frame's scene with a soft edge, cut out with "
            f"that alpha, over its soft pixels; the other columns: the real frames with {model} mattes.",
        ),
        table(
            "Time of rule + PNG encode (median of repeats, rules alternated)",
            ["rule", "854x480 ms", "x photo", "12 MP s", "x photo"],
            time_rows,
        ),
    ]
    if args.large:
        tables.append(
            table(
                f"At 12 MP: the estimate's means taken reduced k-fold, against the full-size estimate "
                f"({min(args.large, len(frames))} frames upscaled to 4000x3000)",
                [
                    "rule",
                    "halo, known foreground (grey levels)",
                    "gap to full size, alpha-weighted mean (grey levels)",
                    "gap to full size, 99th percentile",
                ],
                at_12mp(frames, args.data, args.large),
                notes="The known-foreground measure of the first table on upscaled frames and masks (the mask's "
                "edge softened in proportion); 'estimate' is what rmbg does, 'estimate, full size' the same "
                "blur-fusion with every mean taken at 12 MP.",
            )
        )
    print(markdown(tables))
    print(f"\nWrote {write_results(args.results, None, tables)}")


if __name__ == "__main__":
    main()
