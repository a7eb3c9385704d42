"""What an evaluation produces: per-image rows, estimates, summaries and the whole Evaluation.

Plain frozen dataclasses, shared by run (which makes them), stats (which
summarises rows) and report (which writes them out); they import none of those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Mapping, Optional


@dataclass(frozen=True)
class ImageRow:
    """One provider on one image. status: "ok" or "failed" (then `error` says why)."""

    provider: str
    name: str
    category: str
    group: str
    status: str
    seconds: float = 0.0
    cost_usd: Decimal = Decimal(0)
    cost_source: str = ""
    values: Mapping[str, Optional[float]] = field(default_factory=dict)
    error: str = ""


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


@dataclass(frozen=True)
class Evaluation:
    """Everything `evaluate` measured. composite_key is "composite" or "composite_seg"."""

    dataset: str
    gt_kind: str  # "alpha" or "binary"
    composite_key: str
    composite_label: str
    rows: tuple[ImageRow, ...]
    summaries: tuple[Summary, ...]
    settings: Mapping[str, object]

    def overall(self, provider: str) -> Summary:
        return next(s for s in self.summaries if s.provider == provider and s.category == "all")

    def to_markdown(self) -> str:
        from .report import markdown

        return markdown(self)

    def write(self, out_dir) -> dict[str, Path]:
        """Write per_image.csv, summary.csv, evaluation.json, results.md and quality_vs_cost.png."""
        from .report import write_all

        return write_all(self, Path(out_dir))
