"""Two providers on one clip, side by side (the Video tab's Compare view).

Both providers are built and checked against the clip first (rmbg.webapp.video.videos.ready:
keys, licence, each hosted service's limits, and both clips' holds together against the
caps), so a side that cannot run is refused before the other runs or is paid. The clip
then goes through each provider in turn (rmbg.webapp.video.videos.cut: the same key rules,
guard, caps and memory budget as one cut-out), each into a transparent WebM that
the page plays over a checkerboard; the page plays both in sync, or steps both
to one frame with one slider (rmbg.webapp.video.js). Beside them: frames,
seconds and cost of each, and how far their mattes agree, frame by frame.

A side that fails as it runs (its service answered 5xx, the connection dropped after the
clip was sent, a cap another tab reached meanwhile) does not take the other with it: the
side that worked is shown and playable (it may have been paid for), the failed one says why
in its provider's words, with what it was counted at against the caps ("$0.1400 was
counted against the spending caps for it.", and "$0.1400 counted (failed call)" in the
cost column), and the session's hosted total is read from the ledger once both have run.
Both failed: one error naming both reasons. Stopped half-way (Stop, a closed page),
nothing is offered and nothing is kept (what a hosted call already sent costs is counted
by the charge rules all the same).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from ...errors import InvalidRequestError, RmbgError
from ...eval.metrics import iou, mae
from ...types import format_usd
from ...video import VideoResult, VideoStopped
from ...video.decode import probe
from ...video.providers import VideoProvider, video_provider
from ..catalog import Keys
from ..context import App
from ..look import safe_stem
from ..messages import safe_message
from ..shelf import Kept
from ..spending import hosted_text
from .clips import Clip, app_limits, stem_of, take_clip
from .sides import Side, ready
from .videos import Report, VideoLook, cut, progress_report

TABLE_HEADERS = ["provider", "frames", "model s", "total s", "cost"]


@dataclass(frozen=True)
class ClipsCompared:
    """previews: the two WebMs, in the order asked (None for a side that failed); table: rows for
    TABLE_HEADERS; frames: the clip's frame count (the frame slider's range); agreement: how far the
    mattes agree, or why a side failed, then the session's hosted total (Markdown lines)."""

    previews: tuple[Path | None, Path | None]
    table: list[list[str]]
    frames: int
    agreement: str


@dataclass(frozen=True)
class Failed:
    """A side that failed as it ran: its provider's message, in the page's words (with the counted sentence
    when money was counted), what it was counted at against the caps, its seconds."""

    message: str
    counted: Decimal | None
    seconds: float


class BothFailed(RmbgError):
    """Neither side of a comparison ran: the message names both reasons; counted_usd is their sum."""


def cost_of(result: VideoResult, entry: VideoProvider) -> str:
    """The table's short cost: 'free (local)', or what a hosted provider charged."""
    return "free (local)" if entry.usd_per_second is None else result.cost.label()


def agreement(a: VideoResult, b: VideoResult) -> str:
    """'The mattes agree: IoU 0.931, mean |Δα| 0.012, averaged over 48 frames (IoU 1 and |Δα| 0: the same).'
    ("partly agree" from an IoU of 0.6, "disagree" under it)."""
    ious, maes = [], []
    for first, second in zip(a.mattes(), b.mattes()):
        ious.append(iou(first, second))
        maes.append(mae(first, second))
    if not ious:
        return ""
    mean_iou = float(np.mean(ious))
    return (
        f"{agreement_words(mean_iou)}: IoU {mean_iou:.3f}, mean |Δα| {np.mean(maes):.3f}, averaged over "
        f"{len(ious)} frames (IoU 1 and |Δα| 0: the same)."
    )


def agreement_words(mean_iou: float) -> str:
    """How far two mattes agree, in words that fit the figure (an IoU of 0.1 is not agreement)."""
    if mean_iou >= 0.9:
        return "The mattes agree"
    if mean_iou >= 0.6:
        return "The mattes partly agree"
    return "The mattes disagree"


def compare(
    app: App,
    clip: Clip,
    provider_ids: Sequence[str] | None,
    keys: Keys,
    *,
    session_id: str,
    run_key: str | None = None,
    report: Report | None = None,
) -> ClipsCompared:
    """The clip through two providers; kept as the session's "compare"."""
    ids = [str(p) for p in dict.fromkeys(provider_ids or []) if p]
    if len(ids) != 2:
        raise InvalidRequestError("Choose two different providers to compare (provider A and provider B).")
    entries = [video_provider(pid) for pid in ids]
    limits, look = app_limits(), VideoLook()
    totals: dict[int, float] = {}
    outcomes: list[VideoResult | Failed] = []
    sides: list[Side] = []
    with app.video_slots.taken(), app.runs.running(run_key or session_id) as stop:  # a slot, as videos.remove's
        app.videos.drop(session_id, "compare")
        folder = Path(tempfile.mkdtemp(prefix="rmbg-app-video-"))
        try:
            source = take_clip(clip, folder, limits)
            stem, files = stem_of(clip), list[Path | None]()
            info = probe(source, limits, stem)
            sides = ready(app, info, entries, keys, session_id=session_id)  # both checked before either runs
            for n, side in enumerate(sides):
                started = time.perf_counter()
                path = folder / "out" / f"{safe_stem(stem)}-{safe_stem(side.entry.id)}.webm"
                try:
                    outcomes.append(
                        cut(
                            app,
                            source,
                            side,
                            keys,
                            [("webm", path)],
                            look,
                            info=info,
                            session_id=session_id,
                            limits=limits,
                            progress=progress_report(report, n, len(entries)),
                            stop=stop,
                            audio=False,
                        )
                    )
                except VideoStopped:
                    raise
                except RmbgError as exc:  # this side only: the other runs, or is kept, all the same
                    outcomes.append(Failed(safe_message(exc, keys), exc.counted_usd, time.perf_counter() - started))
                    files.append(None)
                    continue
                files.append(app.store.adopt(path, path.name))
                totals[n] = time.perf_counter() - started
            shutil.rmtree(folder / "out", ignore_errors=True)
            failures = [(e, o) for e, o in zip(entries, outcomes) if isinstance(o, Failed)]
            if len(failures) == len(entries):
                raise both_failed(failures)
        except BaseException:
            for side in sides[len(outcomes) :]:
                side.close()  # built and checked, never run
            for outcome in outcomes:
                if isinstance(outcome, VideoResult):
                    outcome.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
    done = [(e, o) for e, o in zip(entries, outcomes) if isinstance(o, VideoResult)]
    app.videos.put(
        session_id, "compare", Kept(tuple(r for _, r in done), tuple(e.label for e, _ in done), stem, folder)
    )
    spent = app.ledger.session_spent(session_id)  # after both: a failed paid side may have been counted
    table = [row(e, o, totals.get(n)) for n, (e, o) in enumerate(zip(entries, outcomes))]
    if failures:
        said = "  \n".join(f"**{side_name(entries, e)} failed:** {o.message}" for e, o in failures)
    else:
        said = agreement(done[0][1], done[1][1])
    shown = f"{said}  \n{hosted_text(spent, app.config.cap_usd)}"
    return ClipsCompared((files[0], files[1]), table, done[0][1].frames, shown)


def row(entry: VideoProvider, outcome: VideoResult | Failed, total: float | None) -> list[str]:
    """One row of the table: frames, seconds and cost of a side; a failed side's cost is what it was counted at
    ("$0.1400 counted (failed call)"), or that nothing was."""
    if isinstance(outcome, Failed):
        counted = f"${format_usd(outcome.counted)} counted (failed call)" if outcome.counted else "nothing counted"
        return [entry.label, "failed", "", f"{outcome.seconds:.1f}", counted]
    return [
        entry.label,
        str(outcome.frames),
        f"{outcome.seconds.model:.1f}",
        f"{total or 0:.1f}",
        cost_of(outcome, entry),
    ]


def side_name(entries: Sequence[VideoProvider], entry: VideoProvider) -> str:
    """The side as the page names it: A or B, then the provider's label in brackets."""
    return f"{'AB'[list(entries).index(entry)]} ({entry.label})"


def both_failed(failures: Sequence[tuple[VideoProvider, Failed]]) -> BothFailed:
    """The error of a comparison whose sides both failed: each side's reason, and the sum counted."""
    entries = [e for e, _ in failures]
    error = BothFailed(
        "Neither side could be made. " + " ".join(f"{side_name(entries, e)}: {o.message}" for e, o in failures)
    )
    error.counted_usd = sum((o.counted or Decimal(0) for _, o in failures), Decimal(0)) or None
    return error
