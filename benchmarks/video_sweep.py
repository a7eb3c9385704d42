"""Choosing the temporal filter's settings: each candidate on the same frame-by-frame mattes of the
clips it is chosen on (never the clips it is reported on: benchmarks/video.py --data ... --clips ...).

    python benchmarks/video_sweep.py --data DAVIS_FOLDER --clips blackswan,dog,libby [--model u2netp]

The model runs once per clip (its mattes kept: benchmarks/video_data.py); every candidate filters
those mattes. Per clip and candidate: J, F and dtSSD against frame by frame; then per candidate the
mean dtSSD cut and the worst change of each score over the clips (what "does no harm" is judged on:
J and F never more than 0.01 lower, dtSSD never higher).
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import video_data
from video_scores import Lazy

from harness import table, write_results
from rmbg.eval.temporal import score_sequence
from rmbg.video.smooth import SmoothParams, TemporalSmoother

CANDIDATES: dict[str, SmoothParams] = {
    "no guards (the previous default)": SmoothParams(thin=0, guard=0.0),
    "thin 5": SmoothParams(thin=5, guard=0.0),
    "thin 5, guard 0.01": SmoothParams(thin=5, guard=0.01),
    "thin 5, guard 0.03": SmoothParams(thin=5, guard=0.03),
    "thin 5, guard 0.06": SmoothParams(thin=5, guard=0.06),
    "thin 5, guard 0.1": SmoothParams(thin=5, guard=0.1),
    "thin 5, guard 0.2": SmoothParams(thin=5, guard=0.2),
}


def one_clip(data: Path, seq: str, model: str) -> tuple[list[list], dict[str, tuple[float, float, float]]]:
    """The rows of one clip and each candidate's (J change, F change, dtSSD cut) on it."""
    s = video_data.load(data, seq, Lazy(model), model)
    base = score_sequence(s.raw, s.gts)
    rows = [[seq, "frame by frame", round(base.j, 4), "", round(base.f, 4), "", round(base.dtssd, 3), ""]]
    per = {}
    for name, params in CANDIDATES.items():
        got = score_sequence(TemporalSmoother(params).run(s.rgbs, s.raw), s.gts)
        dj, df, cut = got.j - base.j, got.f - base.f, 1 - got.dtssd / base.dtssd
        per[name] = (dj, df, cut)
        rows.append(
            [seq, name, round(got.j, 4), f"{dj:+.4f}", round(got.f, 4), f"{df:+.4f}", round(got.dtssd, 3)]
            + [f"{cut:+.1%}"]
        )
    print(seq, "done", flush=True)
    return rows, per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=video_data.REPO_DATA, help="a folder of DAVIS sequences")
    parser.add_argument("--clips", default="", help="comma-separated sequences (default: all in --data)")
    parser.add_argument("--model", choices=("u2netp", "isnet-general"), default="u2netp")
    parser.add_argument("--results", default="video_sweep", help="benchmarks/results/NAME.json")
    parser.add_argument("--jobs", type=int, default=1, help="clips scored at once, each in a process")
    args = parser.parse_args()
    names = [c for c in args.clips.split(",") if c] or video_data.sequences(args.data)
    with ProcessPoolExecutor(args.jobs) as pool:
        done = list(pool.map(one_clip, [args.data] * len(names), names, [args.model] * len(names)))
    rows = [row for clip_rows, _ in done for row in clip_rows]
    per = {name: [p[name] for _, p in done] for name in CANDIDATES}
    summary = []
    for name, got in per.items():
        dj, df, cut = (np.array(v) for v in zip(*got))
        summary.append([name, f"{cut.mean():+.1%}", f"{cut.min():+.1%}", f"{dj.min():+.4f}", f"{df.min():+.4f}"])
    tables = [
        table(
            f"Filter candidates on {', '.join(names)} ({args.model}): the mean over the clips and the worst clip",
            ["candidate", "mean dtSSD cut", "worst dtSSD cut", "worst J change", "worst F change"],
            summary,
            "Changes against the same mattes frame by frame; the goal: J and F never more than 0.01 lower "
            "and dtSSD never higher on any clip, the largest mean cut among the candidates that meet it.",
        ),
        table(
            "Each clip",
            ["sequence", "mattes", "J", "J change", "F", "F change", "dtSSD", "dtSSD change"],
            rows,
            "J and F: means over frames; dtSSD: RVM's normalisation (x100), mean over frame pairs.",
        ),
    ]
    path = write_results(args.results, None, tables, packages=("av", "opencv-python-headless"))
    print(path.read_text())


if __name__ == "__main__":
    main()
