"""Hostile benchmark archives (rmbg.webapp.benchmark.uploads): a member with a 300-character name and a
member whose header understates its size used to crash the Benchmark tab. Whatever a .zip holds,
reading it ends in a data set folder or an UploadError that names the member, never another
exception; fuzzed in bounded time."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from rmbg.webapp.benchmark.uploads import MAX_STEM_BYTES, UploadError, read_upload, short_stem
from tests.support.archives import zip_of


def png(colour: int = 128, size: tuple[int, int] = (8, 6), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour if mode == "L" else (colour, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


def test_a_member_with_a_300_character_name_is_read_and_still_matches_its_mask(tmp_path):
    long = "a" * 300
    zipped = tmp_path / "set.zip"
    zipped.write_bytes(zip_of({f"{long}.png": png(), f"masks/{long}.png": png(255, mode="L")}))
    upload = read_upload([zipped], None, tmp_path / "out")
    assert upload.truth and upload.names == (short_stem(long),)
    assert len(upload.names[0].encode()) <= MAX_STEM_BYTES
    assert short_stem(long) != short_stem("a" * 299 + "b")  # long names differing at the end stay apart
    assert short_stem("photo") == "photo"


def understated(data: bytes) -> bytes:
    """An archive of one member whose headers (local and central) say it is 10 bytes long."""
    raw = bytearray(zip_of({"big.png": data}))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(signature)
        struct.pack_into("<I", raw, at + offset, 10)  # uncompressed size
    return bytes(raw)


def test_a_member_whose_header_understates_its_size_is_refused_by_name(tmp_path):
    zipped = tmp_path / "lying.zip"
    zipped.write_bytes(understated(png(size=(64, 64))))
    with pytest.raises(UploadError, match=r"The archive member 'big.png' cannot be read \(BadZipFile"):
        read_upload([zipped], None, tmp_path / "out")


def test_a_cut_off_member_is_refused_by_name(tmp_path):
    data = zip_of({"a.png": png(size=(64, 64))}, zipfile.ZIP_DEFLATED)
    start = data.find(b"PK\x03\x04") + 30 + len("a.png")
    corrupt = bytearray(data)
    corrupt[start : start + 8] = b"\xff" * 8  # the deflate stream itself broken
    zipped = tmp_path / "broken.zip"
    zipped.write_bytes(bytes(corrupt))
    with pytest.raises(UploadError, match=r"'a.png'|not a readable .zip"):
        read_upload([zipped], None, tmp_path / "out")


NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=300
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(NAMES.map(lambda n: n + ".png"), min_size=1, max_size=4),
    damage=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=6),
    lie=st.booleans(),
)
def test_any_archive_ends_in_a_folder_or_a_readable_refusal(tmp_path_factory, names, damage, lie):
    members = {name: png(i * 40 % 256) for i, name in enumerate(names)}
    try:
        data = zip_of(members)
    except (ValueError, UnicodeEncodeError):
        return  # not an archive zipfile will write; nothing to read
    if lie:
        data = understated(next(iter(members.values()))) if len(members) == 1 else data
    raw = bytearray(data)
    for at, value in damage:
        raw[at % len(raw)] = value
    folder = tmp_path_factory.mktemp("fuzz")
    zipped = folder / "in.zip"
    zipped.write_bytes(bytes(raw))
    try:
        upload = read_upload([zipped], None, folder / "out")
    except UploadError as exc:
        assert str(exc) and len(str(exc)) < 400  # a sentence, never a whole member name of 300 characters
        return
    for name in upload.names:
        assert len(name.encode()) <= MAX_STEM_BYTES
        assert any(Path(folder / "out" / "images").glob(f"{glob_safe(name)}.*"))


def glob_safe(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def test_zlib_is_what_a_corrupt_stream_raises():
    """The reader catches zlib.error (a broken deflate stream) among the member errors."""
    with pytest.raises(zlib.error):
        zlib.decompress(b"\xff\xff\xff\xff")


def test_an_image_over_the_benchmarks_size_is_refused_from_its_header(tmp_path):
    """Twelve 36 MP frames in a 7.5 MB upload took 282 s and +2.4 GB: refused before anything runs."""
    big = tmp_path / "big.png"
    Image.new("RGB", (6000, 6000), (20, 40, 60)).save(big)  # 36 MP, a few kB compressed
    with pytest.raises(UploadError, match=r"big is 6000x6000 \(36.0 MP\): the Benchmark scores images of up to 16 MP"):
        read_upload([big], None, tmp_path / "out")
    small = tmp_path / "small.png"
    Image.new("RGB", (4000, 4000), (20, 40, 60)).save(small)  # 16 MP: taken
    assert read_upload([small], None, tmp_path / "out2").names == ("small",)


def test_a_loose_file_over_its_limit_is_refused_by_its_size_before_it_is_read(tmp_path):
    """Sparse files: their size on disk is their length, their bytes are zeros (no image, no archive),
    so a refusal that names the size was made before anything read them."""
    image, archive = tmp_path / "big.png", tmp_path / "set.zip"
    for path, size in ((image, 26 * 2**20), (archive, 401 * 2**20)):
        with path.open("wb") as out:
            out.truncate(size)
    for images, truth, said in (
        ([image], None, "big.png is 26 MB; the limit is 25 MB."),
        ([archive], None, "set.zip is 401 MB; the limit is 400 MB."),
        ([tmp_path / "ok.png"], [archive], "set.zip is 401 MB; the limit is 400 MB."),  # ground truth's archive
    ):
        (tmp_path / "ok.png").write_bytes(png())
        into = tmp_path / f"out-{len(said)}-{len(truth or ())}"
        with pytest.raises(UploadError) as refused:
            read_upload(images, truth, into)
        assert str(refused.value) == said
        assert not [p for p in into.rglob("*") if p.is_file() and p.stat().st_size > 2**20]  # none was copied
