"""`rmbg evaluate` on video: J, F and dtSSD per sequence, with 95 % intervals over sequences.

A sequence data set is a folder of sequences, each a folder holding the clip
(`clip.mp4` or any video file: MP4, MOV, WebM, MKV, GIF) or a `frames/`
folder of images, and a `masks/` folder with one ground-truth mask per frame
(sorted by name); or one such sequence folder itself. Every provider runs on
every sequence through rmbg.eval.clips.evaluate_clip, which scores the same mattes
frame by frame and after the temporal filter, so the two rows of a sequence
differ by the filter alone. The summary is the mean over sequences with a 95 %
percentile bootstrap interval over sequences (the sequence is the unit, as
DAVIS reports it), like the image summaries' interval over groups.

Importing this module loads neither PyAV nor a model.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidRequestError, RmbgError
from ..providers.base import Provider
from ..types import line_text, name_text, one_or_many
from .records import Estimate, shown
from .stats import check_bootstrap, estimate, resample_counts

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".gif", ".m4v")
MATTES = ("frame by frame", "smoothed")
METRICS = ("j", "f", "dtssd")


@dataclass(frozen=True)
class SequenceSource:
    """One sequence: its name, the clip or frames folder, and the masks folder."""

    name: str
    source: Path
    masks: Path


def _sequence_in(folder: Path) -> SequenceSource | None:
    masks = folder / "masks"
    if not masks.is_dir():
        return None
    frames = folder / "frames"
    clips = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    source = frames if frames.is_dir() else (clips[0] if clips else None)
    return SequenceSource(name_text(folder.name), source, masks) if source is not None else None


def discover_sequences(root: str | Path) -> list[SequenceSource]:
    """The sequences under `root` (module doc), by name; [] when it holds none."""
    root = Path(root)
    if not root.is_dir():
        return []
    itself = _sequence_in(root)
    if itself is not None:
        return [itself]
    found = (_sequence_in(child) for child in sorted(root.iterdir()) if child.is_dir())
    return [s for s in found if s is not None]


def is_sequence_set(root: str | Path) -> bool:
    """A folder `rmbg evaluate` reads as video sequences (no images/ folder, and sequences in it)."""
    return not (Path(root) / "images").is_dir() and bool(discover_sequences(root))


@dataclass(frozen=True)
class SequenceRow:
    """One provider on one sequence, for one kind of mattes ("frame by frame" or "smoothed")."""

    provider: str
    sequence: str
    mattes: str
    frames: int
    j: float
    f: float
    dtssd: float
    seconds_per_frame: float
    error: str = ""  # why the sequence could not be scored (its metrics NaN); "" when it was


@dataclass(frozen=True)
class SequenceEvaluation:
    rows: tuple[SequenceRow, ...]
    bootstrap: int
    seed: int

    def summary(self) -> list[tuple[str, str, int, dict[str, Estimate], float]]:
        """(provider, mattes, sequences, {metric: mean [95 % CI] over sequences}, seconds per frame)."""
        out = []
        for provider in dict.fromkeys(r.provider for r in self.rows):
            for mattes in MATTES:
                rows = [r for r in self.rows if r.provider == provider and r.mattes == mattes and not r.error]
                if not rows:
                    continue
                counts = resample_counts(len(rows), self.bootstrap, self.seed)
                estimates = {}
                for metric in METRICS:
                    values = np.array([getattr(r, metric) for r in rows], dtype=np.float64)
                    estimates[metric] = estimate(float(values.mean()), counts @ values / len(rows), len(rows))
                seconds = float(np.mean([r.seconds_per_frame for r in rows]))
                out.append((provider, mattes, len(rows), estimates, seconds))
        return out

    def to_markdown(self) -> str:
        head = "| provider | mattes | sequences | J [95 % CI] | F [95 % CI] | dtSSD [95 % CI] | s/frame |"
        lines = [head, "|---|---|---:|---|---|---|---:|"]
        for provider, mattes, n, est, seconds in self.summary():
            cells = [shown(est["j"], 3), shown(est["f"], 3), shown(est["dtssd"], 2)]
            lines.append(f"| {provider} | {mattes} | {n} | " + " | ".join(cells) + f" | {seconds:.3f} |")
        failed = [f"- {line_text(r.sequence)} ({r.provider}): {line_text(r.error)}" for r in self.failed()]
        notes = "\n\nJ, F: fractions (higher is better); dtSSD x100 (lower is steadier)."
        return "\n".join(lines) + notes + ("\n\nNot scored:\n" + "\n".join(failed) if failed else "")

    def failed(self) -> list[SequenceRow]:
        """One row per sequence and provider that could not be scored (the others are in the summary)."""
        return [r for r in self.rows if r.error and r.mattes == MATTES[0]]

    def write(self, out: str | Path) -> dict[str, Path]:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        per_sequence = folder / "per_sequence.csv"
        with open(per_sequence, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(SequenceRow.__dataclass_fields__))
            writer.writeheader()
            writer.writerows(asdict(r) for r in self.rows)
        summary = folder / "sequences.json"
        data = [
            {
                "provider": p,
                "mattes": m,
                "sequences": n,
                "seconds_per_frame": s,
                **{k: asdict(e) for k, e in est.items()},
            }
            for p, m, n, est, s in self.summary()
        ]
        missing = [{"provider": r.provider, "sequence": r.sequence, "error": r.error} for r in self.failed()]
        kept = {"bootstrap": self.bootstrap, "seed": self.seed, "summary": data, "not_scored": missing}
        summary.write_text(json.dumps(kept, indent=1))
        report = folder / "sequences.md"
        report.write_text(self.to_markdown() + "\n", encoding="utf-8")
        return {"per_sequence": per_sequence, "summary": summary, "markdown": report}


Progress = Callable[[int, int, str, str], None]


def evaluate_sequences(
    root: str | Path,
    providers: Sequence[str | Provider],
    *,
    bootstrap: int = 2000,
    seed: int = 0,
    progress: Progress | None = None,
) -> SequenceEvaluation:
    """Every provider (local: a clip is hundreds of calls) on every sequence under `root`; a sequence that
    cannot be scored (its masks do not match its frames, an unreadable clip) is recorded with its reason
    (SequenceEvaluation.failed) and the others go on, as an image's failure in rmbg.eval.run.evaluate."""
    from ..api import resolve_provider

    check_bootstrap(bootstrap)  # before hundreds of calls a clip: the scores come after them
    sequences = discover_sequences(root)
    if not sequences:
        raise InvalidRequestError(f"{root} holds no sequence (a folder with a clip or frames/, and masks/).")
    chosen = [resolve_provider(p)[0] for p in one_or_many(providers)]
    rows: list[SequenceRow] = []
    total, done = len(sequences) * len(chosen), 0
    for provider in chosen:
        for seq in sequences:
            rows += _scored(provider, seq)
            done += 1
            if progress is not None:
                progress(done, total, provider.id, seq.name)
    return SequenceEvaluation(tuple(rows), bootstrap, seed)


def _scored(provider: Provider, seq: SequenceSource) -> list[SequenceRow]:
    """One provider's two rows on one sequence (frame by frame, smoothed); for a sequence that cannot be
    scored, two rows with its reason (an image's failure in rmbg.eval.run is recorded alike)."""
    from .clips import evaluate_clip

    started = time.perf_counter()
    try:
        scores = evaluate_clip(seq.source, seq.masks, provider)
    except RmbgError as exc:
        nan = float("nan")
        return [SequenceRow(provider.id, seq.name, m, 0, nan, nan, nan, nan, str(exc)) for m in MATTES]
    per_frame = (time.perf_counter() - started) / max(scores["frame_by_frame"].frames, 1)
    made = (scores["frame_by_frame"], scores["smoothed"])
    return [
        SequenceRow(provider.id, seq.name, m, s.frames, s.j, s.f, s.dtssd, per_frame)
        for m, s in zip(MATTES, made, strict=True)
    ]
