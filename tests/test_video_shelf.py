"""The Video tab's pieces without a server: what is kept between clicks (bounded,
replaced, forgotten), one run per session with its Stop, the look's rules,
and the progress line with the time left."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from rmbg.errors import InvalidImageError, InvalidRequestError
from rmbg.webapp.shelf import AlreadyRunning, Kept, Runs, Shelf
from rmbg.webapp.video.videos import VideoLook, progress_report


class FakeResult:
    def __init__(self, nbytes: int):
        self.store = SimpleNamespace(nbytes=nbytes)
        self.closed = False

    def close(self) -> None:
        self.closed = True


def kept(tmp_path: Path, name: str, nbytes: int = 100) -> Kept:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "input.mp4").write_bytes(b"x" * 10)
    return Kept((FakeResult(nbytes),), ("label",), name, folder)  # type: ignore[arg-type]


def test_a_new_clip_replaces_the_sessions_last_and_deletes_it(tmp_path):
    shelf = Shelf()
    first, second = kept(tmp_path, "a"), kept(tmp_path, "b")
    shelf.put("s1", "one", first)
    shelf.put("s1", "one", second)
    assert shelf.get("s1", "one") is second and len(shelf) == 1
    assert first.results[0].closed and not first.folder.exists()  # type: ignore[attr-defined]
    assert shelf.nbytes == 110


STOPPING = """
import sys, time
from pathlib import Path
from rmbg.webapp.shelf import Kept, Shelf
folder = Path(sys.argv[1])
folder.mkdir()
(folder / "input.mp4").write_bytes(b"x" * 10)
shelf = Shelf()
shelf.put("visitor", "one", Kept((), ("label",), "clip", folder))
print("kept", flush=True)
if sys.argv[2] == "ctrl-c":
    raise KeyboardInterrupt  # as Ctrl-C ends python app.py: the app's objects still held
"""


@pytest.mark.parametrize("end", ["exit", "ctrl-c"])
def test_what_the_shelf_keeps_goes_when_the_app_stops(tmp_path, end):
    """A visitor's clip kept for re-encoding was left in the system's temporary folder when the app
    stopped (nothing but a page's close or the shelf's bounds deleted it): each stop of `python app.py`
    left the copies of its visitors' last clips behind, for good."""
    import signal
    import subprocess
    import sys

    folder = tmp_path / "kept"
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", STOPPING, str(folder), end], cwd=root, capture_output=True, text=True)
    assert done.stdout == "kept\n" and done.returncode == (-signal.SIGINT if end == "ctrl-c" else 0), done.stderr
    assert not folder.exists()


def test_the_shelf_is_bounded_in_bytes_oldest_out_first(tmp_path):
    shelf = Shelf(max_bytes=250)
    entries = [kept(tmp_path, f"k{i}") for i in range(3)]
    for i, entry in enumerate(entries):
        shelf.put(f"s{i}", "one", entry)
    assert shelf.get("s0", "one") is None and not entries[0].folder.exists()
    assert shelf.get("s2", "one") is entries[2] and shelf.nbytes <= 250
    alone = Shelf(max_bytes=10)
    big = kept(tmp_path, "big", nbytes=1000)
    alone.put("s", "one", big)
    assert alone.get("s", "one") is big  # the newest is never dropped to make room for itself


def test_idle_entries_go_and_a_closed_page_drops_all_of_its_own(tmp_path):
    now = [0.0]
    shelf = Shelf(idle_s=60, clock=lambda: now[0])
    shelf.put("s1", "one", kept(tmp_path, "a"))
    shelf.put("s1", "compare", kept(tmp_path, "b"))
    shelf.put("s2", "one", kept(tmp_path, "c"))
    shelf.drop("s1")
    assert shelf.get("s1", "one") is None and shelf.get("s1", "compare") is None
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    now[0] = 61
    assert shelf.get("s2", "one") is None and not (tmp_path / "c").exists()


def test_one_run_per_session_and_stop_sets_its_flag():
    runs = Runs()
    assert runs.stop("s1") is False
    with runs.running("s1") as flag:
        with pytest.raises(AlreadyRunning, match="already being cut in this session"):
            with runs.running("s1"):
                pass
        with runs.running("s2") as other:
            assert runs.stop("s1") and flag.is_set() and not other.is_set()
    assert len(runs) == 0 and isinstance(flag, threading.Event)


@pytest.mark.parametrize(
    "raw, files",
    [
        ((None, None, None, None), [("webm", "dog-nobg.webm")]),
        (("transparent", None, None, "mov"), [("webm", "dog-preview.webm"), ("mov", "dog-nobg.mov")]),
        (("colour", "#00b140", None, None), [("mp4", "dog-nobg.mp4")]),
        (("transparent", None, None, "matte"), [("matte", "dog-matte.mp4")]),
        (("transparent", None, None, "GIF"), [("webm", "dog-preview.webm"), ("gif", "dog-nobg.gif")]),
    ],
)
def test_the_look_says_which_files_a_run_writes(raw, files):
    assert VideoLook.of(*raw).files("dog") == files


def test_the_look_refuses_what_a_format_cannot_carry():
    with pytest.raises(InvalidRequestError, match="A colour background is drawn into an mp4; webm keeps"):
        VideoLook.of("colour", "red", None, "webm")
    with pytest.raises(InvalidRequestError, match="Unknown video format 'avi'"):
        VideoLook.of("transparent", None, None, "avi")
    with pytest.raises(InvalidImageError, match="Choose a background image first"):
        VideoLook.of("image", None, None, "mp4")
    assert VideoLook.of("colour", "rgba(0, 177, 64, 1)", None, "mp4").backdrop() == "#00b140"
    assert VideoLook.of("colour", "red", None, "matte").backdrop() is None  # the matte ignores the background


def test_progress_says_frames_done_and_time_left(monkeypatch):
    import rmbg.webapp.video.videos as videos

    clock = iter([100.0, 102.0, 104.0, 106.0])
    monkeypatch.setattr(videos.time, "monotonic", lambda: next(clock))
    said = []
    report = progress_report(lambda fraction, text: said.append((fraction, text)))
    report(10, 40)  # 2 s for 10 frames: 30 more take 6 s
    assert said == [(0.25, "10 / 40 frames · about 6 s left")]
    second = progress_report(lambda fraction, text: said.append((fraction, text)), offset=1, runs=2)
    second(20, 40)  # the second of two runs, half done: 20 frames left
    assert said[-1] == (0.75, "20 / 40 frames (2 of 2) · about 2 s left")
