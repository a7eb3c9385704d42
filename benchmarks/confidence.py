"""How well a matte's confidence finds the bad mattes, and what a cascade on it buys.

    python benchmarks/cascade_mattes.py --clips CLIPS --step 5      # the mattes, once (slow: two models)
    python benchmarks/cascade_looks.py --clips CLIPS --step 5       # U2-Net-p's second looks, once (--looks)
    python benchmarks/confidence.py --clips CLIPS --step 5          # this analysis (seconds; --choice --looks: more)

CLIPS: a folder of DAVIS 2016 sequences (`<seq>/images/*.jpg`, `<seq>/masks/*.png`;
never part of the repository). Without --clips: the 30 frames of data/davis2016-sample.

For each frame, U2-Net-p's and IS-Net general's (trained weights,
benchmarks/trained_isnet.py) mattes are scored against the human mask (IoU at
0.5), and rmbg.confidence scores each matte without the mask. Reported, on the
report sequences only (the method was chosen on CHOICE, listed in the results):

- per model: AUROC of the confidence for "IoU below 0.8" (1 = every bad matte
  ranked below every good one, 0.5 = chance) and Spearman's rank correlation
  with IoU, each with a 95 % interval from 2000 resamples of the sequences;
- the cascade: U2-Net-p on every frame, IS-Net on the least sure share s
  (s = 0..100 %); mean IoU and the share of the gap between the two models it
  recovers, beside a random choice (recovers s on average) and the oracle
  (the frames where IS-Net gains most);
- the projected monthly cost at 100k images: fal and Runware (RMBG-2.0)
  alone, Runware's RemBG, and the cascade at the smallest share within 0.01
  of IS-Net's IoU, its escalations priced at RMBG-2.0's price. IS-Net stands
  in for the better provider's quality; the price is the hosted one's;
- per model, the share of frames under each confidence threshold (THRESHOLDS),
  on the choice and the report sequences each: how many images an
  escalate_below sends on (the Remove page's expected cost reads U2-Net-p's
  report share, rmbg.confidence.MEASURED_UNDER).

The choice table (--choice) scores the candidate combinations on CHOICE. With
--looks (after benchmarks/cascade_looks.py), two more tables: scores meant to
find where IS-Net gains, U2-Net-p's second looks among them, compared on CHOICE,
and the one kept there against today's confidence on the report sequences
(benchmarks/cascade_gain.py).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

import cascade_gain
import numpy as np
from cascade_mattes import Frame, cache_root, frames, matte_path

from harness import command_line, markdown, table, write_results

CHOICE = ("blackswan", "breakdance", "car-roundabout", "cows")  # chosen on; the others are reported
BAD = 0.8  # "a bad matte": IoU under this
SHARES = [round(0.05 * i, 2) for i in range(21)]
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the share under each: rmbg.confidence.MEASURED_UNDER
UNDER_TITLE = "Share of frames under a confidence threshold"
BOOT = 1000
MONTH = 100_000


def auroc(score: np.ndarray, bad: np.ndarray) -> float:
    """P(a bad matte's confidence < a good one's), ties counted half; NaN without both kinds."""
    b, g = score[bad], score[~bad]
    if b.size == 0 or g.size == 0:
        return float("nan")
    less = (b[:, None] < g[None, :]).sum() + 0.5 * (b[:, None] == g[None, :]).sum()
    return float(less / (b.size * g.size))


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    for value in np.unique(x):  # ties: their mean rank
        same = x == value
        ranks[same] = ranks[same].mean()
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def load(frame_list: list[Frame], with_looks: bool = False) -> dict[str, np.ndarray]:
    """Per frame with both mattes: sequence, IoU of each model, confidence and signals of each; `with_looks`:
    also U2-Net-p's second looks' values (cascade_gain.looks), on the frames that have them."""
    from PIL import Image

    from rmbg.confidence import WEIGHTS, confidence, signals
    from rmbg.eval.metrics import iou

    rows: dict[str, list] = {"seq": []}
    for frame in frame_list:
        paths = {m: matte_path(m, frame) for m in ("u2netp", "isnet-general")}
        if not all(p.is_file() for p in paths.values()):
            continue
        truth = np.asarray(Image.open(frame.mask).convert("L"))
        more = cascade_gain.looks(frame, Image.open(paths["u2netp"])) if with_looks else {}
        if more is None:
            continue
        for key, value in more.items():
            rows.setdefault(f"u2netp:{key}", []).append(value)
        rows["seq"].append(frame.seq)
        for model, path in paths.items():
            alpha = Image.open(path)
            rows.setdefault(f"{model}:iou", []).append(iou(np.asarray(alpha), truth))
            rows.setdefault(f"{model}:conf", []).append(confidence(alpha))
            for key, value in signals(alpha).items():
                rows.setdefault(f"{model}:{key}", []).append(value)
    assert set(WEIGHTS) <= {k.split(":")[1] for k in rows if ":" in k}
    return {k: np.asarray(v) for k, v in rows.items()}


def boot(data: dict[str, np.ndarray], stat, seed: int = 0) -> tuple[float, float, float]:
    """The statistic on all frames, and its 95 % interval over resampled sequences."""
    seqs = sorted(set(data["seq"]))
    index = {s: np.flatnonzero(data["seq"] == s) for s in seqs}
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(BOOT):
        pick = np.concatenate([index[s] for s in rng.choice(seqs, len(seqs))])
        value = stat({k: v[pick] for k, v in data.items()})
        if not math.isnan(value):
            reps.append(value)
    point = stat(data)
    low, high = np.percentile(reps, [2.5, 97.5]) if reps else (float("nan"), float("nan"))
    return point, float(low), float(high)


def fmt(est: tuple[float, float, float], digits: int = 3) -> str:
    point, low, high = est
    return "n/a" if math.isnan(point) else f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def ranking_rows(data: dict[str, np.ndarray], scores: dict[str, str]) -> list[list[str]]:
    """One row per (model, score column): frames, bad mattes, mean IoU, AUROC and Spearman with intervals."""
    out = []
    for model in ("u2netp", "isnet-general"):
        for label, column in scores.items():
            key = f"{model}:{column}"
            sign = 1.0 if column in ("conf", "fit") else -1.0  # a signal is high where the matte is unsure
            bad = data[f"{model}:iou"] < BAD
            out.append([
                model, label, str(len(bad)), str(int(bad.sum())), f"{data[f'{model}:iou'].mean():.3f}",
                fmt(boot(data, lambda d, k=key, m=model, s=sign: auroc(s * d[k], d[f"{m}:iou"] < BAD))),
                fmt(boot(data, lambda d, k=key, m=model, s=sign: spearman(s * d[k], d[f"{m}:iou"]))),
            ])  # fmt: skip
    return out


def cascade_iou(d: dict[str, np.ndarray], share: float, order: np.ndarray, keep: str = "isnet") -> float:
    """Mean IoU when the first floor(share x n) frames of `order` are escalated, each keeping (`keep`)
    IS-Net's matte ("isnet"), the one of its two mattes with the higher confidence ("surer"), or the one
    with the higher IoU ("best": a bound that reads the human mask)."""
    take = order[: math.floor(share * len(order) + 1e-9)]
    values = d["u2netp:iou"].copy()
    better = d["isnet-general:iou"]
    if keep != "isnet":
        pick = better > d["u2netp:iou"] if keep == "best" else d["isnet-general:conf"] > d["u2netp:conf"]
        better = np.where(pick, better, d["u2netp:iou"])
    values[take] = better[take]
    return float(values.mean())


def recovered(d: dict[str, np.ndarray], share: float, how: str) -> float:
    gap = d["isnet-general:iou"].mean() - d["u2netp:iou"].mean()
    if gap <= 0:
        return float("nan")
    if how == "random":
        return math.floor(share * len(d["seq"]) + 1e-9) / len(d["seq"])  # its expectation
    keys = {"oracle": -(d["isnet-general:iou"] - d["u2netp:iou"]), "worst": d["u2netp:iou"]}
    order = np.argsort(keys.get(how, d["u2netp:conf"]), kind="stable")
    keep = {"surer": "surer", "best kept": "best"}.get(how, "isnet")
    return (cascade_iou(d, share, order, keep) - d["u2netp:iou"].mean()) / gap


def frontier(data: dict[str, np.ndarray]) -> tuple[dict, dict[str, float | None]]:
    """The cascade curve's table, and per rule the smallest share within 0.01 of IS-Net's IoU."""
    order = np.argsort(data["u2netp:conf"], kind="stable")
    target = data["isnet-general:iou"].mean() - 0.01
    rows: list[list[str]] = []
    reach: dict[str, float | None] = {"IS-Net's": None, "surer": None}
    for share in SHARES:
        isnet, surer = cascade_iou(data, share, order), cascade_iou(data, share, order, "surer")
        for rule, mean in (("IS-Net's", isnet), ("surer", surer)):
            if reach[rule] is None and mean >= target:
                reach[rule] = share
        rows.append([
            f"{share:.0%}", f"{isnet:.4f}", fmt(boot(data, lambda d, s=share: recovered(d, s, "confidence")), 2),
            f"{surer:.4f}", fmt(boot(data, lambda d, s=share: recovered(d, s, "surer")), 2),
            f"{recovered(data, share, 'random'):.2f}", f"{recovered(data, share, 'worst'):.2f}",
            f"{recovered(data, share, 'best kept'):.2f}", f"{recovered(data, share, 'oracle'):.2f}",
        ])  # fmt: skip
    notes = (
        f"{len(data['seq'])} frames of {len(set(data['seq']))} report sequences; U2-Net-p alone "
        f"{data['u2netp:iou'].mean():.4f}, IS-Net alone {data['isnet-general:iou'].mean():.4f} (mean IoU over frames). "
        "Escalated: the share of frames with the lowest U2-Net-p confidence. IS-Net's kept: an escalated frame "
        "takes IS-Net's matte (the cascade's default); surer kept: of its two mattes, the one with the higher "
        "confidence (--escalate-keep surer). Recovered: (cascade - U2-Net-p) / (IS-Net - U2-Net-p), with its 95 % "
        "interval over resampled sequences; random: a random share's expectation (IS-Net's kept). Two bounds "
        "that use the human masks: U2-Net-p's worst, the frames with U2-Net-p's lowest IoU (what a perfect "
        "confidence would escalate), IS-Net's kept; least sure, the better kept: today's frames, each keeping "
        "whichever of its two mattes scores higher. Oracle: the frames where IS-Net gains most, IS-Net's kept."
    )
    columns = [
        "escalated", "mean IoU, IS-Net's kept", "recovered", "mean IoU, surer kept", "recovered", "random",
        "U2-Net-p's worst", "least sure, the better kept", "oracle",
    ]  # fmt: skip
    title = "The cascade on the report sequences: U2-Net-p, then IS-Net on the least sure"
    return table(title, columns, rows, notes), reach


def under(d: dict[str, np.ndarray], model: str, below: float) -> float:
    """The share of frames whose confidence, as Result.meta carries it (three decimals), is under `below`:
    the ones remove_background(escalate=..., escalate_below=below) would send to the better provider."""
    shown = np.round(d[f"{model}:conf"], 3)
    return float((shown < below).mean()) if len(shown) else float("nan")


def under_table(choice: dict[str, np.ndarray], report: dict[str, np.ndarray]) -> dict:
    """Per model and threshold, the share of frames under it on the choice and the report sequences."""
    rows = [
        [model, f"{below:g}"] + [fmt(boot(d, lambda x, m=model, b=below: under(x, m, b)), 2) for d in (choice, report)]
        for model in ("u2netp", "isnet-general")
        for below in THRESHOLDS
    ]
    notes = (
        f"{len(choice['seq'])} frames of the choice sequences, {len(report['seq'])} of the report sequences; the "
        "share of frames whose confidence (three decimals, as Result.meta carries it) is under the threshold, "
        "with its 95 % interval over resampled sequences. With escalate_below at the threshold, that share of "
        "the images goes to the better provider; the Remove page's expected cost reads U2-Net-p's report "
        "column (rmbg.confidence.MEASURED_UNDER)."
    )
    columns = ["model", "threshold", "under it, choice sequences", "under it, report sequences"]
    return table(UNDER_TITLE, columns, rows, notes)


def costs(reach: dict[str, float | None]) -> dict:
    from decimal import Decimal

    from rmbg.money.pricing import price_table

    prices = price_table()
    rows = [
        [pid, f"${prices[pid]}", f"${prices[pid] * MONTH:,.0f}"]
        for pid in ("fal-bria", "runware-bria", "runware-rembg")
    ]
    for rule, share in reach.items():
        for pid in ("fal-bria", "runware-bria"):
            if share is None:
                rows.append([f"u2netp, {pid} ({rule} kept)", "no share within 0.01", "-"])
                continue
            usd = prices[pid] * MONTH * Decimal(str(share))
            name = f"u2netp, {pid} on the least sure {share:.0%} ({rule} kept)"
            rows.append([name, f"${prices[pid]} x {share:.0%}", f"${usd:,.0f}"])
    notes = (
        f"{MONTH:,} images a month at rmbg.money.pricing's prices; a cascade's share is the smallest measured "
        "share (steps of 5 %) whose mean IoU on the report sequences is within 0.01 of IS-Net general's alone. "
        "IS-Net stands in "
        "for the hosted model's quality, the price is the hosted model's; the free model's machine time is not "
        "counted."
    )
    return table("Projected monthly cost at 100k images", ["provider", "per image", "per month"], rows, notes)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=Path, help="folder of DAVIS sequences; default: data/davis2016-sample")
    parser.add_argument("--step", type=int, default=5, help="every N-th frame of each sequence (default 5)")
    parser.add_argument("--choice", action="store_true", help="also score the candidates on the choice sequences")
    parser.add_argument("--looks", action="store_true", help="also where IS-Net gains (cascade_gain; needs --choice)")
    parser.add_argument("--results", default=None, help="benchmarks/results/NAME.json (default confidence[-sample])")
    args = parser.parse_args(argv)
    data = load(frames(args.clips, args.step), with_looks=args.looks)
    if not len(data["seq"]):
        print("No frame has both mattes: run benchmarks/cascade_mattes.py first.", file=sys.stderr)
        return 1
    chosen = np.isin(data["seq"], CHOICE)
    report = {k: v[~chosen] for k, v in data.items()}
    choice = {k: v[chosen] for k, v in data.items()}
    columns = ["model", "score", "frames", "IoU < 0.8", "mean IoU", "AUROC (IoU < 0.8)", "Spearman with IoU"]
    what = "DAVIS 2016 clips" if args.clips else "the DAVIS 2016 sample"
    split = f"chosen on {', '.join(CHOICE)}; reported on {', '.join(sorted(set(report['seq'])))}"
    tables = [
        table(
            f"Confidence against IoU on {what}, report sequences",
            columns,
            ranking_rows(report, {"confidence": "conf"}),
            f"{split}. Every {args.step}th frame. 95 % intervals over resampled sequences." if args.clips else split,
        )
    ]
    if args.choice:
        from rmbg.confidence import WEIGHTS

        names = list(WEIGHTS)
        design = np.stack([choice[f"u2netp:{k}"] for k in names] + [np.ones(len(choice["seq"]))], axis=1)
        coef = np.linalg.lstsq(design, choice["u2netp:iou"], rcond=None)[0]  # U2-Net-p's IoU on the signals
        for model in ("u2netp", "isnet-general"):
            choice[f"{model}:fit"] = coef[-1] + sum(c * choice[f"{model}:{k}"] for c, k in zip(coef, names))
        signals = {"confidence": "conf", "least-squares fit (in sample)": "fit", **{f"{k} alone": k for k in WEIGHTS}}
        tables.append(table("Candidates on the choice sequences", columns, ranking_rows(choice, signals)))
        order = np.argsort(choice["u2netp:conf"], kind="stable")
        rules = [
            [
                f"{share:.0%}",
                f"{cascade_iou(choice, share, order):.4f}",
                f"{cascade_iou(choice, share, order, 'surer'):.4f}",
            ]
            for share in (0.1, 0.2, 0.3, 0.5)
        ]
        tables.append(
            table(
                "Which matte to keep, on the choice sequences (mean IoU)",
                ["escalated", "IS-Net's", "the surer"],
                rules,
                f"U2-Net-p alone {choice['u2netp:iou'].mean():.4f}, "
                f"IS-Net alone {choice['isnet-general:iou'].mean():.4f}.",
            )
        )
    curve, reach = frontier(report)
    tables += [curve, costs(reach), under_table(choice, report)]
    if args.looks:
        timing = cache_root() / "looks-seconds.json"
        seconds = json.loads(timing.read_text())["median_s"] if timing.is_file() else None
        tables += [
            cascade_gain.choice_table(choice, boot, spearman, fmt, table),
            cascade_gain.report_table(choice, report, boot, fmt, table, SHARES[:11], seconds),
        ]
    print(markdown(tables))
    name = args.results or ("confidence" if args.clips else "confidence-sample")
    command = command_line()
    if args.clips:  # the clips' folder is this machine's: the record says what it holds, not where
        command = command.replace(shlex.quote(str(args.clips)), "CLIPS")
    print(f"Wrote {write_results(name, command, tables)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
