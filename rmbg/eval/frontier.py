"""The frontier: cascades simulated from an evaluation's own mattes, and their reports.

    rmbg.evaluate("mine/", ["u2netp", "fal-bria"], cascades=[("u2netp", "fal-bria")])
    rmbg evaluate mine/ -p u2netp -p fal-bria --cascade u2netp:fal-bria

A cascade (rmbg.cascade) runs a free provider on every image and a better one
on the share the free one is least sure of. An evaluation that ran both
already holds both mattes of every image, each scored against the ground
truth, so each share of the cascade is scored here without another call: an
image escalated at that share (rmbg.cascade.most_unsure on the free
provider's confidences, the ranking the cascade itself uses) takes the better
provider's row, the others the free one's, and the rows are summarised exactly
as a provider's (rmbg.eval.stats: means over groups, bootstrap intervals).
An escalated image costs the free call and the better one; where the better
provider failed, the image keeps the free result (as the cascade does) and
the better call's charge, if any, still counts.

Whether the confidence picks the right images is the question this answers
on the user's own images: on DAVIS it did not beat a random choice out of
sample (docs/cascade.md). No random baseline is drawn: the report stays on
what the product would do.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ..cascade import most_unsure
from ..errors import InvalidRequestError
from ..types import format_usd
from .records import CascadeRow, Estimate, ImageRow, Summary, fmt_estimate
from .stats import summarise_rows

SHARES = tuple(i / 10 for i in range(11))  # 0 %, 10 %, ..., 100 % escalated
SIMULATED = (
    "simulated from this evaluation's own mattes (no extra calls): FREE on every image, BETTER's matte on "
    "the share FREE is least sure of (its meta['confidence'], ranked as rmbg.cascade ranks it)"
)
NO_SCORE = Estimate(math.nan, math.nan, math.nan, 0)
Pairs = Sequence[tuple[str, str]] | str | None


def parse_pair(text: str) -> tuple[str, str]:
    """'FREE:BETTER' -> (FREE, BETTER); the command line's --cascade."""
    free, sep, better = text.partition(":")
    if not sep or not free or not better or ":" in better:
        raise InvalidRequestError(f"A cascade is FREE:BETTER (e.g. u2netp:fal-bria), got {text!r}.")
    return free.strip(), better.strip()


def check_pairs(cascades: Pairs, ids: Sequence[str]) -> list[tuple[str, str]] | str:
    """The pairs asked for, checked against the evaluated provider ids before any call;
    "auto" stays "auto" (pairs_for chooses once the scores are known)."""
    if cascades is None:
        return []
    if isinstance(cascades, str):
        if cascades != "auto":
            raise InvalidRequestError(f"cascades must be 'auto' or (free, better) pairs, got {cascades!r}.")
        return "auto"
    pairs = [(str(f), str(b)) for f, b in cascades]
    for free, better in pairs:
        missing = [pid for pid in (free, better) if pid not in ids]
        if missing or free == better:
            why = f"{', '.join(missing)} not evaluated" if missing else "the same provider twice"
            raise InvalidRequestError(f"Cascade {free}:{better}: {why} (evaluated: {', '.join(ids)}).")
    return pairs


def pairs_for(
    cascades: list[tuple[str, str]] | str, summaries: Sequence[Summary], kinds: Mapping[str, str], key: str
) -> list[tuple[str, str]]:
    """The pairs to simulate: as given, or for "auto" each local provider with each other
    provider that is hosted or scored higher (the table's main score) on these images."""
    if not isinstance(cascades, str):
        return list(cascades)
    score = {s.provider: s.metrics[key].mean for s in summaries if s.category == "all" and key in s.metrics}
    return [
        (free, better)
        for free in kinds
        if kinds[free] == "local"
        for better in kinds
        if better != free and (kinds[better] == "hosted" or score.get(better, 0.0) > score.get(free, 0.0))
    ]


def label(free: str, better: str) -> str:
    return f"{free}→{better}"


def simulate(
    rows: Sequence[ImageRow],
    curves: Mapping,
    free: str,
    better: str,
    *,
    shares: Sequence[float] = SHARES,
    composite_key: str,
    bootstrap: int,
    seed: int,
) -> list[CascadeRow]:
    """One CascadeRow per share: `free` then `better` on the least sure, from the rows alone."""
    firsts = [r for r in rows if r.provider == free]
    seconds = {r.name: r for r in rows if r.provider == better}
    firsts = [r for r in firsts if r.name in seconds]  # an evaluation stopped early: images both have
    confidences = [r.confidence if r.status != "failed" else None for r in firsts]
    out = []
    for share in shares:
        chosen = most_unsure(confidences, share=share)
        merged = list(firsts)
        for i in chosen:
            merged[i] = _escalated(firsts[i], seconds[firsts[i].name])
        name = f"{label(free, better)} {share:.0%}"
        summary = summarise_rows(
            name, "all", merged, curves, composite_key=composite_key, bootstrap=bootstrap, seed=seed
        )
        out.append(CascadeRow(free, better, share, tuple(firsts[i].name for i in chosen), summary))
    return out


def _escalated(first: ImageRow, second: ImageRow) -> ImageRow:
    """The row an escalated image ends with: the better one's (the free one's where it failed),
    charged both calls."""
    kept = first if second.status == "failed" else second
    return replace(kept, cost_usd=first.cost_usd + second.cost_usd, seconds=first.seconds + second.seconds)


# --- reports ------------------------------------------------------------------------


def markdown(cascades: Sequence[CascadeRow], key: str) -> list[str]:
    """The Markdown section under the providers' table (no lines without cascades)."""
    if not cascades:
        return []

    comp = "C" if key == "composite" else "C_seg"
    lines = [
        "",
        f"**Cascades**, {SIMULATED}. Share: at most that share of the images escalated; cost: FREE's "
        "plus BETTER's on the escalated images, per image.",
        "",
        f"| cascade | share | escalated | failed | {comp} | S_IoU | $/image |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cascades:
        s = c.summary
        n = s.n_images + s.n_failed + s.n_excluded
        lines.append(
            f"| {label(c.free, c.better)} | {c.share:.0%} | {len(c.escalated)} of {n} | {s.n_failed} | "
            f"{fmt_estimate(key, s.metrics.get(key))} | {fmt_estimate('iou', s.metrics.get('iou'))} | "
            f"{format_usd(s.cost_per_image)} |"
        )
    return lines


def _point(summary: Summary, key: str) -> dict:
    def clean(value: float) -> float | None:
        return None if math.isnan(value) else value

    return {
        name: {f: clean(getattr(e, f)) for f in ("mean", "low", "high")}
        for name, e in ((k, summary.metrics.get(k)) for k in (key, "iou"))
        if e is not None
    }


def to_json(cascades: Sequence[CascadeRow], key: str) -> dict:
    """The cascades' JSON entry (USD as strings, as the rest of evaluation.json)."""
    return {
        "simulated": SIMULATED,
        "quality_key": key,
        "rows": [
            {
                "free": c.free,
                "better": c.better,
                "share": c.share,
                "escalated": list(c.escalated),
                "n_images": c.summary.n_images,
                "n_failed": c.summary.n_failed,
                "cost_per_image_usd": str(c.summary.cost_per_image),
                "metrics": _point(c.summary, key),
            }
            for c in cascades
        ],
    }


CSV_HEAD = ["simulated", "free", "better", "share", "n_escalated", "escalated", "n_images", "n_failed"]


def write_csv(cascades: Sequence[CascadeRow], key: str, path: Path) -> None:
    """cascades.csv: one row per cascade and share; quality = the table's main score (0-100)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            CSV_HEAD + ["quality_key", "quality", "quality_low", "quality_high", "iou", "cost_per_image_usd"]
        )
        for c in cascades:
            s = c.summary
            comp, iou = s.metrics.get(key), s.metrics.get("iou")
            writer.writerow(
                ["yes", c.free, c.better, c.share, len(c.escalated), ";".join(c.escalated), s.n_images, s.n_failed]
                + [key]
                + (["", "", ""] if comp is None else [comp.mean, comp.low, comp.high])
                + ["" if iou is None else iou.mean, str(s.cost_per_image)]
            )


def draw(ax, cascades: Sequence[CascadeRow], key: str) -> list[float]:
    """Each cascade a dashed line through its shares (x: USD per 1,000 images), a point
    labelled with the smallest share that reaches it; returns the x values drawn."""
    xs: list[float] = []
    by_pair: dict[tuple[str, str], list[CascadeRow]] = {}
    for c in cascades:
        by_pair.setdefault((c.free, c.better), []).append(c)
    for (free, better), points in by_pair.items():
        points = [p for p in points if not math.isnan(p.summary.metrics.get(key, NO_SCORE).mean)]
        if not points:
            continue
        x = [float(p.summary.cost_per_image) * 1000 for p in points]
        y = [p.summary.metrics[key].mean for p in points]
        ax.plot(x, y, "--", marker=".", label=f"{label(free, better)} (simulated)")
        moved = [i for i in range(len(points)) if i == 0 or (x[i], y[i]) != (x[i - 1], y[i - 1])]
        if len(moved) > 6:  # many images: every other share, and the last
            moved = sorted({*moved[::2], moved[-1]})
        for i in moved:  # each point under the smallest share that reaches it
            ax.annotate(f"{points[i].share:.0%}", (x[i], y[i]), textcoords="offset points", xytext=(4, -10), fontsize=7)
        xs += x
    return xs
