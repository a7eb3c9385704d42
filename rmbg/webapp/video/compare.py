"""Two providers on one clip, side by side (the Video tab's Compare view).

Both providers are built and checked against the clip first (rmbg.webapp.video.videos.ready:
keys, licence, each hosted service's limits, and both clips' holds together against the
caps), so a side that cannot run is refused before the other runs or is paid. The clip
then goes through each provider in turn (rmbg.webapp.video.videos.cut: the same key rules,
guard, caps and memory budget as one cut-out), each into a transparent WebM that
the page plays over a checkerboard; the page plays both in sync, or steps both
to one frame with one slider (rmbg.webapp.video.js). Beside them: frames,
seconds and cost of each, and how far their mattes agree, frame by frame.
Stopped or failed half-way, nothing is offered and nothing is kept (what a
hosted call already sent costs is counted by the charge rules all the same).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InvalidRequestError
from ...eval.metrics import iou, mae
from ...video import VideoResult
from ...video.decode import probe
from ...video.providers import VideoProvider, video_provider
from ..catalog import Keys
from ..context import App
from ..look import safe_stem
from ..shelf import Kept
from .clips import Clip, app_limits, stem_of, take_clip
from .sides import Side, ready
from .videos import Report, VideoLook, cut, progress_report

TABLE_HEADERS = ["provider", "frames", "model s", "total s", "cost"]


@dataclass(frozen=True)
class ClipsCompared:
    """previews: the two WebMs, in the order asked; table: rows for TABLE_HEADERS;
    frames: the clip's frame count (the frame slider's range); agreement: one line."""

    previews: tuple[Path, Path]
    table: list[list[str]]
    frames: int
    agreement: str


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
    results: list[VideoResult] = []
    sides: list[Side] = []
    with app.video_slots.taken(), app.runs.running(run_key or session_id) as stop:  # a slot, as videos.remove's
        app.videos.drop(session_id, "compare")
        folder = Path(tempfile.mkdtemp(prefix="rmbg-app-video-"))
        try:
            source = take_clip(clip, folder, limits)
            stem, files, totals = stem_of(clip), [], []
            info = probe(source, limits, stem)
            sides = ready(app, info, entries, keys, session_id=session_id)  # both checked before either runs
            for n, side in enumerate(sides):
                started = time.perf_counter()
                path = folder / "out" / f"{safe_stem(stem)}-{safe_stem(side.entry.id)}.webm"
                results.append(
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
                    )  # fmt: skip
                )
                totals.append(time.perf_counter() - started)
                files.append(app.store.adopt(path, path.name))
            shutil.rmtree(folder / "out", ignore_errors=True)
        except BaseException:
            for side in sides[len(results) :]:
                side.close()  # built and checked, never run
            for result in results:
                result.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
    app.videos.put(session_id, "compare", Kept(tuple(results), tuple(e.label for e in entries), stem, folder))
    table = [
        [e.label, str(r.frames), f"{r.seconds.model:.1f}", f"{total:.1f}", cost_of(r, e)]
        for e, r, total in zip(entries, results, totals)
    ]
    return ClipsCompared((files[0], files[1]), table, results[0].frames, agreement(results[0], results[1]))
