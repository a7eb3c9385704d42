"""How sure a matte looks: a number from the matte alone, no ground truth.

A model that gets an image wrong usually shows it in the matte it returns:
many pixels left between 0 and 1 (it could not decide), the subject in
pieces or full of holes, a ragged outline, a mask that fills the frame or
is nearly empty. `confidence(alpha)` measures those (`signals(alpha)`) and
combines them into one number in [0, 1]: an estimate of the matte's IoU
against a person's mask. Low means "look again": the cascade
(rmbg.cascade) sends the images with the lowest numbers to a better
provider.

The combination (`WEIGHTS`) was set from what each signal means, then kept
after scoring it on U2-Net-p's mattes of four DAVIS 2016 sequences against
each signal alone and a least-squares fit (no better there, even scored on
the frames it was fitted to); it is reported on six other sequences
(benchmarks/confidence.py, docs/cascade.md: AUROC for "IoU below 0.8",
Spearman with IoU, per model). How many of U2-Net-p's mattes fall under each
threshold there is kept in MEASURED_UNDER, for the cost estimates said before
an escalation (measured_words).

Pure numpy, on a copy of the matte sampled to at most SIDE pixels on its
longer side (nearest neighbour, so soft pixels stay soft and the cost does
not grow with the photo).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from PIL import Image

SIDE = 160  # the longer side the matte is sampled to
SOFT_LOW, SOFT_HIGH = 0.1, 0.9  # a pixel strictly between is undecided
SPECK = 0.002  # components smaller than this fraction of the frame are specks (counted, not pieces)
META_KEY = "confidence"  # Result.meta's key (a string, as all meta values)
DEFAULT_SHARE = 0.3  # the cascade's default: at most this share of a batch goes to the better provider
# remove_background(escalate=...), the page's and REST's default: a matte under this goes to the better
# provider. Chosen on the choice sequences (benchmarks/confidence.py): the highest measured threshold
# under which at most DEFAULT_SHARE of U2-Net-p's frames fall (0.25 there; 0.59 on the report ones).
DEFAULT_BELOW = 0.5

# The share of images whose confidence (three decimals) was under each threshold: U2-Net-p's mattes of
# the six DAVIS 2016 report sequences, every 5th frame (benchmarks/confidence.py, its table "Share of
# frames under a confidence threshold", report column; docs/cascade.md, with 95 % intervals over
# sequences). DAVIS video frames (motion, small subjects) are harder than most photos, so these are
# high. The Remove page's expected cost of an escalation reads them; tests/test_confidence.py checks
# them against benchmarks/results/confidence.json.
MEASURED_MODEL = "u2netp"
MEASURED_UNDER: Mapping[float, float] = {
    0.3: 0.38,
    0.4: 0.45,
    0.5: 0.59,
    0.6: 0.74,
    0.7: 0.90,
    0.8: 1.00,
    0.9: 1.00,
}

# confidence = clip(BIAS - sum(weight * signal), 0, 1); kept on the choice sequences (module doc)
BIAS = 1.0
WEIGHTS: Mapping[str, float] = {
    "undecided": 0.6,
    "disagreement": 0.8,
    "fragments": 0.5,
    "holes": 0.3,
    "ragged": 0.05,
    "border": 0.2,
    "degenerate": 1.0,
}


def measured_under(below: float) -> tuple[float, float] | None:
    """(share, the threshold it was measured at): MEASURED_UNDER's share at `below`, else at the
    nearest measured threshold above it (the share under `below` is at most that one, as fewer
    images fall under a lower threshold); None above every measured threshold."""
    at = min((t for t in MEASURED_UNDER if t >= below - 1e-9), default=None)
    return None if at is None else (MEASURED_UNDER[at], at)


def measured_words(below: float, noun: str = "images") -> tuple[float, str] | None:
    """measured_under(below) and how the cost estimates say it, e.g. (0.59, "about 59 % of images
    escalate at 0.5 (measured on DAVIS 2016 video frames with u2netp first, docs/cascade.md)");
    None above every measured threshold. Only for MEASURED_MODEL first: another model's share is
    not measured."""
    found = measured_under(below)
    if found is None:
        return None
    share, at = found
    where = f"on DAVIS 2016 video frames with {MEASURED_MODEL} first, docs/cascade.md"
    about = f"about {share * 100:.0f} % of {noun} escalate at {below:g}"
    if abs(at - below) < 1e-9:
        return share, f"{about} (measured {where})"
    return share, f"at most {about} (measured at {at:g}, the nearest measured threshold above, {where})"


def _sampled(alpha: Image.Image | np.ndarray) -> np.ndarray:
    """The matte as float32 in [0, 1], sampled to at most SIDE on its longer side."""
    img = alpha if isinstance(alpha, Image.Image) else Image.fromarray(np.asarray(alpha, dtype=np.uint8), "L")
    if img.mode != "L":
        img = img.convert("L")
    w, h = img.size
    scale = SIDE / max(w, h, 1)
    if scale < 1:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.NEAREST)
    return np.asarray(img, dtype=np.float32) / 255.0


def _labels(mask: np.ndarray) -> np.ndarray:
    """4-connected component labels of a bool mask (-1 = not in the mask; a component's
    label is the flat index of its first pixel). Each pixel takes the smallest label
    among its neighbours, then follows labels to their own labels (pointer jumping),
    so the rounds grow with the logarithm of a component's length, not the length."""
    h, w = mask.shape
    big = h * w
    flat = np.arange(h * w, dtype=np.int64).reshape(h, w)
    lab = np.where(mask, flat, big)
    while True:
        nb = lab.copy()
        np.minimum(nb[1:], lab[:-1], out=nb[1:])
        np.minimum(nb[:-1], lab[1:], out=nb[:-1])
        np.minimum(nb[:, 1:], lab[:, :-1], out=nb[:, 1:])
        np.minimum(nb[:, :-1], lab[:, 1:], out=nb[:, :-1])
        nb = np.where(mask, nb, big)
        padded = np.append(nb.ravel(), big)
        while True:  # pointer jumping: a label is a pixel; take that pixel's label
            jumped = padded[padded]
            if np.array_equal(jumped, padded):
                break
            padded = jumped
        nb = padded[:-1].reshape(h, w)
        if np.array_equal(nb, lab):
            return np.where(mask, lab, -1)
        lab = nb


def _component_areas(mask: np.ndarray) -> np.ndarray:
    """The area of each 4-connected component of a bool mask."""
    return np.unique(_labels(mask)[mask], return_counts=True)[1]


def signals(alpha: Image.Image | np.ndarray) -> dict[str, float]:
    """What confidence() combines, each 0 when the matte looks sure:

    undecided: pixels strictly between 0.1 and 0.9, per pixel of the subject;
    disagreement: 1 - |alpha >= 0.8| / |alpha >= 0.2| (how much the subject
        depends on where it is cut);
    fragments: the share of the subject outside its largest piece;
    holes: background enclosed by the subject, per pixel of the subject;
    ragged: the outline's length against a disk's of the same area, less 1;
    border: the share of the frame's edge the subject covers;
    degenerate: 1 when the subject is under 0.5 % or over 95 % of the frame.
    """
    a = _sampled(alpha)
    fg = a >= 0.5
    area = int(fg.sum())
    total = a.size
    out = {key: 0.0 for key in WEIGHTS}
    fraction = area / total
    if fraction < 0.005 or fraction > 0.95:
        out["degenerate"] = 1.0
    if area == 0:
        out.update(undecided=1.0, disagreement=1.0)
        return out
    out["undecided"] = min(1.0, float(((a > SOFT_LOW) & (a < SOFT_HIGH)).sum()) / area)
    loose = int((a >= 0.2).sum())
    out["disagreement"] = 1.0 - float((a >= 0.8).sum()) / loose if loose else 1.0
    areas = _component_areas(fg)
    pieces = areas[areas >= SPECK * total]
    out["fragments"] = 1.0 - float(areas.max()) / area if pieces.size else 1.0
    out["holes"] = min(1.0, _enclosed_area(~fg) / area)
    outline = int((fg[1:] != fg[:-1]).sum() + (fg[:, 1:] != fg[:, :-1]).sum())
    out["ragged"] = max(0.0, outline / (2.0 * math.sqrt(math.pi * area)) - 1.0)
    rim = np.concatenate([fg[0], fg[-1], fg[:, 0], fg[:, -1]])
    out["border"] = float(rim.mean())
    return out


def _enclosed_area(background: np.ndarray) -> int:
    """Pixels of `background` not connected to the frame's edge (holes in the subject)."""
    lab = _labels(background)
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    return int((background & ~np.isin(lab, edge[edge >= 0])).sum())


def combine(values: Mapping[str, float], weights: Mapping[str, float] = WEIGHTS, bias: float = BIAS) -> float:
    """BIAS less the weighted signals, clipped to [0, 1]."""
    return float(min(1.0, max(0.0, bias - sum(weights[k] * values[k] for k in weights))))


def confidence(alpha: Image.Image | np.ndarray) -> float:
    """How likely the matte is right, in [0, 1] (module doc): an estimate of its IoU
    against a person's mask, from the matte alone."""
    return combine(signals(alpha))


def meta_text(alpha: Image.Image | np.ndarray) -> str:
    """confidence(alpha) as Result.meta[META_KEY] carries it, "0.000" to "1.000": the
    cascade ranks these (rmbg.cascade.most_unsure), so three decimals decide its ties."""
    return f"{confidence(alpha):.3f}"
