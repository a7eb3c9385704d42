"""IS-Net general's mattes from rmbg and from rembg, scored against human truth (DAVIS 2016 frames).

Run by benchmarks/vs_rembg_models.py with `--isnet-weights trained` (a trained
network: benchmarks/trained_isnet.py). The two libraries feed the same ONNX
file with different recipes (rembg: Lanczos to 1024x1024, each photo divided
by its own brightest value, Lanczos back; rmbg: isnet-general's recipe,
bilinear both ways, divided by 255), so their mattes differ by more than the
noise floor; this says which one is nearer the truth, photo by photo, rather
than only how far apart they are.

Per photo of data/davis2016-sample (30 frames of 10 sequences, a mask each):
J (IoU at 0.5), boundary F (rmbg.eval.metrics, the DAVIS tolerance) and the
mean absolute error of each library's mask PNG against the mask; rmbg's matte
against rembg's by the precision gate (rembg's own matte of the photo moved
by one grey level: the noise floor). Both in this process, one after the
other (what is measured is the matte, not time).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
from PIL import Image

from harness import table

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "davis2016-sample"


def _scores(matte: Image.Image, truth: np.ndarray) -> tuple[float, float, float]:
    from rmbg.eval.metrics import boundary_f, iou, mae

    pred = np.asarray(matte.convert("L"))
    return iou(pred, truth), boundary_f(pred, truth).f, mae(pred, truth)


def _difference_interval(differences: list[float], sequences: list[str], bootstrap: int = 2000) -> str:
    """The mean of per-sequence mean differences, with its 95 % bootstrap interval over sequences
    (frames of one sequence are not independent: rmbg.eval.stats resamples sequences)."""
    from rmbg.eval.stats import resample_counts

    names = sorted(set(sequences))
    per = np.array([statistics.fmean(d for d, s in zip(differences, sequences) if s == n) for n in names])
    counts = resample_counts(len(names), bootstrap, seed=0)
    replicates = (counts @ per) / counts.sum(axis=1)
    low, high = np.percentile(replicates, [2.5, 97.5])
    return f"{per.mean():+.4f} [{low:+.4f}, {high:+.4f}]"


def truth_table(home: Path) -> dict:
    """The table (module doc) for the IS-Net file <home>/isnet-general-use.onnx (rembg's layout)."""
    import os

    from rembg import new_session, remove
    from vs_rembg_models_workers import noisy

    import rmbg
    from rmbg.eval.gate import deviation, gate

    os.environ["U2NET_HOME"] = str(home)  # rembg's session reads <home>/isnet-general-use.onnx as it is
    session = new_session("isnet-general-use")
    ours = rmbg.get_provider(
        "isnet-general", weights=str(home / "isnet-general-use.onnx"), device="cpu", engine="onnxruntime"
    )  # ONNX Runtime fp32, rembg's engine: the recipes differ, not the engines
    rows, pairs = [], []
    photos = sorted((SAMPLE / "images").glob("*.jpg"))
    for photo in photos:
        truth = np.asarray(Image.open(SAMPLE / "masks" / f"{photo.stem}.png").convert("L"))
        image = Image.open(photo).convert("RGB")
        theirs = remove(image, session=session, only_mask=True)
        mine = ours.matte(image).alpha
        floor = remove(noisy(photo), session=session, only_mask=True)
        apart, noise = deviation([mine], [theirs]), deviation([floor], [theirs])
        verdict = gate(apart, noise)
        a, b = _scores(mine, truth), _scores(theirs, truth)
        pairs.append((a, b))
        gap = [apart.row()[1], noise.row()[1]]  # mean |Δα| between the two, and rembg's noise floor
        rows.append([photo.stem, *(round(x, 4) for x in (*a, *b)), *gap, "pass" if verdict.passed else "fail"])
        print(rows[-1], flush=True)
    means = [round(statistics.fmean(p[side][k] for p in pairs), 4) for side in (0, 1) for k in range(3)]
    better = sum(p[0][0] >= p[1][0] for p in pairs)
    rows.append([f"mean of {len(pairs)} (rmbg's J >= rembg's on {better})", *means, "", "", ""])
    sequences = [photo.stem.rsplit("_", 1)[0] for photo in photos]
    spans = [_difference_interval([p[0][k] - p[1][k] for p in pairs], sequences) for k in range(3)]
    rows.append(["rmbg - rembg, 95 % interval over sequences", *spans, "", "", "", "", "", ""])
    return table(
        "IS-Net general (trained weights): rmbg's and rembg's mattes against the DAVIS truth",
        [
            "photo",
            *("rmbg J", "rmbg F", "rmbg MAE", "rembg J", "rembg F", "rembg MAE"),
            *("mean |Δα| vs rembg", "noise floor mean |Δα|", "gate vs rembg"),
        ],
        rows,
        "Each library's mask of the photo (the same ONNX file, each library's own recipe) against the "
        "photo's DAVIS 2016 mask: J = IoU at 0.5, F = boundary F (DAVIS tolerance), MAE in [0, 1]. Last row: "
        "rmbg's minus rembg's, the mean of per-sequence means with a 95 % bootstrap interval (2000 resamples "
        "of the sequences; a lower MAE is better). Gate: "
        "rmbg's matte against rembg's, by rmbg.eval.gate (noise floor: rembg's matte of the photo moved by "
        "one grey level).",
    )
