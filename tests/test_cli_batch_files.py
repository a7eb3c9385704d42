"""`rmbg remove`'s batch and the files it names: an output never replaces a file the run reads, an output
a run made stays its maker's, a linked file keeps the layout, an output folder that cannot be written is
said in words, and names are printed with their control characters escaped. The fakes and the tree are
tests/test_cli.py's."""

from __future__ import annotations

import errno
import os

import pytest

from rmbg.cli.main import main
from rmbg.cli.many import remove_many
from tests.test_background_colour_alpha import refusal
from tests.test_cli import fakes, files_under, make_image, manifest, tree  # noqa: F401  (fixtures)

ANOTHER = "rename one of them or give another -o"


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_an_output_never_replaces_another_input_nor_the_bg_image(fakes, tree, capsys, overwrite):
    """`rmbg remove photo.jpg photo.png -o . --overwrite` refused photo.png (its own output) but wrote photo.jpg's
    output over the user's photo.png; without --overwrite photo.jpg was "skipped (output exists)". Every input
    whose output is a file the run reads (another input, the --bg image) now fails in words, with or without
    --overwrite, and nothing is written over it."""
    local, _ = fakes
    make_image(tree / "photo.jpg", 1)
    make_image(tree / "photo.png", 2)
    make_image(tree / "x.jpg", 3)
    make_image(tree / "x.png", 4)
    before = {name: (tree / name).read_bytes() for name in ("photo.png", "x.png")}
    assert main(["remove", "photo.jpg", "photo.png", "-o", ".", "-p", "fake-local", *overwrite]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[1:] == [
        "Failed:",
        f"  photo.jpg: its output photo.png would replace the input photo.png: {ANOTHER}",
        "  photo.png: its output would replace it: give another -o",
        "Outputs and manifest.csv in .",
    ]
    assert out.startswith("Done 0, skipped 0 (output exists), failed 2,")
    assert main(["remove", "x.jpg", "-o", ".", "--bg", "x.png", "-p", "fake-local", *overwrite]) == 1
    assert f"  x.jpg: its output x.png would replace the --bg image x.png: {ANOTHER}" in capsys.readouterr().out
    assert {name: (tree / name).read_bytes() for name in before} == before and local.calls == 0
    outcomes = remove_many(["photo.jpg", "photo.png"], ".", "fake-local", overwrite=bool(overwrite))
    assert [(o.item.display, o.status) for o in outcomes] == [("photo.jpg", "failed"), ("photo.png", "failed")]
    assert (tree / "photo.png").read_bytes() == before["photo.png"] and local.calls == 0


def test_an_input_added_later_under_a_made_outputs_name_fails_alone(fakes, tree, capsys):
    """in/a.png made out/a.png; then in/a.jpg was added: the next run counted a.jpg "skipped (output exists)"
    (the file is a.png's cut-out) and failed a.png as the clash, its manifest row now "failed". The manifest
    knows a.png made it: a.png keeps it (skipped), the newcomer alone fails, from any working folder."""
    local, _ = fakes
    assert main(["remove", "in", "-o", "out", "-p", "fake-local"]) == 0
    made = (tree / "out" / "a.png").read_bytes()
    make_image(tree / "in" / "a.jpg", 9)
    capsys.readouterr()
    assert main(["remove", "in", "-o", "out", "-p", "fake-local"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("Done 0, skipped 3 (output exists), failed 1,")
    assert "  in/a.jpg: its output a.png is also the output of in/a.png; rename one of them" in out
    rows = [(r["file"], r["output"], r["status"]) for r in manifest(tree / "out")]
    assert rows[3:] == [("in/a.jpg", "", "failed")]
    assert (tree / "out" / "a.png").read_bytes() == made and local.calls == 3
    os.chdir(tree / "in")  # the manifest said in/a.png; from here the same file is ./a.png
    assert main(["remove", ".", "-o", "../out", "-p", "fake-local", "--overwrite"]) == 1
    assert "  a.jpg: its output a.png is also the output of a.png; rename one of them" in capsys.readouterr().out
    assert local.calls == 6 and (tree / "out" / "a.png").read_bytes() == made  # a.png's own cut-out, made again


def test_a_linked_file_gets_its_own_output_and_the_real_file_its_own(fakes, tree, capsys):
    """in/other/link.png -> ../sub/b.png: only out/other/link.png was written (named in/sub/b.png in the
    manifest) and out/sub/b.png never made. Each name in the tree gets its output under its own name; the one
    picture is computed once (the batch's matte cache). A file named twice (a folder and a glob) is one input."""
    local, _ = fakes
    (tree / "in" / "other").mkdir()
    (tree / "in" / "other" / "link.png").symlink_to("../sub/b.png")
    assert main(["remove", "in", "in/sub/*.png", "-o", "out", "-p", "fake-local"]) == 0
    assert [(r["file"], r["output"], r["status"]) for r in manifest(tree / "out")] == [
        ("in/a.png", "a.png", "done"),
        ("in/other/link.png", "other/link.png", "done"),
        ("in/sub/b.png", "sub/b.png", "done"),
        ("in/sub/deeper/c.jpg", "sub/deeper/c.png", "done"),
    ]
    assert (tree / "out" / "other" / "link.png").read_bytes() == (tree / "out" / "sub" / "b.png").read_bytes()
    assert local.calls == 3


def test_an_output_folder_that_cannot_be_written_is_a_sentence_before_any_work(fakes, tree, capsys):
    """-o on a read-only disk ended in a traceback (EROFS from writing .rmbg-options.json); a subfolder that
    could not be made printed "FileExistsError: [Errno 17] File exists: ...". Now: a usage error (2) before any
    image runs, and each image whose folder cannot be made fails in words."""
    local, _ = fakes
    (tree / "blocker").write_text("a file where -o needs a folder")
    assert main(["remove", "in", "-o", "blocker/out", "-p", "fake-local"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "rmbg: error: -o blocker/out cannot be written: a file stands where a folder must be made; "
        "move it aside or give another -o."
    )
    assert local.calls == 0
    (tree / "out").mkdir()
    (tree / "out" / "sub").write_text("a file where the output needs a folder")
    assert main(["remove", "in", "-o", "out", "-p", "fake-local"]) == 1
    out = capsys.readouterr().out
    reason = "a file stands where a folder must be made; move it aside or give another -o"
    assert out.splitlines()[1:4] == [
        "Failed:",
        f"  in/sub/b.png: its output sub/b.png could not be written: {reason}.",
        f"  in/sub/deeper/c.jpg: its output sub/deeper/c.png could not be written: {reason}.",
    ]
    assert files_under(tree / "out") == [".rmbg-folder-id", ".rmbg-options.json", "a.png", "manifest.csv", "sub"]


def test_a_full_disk_and_a_read_only_one_are_said_in_words():
    """The reasons an output folder gives, from the system's own errors: no errno, no path."""
    from rmbg.cli.writing import os_reason

    with pytest.raises(OSError) as full:
        with open("/dev/full", "wb", buffering=0) as fh:
            fh.write(b"x")
    assert os_reason(full.value) == "the disk is full; free some space and run the same command again to resume"
    assert os_reason(OSError(errno.EROFS, os.strerror(errno.EROFS), "/mnt/ro/x")) == (
        "the disk is read-only; give -o a folder you can write to"
    )


def test_control_characters_in_names_are_escaped_in_every_line_printed(fakes, tree, capsys):
    """Names holding ESC sequences, CR or a newline went raw into the progress lines and the summary (a name
    could recolour the terminal, or forge a line); they are shown as \\xNN, as bytes that are not UTF-8 are.
    manifest.csv keeps the names as they are (CSV quotes them)."""
    for name in ("\x1b[31mRED\x1b[0m.png", "new\nline.png", "cr\rx.png"):
        make_image(tree / "w" / name, 5)
    (tree / "w" / "\x1b]0;pwned\x07bad.png").write_text("not an image")
    assert main(["remove", "w", "-o", "out", "-p", "fake-local"]) == 1
    printed = capsys.readouterr()
    assert not any(ch in printed.out + printed.err for ch in "\x1b\r\x07")
    assert [line.split("] ", 1)[1] for line in printed.err.splitlines()] == [
        "done w/\\x1b[31mRED\\x1b[0m.png",
        "failed w/\\x1b]0;pwned\\x07bad.png: \\x1b]0;pwned\\x07bad.png is not an image we can read (PNG, JPEG, "
        "WebP, GIF, BMP, TIFF and others are supported).",
        "done w/cr\\x0dx.png",
        "done w/new\\x0aline.png",
    ]
    assert printed.out.splitlines()[2].startswith("  w/\\x1b]0;pwned\\x07bad.png: \\x1b]0;pwned\\x07bad.png is not")
    assert sorted(r["file"] for r in manifest(tree / "out")) == sorted(
        f"w/{name}" for name in ("\x1b]0;pwned\x07bad.png", "\x1b[31mRED\x1b[0m.png", "new\nline.png", "cr\rx.png")
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bg", "#ff000080"], f"--bg {refusal('#ff000080')}"),  # parse_colour's words, as every door's
        (["--bg", "rgba(0, 0, 255, 10)"], f"--bg {refusal('rgba(0, 0, 255, 10)')}"),
        (["--mask-only", "--bg", "red"], "--mask-only writes the matte alone and --bg colours a background: choose"),
        (["--bg", "in/notes.png"], "--bg in/notes.png: notes.png is not an image we can read"),
    ],
)
def test_a_bg_that_cannot_be_honoured_is_a_usage_error_before_any_work(fakes, tree, capsys, args, message):
    """'#ff000080' was taken with its alpha dropped, --mask-only --bg red with --bg ignored, and an unreadable
    --bg image ended with exit code 1: each is a usage error (2), said before anything is written."""
    (tree / "in" / "notes.png").write_text("not an image")
    assert main(["remove", "in/a.png", "-o", "out", "-p", "fake-local", *args]) == 2
    assert capsys.readouterr().err.startswith(f"rmbg: error: {message}")
    assert not (tree / "out").exists() and fakes[0].calls == 0
    assert main(["remove", "in/a.png", "-o", "out", "-p", "fake-local", "--bg", "#ff0000ff"]) == 0
