"""The cascade frontier of a Benchmark run with ground truth: what a free model on
every image and a better provider on the images it is least sure of would have
scored and cost on the visitor's own images.

The simulation is rmbg.eval.frontier's (the same as `rmbg evaluate --cascade
auto`): rmbg.eval.run.evaluate scores each cascade at 0 %, 10 %, ..., 100 %
escalated from the mattes the run already made, so nothing more is sent or
paid. This module only presents those CascadeRows: a few shares as a table with
the cost at the visitor's monthly volume, the images the default share
(rmbg.confidence.DEFAULT_SHARE) would send to the better provider, and the
cascades' part of the downloads. The plot's lines are rmbg.eval.report's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...confidence import DEFAULT_SHARE
from ...eval.frontier import label
from ...eval.records import CascadeRow, fmt_estimate
from ...types import format_usd

if TYPE_CHECKING:
    from .scoring import Scored

TABLE_SHARES = (0.1, DEFAULT_SHARE, 0.5)  # the rows shown per cascade (the plot draws every share)


def headers(scored: Scored) -> list[str]:
    quality = "composite" if scored.evaluation.composite_key == "composite" else "C_seg"
    return [
        "cascade (free → better)",
        "share asked",
        "escalated",
        f"{quality} [95 % CI]",
        "S_IoU [95 % CI]",
        "$/image",
        f"$/month ({scored.volume:,} images)",
    ]


def at(cascades: Sequence[CascadeRow], share: float) -> list[CascadeRow]:
    """Each cascade's row at `share` (one per pair, in the evaluation's order)."""
    return [c for c in cascades if math.isclose(c.share, share)]


def n_images(row: CascadeRow) -> int:
    """The images the cascade ran on: both providers had a go at each (as rmbg.eval.frontier counts them)."""
    s = row.summary
    return s.n_images + s.n_failed + s.n_excluded


def table_rows(scored: Scored, shares: Sequence[float] = TABLE_SHARES) -> list[list[object]]:
    """One row per cascade and share (cascades in the evaluation's order, shares ascending)."""
    ev = scored.evaluation
    key = ev.composite_key
    rows: list[list[object]] = []
    for pair in pairs(ev.cascades):
        for share in shares:
            found = [c for c in at(ev.cascades, share) if (c.free, c.better) == pair]
            if not found:
                continue
            c = found[0]
            s, n = c.summary, n_images(c)
            rows.append(
                [
                    label(c.free, c.better),
                    f"{share:.0%}",
                    f"{len(c.escalated)} of {n} ({len(c.escalated) / max(n, 1):.0%})",
                    fmt_estimate(key, s.metrics.get(key)),
                    fmt_estimate("iou", s.metrics.get("iou")),
                    format_usd(s.cost_per_image),
                    format_usd(s.cost_per_image * scored.volume),
                ]
            )
    return rows


def pairs(cascades: Sequence[CascadeRow]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((c.free, c.better) for c in cascades))


def escalated_lines(scored: Scored, share: float = DEFAULT_SHARE) -> list[str]:
    """Per cascade, the images it would send to the better provider at `share`, least sure first."""
    lines = []
    for c in at(scored.evaluation.cascades, share):
        names = list(c.escalated)
        shown = ", ".join(names)  # at most 50 images in a run (rmbg.webapp.benchmark.uploads)
        lines.append(
            f"- **{label(c.free, c.better)}** escalates {len(names)} of {n_images(c)}"
            + (f": {shown}" if names else f" (none: {share:.0%} of {n_images(c)} images is less than one)")
        )
    return lines


def escalated_cutouts(scored: Scored, share: float = DEFAULT_SHARE) -> set[tuple[str, str]]:
    """(free provider, image) of each cut-out a cascade at `share` would send on: the gallery marks them."""
    return {(c.free, name) for c in at(scored.evaluation.cascades, share) for name in c.escalated}


def notes(scored: Scored) -> str:
    """The Markdown under the cascades' table: how to read it, and which images the default share escalates;
    without a cascade, what to tick to see one."""
    ev = scored.evaluation
    if not ev.cascades:
        ids = list(dict.fromkeys(r.provider for r in ev.rows))
        if len(ids) < 2:
            return ""
        return (
            "**Cascades**: none here. Tick a local (free) model and a hosted provider, or a local model "
            "that scores higher, to see what the free one on every image and the better one on the images "
            "it is least sure of would score and cost."
        )
    return "\n".join(
        [
            "**Cascades**, simulated from this run's own cut-outs (nothing more was sent or paid): the free "
            "model on every image, the better provider on the share it is least sure of (its matte's "
            "confidence). On the plot each is a dashed line from 0 % escalated (the free model alone) to 100 % "
            "(the better one everywhere, plus the free call). A random choice of the same share would score "
            "about the free model's score plus that share of the gap to the better one's: a cascade well above "
            "it picks the images the free model gets wrong, one at or under it does no better than chance here. "
            "A cost per image counts the free call on every image and the better one on the escalated ones.",
            "",
            f"At the default share ({DEFAULT_SHARE:.0%}, as `rmbg remove --escalate` uses it), least sure first:",
            *escalated_lines(scored),
        ]
    )


def json_entry(scored: Scored, entry: dict[str, Any]) -> dict[str, Any]:
    """evaluation.json's "cascades" entry (rmbg.eval.frontier.to_json) with each row's cost at the
    visitor's monthly volume and the default share."""
    rows = [
        {**row, "monthly_usd": str(c.summary.cost_per_image * scored.volume)}
        for row, c in zip(entry["rows"], scored.evaluation.cascades, strict=True)
    ]
    return {**entry, "default_share": DEFAULT_SHARE, "monthly_volume": scored.volume, "rows": rows}
