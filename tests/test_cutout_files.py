"""What a cut-out file holds, decoded back from every format and every path
that writes one: RGB 0 under alpha 0, and under soft alpha the subject's
colour, not the photographed background's.

The photo is made the way a camera makes a soft edge: a red subject mixed
into a green, textured background by a soft disc alpha, which a registered
provider returns as its matte. So the truth is known: under alpha 1-254 a
clean cut-out is red, a cut-out that keeps the photo is partly green.
"""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg import registry
from rmbg.image.compose import encode
from rmbg.providers.base import ProviderStatus
from rmbg.types import Cost, Matte
from rmbg.webapp import AppConfig, Keys, Look, Session
from rmbg.webapp.context import App
from rmbg.webapp.look import OutputStore
from rmbg.webapp.remove import actions

SUBJECT = np.array([200, 30, 30], np.float32)
SIZE = (96, 72)


def soft_disc(size=SIZE) -> np.ndarray:
    w, h = size
    ys, xs = np.indices((h, w))
    r = np.hypot(xs - w / 2, ys - h / 2)
    return np.clip((28 - r) / 10 * 255, 0, 255).round().astype(np.uint8)  # opaque core, 10 px soft ring


def photo() -> Image.Image:
    rng = np.random.default_rng(3)
    background = np.stack(
        [rng.integers(0, 60, SIZE[::-1]), rng.integers(170, 255, SIZE[::-1]), rng.integers(0, 60, SIZE[::-1])], axis=2
    ).astype(np.float32)
    a = soft_disc().astype(np.float32)[..., None] / 255
    return Image.fromarray(np.rint(SUBJECT * a + background * (1 - a)).astype(np.uint8), "RGB")


class SoftDisc:
    id = "soft-disc"
    label = "soft disc (test)"
    kind = "local"

    def options(self):
        return {}

    def status(self):
        return ProviderStatus("ready", "test")

    def estimate(self):
        return Cost.free("test")

    def matte(self, image):
        return Matte(Image.fromarray(soft_disc(image.size)), Cost(Decimal(0), "compute", "test"), 0.0)


@pytest.fixture
def provider():
    rmbg.register(SoftDisc.id, lambda **_: SoftDisc())
    yield SoftDisc.id
    registry.unregister(SoftDisc.id)


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA")).astype(np.int32)


def assert_clean(rgba: np.ndarray) -> None:
    """RGB 0 under alpha 0; under clearly soft alpha, the subject's red."""
    alpha = rgba[..., 3]
    assert (rgba[alpha == 0][:, :3] == 0).all(), "RGB under alpha 0 is not 0"
    soft = (alpha >= 16) & (alpha <= 239)
    assert soft.sum() > 300
    edge = rgba[soft][:, :3]
    assert np.abs(edge - SUBJECT).mean() < 20, "soft edge colour is not the subject's"
    assert edge[:, 1].max() < 100, "the green background shows through the soft edge"


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_library_cutout_in_each_format(provider, fmt, tmp_path):
    result = rmbg.remove_background(photo(), provider)
    assert_clean(decoded(result.encode(fmt)))
    result.save(tmp_path / f"out.{fmt}")
    assert_clean(decoded((tmp_path / f"out.{fmt}").read_bytes()))


def test_the_photo_itself_would_fail_the_check():
    """The check has teeth: keeping the photo's colours under soft alpha fails it."""
    rgba = np.dstack([np.asarray(photo()), soft_disc()]).astype(np.int32)
    rgba[rgba[..., 3] == 0] = 0
    with pytest.raises(AssertionError, match="subject"):
        assert_clean(rgba)


def test_lossless_webp_keeps_rgb_zero_where_libwebp_would_fill_it():
    """libwebp replaces the RGB of transparent pixels unless told to keep it exact."""
    rng = np.random.default_rng(0)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[16:48, 16:48] = np.dstack([rng.integers(0, 256, (32, 32, 3)), np.full((32, 32), 255)])
    out = decoded(encode(Image.fromarray(rgba, "RGBA"), "webp"))
    assert (out[..., 3] == rgba[..., 3]).all()
    assert (out[out[..., 3] == 0][:, :3] == 0).all()


def test_a_webp_cutout_is_lossless_whatever_the_quality(provider):
    """Lossy WebP cannot keep RGB 0 under alpha 0 (its blocks spill colour past
    the edge), so a cut-out is never written lossy, even when a quality is asked."""
    result = rmbg.remove_background(photo(), provider)
    data = encode(result.image, "webp", quality=60)
    assert data[12:16] == b"VP8L"  # the lossless bitstream's chunk
    assert_clean(decoded(data))
    opaque = encode(Image.new("RGB", SIZE, (10, 20, 30)), "webp", quality=60)
    assert opaque[12:16] == b"VP8 "  # an RGB composite may be lossy


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_app_download_and_rerender_files_are_clean(provider, fmt, tmp_path):
    app = App.create(AppConfig(), store=OutputStore(tmp_path / "files"), cache=None)
    source = tmp_path / "photo.png"
    photo().save(source)
    session, shown = actions.remove(Session(), str(source), provider, Look(fmt="png"), Keys(), app, 1000)
    assert_clean(decoded(shown.file.read_bytes()))
    again = actions.rerender(session, Look(fmt=fmt), app, 1000)
    assert again is not None
    assert_clean(decoded(again.file.read_bytes()))


def test_cli_files_are_clean(provider, tmp_path, monkeypatch):
    from rmbg.cli.main import main

    monkeypatch.chdir(tmp_path)
    Path("in").mkdir()
    photo().save("in/photo.png")
    assert main(["remove", "in", "-o", "out", "-p", provider, "--format", "webp"]) == 0
    (written,) = Path("out").glob("*.webp")
    assert_clean(decoded(written.read_bytes()))
