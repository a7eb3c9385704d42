"""The SAM marks picture is a file written once per picture, never rewritten in place: gradio
rewrote a returned picture's content-named file each time the same picture came again, and a
browser still reading it got a cut-off file (a broken picture that never loaded)."""

from __future__ import annotations

import os

from PIL import Image

from rmbg.webapp.remove.marks import drawn_file


def test_the_same_marks_give_the_same_file_untouched_and_new_marks_a_new_file(tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (451, 300), (200, 180, 160)).save(photo)
    first = drawn_file(str(photo), "225, 150, keep", "", folder=str(tmp_path / "out"))
    assert first is not None
    before = os.stat(first)
    again = drawn_file(str(photo), "225, 150, keep", "", folder=str(tmp_path / "out"))
    after = os.stat(first)
    assert again == first and (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )  # not written again
    other = drawn_file(str(photo), "225, 150, keep; 20, 20, drop", "", folder=str(tmp_path / "out"))
    assert other is not None and other != first
    with Image.open(first) as shown:
        assert shown.format == "JPEG" and shown.size == (451, 300)
        assert shown.getpixel((225, 150))[1] > 120  # the green keep mark at the point
    assert sorted(p.suffix for p in (tmp_path / "out" / "rmbg-marks").iterdir()) == [".jpeg", ".jpeg"]  # no .part left
    assert drawn_file(None, "1, 1, keep", "", folder=str(tmp_path / "out")) is None
