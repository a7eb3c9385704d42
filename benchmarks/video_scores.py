"""benchmarks/video.py's part 1: each clip's mattes scored frame by frame and through the filter's
variants, the reference rows (benchmarks/video_bounds.py), the output sizes, and a summary of the
default filter over the clips; clips scored in processes of their own with `jobs` > 1."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import video_data
from video_bounds import as_soft_as, at_model_resolution, flicker_bound

import rmbg
from harness import table
from rmbg.eval.temporal import SequenceScores, score_sequence
from rmbg.video.decode import frames, probe
from rmbg.video.encode import VideoWriter
from rmbg.video.limits import VideoLimits
from rmbg.video.pipeline import VideoFrame
from rmbg.video.smooth import SmoothParams, TemporalSmoother

LIMITS = VideoLimits()
VARIANTS = {
    "smoothed": SmoothParams(),
    "smoothed, causal (2 before, none after)": SmoothParams(ahead=0),
    "smoothed, no flow": SmoothParams(flow=False),
}
# --guards: the default beside the filter without its guards (docs/video.md), instead of the above
GUARD_VARIANTS = {
    "smoothed": SmoothParams(),
    "no guards (the previous filter)": SmoothParams(thin=0, guard=0.0),
}


def _row(seq: str, name: str, s: SequenceScores, base: SequenceScores) -> list:
    cut = 1 - s.dtssd / base.dtssd
    dj, df = s.j - base.j, s.f - base.f
    return [seq, name, s.frames, round(s.j, 4), f"{dj:+.4f}", round(s.f, 4), f"{df:+.4f}", round(s.dtssd, 3)] + [
        f"{cut:+.1%}"
    ]


def quality(
    model: str, side: int, folder: Path, data: Path, names: list[str], options: tuple[bool, bool, bool], jobs: int
) -> tuple[list[list], list[list], list[list]]:
    """Per clip: frame by frame, the filter's variants, the reference rows; the output sizes; and per
    clip the default filter's changes, for the summary. options: (bounds, sizes, GUARD_VARIANTS instead of VARIANTS);
    `jobs` clips at once, each in a process of its own."""
    args = [(model, side, folder, data, seq, options) for seq in names]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            done = list(pool.map(_clip_quality, *zip(*args)))
    else:
        done = [_clip_quality(*a) for a in args]
    return [r for d in done for r in d[0]], [r for d in done for r in d[1]], [d[2] for d in done]


_PROVIDERS: dict[str, object] = {}


def provider_for(model: str):
    """The model (built once per process): U2-Net-p, or IS-Net general on trained weights."""
    if model not in _PROVIDERS:
        if model == "isnet-general":
            import trained_isnet

            _PROVIDERS[model] = trained_isnet.provider(device="cpu")
        else:
            _PROVIDERS[model] = rmbg.get_provider("u2netp", device="cpu")
    return _PROVIDERS[model]


class Lazy:
    """The model, built only when a clip's mattes are not kept yet (video_data.load)."""

    def __init__(self, model: str):
        self.model = model

    def __getattr__(self, name: str):
        return getattr(provider_for(self.model), name)


def _clip_quality(
    model: str, side: int, folder: Path, data: Path, seq: str, options: tuple[bool, bool, bool]
) -> tuple[list[list], list[list], list]:
    bounds, sizes_too, guards = options
    s = video_data.load(data, seq, Lazy(model), model)
    base = score_sequence(s.raw, s.gts)
    rows, sizes = [_row(seq, "frame by frame", base, base)], []
    smoothed, summary = {}, []
    for name, params in (GUARD_VARIANTS if guards else VARIANTS).items():
        smoothed[name] = TemporalSmoother(params).run(s.rgbs, s.raw)
        got = score_sequence(smoothed[name], s.gts)
        rows.append(_row(seq, name, got, base))
        summary.append([seq, name, got.j - base.j, got.f - base.f, 1 - got.dtssd / base.dtssd])
    if bounds:
        bound = flicker_bound(s.raw, s.gts)
        cut = f"{1 - bound / base.dtssd:+.1%}"
        rows.append([seq, "flicker-only bound", base.frames, "", "", "", "", round(bound, 3), cut])
        low = score_sequence(at_model_resolution(s.gts, side), s.gts)
        rows.append(_row(seq, f"truth at {side}x{side}", low, base))
        sigma, soft = as_soft_as(s.raw, s.gts)
        name = f"truth, edges as soft as the model's (sigma {sigma} px)"
        rows.append(_row(seq, name, score_sequence(soft, s.gts), base))
    if sizes_too:
        sizes = output_sizes(s.clip, seq, smoothed["smoothed"], folder)
    print(seq, "done", flush=True)
    return rows, sizes, summary


def summary_table(label: str, names: list[str], per_clip: list[list]) -> dict:
    """Each variant over these clips: the mean dtSSD cut and the worst change of each score."""
    rows = []
    for variant in dict.fromkeys(row[1] for clip in per_clip for row in clip):
        got = [row for clip in per_clip for row in clip if row[1] == variant]
        dj, df, cut = (np.array([row[i] for row in got]) for i in (2, 3, 4))
        rows.append([variant, f"{cut.mean():+.1%}", f"{cut.min():+.1%}", f"{dj.mean():+.4f}", f"{dj.min():+.4f}"])
        rows[-1] += [f"{df.mean():+.4f}", f"{df.min():+.4f}"]
    return table(
        f"{label} on {', '.join(names)}: each filter against frame by frame, over the clips",
        ["filter", "mean dtSSD cut", "worst dtSSD cut", "mean J change", "worst J change"]
        + ["mean F change", "worst F change"],
        rows,
        "Does no harm: J and F never more than 0.01 lower, dtSSD never higher (a cut never below 0), on "
        f"every clip; smoothed is the default ({SmoothParams()}). Which clips the settings were chosen on: "
        "docs/video.md.",
    )


def output_sizes(clip: Path, seq: str, alphas: list[np.ndarray], folder: Path) -> list[list]:
    info = probe(clip, LIMITS)
    writers = [VideoWriter(folder / f"{seq}.{ext}", info) for ext in ("webm", "mp4", "mov")]
    for frame, alpha in zip(frames(info, LIMITS), alphas, strict=True):
        for w in writers:
            w.write(VideoFrame(frame.index, frame.pts, frame.time, frame.rgb, alpha))
    size_in, rows = clip.stat().st_size, []
    for w in writers:
        out = w.close()
        rows.append([seq, w.fmt, size_in, out.stat().st_size, round(out.stat().st_size / size_in, 2)])
    return rows
