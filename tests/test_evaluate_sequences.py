"""`rmbg evaluate` on video sequences (rmbg.eval.sequences): a folder of sequences, each a clip
or a frames folder with one mask per frame, scored with J, F and dtSSD per sequence and summarised
over sequences with 95 % intervals, frame by frame and smoothed, from the CLI as from Python."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from rmbg.eval.sequences import discover_sequences, evaluate_sequences, is_sequence_set
from tests.video_clips import Threshold, davis, davis_masks, threshold_registered, write_clip


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    """Two short DAVIS sequences: one as a clip, one as a folder of frames."""
    root = tmp_path_factory.mktemp("seqs")
    for name, as_clip in (("dog", True), ("blackswan", False)):
        frames = davis(name, n=6, size=(214, 120))
        folder = root / name
        (folder / "masks").mkdir(parents=True)
        for i, mask in enumerate(davis_masks(name, 6, size=(214, 120))):
            Image.fromarray(mask).save(folder / "masks" / f"{i:05d}.png")
        if as_clip:
            write_clip(folder / "clip.mp4", frames)
        else:
            (folder / "frames").mkdir()
            for i, frame in enumerate(frames):
                Image.fromarray(frame).save(folder / "frames" / f"{i:05d}.png")
    return root


def test_sequences_are_found_as_clips_or_frame_folders(sequences, tmp_path):
    found = discover_sequences(sequences)
    assert [(s.name, s.source.name) for s in found] == [("blackswan", "frames"), ("dog", "clip.mp4")]
    assert is_sequence_set(sequences) and discover_sequences(sequences / "dog")[0].name == "dog"
    (tmp_path / "images").mkdir()
    assert not is_sequence_set(tmp_path)  # an image data set is not read as sequences


def test_each_sequence_is_scored_frame_by_frame_and_smoothed(sequences):
    evaluation = evaluate_sequences(sequences, [Threshold()], bootstrap=200)
    assert [(r.sequence, r.mattes, r.frames) for r in evaluation.rows] == [
        ("blackswan", "frame by frame", 6),
        ("blackswan", "smoothed", 6),
        ("dog", "frame by frame", 6),
        ("dog", "smoothed", 6),
    ]
    assert all(0 <= r.j <= 1 and 0 <= r.f <= 1 and r.dtssd >= 0 for r in evaluation.rows)
    (provider, mattes, n, est, seconds), _ = evaluation.summary()
    assert (provider, mattes, n) == ("threshold", "frame by frame", 2) and seconds > 0
    js = [r.j for r in evaluation.rows if r.mattes == "frame by frame"]
    assert est["j"].mean == pytest.approx(np.mean(js)) and est["j"].low <= est["j"].mean <= est["j"].high
    assert min(js) - 1e-9 <= est["j"].low and est["j"].high <= max(js) + 1e-9  # an interval over sequences


def test_rmbg_evaluate_reads_a_folder_of_sequences(sequences, tmp_path, capsys):
    from rmbg.cli.main import main

    with threshold_registered():
        code = main(["evaluate", str(sequences), "-p", "threshold", "--out", str(tmp_path / "r"), "--bootstrap", "100"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert re.search(r"^\[1/2  [\d.]+ (sequence/s|s/sequence)  \$0\] done threshold ", printed.err, re.M)
    assert "img/s" not in printed.err  # it counted sequences as images ("0.0 img/s")
    assert "| threshold | frame by frame | 2 | " in printed.out and "| threshold | smoothed | 2 | " in printed.out
    summary = json.loads((tmp_path / "r" / "sequences.json").read_text())
    assert [row["mattes"] for row in summary["summary"]] == ["frame by frame", "smoothed"]
    assert (tmp_path / "r" / "per_sequence.csv").read_text().count("\n") == 5  # header + 2 sequences x 2


def test_a_sequence_that_cannot_be_scored_is_recorded_and_the_others_are_written(sequences, tmp_path, capsys):
    """A sequence whose masks do not match its frames (one missing) once stopped the whole evaluation after the
    sequences before it had run, and nothing was written; it is recorded with its reason, as an image's failure
    is, the others are scored and written, and the command's exit code says not all were."""
    import shutil

    from rmbg.cli.main import main

    root = tmp_path / "seqs"
    shutil.copytree(sequences, root)
    shutil.copytree(root / "dog", root / "dog_short")
    max((root / "dog_short" / "masks").glob("*.png")).unlink()
    with threshold_registered():
        code = main(["evaluate", str(root), "-p", "threshold", "--out", str(tmp_path / "r"), "--bootstrap", "100"])
    printed = capsys.readouterr()
    assert code == 1
    reason = f"The sequence has more frames than {root / 'dog_short' / 'masks'} has masks (5)."
    assert "| threshold | frame by frame | 2 | " in printed.out  # blackswan and dog, scored
    assert f"Not scored:\n- dog_short (threshold): {reason}" in printed.out
    assert "1 sequence(s) could not be scored" in printed.err
    summary = json.loads((tmp_path / "r" / "sequences.json").read_text())
    assert summary["not_scored"] == [{"provider": "threshold", "sequence": "dog_short", "error": reason}]
    assert [row["sequences"] for row in summary["summary"]] == [2, 2]


def test_a_sequence_folder_named_with_bytes_that_are_not_utf8_is_reported_as_text(sequences, tmp_path):
    """Its rows were scored, then writing per_sequence.csv failed (UnicodeEncodeError): the name is text, \\xNN."""
    import os
    import shutil

    shutil.copytree(sequences / "dog", tmp_path / "seqs" / os.fsdecode(b"d\xf6g"))
    evaluation = evaluate_sequences(tmp_path / "seqs", [Threshold()], bootstrap=10)
    assert {r.sequence for r in evaluation.rows} == {"d\\xf6g"}
    assert "d\\xf6g" in evaluation.write(tmp_path / "r")["per_sequence"].read_text(encoding="utf-8")


def test_a_mask_of_another_aspect_ratio_than_its_frame_is_refused_naming_the_frame(sequences, tmp_path):
    """A frame's mask of another aspect ratio was squashed (nearest) to the frame and scored: J, F and dtSSD
    that mean nothing. It is refused, naming the frame and both sizes, before the frames after it are cut out;
    masks at half the frames' size (same aspect ratio) are still scored, resized to the frames."""
    import shutil

    from rmbg.eval.clips import evaluate_clip
    from rmbg.video.limits import InvalidVideoError

    frames, masks = sequences / "blackswan" / "frames", tmp_path / "masks"
    shutil.copytree(sequences / "blackswan" / "masks", masks)
    with Image.open(masks / "00002.png") as mask:
        mask.resize((120, 120), Image.Resampling.NEAREST).save(masks / "00002.png")
    model = Threshold()
    with pytest.raises(InvalidVideoError) as refused:
        evaluate_clip(frames, masks, model)
    assert str(refused.value) == (
        "Frame 3's mask 00002.png is 120x120 but the frame is 214x120: a mask is its frame's size or that size "
        "scaled (the same aspect ratio); is it another frame's mask?"
    )
    assert model.calls == 3  # frames 4 to 6 never ran

    half, again = tmp_path / "half", tmp_path / "again"  # masks at 107x60, and those masks scaled back up
    for folder in (half, again):
        folder.mkdir()
    for path in sorted((sequences / "blackswan" / "masks").glob("*.png")):
        with Image.open(path) as mask:
            small = mask.resize((107, 60), Image.Resampling.NEAREST)
        small.save(half / path.name)
        small.resize((214, 120), Image.Resampling.NEAREST).save(again / path.name)
    scored = evaluate_clip(frames, half, Threshold())
    assert scored["frame_by_frame"].frames == 6
    assert scored == evaluate_clip(frames, again, Threshold())  # the same as the masks resized first
