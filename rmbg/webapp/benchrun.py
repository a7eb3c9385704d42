"""One benchmark request, end to end, for the page and the /benchmark endpoint:
read the upload into a temporary folder, run the ground-truth benchmark or the
blind one, and turn the outcome into what the tab shows."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..types import format_usd
from . import benchmark as B
from . import benchreport as R
from .arena import Arena, run_blind
from .catalog import Keys
from .context import App
from .uploads import count_images, read_upload

BLIND_HEADERS = ["image", "provider", "status"]


@dataclass
class BenchView:
    """status: Markdown; headers/rows: the table; figure: matplotlib figure or None;
    gallery: (image, caption); files: download paths; blind: cut-outs are ready to vote on."""

    status: str
    headers: list[str]
    rows: list[list[Any]]
    figure: Any = None
    gallery: list = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    blind: bool = False


def estimate_line(
    images: Sequence[str] | None, truth: Sequence[str] | None, provider_ids: Sequence[str] | None, app: App, volume: int
) -> str:
    """The cost shown before a run: the price-table estimate that will be reserved."""
    n = count_images(images)
    usd = B.estimate(list(provider_ids or []), n, app)
    if not n:
        return "Upload images (or a .zip) to see the estimated cost."
    return (
        f"Estimated: **${format_usd(usd)}** for {n} image(s) × the ticked hosted providers (local models: "
        f"compute only). Reserved against this session's cap (${app.config.cap_usd:.2f}) before anything runs; "
        f"what is not spent is given back. Monthly projection at {volume:,} images in the results table."
    )


def stopped_why(flag: B.RunStop) -> str:
    """What ended a run early, when it was not the Stop button (nothing when it ran to the end)."""
    if flag.reason == "deadline":
        return (
            f" The run reached this server's limit of {flag.seconds:g} s (RMBG_BENCH_MAX_SECONDS): what was "
            "done is scored; run the rest as another benchmark."
        )
    return ""


def run(
    images,
    truth,
    provider_ids,
    keys: Keys,
    app: App,
    arena: Arena,
    *,
    session_id: str,
    volume: int,
    report: B.Report | None = None,
) -> BenchView:
    """Benchmark the ticked providers on the upload; the temporary folder is removed afterwards."""
    ids = B.check_choice(provider_ids)
    flag = B.STOPS.start(session_id, app.config.bench_max_s)
    folder = Path(tempfile.mkdtemp(prefix="rmbg-upload-"))
    try:
        upload = read_upload(images, truth, folder)
        if upload.truth:
            scored = B.run_scored(
                upload, ids, keys, app, session_id=session_id, volume=volume, report=report, stop=flag
            )
            files = [str(p) for p in R.downloads(scored, app)]
            status = R.status_line(scored, app.ledger.session_spent(session_id)) + stopped_why(flag)
            return BenchView(
                status, R.SUMMARY_HEADERS, R.summary_rows(scored), R.plot_figure(scored), R.gallery(scored), files
            )
        cutouts, rows = run_blind(upload, ids, keys, app, session_id=session_id, report=report, stop=flag)
        arena.keep(session_id, cutouts)
        head = "Stopped: cut-outs so far" if flag.reason else "Done"
        status = (
            f"**{head}**: no ground truth, so nothing is scored; vote below on pairs of cut-outs "
            f"({len(cutouts.pairs())} pairs). This session has spent "
            f"${format_usd(app.ledger.session_spent(session_id))} on hosted calls."
        ) + stopped_why(flag)
        return BenchView(status, BLIND_HEADERS, rows, blind=True)
    finally:
        B.STOPS.finish(session_id, flag)
        shutil.rmtree(folder, ignore_errors=True)
