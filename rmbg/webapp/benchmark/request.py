"""One benchmark request, end to end, for the page and the /benchmark endpoint:
read the upload into a temporary folder, run the ground-truth benchmark or the
blind one, and turn the outcome into what the tab shows."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import RmbgError
from ...types import format_cap, format_usd
from ..catalog import Keys
from ..context import App
from ..spending import spent_sentence
from . import cascades as C
from . import report as R
from . import scoring as B
from .arena import Arena, run_blind
from .uploads import count_images, read_upload

BLIND_HEADERS = ["image", "provider", "status"]
log = logging.getLogger("rmbg.app")


@dataclass
class BenchView:
    """status: Markdown; headers/rows: the table; figure: matplotlib figure or None;
    gallery: (image, caption); files: download paths; blind: cut-outs are ready to vote on;
    cascade_headers/cascade_rows/cascade_notes: the simulated cascades (rmbg.webapp.benchmark.cascades),
    empty without them."""

    status: str
    headers: list[str]
    rows: list[list[Any]]
    figure: Any = None
    gallery: list = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    blind: bool = False
    cascade_headers: list[str] = field(default_factory=list)
    cascade_rows: list[list[Any]] = field(default_factory=list)
    cascade_notes: str = ""


def estimate_line(
    images: Sequence[str] | None, truth: Sequence[str] | None, provider_ids: Sequence[str] | None, app: App, volume: int
) -> str:
    """The cost shown before a run: the price-table estimate that will be reserved."""
    n = count_images(images)
    usd = B.estimate(list(provider_ids or []), n, app)
    if not n:
        return "Upload images (or a .zip) to see the estimated cost."
    seconds = model_time(list(provider_ids or []), n, app)
    timed = f" Local models: about {duration(seconds)} of model time here." if seconds else ""
    return (
        f"Estimated: **${format_usd(usd)}** for {n} image(s) × the ticked hosted providers (local models: "
        "compute only). Reserved before anything runs against your session's cap "
        f"(${format_cap(app.config.cap_usd)}), and "
        "the server's daily cap where its keys pay; "
        f"what is not spent is given back. Monthly projection at {volume:,} images in the results table.{timed}"
    )


def stopped_why(flag: B.RunStop) -> str:
    """What ended a run early, when it was not the Stop button (nothing when it ran to the end)."""
    if flag.reason == "deadline":
        log.info("a Benchmark run reached RMBG_BENCH_MAX_SECONDS (%g s)", flag.seconds)
        return (
            f" The run reached this server's time limit for a run ({duration(flag.seconds)}): what was "
            "done is scored; run the rest as another benchmark."
        )
    return ""


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def model_time(provider_ids: Sequence[str], n_images: int, app: App) -> float:
    """Seconds of model time the local providers among `provider_ids` are expected to take on
    `n_images` here: each one's median on this server, from the price book (which holds local
    models only); one with no figure yet is not counted (the run's deadline still holds for it)."""
    timings = app.book.timings()
    return sum(timings[pid][0] * n_images for pid in dict.fromkeys(provider_ids) if pid in timings)


def check_model_time(provider_ids: Sequence[str], n_images: int, app: App) -> None:
    """Refuse, before anything runs, a run whose local models would take longer than the server's
    time limit for a run (figures measured on this server; providers without one are not counted)."""
    seconds = model_time(provider_ids, n_images, app)
    if seconds > app.config.bench_max_s:
        raise RmbgError(
            f"This run would take about {duration(seconds)} of model time here ({n_images} images × the "
            f"ticked local models), over this server's time limit for a run ({duration(app.config.bench_max_s)}). "
            "Choose fewer images or faster models, or run `rmbg evaluate` on your own machine."
        )


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
        # one of the door's slots; a paid call that must wait steps out of it (rmbg.webapp.slots)
        with app.benchmark_slots.taken():
            upload = read_upload(images, truth, folder)
            check_model_time(ids, len(upload.names), app)
            if upload.truth:
                scored = B.run_scored(
                    upload, ids, keys, app, session_id=session_id, volume=volume, report=report, stop=flag
                )
                files = [str(p) for p in R.downloads(scored, app)]
                status = R.status_line(scored, app.ledger.session_spent(session_id)) + stopped_why(flag)
                return BenchView(
                    status,
                    R.SUMMARY_HEADERS,
                    R.summary_rows(scored),
                    R.plot_figure(scored),
                    R.gallery(scored),
                    files,
                    cascade_headers=C.headers(scored),
                    cascade_rows=C.table_rows(scored),
                    cascade_notes=C.notes(scored),
                )
            cutouts, rows = run_blind(upload, ids, keys, app, session_id=session_id, report=report, stop=flag)
            arena.keep(session_id, cutouts)
            head = "Stopped: cut-outs so far" if flag.reason else "Done"
            status = (
                f"**{head}**: no ground truth, so nothing is scored; vote below on pairs of cut-outs "
                f"({len(cutouts.pairs())} pairs). {spent_sentence(app.ledger.session_spent(session_id))}"
            ) + stopped_why(flag)
            return BenchView(status, BLIND_HEADERS, rows, blind=True)
    finally:
        B.STOPS.finish(session_id, flag)
        shutil.rmtree(folder, ignore_errors=True)
