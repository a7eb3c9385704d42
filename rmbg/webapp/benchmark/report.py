"""How a finished benchmark run is shown: the summary table (as `rmbg evaluate`
prints it, plus the monthly cost), the gallery sorted worst image first, the
quality-against-cost figure, the status line and the download files.

rmbg.webapp.benchmark.scoring runs and scores; this module only presents a `Scored`.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from ...eval.records import ImageRow
from ...eval.report import fmt_estimate, to_json, write_rows_csv, write_summary_csv
from ...types import format_usd
from ..context import App
from ..spending import spent_sentence

if TYPE_CHECKING:
    from .scoring import Scored


SUMMARY_HEADERS = [
    "provider",
    "composite [95 % CI]",
    "S_IoU [95 % CI]",
    "S_edge (BF@d) [95 % CI]",
    "S_trans*",
    "images",
    "failed",
    "s/image",
    "$/image",
    "$/month",
]


def summary_rows(scored: Scored) -> list[list[object]]:
    """The overall row of each provider, as `rmbg evaluate` prints it, plus the monthly cost."""
    ev = scored.evaluation
    rows = []
    for s in ev.summaries:
        if s.category != "all":
            continue
        trans = fmt_estimate("s_trans_star", s.metrics.get("s_trans_star")) if ev.gt_kind == "alpha" else "not measured"
        secs = "–" if s.seconds_per_image != s.seconds_per_image else f"{s.seconds_per_image:.3f}"
        composite = fmt_estimate(ev.composite_key, s.metrics.get(ev.composite_key))
        if s.n_excluded and not s.n_images:
            composite = f"not ranked: {s.excluded_reason}"
        rows.append(
            [
                s.provider,
                composite,
                fmt_estimate("iou", s.metrics.get("iou")),
                fmt_estimate("boundary_f", s.metrics.get("boundary_f")),
                trans,
                s.n_images,
                s.n_failed,
                secs,
                f"{format_usd(s.cost_per_image)} ({s.cost_source or 'n/a'})",
                format_usd(s.cost_per_image * scored.volume),
            ]
        )
    return rows


def image_score(row: ImageRow, composite_key: str) -> float | None:
    """One image's composite (0-100) as the table's composite would count it, None if it failed."""
    from ...eval import metrics as M

    iou, edge = row.values.get("iou"), row.values.get("boundary_f")
    if row.status != "ok" or iou is None or edge is None:
        return None
    trans = row.values.get("s_trans_star")
    if composite_key == "composite" and trans is not None:
        return M.composite(100 * iou, 100 * edge, trans)
    return M.composite_seg(100 * iou, 100 * edge)


def gallery(scored: Scored) -> list[tuple[Image.Image, str]]:
    """Every provider's cut-out of every image, the image with the lowest mean score first; a free
    model's cut-out that a cascade at the default share would escalate says so."""
    from ...confidence import DEFAULT_SHARE
    from .cascades import escalated_cutouts

    ev = scored.evaluation
    escalated = escalated_cutouts(scored)
    per_image: dict[str, list[float]] = {}
    scores: dict[tuple[str, str], float | None] = {}
    for row in ev.rows:
        score = image_score(row, ev.composite_key)
        scores[(row.provider, row.name)] = score
        if row.status != "excluded":  # a watermarked result neither lifts nor sinks its image
            per_image.setdefault(row.name, []).append(score if score is not None else 0.0)
    excluded = {(r.provider, r.name) for r in ev.rows if r.status == "excluded"}
    for row in ev.rows:
        per_image.setdefault(row.name, [])  # only watermarked results: no mean, shown first
    order = sorted(per_image, key=lambda name: (sum(per_image[name]) / max(1, len(per_image[name])), name))
    items = []
    for name in order:
        for (provider, image), cut in scored.cutouts.items():
            if image == name:
                score = scores.get((provider, image))
                shown = f" · {score:.1f}" if score is not None else ""
                if (provider, image) in excluded:
                    shown = " · watermarked, not ranked"
                if (provider, image) in escalated:
                    shown += f" · escalated at {DEFAULT_SHARE:.0%}"
                items.append((cut, f"{name} · {provider}{shown}"))
    return items


def downloads(scored: Scored, app: App) -> tuple[Path, ...]:
    """summary.csv, per_image.csv and evaluation.json in the app's download store, and cascades.csv
    when cascades were simulated (rmbg.eval.frontier; the JSON then has them too, with their monthly cost)."""
    import json

    from ...eval.frontier import write_csv
    from .cascades import json_entry

    ev = scored.evaluation
    names = ["summary.csv", "per_image.csv", "evaluation.json"] + (["cascades.csv"] if ev.cascades else [])
    with tempfile.TemporaryDirectory(prefix="rmbg-bench-") as tmp:
        folder = Path(tmp)
        write_summary_csv(ev, folder / "summary.csv")
        write_rows_csv(ev, folder / "per_image.csv")
        payload = to_json(ev)
        payload["dataset"] = "uploaded images"  # never the server's temporary path
        payload["monthly_volume"] = scored.volume
        if ev.cascades:
            payload["cascades"] = json_entry(scored, payload["cascades"])
            write_csv(ev.cascades, ev.composite_key, folder / "cascades.csv")
        (folder / "evaluation.json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        return tuple(app.store.write(name, (folder / name).read_bytes()) for name in names)


def plot_figure(scored: Scored):
    """The quality-against-cost figure of `rmbg evaluate` (None without a score or matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from ...eval.report import quality_cost_figure
    except ImportError:
        return None
    return quality_cost_figure(scored.evaluation)


def status_line(scored: Scored, spent: Decimal | None) -> str:
    ev = scored.evaluation
    done, note = len({r.name for r in ev.rows}), ev.settings.get("gt_note")
    head = "Stopped: results so far" if scored.stopped else "Done"
    return (
        f"**{head}**: {done} image(s), {len(ev.rows)} provider runs, "
        f"{sum(r.status == 'failed' for r in ev.rows)} failed{failure_reasons(ev.rows)}. {not_ranked(ev.rows)}"
        f"Composite: {ev.composite_label}. "
        + (f"Ground truth read as alpha mattes: {note}; if they are binary masks, upload them as PNG. " if note else "")
        + f"{spent_sentence(spent)}"
    )


def _short(text: str, limit: int = 200) -> str:
    """One line of at most `limit` characters, without Markdown's emphasis and link marks."""
    line = " ".join(text.split()).translate(str.maketrans("*_`[]<>|", " " * 8))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def failure_reasons(rows, most: int = 3) -> str:
    """' (why: ...)' with the commonest reasons runs failed, each with its provider and count; '' if none failed."""
    counts = Counter((r.provider, r.error or "no reason given") for r in rows if r.status == "failed")
    if not counts:
        return ""
    said = [f"{provider} x{n}: {_short(why)}" for (provider, why), n in counts.most_common(most)]
    more = len(counts) - len(said)
    return " (" + "; ".join(said) + (f"; {more} other reason(s) in the CSV" if more > 0 else "") + ")"


def not_ranked(rows) -> str:
    """'Not ranked: photoroom x3 (why). ' for the runs scored but left out of the means; '' if none."""
    counts = Counter((r.provider, r.error) for r in rows if r.status == "excluded")
    if not counts:
        return ""
    return "Not ranked: " + "; ".join(f"{p} x{n} ({_short(why)})" for (p, why), n in counts.items()) + ". "
