"""The image file limit (rmbg.webapp.file_limits, RMBG_IMAGE_MAX_MB): how sizes are said, and the
doors that check it without the app: the upload event's check (actions.check_upload) and the MCP
tool's and REST's data: URIs (actions.image_from_reference). The launched app's doors are in
tests/test_video_app.py."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from rmbg.errors import InvalidImageError
from rmbg.webapp.file_limits import image_max_bytes, shown_mb, upload_max_bytes
from rmbg.webapp.remove import actions

MB = 2**20


@pytest.mark.parametrize(
    "size, limit, file",
    [
        (25 * MB, "25", "25"),
        (25 * MB + 1, "25", "25.1"),  # just over a limit never reads as the limit itself
        (int(31.42 * MB), "31.4", "31.5"),
        (500 * MB, "500", "500"),
        (int(612.3 * MB), "612", "613"),
        (2048 * MB, "2048", "2048"),
        (int(0.01 * MB), "0.01", "0.01"),
        (16_000, "0.0153", "0.0153"),
    ],
)
def test_sizes_are_said_in_mb_to_three_digits_and_a_file_s_rounded_up(size, limit, file):
    assert (shown_mb(size), shown_mb(size, up=True)) == (limit, file)


def test_the_limits_come_from_the_settings(monkeypatch):
    monkeypatch.delenv("RMBG_IMAGE_MAX_MB", raising=False)
    monkeypatch.delenv("RMBG_VIDEO_MAX_MB", raising=False)
    assert (image_max_bytes(), upload_max_bytes()) == (25 * MB, 500 * MB)
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "40")
    monkeypatch.setenv("RMBG_VIDEO_MAX_MB", "30")
    assert (image_max_bytes(), upload_max_bytes()) == (40 * MB, 40 * MB)  # uploads take the larger
    for wrong in ("lots", "0", "-3"):
        monkeypatch.setenv("RMBG_IMAGE_MAX_MB", wrong)
        with pytest.raises(InvalidImageError, match="RMBG_IMAGE_MAX_MB must be a number"):
            image_max_bytes()


def test_the_upload_event_says_the_size_before_anything_decodes(tmp_path, monkeypatch):
    """A PNG whose pixels are cut off: over the limit, the size is what is said (the decoder never
    ran); within it, the decoder finds the damage."""
    data = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(data, "PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(data.getvalue()[:16_000])
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "0.01")
    assert actions.check_upload(str(cut)) == "This image is 0.0153 MB; the limit is 0.01 MB."
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "1")
    assert "damaged or truncated" in (actions.check_upload(str(cut)) or "")


def test_a_data_uri_is_held_to_the_image_limit(monkeypatch):
    data = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(data, "PNG")
    uri = "data:image/png;base64," + base64.b64encode(data.getvalue()).decode()
    assert actions.image_from_reference(uri) == data.getvalue()
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "0.001")  # 1048 bytes; the image is about 5 KB
    with pytest.raises(InvalidImageError) as refused:
        actions.image_from_reference(uri)
    assert str(refused.value) == "The data: URI is over 0.001 MB."


def test_a_data_uri_is_read_as_a_browser_reads_it():
    """Base64 in lines (`base64`'s and MIME's 76 columns) or without its padding, which browsers read,
    was "The data: URI is not valid base64."; what is no base64 still is."""
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3 + b"!!"  # 778 bytes: base64 pads it
    lines = base64.encodebytes(data).decode()
    assert "\n" in lines and lines.rstrip().endswith("=")
    assert actions.image_from_reference("data:image/png;base64," + lines) == data
    assert actions.image_from_reference("data:image/png;base64," + lines.replace("=", "")) == data
    for bad in ("@@@@", "abcde"):
        with pytest.raises(InvalidImageError) as refused:
            actions.image_from_reference("data:image/png;base64," + bad)
        assert str(refused.value) == "The data: URI is not valid base64."


def test_an_image_url_is_held_to_the_image_limit(monkeypatch):
    """The page's URL box, the REST and MCP doors' URLs: the setting, not a fixed 25 MB (the
    server sends 3 MB, declared up front or chunked)."""
    from tests.support.fetch import PNG, serving

    monkeypatch.setenv("RMBG_URL_ALLOW_HOSTS", "127.0.0.1")
    with serving() as server:
        assert actions.image_from_reference(server.url("/img.png")) == PNG
        monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "2")
        for path, said in (("/declared-big", "is 3 MB, over the 2 MB limit."), ("/big", "is over the 2 MB limit")):
            with pytest.raises(InvalidImageError, match=said):
                actions.image_from_reference(server.url(path))
        monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "4")  # all 3 MB read: then its content is judged (zeros)
        with pytest.raises(InvalidImageError, match="/big is not an image we can read"):
            actions.image_from_reference(server.url("/big"))


def test_a_benchmark_upload_is_held_to_the_image_limit(tmp_path, monkeypatch):
    """Loose files and archive members alike follow RMBG_IMAGE_MAX_MB."""
    import zipfile

    from rmbg.webapp.benchmark.uploads import UploadError, read_upload

    data = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (80, 80, 3), dtype=np.uint8)).save(data, "PNG")
    loose = tmp_path / "photo.png"
    loose.write_bytes(data.getvalue())  # about 19 KB
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("photo.png", data.getvalue())
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "0.01")
    with pytest.raises(UploadError, match=r"photo.png is 0.0185 MB; the limit is 0.01 MB."):
        read_upload([loose], None, tmp_path / "a")
    with pytest.raises(UploadError, match=r"^photo.png is over 0.01 MB.$"):
        read_upload([archive], None, tmp_path / "b")
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "0.05")
    for upload, into in ((loose, "c"), (archive, "d")):
        read_upload([upload], None, tmp_path / into)
        assert [p.read_bytes() for p in (tmp_path / into).rglob("*.png")] == [data.getvalue()]
