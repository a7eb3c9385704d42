"""Measure providers on labelled images: rmbg.eval.run(...) and `rmbg evaluate`.

Protocol (docs/evaluation.md says why):
- each provider's matte is compared at ground-truth resolution (a matte of
  another size is resized to the GT with bilinear filtering); a mask that is
  not its image's shape up to scale fails its image before any provider is
  called (rmbg.eval.dataset.same_shape);
- per image: IoU at 0.5, DAVIS boundary F at ceil(0.008·diag) px, strict
  boundary F at 2 px and Boundary IoU (r = 0.02) as diagnostics, MAE, max F
  (beta² = 0.3), and the transparency error only for alpha-matte GT;
- per provider and category: the mean over groups (sequences) of per-group
  means, with a 95 % percentile bootstrap interval over groups (fixed seed);
- composite C = 0.5·S_IoU + 0.3·S_edge + 0.2·S_trans* (normalised form) with
  alpha GT; otherwise the segmentation-only composite C_seg, never both.

Importing this module loads neither torch nor matplotlib.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..api import matte_for, resolve_provider
from ..cache import MatteCache
from ..confidence import meta_text
from ..errors import BudgetError, RmbgError
from ..image.io import load_image, to_8bit
from ..money.charging import metered
from ..providers.base import Provider
from ..types import Cost, name_text, one_or_many
from . import metrics as M
from .dataset import Dataset, DatasetError, Sample, discover, same_shape, scaled
from .frontier import SHARES, Pairs, check_pairs, pairs_for, simulate
from .records import ImageRow
from .report import Evaluation

COMPOSITE_LABEL = "C = 0.5·S_IoU + 0.3·S_edge + 0.2·S_trans* (normalised transparency)"
COMPOSITE_SEG_LABEL = "C_seg = (0.5·S_IoU + 0.3·S_edge)/0.8: segmentation-only composite (transparency not measured)"


WATERMARKED = "watermarked by the vendor: a Photoroom sandbox key's free result, not a measure of the model"

ProgressFn = Callable[[int, int, ImageRow], None]
StopFn = Callable[[], bool]


def load_ground_truth(path: Path) -> np.ndarray:
    """GT as uint8 (0-255): the alpha channel of an image that has one, else its grey levels. An alpha channel
    that is opaque everywhere says nothing (a black-and-white mask saved as RGBA): its grey levels are read
    (it was read as "all subject", and every score was against that)."""
    with Image.open(path) as img:
        img.load()
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            alpha = img.convert("RGBA").getchannel("A")
            if alpha.getextrema() != (255, 255):
                return np.asarray(alpha)
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(to_8bit(img))
        return np.asarray(img.convert("L"))


def _stored_size(path: Path) -> tuple[int, int] | None:
    """An image's size as saved, before EXIF orientation, from its header (None when it cannot be read).
    Asked only after load_image opened the same file and found it within the pixel limit: nothing is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return img.size
    except (OSError, ValueError, Image.DecompressionBombError):  # the words then leave EXIF out; the refusal stands
        return None


def _mask_fits(sample: Sample, gt_shape: tuple[int, int]) -> Callable[[tuple[int, int]], None]:
    """load_image's check on the image's size as shown, read from its header: a mask not of that shape up to
    scale (same_shape) fails the image before its pixels are decoded and before the provider is called, so
    nothing is paid for scores that would squash the matte. Resized otherwise, in _predict."""
    mask = (gt_shape[1], gt_shape[0])

    def check(shown: tuple[int, int]) -> None:
        if not scaled(mask, shown):  # the saved size is read only now, to say whether EXIF orientation is why
            why = same_shape(mask, shown, stored=_stored_size(sample.image))
            raise DatasetError(f"its mask {name_text(sample.mask.name)} {why}")

    return check


def _predict(
    sample: Sample, provider: Provider, gt_shape: tuple[int, int], cache
) -> tuple[np.ndarray, float, Cost | None, bool, float]:
    loaded = load_image(sample.image, check=_mask_fits(sample, gt_shape))
    start = time.perf_counter()
    matte, cached = matte_for(loaded, provider, cache=cache)
    seconds = matte.seconds if matte.seconds else time.perf_counter() - start
    alpha = matte.alpha
    sure = float(meta_text(alpha))  # the provider's own matte, as a Result's meta carries it (rmbg.cascade ranks it)
    if alpha.size != (gt_shape[1], gt_shape[0]):
        alpha = alpha.resize((gt_shape[1], gt_shape[0]), Image.Resampling.BILINEAR)
    cost = matte.cost if not cached else None
    return np.asarray(alpha), seconds, cost, matte.cost.watermarked, sure


def _values(scores: M.ImageScores) -> dict[str, float | None]:
    trans = scores.transparency
    return {
        "iou": scores.iou,
        "boundary_f": scores.boundary_f,
        "boundary_f_2px": scores.boundary_f_strict,
        "boundary_iou": scores.boundary_iou,
        "mae": scores.mae,
        "s_trans": trans.raw if trans else None,
        "s_trans_star": trans.normalised if trans else None,
        "e_t": trans.e_t if trans else None,
    }


def estimate_cost(n_images: int, providers: Sequence[Provider]) -> Decimal:
    """Price-table cost of running every provider once on n images (hosted providers only)."""
    return sum((p.estimate().usd * n_images for p in providers if p.kind == "hosted"), Decimal(0))


def _lossy_note(dataset: Dataset, gt: str, kind: str) -> str:
    """What the report says when gt="auto" read JPEG masks as alpha mattes: JPEG's compression noise around a
    binary mask's edge is semi-transparent to the test, and the composite then scores transparency."""
    lossy = sum(s.mask.suffix.lower() in (".jpg", ".jpeg") for s in dataset.samples)
    if gt != "auto" or kind != "alpha" or not lossy:
        return ""
    return f"{lossy} of the {len(dataset)} masks are JPEG, whose compression noise reads as transparency"


def evaluate(
    data,
    providers: Sequence[str | Provider],
    *,
    out=None,
    categories=None,
    gt: str = "auto",
    cache: MatteCache | None = None,
    bootstrap: int = 2000,
    seed: int = 0,
    max_cost: Decimal | None = None,
    progress: ProgressFn | None = None,
    stop: StopFn | None = None,
    cascades: Pairs = None,
    shares: Sequence[float] = SHARES,
) -> Evaluation:
    """Run each provider on a labelled data set and score it.

    data: a folder with images/ and masks/ (see rmbg.eval.dataset) or a Dataset.
    providers: registered ids or provider objects.
    out: if given, a folder that receives CSV, JSON, Markdown and the plot.
    gt: "auto" (alpha when some GT has a semi-transparent region of at least
        max(500 px, 0.1 % of the image)), "binary" or "alpha".
    cache: None (default) runs every provider on every image, so seconds and
        cost are measured; pass a MatteCache to reuse mattes.
    max_cost: USD; refuses to start (BudgetError) when the price-table
        estimate of the hosted calls is higher.
    stop: asked before each provider call; once it answers True nothing more
        runs and the rows so far are scored (the web app's Stop button).
    cascades: (free, better) provider ids, or "auto" (each local provider with
        each other one that is hosted or scores higher): each is simulated at
        `shares` from the mattes this evaluation made, no extra calls
        (rmbg.eval.frontier), and reported under the providers.
    One image that fails is recorded with its error and the rest go on.
    This is the one scoring path: `rmbg evaluate` and the app's Benchmark tab both call it.
    """
    M.require_scipy()  # before any provider runs: a missing scorer would fail every image after its call
    from ..money.payer import usd_cap
    from .stats import check_bootstrap, summarise

    check_bootstrap(bootstrap)  # likewise: a paid run's scores come after every call
    cap = usd_cap(max_cost)
    dataset = data if isinstance(data, Dataset) else discover(data, categories=categories)
    provs = [resolve_provider(p)[0] for p in one_or_many(providers)]  # one id alone is one provider
    pairs = check_pairs(cascades, [p.id for p in provs])  # before any call
    if any(p.kind == "hosted" and not getattr(p, "pays_itself", False) for p in provs):
        from ..money.payer import Paid, Payer

        payer = Payer.operator("evaluate", cap)
        provs = [p if getattr(p, "pays_itself", False) else Paid(p, payer) for p in provs]
    if cap is not None:
        expected = estimate_cost(len(dataset), provs)
        if expected > cap:
            raise BudgetError(f"Estimated cost ${expected} is over the budget of ${cap}.")
    if gt not in ("auto", "binary", "alpha"):
        raise ValueError(f"gt must be 'auto', 'binary' or 'alpha', got {gt!r}")
    rows, curves, any_alpha = _score_all(dataset, provs, gt, cache, progress, stop)
    gt_kind = "alpha" if any_alpha else "binary"
    summaries, key = summarise(
        rows, curves, [p.id for p in provs], alpha=gt_kind == "alpha", bootstrap=bootstrap, seed=seed
    )
    simulated = [
        row
        for free, better in pairs_for(pairs, summaries, {p.id: p.kind for p in provs}, key)
        for row in simulate(
            rows, curves, free, better, shares=shares, composite_key=key, bootstrap=bootstrap, seed=seed
        )
    ]
    evaluation = Evaluation(
        dataset=str(dataset.root),
        gt_kind=gt_kind,
        composite_key=key,
        composite_label=COMPOSITE_LABEL if key == "composite" else COMPOSITE_SEG_LABEL,
        rows=tuple(rows),
        summaries=tuple(summaries),
        settings={
            "threshold": 0.5,
            "edge_tolerance": "ceil(0.008 x diagonal) px; diagnostics: 2 px, Boundary IoU r=0.02",
            "max_f": "beta^2 = 0.3, thresholds k/255",
            "resampling": "matte resized to GT size with bilinear filtering when sizes differ",
            "bootstrap": f"{bootstrap} percentile resamples over groups, seed {seed}",
            "n_images": len(dataset),
            "n_groups": len(dataset.groups),
            "unmatched_images": list(dataset.unmatched_images),
            "gt_note": _lossy_note(dataset, gt, gt_kind),
        },
        cascades=tuple(simulated),
    )
    if out is not None:
        evaluation.write(out)
    return evaluation


def _score_all(
    dataset: Dataset,
    provs: list[Provider],
    gt: str,
    cache: MatteCache | None,
    progress: ProgressFn | None,
    stop: StopFn | None = None,
) -> tuple[list[ImageRow], dict[tuple[str, str], Any], bool]:
    """Every provider on every image: (rows, max-F curves by (provider, image), whether any GT is alpha)."""
    any_alpha = gt == "alpha"
    rows: list[ImageRow] = []
    curves: dict[tuple[str, str], Any] = {}
    total, done = len(dataset) * len(provs), 0
    for sample in dataset.samples:
        try:  # an unreadable mask fails its image in words (it ended the whole run in a traceback), the rest go on
            truth: np.ndarray | None = load_ground_truth(sample.mask)
        except (OSError, ValueError, Image.DecompressionBombError):
            truth = None
        any_alpha = any_alpha or (truth is not None and gt == "auto" and M.has_alpha_region(truth))
        for prov in provs:
            if stop is not None and stop():
                return rows, curves, any_alpha
            if truth is None:
                why = f"its mask {name_text(sample.mask.name)} is not an image we can read: replace it, or remove both"
                row, curve = ImageRow(prov.id, sample.name, sample.category, sample.group, "failed", error=why), None
            else:
                row, curve = _score_one(sample, prov, truth, gt != "binary", cache)
            rows.append(row)
            if curve is not None:
                curves[(prov.id, sample.name)] = curve
            done += 1
            if progress is not None:
                progress(done, total, row)
    return rows, curves, any_alpha


def _score_one(sample: Sample, prov: Provider, truth: np.ndarray, alpha_gt: bool, cache) -> tuple[ImageRow, object]:
    def row(status: str, **fields: Any) -> ImageRow:
        return ImageRow(prov.id, sample.name, sample.category, sample.group, status, **fields)

    with metered() as meter:
        try:
            pred, seconds, cost, watermarked, sure = _predict(sample, prov, truth.shape, cache)
            scores, curve = M.score_image(pred, truth, alpha_gt=alpha_gt)
        except Exception as exc:  # a provider bug must not end a long evaluation
            text = str(meter.annotate(exc)) if isinstance(exc, RmbgError) else f"{type(exc).__name__}: {exc}"
            if meter.state.billable:  # accepted, or may have been: its price counts (rmbg.money.charging)
                return row("failed", error=text, cost_usd=prov.estimate().usd, cost_source="may have been billed"), None
            return row("failed", error=text), None
    usd = cost.usd if cost is not None else Decimal(0)
    source = cost.source if cost is not None else "free"
    if watermarked:  # the vendor's watermark is in the matte: its score says nothing of the model
        return row(
            "excluded",
            seconds=seconds,
            cost_usd=usd,
            cost_source=source,
            values=_values(scores),
            error=WATERMARKED,
            confidence=sure,
        ), None
    return row("ok", seconds=seconds, cost_usd=usd, cost_source=source, values=_values(scores), confidence=sure), curve
