"""`rmbg video -o NAME`: the file is what its name says. The extension picks the format, a
--format or --bg that says otherwise is refused in words, and several clips need a folder."""

from __future__ import annotations

import av
import pytest

from rmbg.cli.main import main
from tests.video_clips import davis, threshold_registered, write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("cli") / "dog.mp4", davis("dog", 6, size=(64, 36)))


def run(*args: str) -> int:
    with threshold_registered():
        return main(["video", *args, "-p", "threshold", "--no-smooth"])


def codec_of(path) -> str:
    with av.open(str(path)) as c:
        return c.streams.video[0].codec_context.name


@pytest.mark.parametrize(
    "name, extra, codec",
    [
        ("w.mov", (), "prores"),
        ("w.gif", (), "gif"),
        ("w.mp4", ("--bg", "red"), "h264"),
        ("w.mp4", ("--format", "matte"), "h264"),
        ("w.webm", ("--format", "webm"), "vp9"),
    ],
)
def test_the_extension_picks_the_format(clip, tmp_path, name, extra, codec):
    assert run(str(clip), "-o", str(tmp_path / name), *extra) == 0
    assert codec_of(tmp_path / name) == codec


@pytest.mark.parametrize(
    "name, extra, said",
    [
        (
            "w.webm",
            ("--bg", "red"),
            "--bg needs the mp4 format: -o w.webm is a WEBM file, which keeps the transparency",
        ),
        (
            "z.mp4",
            ("--format", "webm"),
            "-o z.mp4 names a .mp4 file but --format webm writes a WEBM: end the name in .webm",
        ),
        ("z.gif", ("--format", "matte"), "-o z.gif names a .gif file but --format matte writes an MP4"),
        ("z.mkv", (), "-o z.mkv: rmbg video writes .webm, .mov, .mp4, .gif or .webp files, not .mkv"),
    ],
)
def test_a_name_that_says_another_format_is_refused_in_words(clip, tmp_path, capsys, name, extra, said):
    assert run(str(clip), "-o", str(tmp_path / name), *extra) == 2
    assert said in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_several_clips_need_a_folder(clip, tmp_path, capsys):
    other = write_clip(tmp_path / "other.mp4", davis("dog", 4, size=(64, 36)))
    assert run(str(clip), str(other), "-o", str(tmp_path / "one.webm")) == 2
    assert (
        "2 clips need -o to be a folder (one output each), but one.webm names one .webm file" in capsys.readouterr().err
    )
    assert not (tmp_path / "one.webm").exists()
    assert run(str(clip), str(other), "-o", str(tmp_path / "out")) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dog.webm", "other.webm"]


def test_a_rate_reads_as_a_figure_whatever_the_speed():
    """Under one a second, the seconds each takes ("0.0 img/s" for sequences of tens of seconds)."""
    from rmbg.cli.progress import rate

    assert rate(10, 4.0, "img") == "2.5 img/s"
    assert rate(2, 84.0, "sequence") == "42.0 s/sequence"
    assert rate(0, 3.0, "sequence") == "0.0 sequence/s"


def test_the_library_refuses_a_format_its_file_name_contradicts(clip, tmp_path):
    """rmbg.remove_video and VideoResult.save: format="webm" into "clip.mp4" is refused before
    anything runs; the matte (an MP4) goes into a .mp4 name."""
    import rmbg
    from tests.video_clips import Threshold

    model = Threshold()
    with pytest.raises(rmbg.InvalidRequestError, match=r"z.mp4 names a .mp4 file, but format='webm' writes .webm"):
        rmbg.remove_video(clip, model, output=tmp_path / "z.mp4", format="webm")
    assert model.calls == 0 and list(tmp_path.iterdir()) == []
    with rmbg.remove_video(clip, model, smooth=False) as result:
        with pytest.raises(rmbg.InvalidRequestError, match=r"m.webm names a .webm file, but format='matte' writes"):
            result.save(tmp_path / "m.webm", "matte")
        assert codec_of(result.save(tmp_path / "m.mp4", "matte")) == "h264"


def test_an_output_that_is_the_clip_itself_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    """`rmbg video clip.webm -o .` reported the clip "already done" (the input taken for its own output), and with
    --overwrite (or -o clip.webm) wrote the cut-out over the clip. Refused, the clip untouched; -f mp4 beside it."""
    monkeypatch.chdir(tmp_path)
    source = write_clip(tmp_path / "c.webm", davis("dog", 3), codec="libvpx-vp9")
    before = source.read_bytes()
    said = "rmbg: error: c.webm: its output would be the clip itself, c.webm: give another -o (or --format).\n"
    for where in (["-o", "."], ["-o", ".", "--overwrite"], ["-o", "c.webm", "--overwrite"]):
        assert run("c.webm", *where) == 2
        assert capsys.readouterr().err.endswith(said)
    assert source.read_bytes() == before
    assert run("c.webm", "-o", ".", "-f", "mp4") == 0 and (tmp_path / "c.mp4").is_file()


def test_two_clips_with_one_output_are_refused_before_anything_runs(clip, tmp_path, capsys, monkeypatch):
    """`rmbg video c.mp4 c.mov -o out` wrote out/c.webm twice: the second cut-out replaced the first (paid
    for too, with a hosted provider). Refused before anything runs, names that differ only in case too
    (one file on macOS's and Windows' disks); a clip named twice is one clip; URLs ending alike are numbered."""
    from rmbg.cli.video_outputs import plan

    monkeypatch.chdir(tmp_path)
    for name in ("c.mp4", "c.mov", "C.MP4"):
        (tmp_path / name).write_bytes(clip.read_bytes())
    for pair, said in (
        (("c.mp4", "c.mov"), "c.mov: its output out/c.webm is also the output of c.mp4"),
        (("c.mp4", "C.MP4"), "C.MP4: its output out/C.webm is also the output of c.mp4"),
    ):
        assert run(*pair, "-o", "out") == 2
        assert capsys.readouterr().err.endswith(f"rmbg: error: {said}: rename one of them, or give them apart.\n")
        assert not (tmp_path / "out").exists()
    assert run("c.mp4", "./c.mp4", str(tmp_path / "c.mp4"), "-o", "out") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c.webm"]
    urls = ["https://a.example/clip.mp4", "https://b.example/Clip.mp4?x=1", "https://c.example/clip.mp4"]
    assert [target.name for _, target in plan(urls, "out", "webm")] == ["clip.webm", "Clip-2.webm", "clip-3.webm"]
