"""Reports of an Evaluation: Markdown table, CSV, JSON and a quality-vs-cost plot.

Units: IoU, boundary F, Boundary IoU and max F are printed as percentages
(0-100); MAE and E_T as fractions (0-1); S_trans, S_trans* and the
composites are 0-100; seconds per image are wall seconds spent in the
provider; cost per image is USD.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..types import format_usd, line_text
from .records import REPORT_FILES, CascadeRow, ImageRow, Summary, fmt_estimate

COLUMNS = [  # (metric key, Markdown header)
    ("iou", "S_IoU"),
    ("boundary_f", "S_edge (BF@d)"),
    ("boundary_f_2px", "BF@2px"),
    ("boundary_iou", "BIoU"),
    ("mae", "MAE"),
    ("max_f", "max F"),
]
TRANS_COLUMNS = [("s_trans_star", "S_trans*"), ("s_trans", "S_trans raw"), ("e_t", "E_T")]
SUMMARY_KEYS = ["composite", "composite_seg"] + [k for k, _ in COLUMNS + TRANS_COLUMNS]
ROW_KEYS = ["iou", "boundary_f", "boundary_f_2px", "boundary_iou", "mae", "s_trans", "s_trans_star", "e_t"]


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
    cascades: tuple[CascadeRow, ...] = ()  # simulated from the rows (rmbg.eval.frontier)

    def overall(self, provider: str) -> Summary:
        return next(s for s in self.summaries if s.provider == provider and s.category == "all")

    def to_markdown(self) -> str:
        return markdown(self)

    def write(self, out_dir) -> dict[str, Path]:
        """Write per_image.csv, summary.csv, evaluation.json, results.md and quality_vs_cost.png
        (and cascades.csv when cascades were simulated)."""
        return write_all(self, Path(out_dir))


BINARY_AGAIN = "if they are binary masks, run again with --gt binary (gt='binary')"


def _columns(evaluation: Evaluation) -> list[tuple[str, str]]:
    comp = [(evaluation.composite_key, "C" if evaluation.composite_key == "composite" else "C_seg")]
    extra = TRANS_COLUMNS if evaluation.gt_kind == "alpha" else []
    return comp + COLUMNS + extra


def markdown(evaluation: Evaluation) -> str:
    """A Markdown table (95 % CIs in brackets) followed by the protocol notes."""
    cols = _columns(evaluation)
    head = ["provider", "category", "images (groups)", "failed"] + [h for _, h in cols] + ["s/image", "$/image"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in evaluation.summaries:
        cells = [s.provider, line_text(s.category), f"{s.n_images} ({s.n_groups})", str(s.n_failed)]
        cells += [
            fmt_estimate(key, s.metrics.get(key), ci=key in (evaluation.composite_key, "iou", "boundary_f"))
            for key, _ in cols
        ]
        secs = "–" if math.isnan(s.seconds_per_image) else f"{s.seconds_per_image:.3f}"
        cells += [secs, f"{format_usd(s.cost_per_image)} ({s.cost_source or 'n/a'})"]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        "",
        f"Composite: {evaluation.composite_label}.",
        f"Ground truth: {evaluation.gt_kind}"
        + ("" if evaluation.gt_kind == "alpha" else " masks, so transparency is not scored")
        + (f" ({evaluation.settings['gt_note']}: {BINARY_AGAIN})" if evaluation.settings.get("gt_note") else "")
        + ".",
        f"Data: {line_text(evaluation.dataset)}; {evaluation.settings.get('n_images')} images in "
        f"{evaluation.settings.get('n_groups')} groups. Means over groups, 95 % bootstrap CIs "
        f"over groups ({evaluation.settings.get('bootstrap')}).",
        f"IoU at threshold {evaluation.settings.get('threshold')}; edge: {evaluation.settings.get('edge_tolerance')}; "
        f"max F: {evaluation.settings.get('max_f')}; {evaluation.settings.get('resampling')}.",
        "S_IoU, S_edge, BF@2px, BIoU and max F in %; MAE as a fraction; seconds are time in the provider.",
    ]
    notes += [
        f"Not ranked: {s.provider}: {s.n_excluded} result(s) left out of the means ({s.excluded_reason}); "
        "their scores are in per_image.csv."
        for s in evaluation.summaries
        if s.category == "all" and s.n_excluded
    ]
    from .frontier import markdown as cascade_lines

    return "\n".join(lines + notes + cascade_lines(evaluation.cascades, evaluation.composite_key)) + "\n"


def _num(value):
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return value


def write_rows_csv(evaluation: Evaluation, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["provider", "name", "category", "group", "status", "seconds", "cost_usd", "cost_source"]
            + ROW_KEYS
            + ["confidence", "error"]
        )
        for r in evaluation.rows:
            writer.writerow(
                [r.provider, r.name, r.category, r.group, r.status, f"{r.seconds:.4f}", str(r.cost_usd), r.cost_source]
                + [_num(r.values.get(k)) for k in ROW_KEYS]
                + [_num(r.confidence), r.error]
            )


def write_summary_csv(evaluation: Evaluation, path: Path) -> None:
    keys = [k for k in SUMMARY_KEYS if any(k in s.metrics for s in evaluation.summaries)]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        head = [
            "provider",
            "category",
            "n_images",
            "n_groups",
            "n_failed",
            "n_excluded",
            "seconds_per_image",
            "cost_per_image_usd",
            "cost_source",
        ]
        writer.writerow(head + [f"{k}{suffix}" for k in keys for suffix in ("", "_low", "_high")])
        for s in evaluation.summaries:
            cells = [
                s.provider,
                s.category,
                s.n_images,
                s.n_groups,
                s.n_failed,
                s.n_excluded,
                _num(s.seconds_per_image),
                str(s.cost_per_image),
                s.cost_source,
            ]
            for k in keys:
                est = s.metrics.get(k)
                cells += [_num(est.mean), _num(est.low), _num(est.high)] if est else ["", "", ""]
            writer.writerow(cells)


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def to_json(evaluation: Evaluation) -> dict:
    """A plain dict (JSON-ready: NaN -> null, USD as strings)."""

    def summary(s: Summary) -> dict:
        return {
            "provider": s.provider,
            "category": s.category,
            "n_images": s.n_images,
            "n_groups": s.n_groups,
            "n_failed": s.n_failed,
            "n_excluded": s.n_excluded,
            "excluded_reason": s.excluded_reason,
            "seconds_per_image": _clean(s.seconds_per_image),
            "cost_per_image_usd": str(s.cost_per_image),
            "cost_source": s.cost_source,
            "metrics": {
                k: {f: _clean(getattr(e, f)) for f in ("mean", "low", "high", "n")} for k, e in s.metrics.items()
            },
        }

    rows = [
        {
            "provider": r.provider,
            "name": r.name,
            "category": r.category,
            "group": r.group,
            "status": r.status,
            "seconds": r.seconds,
            "cost_usd": str(r.cost_usd),
            "cost_source": r.cost_source,
            "metrics": {k: _clean(v) for k, v in r.values.items()},
            "confidence": r.confidence,
            "error": r.error,
        }
        for r in evaluation.rows
    ]
    out = {
        "dataset": evaluation.dataset,
        "gt_kind": evaluation.gt_kind,
        "composite_key": evaluation.composite_key,
        "composite_label": evaluation.composite_label,
        "settings": dict(evaluation.settings),
        "summaries": [summary(s) for s in evaluation.summaries],
        "rows": rows,
    }
    if evaluation.cascades:
        from .frontier import to_json as cascade_json

        out["cascades"] = cascade_json(evaluation.cascades, evaluation.composite_key)
    return out


def plot(evaluation: Evaluation, path: Path) -> str:
    """Quality (composite, with its 95 % CI) against cost per image, one point per provider.

    Returns "" on success, or why no plot was drawn (e.g. matplotlib missing).
    """
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot (pip install matplotlib)"
    fig = quality_cost_figure(evaluation)
    if fig is None:
        return "no provider has a score: no plot"
    fig.savefig(path, format="png")
    plt.close(fig)
    return ""


def usd_tick(value: float, _position: object = None) -> str:
    """An axis label in dollars a person reads: '$18', '$1.80', '$0.012' (never an offset or 1e-6)."""
    if value <= 0:
        return "$0"
    if value >= 10:
        return f"${value:,.0f}"
    return "$" + f"{value:.{max(2, 2 - math.floor(math.log10(value)))}f}".rstrip("0").rstrip(".")


def quality_cost_figure(evaluation: Evaluation):
    """The figure behind plot(): x = USD per 1,000 images (log scale when every
    provider costs something, as local compute estimates and hosted prices sit
    orders of magnitude apart), y = the composite with its 95 % CI; a simulated
    cascade is a dashed line through its shares. None when no provider has a
    score. Needs matplotlib."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    key = evaluation.composite_key
    points = [
        s
        for s in evaluation.summaries
        if s.category == "all" and key in s.metrics and not math.isnan(s.metrics[key].mean)
    ]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    per_thousand = [float(s.cost_per_image) * 1000 for s in points]
    for s, cost in zip(points, per_thousand):
        est = s.metrics[key]
        # a percentile interval need not hold its mean (few resamples; a maximum's replicates sit above it)
        below, above = (
            (0.0, 0.0) if math.isnan(est.low) else (max(0.0, est.mean - est.low), max(0.0, est.high - est.mean))
        )
        ax.errorbar([cost], [est.mean], yerr=[[below], [above]], fmt="o", capsize=4, label=s.provider)
        ax.annotate(s.provider, (cost, est.mean), textcoords="offset points", xytext=(6, 4), fontsize=8)
    if evaluation.cascades:  # each cascade a line through its shares (rmbg.eval.frontier)
        from .frontier import draw

        per_thousand += draw(ax, evaluation.cascades, key)
        ax.legend(fontsize=7, loc="best")
    if min(per_thousand) > 0:
        ax.set_xscale("log")
        low, high = min(per_thousand), max(per_thousand)
        ax.set_xlim(low / 3, high * 3)
    ax.xaxis.set_major_formatter(FuncFormatter(usd_tick))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda *_: ""))
    ax.set_xlabel("USD per 1,000 images (local = compute estimate)")
    ax.set_ylabel(("C" if key == "composite" else "C_seg") + " (0-100, 95% CI)")
    ax.set_title(("Composite" if key == "composite" else "Segmentation-only composite") + " vs cost", fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def write_all(evaluation: Evaluation, out_dir: Path) -> dict[str, Path]:
    """Write every report into out_dir; the dict names what was written ("plot_skipped" holds a reason file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / REPORT_FILES[key] for key in ("per_image", "summary", "json", "markdown")}
    write_rows_csv(evaluation, paths["per_image"])
    write_summary_csv(evaluation, paths["summary"])
    paths["json"].write_text(json.dumps(to_json(evaluation), indent=2, default=str), encoding="utf-8")
    paths["markdown"].write_text(markdown(evaluation), encoding="utf-8")
    if evaluation.cascades:
        from .frontier import write_csv

        paths["cascades"] = out_dir / REPORT_FILES["cascades"]
        write_csv(evaluation.cascades, evaluation.composite_key, paths["cascades"])
    plot_path = out_dir / REPORT_FILES["plot"]
    why = plot(evaluation, plot_path)
    if why:
        note = out_dir / REPORT_FILES["plot_skipped"]
        note.write_text(why + "\n", encoding="utf-8")
        paths["plot_skipped"] = note
    else:
        paths["plot"] = plot_path
    return paths
