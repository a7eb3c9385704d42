"""What an evaluation produces: per-image rows, estimates and summaries
(the whole Evaluation, which writes itself out, is in rmbg.eval.report).

Plain frozen dataclasses, shared by run (which makes them), stats (which
summarises rows) and report (which writes them out); they import none of those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

# The files an evaluation writes into its folder (rmbg.eval.report.write_all), by their fixed names: `rmbg
# evaluate` refuses an --out where one would be a file it reads, and a plot beside its run's evaluation.json is
# that run's report, never an image or a mask (rmbg.eval.dataset).
REPORT_FILES = {
    "per_image": "per_image.csv",
    "summary": "summary.csv",
    "json": "evaluation.json",
    "markdown": "results.md",
    "cascades": "cascades.csv",
    "plot": "quality_vs_cost.png",
    "plot_skipped": "plot_skipped.txt",
}


@dataclass(frozen=True)
class ImageRow:
    """One provider on one image. status: "ok", "failed" (then `error` says
    why) or "excluded": scored and reported, but left out of every mean and
    ranking (`error` says why: a watermarked result, Cost.watermarked).
    A cascade simulated from the rows (rmbg.eval.frontier) ranks by `confidence`."""

    provider: str
    name: str
    category: str
    group: str
    status: str
    seconds: float = 0.0
    cost_usd: Decimal = Decimal(0)
    cost_source: str = ""
    values: Mapping[str, float | None] = field(default_factory=dict)
    error: str = ""
    confidence: float | None = None  # the matte's, as Result.meta carries it (rmbg.confidence); None: no matte


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95 % bootstrap interval; n = groups that had a value."""

    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class Summary:
    """One provider on one category ("all" = every image)."""

    provider: str
    category: str
    n_images: int
    n_groups: int
    n_failed: int
    metrics: Mapping[str, Estimate]
    seconds_per_image: float
    cost_per_image: Decimal
    cost_source: str
    n_excluded: int = 0  # scored rows left out of the means (ImageRow "excluded")
    excluded_reason: str = ""


@dataclass(frozen=True)
class CascadeRow:
    """A cascade simulated from an evaluation's own mattes (rmbg.eval.frontier): `free`'s
    matte on every image, `better`'s on the `escalated` ones (the least sure first);
    `summary` scores the result exactly as a provider's (its provider is the label)."""

    free: str
    better: str
    share: float  # asked for: at most floor(share x images with a matte) are escalated
    escalated: tuple[str, ...]  # image names
    summary: Summary


PERCENT = {"iou", "boundary_f", "boundary_f_2px", "boundary_iou", "max_f"}  # shown x 100


def fmt_estimate(key: str, est: Estimate | None, ci: bool = True) -> str:
    """An estimate as the reports show it: the mean, with its interval when `ci`; "–" when there is none."""
    if est is None or math.isnan(est.mean):
        return "–"
    digits = 3 if key in ("mae", "e_t") else 1
    mean, low, high = (100 * v if key in PERCENT else v for v in (est.mean, est.low, est.high))
    return shown(Estimate(mean, low, high, est.n), digits, ci)


def shown(est: Estimate, digits: int, ci: bool = True) -> str:
    """The mean to `digits` places, then "[low, high]" when `ci` and there is an interval (resamples were made)."""
    text = f"{est.mean:.{digits}f}"
    return f"{text} [{est.low:.{digits}f}, {est.high:.{digits}f}]" if ci and not math.isnan(est.low) else text
