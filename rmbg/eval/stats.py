"""Group means and bootstrap confidence intervals for rmbg.eval.run.

Frames of one video (or any other group) are correlated, so the unit of
resampling is the group: the estimate is the mean over groups of per-group
means, and the 95 % interval is the 2.5-97.5 percentile range of the same
statistic over `bootstrap` resamples of the groups (with replacement).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from numbers import Integral

import numpy as np

from ..errors import InvalidRequestError
from . import metrics as M
from .records import Estimate, ImageRow, Summary

TRANSPARENCY = ("s_trans", "s_trans_star", "e_t")
PER_IMAGE = ("iou", "boundary_f", "boundary_f_2px", "boundary_iou", "mae", "s_trans", "s_trans_star", "e_t")


MAX_BOOTSTRAP = 20_000  # ten times the default: the resamples are a (bootstrap x groups) matrix of floats


def check_bootstrap(bootstrap: object) -> int:
    """`bootstrap` resamples as asked, or InvalidRequestError: a whole number from 0 (the means without
    intervals) to MAX_BOOTSTRAP. Asked before any provider runs: the scores come after every call."""
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, Integral) or not 0 <= int(bootstrap) <= MAX_BOOTSTRAP:
        raise InvalidRequestError(
            f"bootstrap must be a whole number of resamples from 0 (no intervals) to {MAX_BOOTSTRAP:,}, "
            f"not {str(bootstrap)[:40]!r}."
        )
    return int(bootstrap)


def resample_counts(n_groups: int, bootstrap: int, seed: int) -> np.ndarray:
    """(bootstrap, n_groups) matrix: how often each group is drawn in each resample."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(bootstrap, n_groups))
    counts = np.zeros((bootstrap, n_groups), dtype=np.float64)
    np.add.at(counts, (np.arange(bootstrap)[:, None], draws), 1.0)
    return counts


def _replicates(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Bootstrap means of per-group values (NaN = group without a value)."""
    valid = ~np.isnan(values)
    weight = counts @ valid.astype(np.float64)
    total = counts @ np.where(valid, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / np.where(weight > 0, weight, 1), np.nan)


def estimate(point: float, replicates: np.ndarray | float, n: int) -> Estimate:
    """`point` with the 2.5-97.5 percentile range of its bootstrap `replicates` (NaN ones left out); without
    any (no resamples asked), the point alone, its interval NaN."""
    reps = np.atleast_1d(np.asarray(replicates, dtype=np.float64))
    reps = reps[~np.isnan(reps)]
    if np.isnan(point):
        return Estimate(float("nan"), float("nan"), float("nan"), n)
    if reps.size == 0:
        return Estimate(float(point), float("nan"), float("nan"), n)
    low, high = np.percentile(reps, [2.5, 97.5])
    return Estimate(float(point), float(low), float(high), n)


def _group_means(rows: Sequence[ImageRow], groups: list[str]) -> dict[str, np.ndarray]:
    table = {key: np.full(len(groups), np.nan) for key in PER_IMAGE}
    index = {g: i for i, g in enumerate(groups)}
    for key in PER_IMAGE:
        sums, counts = np.zeros(len(groups)), np.zeros(len(groups))
        for row in rows:
            value = row.values.get(key)
            if value is not None:
                sums[index[row.group]] += value
                counts[index[row.group]] += 1
        table[key] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return table


def _curve_means(rows: Sequence[ImageRow], groups: list[str], curves: Mapping) -> np.ndarray:
    out = np.zeros((len(groups), 256))
    counts = np.zeros(len(groups))
    for row in rows:
        i = groups.index(row.group)
        out[i] += curves[(row.provider, row.name)]
        counts[i] += 1
    return out / counts[:, None]


def summarise_rows(
    provider: str,
    category: str,
    rows: Sequence[ImageRow],
    curves: Mapping,
    *,
    composite_key: str,
    bootstrap: int,
    seed: int,
) -> Summary:
    """Estimates for one provider over the given rows (failed rows are counted, not scored;
    excluded ones are counted and scored per image, never averaged)."""

    ok = [r for r in rows if r.status == "ok"]
    groups = sorted({r.group for r in ok})
    estimates: dict[str, Estimate] = {}
    if groups:
        counts = resample_counts(len(groups), bootstrap, seed)
        means = _group_means(ok, groups)
        reps = {key: _replicates(vals, counts) for key, vals in means.items()}
        points = {
            key: float(np.nanmean(vals)) if np.any(~np.isnan(vals)) else float("nan") for key, vals in means.items()
        }
        for key in PER_IMAGE:
            n = int(np.count_nonzero(~np.isnan(means[key])))
            if n or key not in TRANSPARENCY:  # no transparency entry at all without alpha GT
                estimates[key] = estimate(points[key], reps[key], n)
        gcurves = _curve_means(ok, groups, curves)
        mean_curve = (counts @ gcurves) / counts.sum(axis=1, keepdims=True)
        estimates["max_f"] = estimate(float(gcurves.mean(axis=0).max()), mean_curve.max(axis=1), len(groups))
        if composite_key == "composite":
            # NaN (undefined) when this subset has no transparency score: never imputed.
            comp = lambda i, e, t: M.composite(100 * i, 100 * e, t)  # noqa: E731
            estimates["composite"] = estimate(
                comp(points["iou"], points["boundary_f"], points["s_trans_star"]),
                comp(reps["iou"], reps["boundary_f"], reps["s_trans_star"]),
                len(groups),
            )
        else:
            seg = lambda i, e: M.composite_seg(100 * i, 100 * e)  # noqa: E731
            estimates["composite_seg"] = estimate(
                seg(points["iou"], points["boundary_f"]), seg(reps["iou"], reps["boundary_f"]), len(groups)
            )
    sources = Counter(r.cost_source for r in ok)
    excluded = [r for r in rows if r.status == "excluded"]
    return Summary(
        provider=provider,
        category=category,
        n_images=len(ok),
        n_groups=len(groups),
        n_failed=sum(r.status == "failed" for r in rows),
        metrics=estimates,
        seconds_per_image=float(np.mean([r.seconds for r in ok])) if ok else float("nan"),
        cost_per_image=(sum((r.cost_usd for r in ok), Decimal(0)) / len(ok)) if ok else Decimal(0),
        cost_source=sources.most_common(1)[0][0] if sources else "",
        n_excluded=len(excluded),
        excluded_reason=excluded[0].error if excluded else "",
    )


def summarise(
    rows: Sequence[ImageRow], curves: Mapping, providers: list[str], *, alpha: bool, bootstrap: int, seed: int
) -> tuple[list[Summary], str]:
    """Summaries per provider, overall ("all") then per category; and the composite key used.

    The key is "composite" when the GT is alpha and some image has a
    transparency score, else "composite_seg": one kind for the whole table.
    """
    has_trans = any(r.values.get("s_trans_star") is not None for r in rows)
    key = "composite" if alpha and has_trans else "composite_seg"
    categories = sorted({r.category for r in rows if r.category})
    out = []
    for provider in providers:
        mine = [r for r in rows if r.provider == provider]
        out.append(summarise_rows(provider, "all", mine, curves, composite_key=key, bootstrap=bootstrap, seed=seed))
        for category in categories:
            subset = [r for r in mine if r.category == category]
            out.append(
                summarise_rows(provider, category, subset, curves, composite_key=key, bootstrap=bootstrap, seed=seed)
            )
    return out, key
