"""`rmbg video`, `rmbg evaluate` and `rmbg replace` and the files they name, as `rmbg remove`'s batch has it
(tests/test_cli_batch_files.py): no output is a file the run reads, an output folder that cannot be written is a
sentence and exit code 2 before any model runs or any call is sent, control characters in names are escaped in
every line printed, and bad input is said in words, never a traceback. Each runs the real `rmbg` on real files in a
temporary folder (U2-Net-p's weights; fal's fake queue over a real socket) in this process (rmbg.cli.main.main, as
the `rmbg` script calls it), so the model is loaded once and no run pays a new interpreter's imports; `rmbg replace`
runs in a process of its own, with the fake queue's address in its environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.fakes.fal import TEST_KEY, FalFake
from tests.u2netp_fixture import u2netp_path  # noqa: F401  (fixture)
from tests.video_clips import davis, write_clip

ROOT = Path(__file__).resolve().parents[1]
ANOTHER = "rename one of them or give another -o"
IN_THE_WAY = "a file stands where a folder must be made; move it aside or give another -o"


def rmbg(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m rmbg ARGS` in `cwd`, its output as text."""
    where = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    command = [sys.executable, "-m", "rmbg", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=where, timeout=300)


def in_process(cwd: Path, capsys, *args: str) -> subprocess.CompletedProcess[str]:
    """`rmbg ARGS` run in this process from `cwd` (rmbg.cli.main.main), as `rmbg` gives it: for a test that runs
    the command several times, each run without a new interpreter's imports (a second or more of CPU each)."""
    from rmbg.cli.main import main

    before = Path.cwd()
    os.chdir(cwd)
    try:
        code = main(list(args))
    finally:
        os.chdir(before)
    said = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, said.out, said.err)


def image(path: Path, colour: str, size: tuple[int, int] = (32, 32), mode: str = "RGB", fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path, format=fmt)


def contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def clips(tmp_path, u2netp_path):  # noqa: F811
    """tmp with clip.mp4 and clip.webm (2 frames), hard.webm (clip.webm's hard link), link.webm (a link to it),
    shot.mov, and shot.mp4: a PNG (a --bg image is read by its content)."""
    frames = davis("dog", 2, size=(64, 36))
    write_clip(tmp_path / "clip.mp4", frames)
    write_clip(tmp_path / "clip.webm", frames, codec="libvpx-vp9")
    os.link(tmp_path / "clip.webm", tmp_path / "hard.webm")
    (tmp_path / "link.webm").symlink_to("clip.webm")
    write_clip(tmp_path / "shot.mov", frames)
    image(tmp_path / "shot.mp4", "navy", (64, 36))
    return tmp_path


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_video_output_is_never_a_file_the_run_reads(clips, overwrite, capsys):
    """-o hard.webm, a hard link to the input clip, was taken for a clip already done (or with --overwrite
    replaced by the cut-out), and an output named as the --bg image (read by its content) replaced it. Every
    output that is a file the run reads, or a link to one, is a usage error before any model runs."""
    before = contents(clips)
    for args, said in [
        (["clip.webm", "-o", "hard.webm"], "clip.webm: its output would be the clip itself, hard.webm: give another"),
        (["link.webm", "-o", "clip.webm"], "link.webm: its output would be the clip itself, clip.webm: give another"),
        (["shot.mov", "-o", ".", "--bg", "shot.mp4"], "shot.mov: its output shot.mp4 would replace the --bg image"),
    ]:
        done = in_process(clips, capsys, "video", *args, "-p", "u2netp", *overwrite)
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.startswith(f"rmbg: error: {said}") and done.stderr.count("\n") == 1
    assert (
        done.stderr == f"rmbg: error: shot.mov: its output shot.mp4 would replace the --bg image shot.mp4: {ANOTHER}.\n"
    )
    assert contents(clips) == before and (clips / "link.webm").is_symlink()


def test_a_phone_clip_with_sound_and_its_hard_link_as_output_is_refused_before_any_model_runs(tmp_path, capsys):
    """At the size users bring: a 60-frame clip (2.5 s at 24 fps, DAVIS dog at its own size) with an AAC track,
    -o a hard link to it, with --overwrite: refused in words, exit 2, the clip's bytes as they were."""
    write_clip(tmp_path / "phone.mp4", davis("dog", 60), tone_hz=440)
    os.link(tmp_path / "phone.mp4", tmp_path / "same.mp4")
    before = contents(tmp_path)
    done = in_process(tmp_path, capsys, "video", "phone.mp4", "-o", "same.mp4", "-p", "u2netp", "--overwrite")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("rmbg: error: phone.mp4: its output would be the clip itself, same.mp4: give another")
    assert contents(tmp_path) == before


def test_a_video_folder_run_again_leaves_its_outputs_under_o_out(clips, capsys):
    """`rmbg video clips -o clips/cut`, run again, took clips/cut/a.webm (its own output) for a clip and made
    clips/cut/cut/a.webm of it. The clips under -o, inside an input folder, are an earlier run's outputs."""
    (clips / "clips" / "cut").mkdir(parents=True)
    (clips / "clip.mp4").rename(clips / "clips" / "a.mp4")
    (clips / "clip.webm").rename(clips / "clips" / "cut" / "a.webm")  # as an earlier run left it
    done = in_process(clips, capsys, "video", "clips", "-o", "clips/cut", "-p", "u2netp")
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == "Skipping 1 clip(s) already done (--overwrite redoes them).\n"
    assert sorted(contents(clips / "clips")) == ["a.mp4", "cut/a.webm"]


@pytest.mark.parametrize("out", ["blocker", "blocker/sub", "blocker/cut.webm"])
def test_a_video_output_folder_that_cannot_be_written_is_a_sentence_before_any_model_runs(clips, out, capsys):
    """-o through a file ran the model, then failed the clip with "Could not write ...: File exists." and exit
    code 1. Now: the sentence remove says, exit code 2, and nothing run (no progress, nothing written)."""
    (clips / "blocker").write_text("a file where -o needs a folder")
    before = contents(clips)
    done = in_process(clips, capsys, "video", "clip.mp4", "-o", out, "-p", "u2netp")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"rmbg: error: -o {out} cannot be written: {IN_THE_WAY}.\n"
    assert contents(clips) == before


def test_video_names_with_control_characters_are_escaped_in_every_line(clips, capsys):
    """A clip named with an ESC sequence or a newline was printed raw in its result line, its progress bar and
    its error line (a name could recolour the terminal, or forge a line); each is shown as \\xNN, as `rmbg remove`
    shows it. A clip's bar is drawn as it starts and again as it ends, whatever its length: 3 frames of U2-Net-p."""
    folder = clips / "w"
    folder.mkdir()
    write_clip(folder / "e\x1b[31mred.mp4", davis("dog", 3, size=(64, 36)))
    write_clip(folder / "new\nline.mp4", davis("dog", 2, size=(64, 36)))
    (folder / "bad\x1b]0;pwned\x07.mp4").write_text("not a clip")
    done = in_process(clips, capsys, "video", "w", "-o", "out", "-p", "u2netp")
    assert done.returncode == 1
    assert not any(ch in done.stdout + done.stderr for ch in "\x1b\x07")
    lines = done.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["out/e\\x1b[31mred.webm", "out/new\\x0aline.webm"]
    assert lines[0].split("  ")[1].startswith("3 frames, 0.12 s of video in ")  # 3 at 24 fps
    assert "\re\\x1b[31mred.mp4: 100%|" in done.stderr and "\rnew\\x0aline.mp4: 100%|" in done.stderr  # the bars
    failed = [line for line in done.stderr.split("\n") if line.startswith("rmbg: ")]
    assert len(failed) == 1 and failed[0].startswith("rmbg: w/bad\\x1b]0;pwned\\x07.mp4: ")
    assert sorted(contents(clips / "out")) == ["e\x1b[31mred.webm", "new\nline.webm"]


@pytest.fixture
def labelled(tmp_path, u2netp_path):  # noqa: F811
    """A data set: images/ and masks/ with the categories 'cat\\x1b[31mred', 'new\\nline' and 'x', whose mask
    broken.png is not an image."""
    for category, name in [("cat\x1b[31mred", "a"), ("new\nline", "b"), ("x", "c"), ("x", "broken")]:
        image(tmp_path / "d" / "images" / category / f"{name}.png", "red")
        image(tmp_path / "d" / "masks" / category / f"{name}.png", 255, mode="L")
    (tmp_path / "d" / "masks" / "x" / "broken.png").write_text("not an image")
    return tmp_path


@pytest.mark.parametrize("out", ["blocker", "blocker/sub"])
def test_an_evaluate_out_that_cannot_be_written_is_a_sentence_before_any_model_runs(labelled, out, capsys):
    """--out through a file ran every provider on every image, printed the table, then ended in a traceback
    (FileExistsError, NotADirectoryError) with exit code 1: the scores were lost. Now a usage error first."""
    (labelled / "blocker").write_text("a file where --out needs a folder")
    (labelled / "d" / "masks" / "x" / "broken.png").unlink()
    (labelled / "d" / "images" / "x" / "broken.png").unlink()
    done = in_process(labelled, capsys, "evaluate", "d", "-p", "u2netp", "--out", out, "--bootstrap", "0")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"rmbg: error: --out {out} cannot be written: {IN_THE_WAY}.\n"


def test_evaluate_fails_an_unreadable_mask_in_words_and_escapes_names(labelled, capsys):
    """A mask that is not an image ended the evaluation in a traceback (PIL.UnidentifiedImageError), after the
    images before it had run; its image now fails in words and the others are scored. The categories' names are
    shown with their control characters as \\xNN in the table (a newline split its row)."""
    done = in_process(labelled, capsys, "evaluate", "d", "-p", "u2netp", "--out", "res", "--bootstrap", "0")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert not any(ch in done.stdout + done.stderr for ch in "\x1b\x07")
    rows = [line.split(" | ")[1:4] for line in done.stdout.splitlines() if line.startswith("| u2netp |")]
    assert sorted(rows) == [
        ["all", "3 (3)", "1"],  # the images scored (groups), and those that failed
        ["cat\\x1b[31mred", "1 (1)", "0"],
        ["new\\x0aline", "1 (1)", "0"],
        ["x", "1 (1)", "1"],
    ]
    why = "its mask broken.png is not an image we can read: replace it, or remove both"
    assert f"] failed u2netp x/broken: {why}\n" in done.stderr
    assert done.stderr.endswith("1 image(s) failed; see per_image.csv for the reasons.\n")
    assert sorted(contents(labelled / "res")) == [
        "evaluation.json",
        "per_image.csv",
        "quality_vs_cost.png",
        "results.md",
        "summary.csv",
    ]


def test_replace_outputs_are_checked_by_their_own_names(tmp_path):
    """`rmbg replace a.png -o .` was refused, "its output would replace it", though its outputs are
    a.replace-N.png; and those names were never checked: --ref b.replace-1.png was replaced with --overwrite,
    as an input c.replace-2.png was by c.png's second output. Each output name is checked against the files the
    run reads, with or without --overwrite, before anything is sent."""
    for name, colour in [("a.png", "red"), ("b.png", "green"), ("b.replace-1.png", "blue"), ("c.png", "white")]:
        image(tmp_path / name, colour, (40, 30))
    image(tmp_path / "c.replace-2.png", "black", (40, 30))
    kept = {name: (tmp_path / name).read_bytes() for name in ("b.replace-1.png", "c.replace-2.png")}
    with FalFake(polls_before_done=0) as fake:
        env = {"FAL_KEY": TEST_KEY, "RMBG_FAL_QUEUE_URL": fake.url}
        done = rmbg(tmp_path, "replace", "a.png", "-o", ".", "--prompt", "a beach", "--yes", **env)
        assert done.returncode == 0 and done.stdout.startswith("Done 1, skipped 0 (output exists), failed 0,")
        assert (tmp_path / "a.replace-1.png").is_file()
        sent = len(fake.calls)
        args = ["--ref", "b.replace-1.png", "--yes", "--overwrite"]
        done = rmbg(tmp_path, "replace", "b.png", "-o", ".", *args, **env)
        assert done.returncode == 1 and len(fake.calls) == sent
        said = f"  b.png: its output b.replace-1.png would replace the --ref image b.replace-1.png: {ANOTHER}"
        assert done.stdout.splitlines()[1:3] == ["Failed:", said]
        args = ["--prompt", "snow", "-n", "2", "--yes", "--overwrite"]
        done = rmbg(tmp_path, "replace", "c.png", "c.replace-2.png", "-o", ".", *args, **env)
        assert done.returncode == 1 and done.stdout.startswith("Done 1, skipped 0 (output exists), failed 1,")
        said = f"  c.png: its output c.replace-2.png would replace the input c.replace-2.png: {ANOTHER}"
        assert done.stdout.splitlines()[1:3] == ["Failed:", said]
    assert {name: (tmp_path / name).read_bytes() for name in kept} == kept


def test_a_clip_whose_output_folder_is_blocked_by_a_file_fails_in_words_and_the_others_go_on(clips, capsys):
    """-o out where out/sub (or out/deep, above out/deep/x) is a file: each clip under it failed with the system's
    bare words ("Could not write out/sub/b.webm: File exists.", "...: Not a directory."). Now it fails in a
    sentence that names its output and the file in the way and says what to do; the other clips are written,
    and the exit code is 1, as for any clip that fails."""
    for name in ("a.mp4", "deep/x/c.mp4", "sub/b.mp4"):
        (clips / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clips / "clip.mp4", clips / "in" / name)
    (clips / "out").mkdir()
    for name in ("sub", "deep"):
        (clips / "out" / name).write_text("a file where a folder of outputs must be")
    done = in_process(clips, capsys, "video", "in", "-o", "out", "-p", "u2netp")
    assert done.returncode == 1
    assert [line.split("  ")[0] for line in done.stdout.splitlines()] == ["out/a.webm"]
    failed = [line for line in done.stderr.split("\n") if line.startswith("rmbg: ")]
    assert failed == [
        f"rmbg: in/{clip}: its output out/{output} could not be written: out/{blocker} is a file where a folder "
        "must be made; move it aside or give another -o."
        for clip, output, blocker in [("deep/x/c.mp4", "deep/x/c.webm", "deep"), ("sub/b.mp4", "sub/b.webm", "sub")]
    ]
    assert sorted(contents(clips / "out")) == ["a.webm", "deep", "sub"]


def test_the_library_says_a_blocked_output_folder_in_its_own_words(clips):
    """rmbg.remove_video to a path under a file raised "Could not write ...: File exists."; it raises
    OutputBlocked (a VideoWriteError) that names the output and the file in the way, in the library's terms."""
    import rmbg
    from rmbg.video.limits import OutputBlocked

    (clips / "blocker").write_text("a file where a folder must be")
    with pytest.raises(OutputBlocked) as caught:
        rmbg.remove_video(clips / "clip.mp4", "u2netp", output=clips / "blocker" / "x" / "cut.webm")
    assert (caught.value.path, caught.value.blocker) == (clips / "blocker" / "x" / "cut.webm", clips / "blocker")
    assert str(caught.value) == (
        f"Could not write {clips / 'blocker' / 'x' / 'cut.webm'}: {clips / 'blocker'} is a file where a folder must "
        "be made; move or rename that file, or write the output elsewhere."
    )


def test_a_video_folder_written_beside_its_clips_resumes_when_run_again(clips, capsys):
    """`rmbg video in -o in` (each output beside its clip), run a second time, took the first run's outputs for
    clips: in/a.webm was refused as a second output in/a.webm, exit code 2. The outputs an earlier run made there,
    as OUT/manifest.csv says (as `rmbg remove` keeps it), are not clips: the run skips the clips done, nothing is
    computed again, nothing lost; a clip added since is made."""
    for name in ("a.mp4", "sub/b.mp4"):
        (clips / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clips / "clip.mp4", clips / "in" / name)
    first = in_process(clips, capsys, "video", "in", "-o", "in", "-p", "u2netp")
    assert first.returncode == 0
    assert [line.split("  ")[0] for line in first.stdout.splitlines()] == ["in/a.webm", "in/sub/b.webm"]
    made = contents(clips / "in")
    again = in_process(clips, capsys, "video", "in", "-o", "in", "-p", "u2netp")
    assert (again.returncode, again.stdout) == (0, "")
    assert again.stderr == "Skipping 2 clip(s) already done (--overwrite redoes them).\n"
    assert contents(clips / "in") == made
    assert sorted(made) == [".rmbg-folder-id", "a.mp4", "a.webm", "manifest.csv", "sub/b.mp4", "sub/b.webm"]
    shutil.copy(clips / "clip.mp4", clips / "in" / "c.mp4")
    third = in_process(clips, capsys, "video", "in", "-o", "in", "-p", "u2netp")
    assert third.returncode == 0 and third.stderr.startswith("Skipping 2 clip(s) already done")
    assert [line.split("  ")[0] for line in third.stdout.splitlines()] == ["in/c.webm"]
    assert {k: v for k, v in contents(clips / "in").items() if k in made and k != "manifest.csv"} == {
        k: v for k, v in made.items() if k != "manifest.csv"
    }


@pytest.mark.parametrize(
    "out, report, what",
    [
        ("d/images", "quality_vs_cost.png", "the image d/images/quality_vs_cost.png"),
        ("d/masks", "quality_vs_cost.png", "the mask d/masks/quality_vs_cost.png"),
        ("links", "quality_vs_cost.png", "the image d/images/x/c.png"),  # a hard link to it
        ("res", "summary.csv", "the categories file res/summary.csv"),
    ],
)
def test_an_evaluate_report_that_is_a_file_the_run_reads_is_refused_before_any_model_runs(
    labelled, out, report, what, capsys
):
    """The reports have fixed names (per_image.csv, summary.csv, evaluation.json, results.md, quality_vs_cost.png
    ...): --out d/images wrote the plot over the image quality_vs_cost.png it had just scored, --out links over
    the image links/quality_vs_cost.png is a hard link to, --out res over the --categories file res/summary.csv.
    A report that would be a file the run reads (by device and inode) is a usage error before any model runs;
    nothing is written."""
    (labelled / "d" / "masks" / "x" / "broken.png").unlink()
    (labelled / "d" / "images" / "x" / "broken.png").unlink()
    image(labelled / "d" / "images" / "quality_vs_cost.png", "blue")
    image(labelled / "d" / "masks" / "quality_vs_cost.png", 255, mode="L")
    (labelled / "res").mkdir()
    (labelled / "links").mkdir()
    os.link(labelled / "d" / "images" / "x" / "c.png", labelled / "links" / "quality_vs_cost.png")
    (labelled / "res" / "summary.csv").write_text("file,category\nc,x\n")
    before = contents(labelled)
    args = ["--out", out, "--categories", "res/summary.csv"]
    done = in_process(labelled, capsys, "evaluate", "d", "-p", "u2netp", *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"rmbg: error: --out {out}: its report {report} would replace {what}: give --out a folder that holds none "
        "of the files the evaluation reads.\n"
    )
    assert contents(labelled) == before


def test_reports_an_earlier_evaluate_left_among_the_images_and_masks_are_not_scored(labelled, capsys):
    """--out d/images, then --out d/masks, left quality_vs_cost.png in both: the next run scored the plot as an
    image (with the other plot as its mask). A report beside the evaluation.json of the run that wrote it is an
    earlier run's report, not data: the same one image (x/c) is scored each time, not two."""
    for kind in ("images", "masks"):  # x/c alone: one image, two if a report were taken for one
        shutil.rmtree(labelled / "d" / kind / "cat\x1b[31mred")
        shutil.rmtree(labelled / "d" / kind / "new\nline")
        (labelled / "d" / kind / "x" / "broken.png").unlink()
    for out in ("d/images", "d/masks", "d/images"):
        done = in_process(labelled, capsys, "evaluate", "d", "-p", "u2netp", "--out", out, "--bootstrap", "0")
        assert done.returncode == 0
        rows = [line.split(" | ")[1:4] for line in done.stdout.splitlines() if line.startswith("| u2netp |")]
        assert ["all", "1 (1)", "0"] in rows
        assert "quality_vs_cost" not in (labelled / out / "per_image.csv").read_text()
