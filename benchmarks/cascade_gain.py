"""Where does the better model gain? Scores that try to say it, for benchmarks/confidence.py --looks.

The cascade pays off on the frames where IS-Net's matte beats U2-Net-p's, not
on every frame U2-Net-p is unsure of (on some of those IS-Net is worse). The
candidates, each computed without the human mask from U2-Net-p alone (its
matte, the frame, and its second looks from benchmarks/cascade_looks.py):

- unsure: 1 - rmbg.confidence of the matte (what the cascade ranks by today);
- flip / zoom: 1 - IoU (at 0.5) between the matte and U2-Net-p's matte of the
  mirrored frame, or of the frame cropped to its subject (a second run);
- side outputs: mean |a - b| over the union, the matte against each of the
  network's six side outputs (no second run);
- low contrast: minus the distance between the frame's mean colour (RGB in
  [0, 1]) just inside the matte's edge and just outside it (a band of RING
  pixels each side, at rmbg.confidence's 160 pixels): a subject the colour of
  its background is where a larger model should see more;
- holes, ragged: rmbg.confidence's signals; small: minus the subject's area;
- sums of the above, each divided by its standard deviation on the choice
  sequences (the only number fitted, so each counts the same).

On the choice sequences IS-Net is worse than U2-Net-p on average, so the share
of the gap recovered is not defined there; candidates are compared by the share
of the oracle's gain they capture at 20/30/40 % escalated (the IoU the chosen
frames gain, over what the frames with the largest gains would), and their
Spearman correlation with the gain, across all frames and within each sequence.
"""

from __future__ import annotations

import math

import numpy as np
from cascade_mattes import Frame, matte_path

RING = 4  # pixels each side of the matte's edge, at the 160-pixel copy
SHARES = (0.2, 0.3, 0.4)
SINGLE = {  # label: column, sign (+1: a high value means escalate first)
    "unsure (today's confidence)": ("conf", -1.0),
    "flip look": ("flip", 1.0),
    "zoom look": ("zoom", 1.0),
    "side outputs": ("side", 1.0),
    "low contrast": ("contrast", -1.0),
    "holes": ("holes", 1.0),
    "ragged": ("ragged", 1.0),
    "small": ("area", -1.0),
}
SUMS = {
    "unsure + low contrast + holes": ("unsure (today's confidence)", "low contrast", "holes"),
    "flip + low contrast + holes": ("flip look", "low contrast", "holes"),
    "unsure + flip": ("unsure (today's confidence)", "flip look"),
}
CHOSEN = "unsure + low contrast + holes"  # kept on the choice sequences (docs/cascade.md)


def _binary_iou(a: np.ndarray, b: np.ndarray) -> float:
    fa, fb = a >= 128, b >= 128
    union = int((fa | fb).sum())
    return 1.0 if union == 0 else float((fa & fb).sum()) / union


def _shifted_all(mask: np.ndarray, keep: bool) -> np.ndarray:
    """One step of 4-connected erosion (keep=True: every neighbour set) or dilation (any), outside = unset."""
    pad = np.pad(mask, 1, constant_values=False)
    near = [pad[:-2, 1:-1], pad[2:, 1:-1], pad[1:-1, :-2], pad[1:-1, 2:]]
    if keep:
        return mask & near[0] & near[1] & near[2] & near[3]
    return mask | near[0] | near[1] | near[2] | near[3]


def edge_contrast(image, alpha) -> float:
    """Distance between the mean colours within RING pixels inside and outside the matte's edge (0 without both)."""
    from PIL import Image

    from rmbg.confidence import _sampled

    small = _sampled(alpha)
    h, w = small.shape
    rgb = np.asarray(image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    fg = small >= 0.5
    inner, outer = fg.copy(), fg.copy()
    for _ in range(RING):
        inner, outer = _shifted_all(inner, True), _shifted_all(outer, False)
    band_in, band_out = fg & ~inner, outer & ~fg
    if not band_in.any() or not band_out.any():
        return 0.0
    return float(np.linalg.norm(rgb[band_in].mean(0) - rgb[band_out].mean(0)))


def looks(frame: Frame, alpha) -> dict[str, float] | None:
    """The frame's candidate values beyond rmbg.confidence's signals; None when a look is not cached."""
    from PIL import Image

    paths = {k: matte_path(f"u2netp-{k}", frame) for k in ("flip", "zoom", *(f"side{i}" for i in range(1, 7)))}
    if not all(p.is_file() for p in paths.values()):
        return None
    plain = np.asarray(alpha)
    small = np.asarray(alpha.resize((320, 320), Image.Resampling.BILINEAR), dtype=np.float32)
    sides = []
    for i in range(1, 7):
        side = np.asarray(Image.open(paths[f"side{i}"]), dtype=np.float32)
        union = (small >= 128) | (side >= 128)
        sides.append(float(np.abs(small - side)[union].mean()) / 255.0 if union.any() else 1.0)
    return {
        "flip": 1.0 - _binary_iou(plain, np.asarray(Image.open(paths["flip"]))),
        "zoom": 1.0 - _binary_iou(plain, np.asarray(Image.open(paths["zoom"]))),
        "side": float(np.mean(sides)),
        "contrast": edge_contrast(Image.open(frame.image), alpha),
        "area": float((plain >= 128).mean()),
    }


def scores(choice: dict[str, np.ndarray], data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every candidate's score on `data` (high: escalate first); sums scaled by the choice sequences' spread."""
    single = {label: sign * data[f"u2netp:{col}"] for label, (col, sign) in SINGLE.items()}
    spread = {label: float((sign * choice[f"u2netp:{col}"]).std()) or 1.0 for label, (col, sign) in SINGLE.items()}
    sums = {name: sum(single[p] / spread[p] for p in parts) for name, parts in SUMS.items()}
    return {**single, **sums}


def gain(d: dict[str, np.ndarray]) -> np.ndarray:
    return d["isnet-general:iou"] - d["u2netp:iou"]


def captured(d: dict[str, np.ndarray], score: np.ndarray, share: float) -> float:
    """The gain of the top `share` by score over the oracle's (the largest gains); NaN when that is not positive."""
    g = gain(d)
    k = math.floor(share * len(g) + 1e-9)
    best = float(np.sort(g)[::-1][:k].sum())
    if best <= 0:
        return float("nan")
    return float(g[np.argsort(-score, kind="stable")[:k]].sum()) / best


def recovered_by(d: dict[str, np.ndarray], score: np.ndarray, share: float) -> float:
    """(cascade - U2-Net-p) / (IS-Net - U2-Net-p) escalating the top `share` by score; NaN without a gap."""
    g = gain(d)
    if g.mean() <= 0:
        return float("nan")
    k = math.floor(share * len(g) + 1e-9)
    return float(g[np.argsort(-score, kind="stable")[:k]].sum()) / len(g) / float(g.mean())


def choice_table(choice: dict[str, np.ndarray], boot, spearman, fmt, table) -> dict:
    """The candidates on the choice sequences (module doc)."""
    rows = []
    seqs = sorted(set(choice["seq"]))
    for label in [*SINGLE, *SUMS]:

        def of(d, label=label):
            return scores(choice, d)[label]

        within = [spearman(of(choice)[choice["seq"] == s], gain(choice)[choice["seq"] == s]) for s in seqs]
        rows.append([
            label, fmt(boot(choice, lambda d, f=of: spearman(f(d), gain(d)))), f"{np.nanmean(within):.2f}",
            f"{np.nanmin(within):.2f}", *(f"{captured(choice, of(choice), s):.2f}" for s in SHARES),
        ])  # fmt: skip
    notes = (
        f"{len(choice['seq'])} frames of {', '.join(seqs)}; U2-Net-p alone {choice['u2netp:iou'].mean():.4f}, IS-Net "
        f"alone {choice['isnet-general:iou'].mean():.4f}. Gain: IS-Net's IoU less U2-Net-p's, per frame. Captured: "
        "the gain of the frames the score escalates first over the largest gains the same number of frames has "
        f"(1 = the oracle). Chosen: {CHOSEN} (each term over its standard deviation on these frames)."
    )
    columns = ["score", "Spearman with gain", "within a sequence, mean", "min", "captured 20%", "30%", "40%"]
    return table("Where IS-Net gains: candidates on the choice sequences", columns, rows, notes)


def report_table(choice, report, boot, fmt, table, shares, seconds: dict[str, float] | None) -> dict:
    """The chosen score out of sample, beside today's confidence, the flip look (not chosen), random and oracle."""
    shown = (CHOSEN, "unsure (today's confidence)", "flip look")
    rows = []
    for share in shares:
        cells = [f"{share:.0%}"]
        for label in shown:
            cells.append(fmt(boot(report, lambda d, s=share, lb=label: recovered_by(d, scores(choice, d)[lb], s)), 2))
        oracle = recovered_by(report, gain(report), share)
        cells += [f"{math.floor(share * len(report['seq']) + 1e-9) / len(report['seq']):.2f}", f"{oracle:.2f}"]
        rows.append(cells)
    cost = ""
    if seconds:
        cost = (
            f" A second look costs what the first does: U2-Net-p {seconds['plain']:.2f} s a frame, the mirrored "
            f"look {seconds['flip']:.2f} s, the zoomed {seconds['zoom']:.2f} s (medians, this machine)."
        )
    notes = (
        f"{len(report['seq'])} frames of {', '.join(sorted(set(report['seq'])))}; U2-Net-p alone "
        f"{report['u2netp:iou'].mean():.4f}, IS-Net alone {report['isnet-general:iou'].mean():.4f}. Recovered: "
        "(cascade - U2-Net-p) / (IS-Net - U2-Net-p), IS-Net's matte kept, with its 95 % interval over resampled "
        f"sequences. The flip look is shown for the record; it was not chosen.{cost}"
    )
    columns = ["escalated", f"{CHOSEN} (chosen)", "unsure (today)", "flip look", "random", "oracle"]
    return table("Where IS-Net gains: the chosen score on the report sequences", columns, rows, notes)
