"""rmbg.image.bands: a resize in row bands on several threads gives the pixels of one
Pillow call, and is cut only where that holds."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from rmbg.image import bands
from rmbg.image.compose import fit_cover
from rmbg.models.specs import U2NETP
from rmbg.providers.local.processing import postprocess, preprocess

FILTERS = list(Image.Resampling)


def _image(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    channels = len(Image.new(mode, (1, 1)).getbands())
    return Image.frombytes(mode, size, np.random.default_rng(seed).bytes(size[0] * size[1] * channels))


@settings(max_examples=int(os.environ.get("RMBG_FUZZ_EXAMPLES") or 150), deadline=None, database=None)
@given(
    mode=st.sampled_from(["L", "RGB", "RGBA", "LA"]),
    src=st.tuples(st.integers(1, 300), st.one_of(st.integers(1, 900), st.sampled_from([320, 480, 3000]))),
    out=st.tuples(st.integers(1, 300), st.one_of(st.integers(1, 900), st.sampled_from([320, 480, 1024]))),
    parts=st.integers(2, 5),
    resample=st.sampled_from(FILTERS),
    seed=st.integers(0, 2**16),
)
def test_a_resize_in_bands_has_the_pixels_of_one_call(mode, src, out, parts, resample, seed):
    """Bar a rare one-grey-level difference at a few pixels (a centre whose last bit rounds
    the other way in a band: measured once in ~20,000 random cut sizes)."""
    image = _image(mode, src, seed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bands, "BANDED_MIN_PIXELS", 0)  # cut every size the fuzzer draws,
        patch.setattr(bands, "MIN_BAND_ROWS", 1)  # into bands as thin as one row
        got = bands.resize(image, out, resample, threads=parts)
    assert got.mode == mode and got.size == out
    diff = np.abs(np.asarray(got, np.int16) - np.asarray(image.resize(out, resample), np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() <= 0.01


@pytest.mark.parametrize(
    ("out_rows", "in_rows", "parts", "cuts"),
    [
        (320, 3000, 2, [0, 160, 320]),  # 160 * 3000 / 320 = 1500: whole
        (3000, 320, 2, [0, 1500, 3000]),
        (3000, 320, 4, [0, 750, 1500, 2250, 3000]),  # steps of 75 rows
        (767, 320, 2, [0, 767]),  # gcd 1: no whole row inside, one piece
        (480, 480, 3, [0, 160, 320, 480]),
        (5, 3000, 8, [0, 1, 2, 3, 4, 5]),  # never an empty band
    ],
)
def test_cuts_fall_on_whole_source_rows(out_rows, in_rows, parts, cuts):
    got = bands.exact_cuts(out_rows, in_rows, parts)
    assert got == cuts
    assert all(row * in_rows % out_rows == 0 for row in got)


def test_large_resizes_run_in_threads_and_the_rest_in_one_call(monkeypatch):
    calls: list[tuple[tuple[int, int], object]] = []
    real = Image.Image.resize

    def spy(self, size, resample=None, box=None, reducing_gap=None):
        calls.append((size, box))
        return real(self, size, resample, box, reducing_gap)

    monkeypatch.setattr(Image.Image, "resize", spy)
    big = Image.new("RGB", (2000, 1000), (10, 20, 30))
    bands.resize(big, (320, 320), Image.Resampling.LANCZOS, threads=2)
    assert calls == [((320, 160), (0, 0, 2000, 500)), ((320, 160), (0, 500, 2000, 1000))]
    calls.clear()
    bands.resize(Image.new("RGB", (854, 480)), (320, 320), Image.Resampling.LANCZOS, threads=2)
    assert calls == [((320, 320), None)]
    calls.clear()
    bands.resize(big, (320, 320), Image.Resampling.LANCZOS, threads=96)  # many cores: bands of 32 rows or more
    assert len(calls) == 10 and all(size[1] >= 32 for size, _ in calls)
    for image, size, resample in [
        (Image.new("F", (2000, 1000)), (320, 320), Image.Resampling.BILINEAR),  # float coefficients
        (Image.new("RGBA", (2000, 1000)), (320, 320), Image.Resampling.LANCZOS),  # premultiplied
        (big, (320, 320), Image.Resampling.BOX),  # a step at the window's edge
        (big, (320, 1000), Image.Resampling.LANCZOS),  # the width alone
        (Image.new("L", (9, 1000)), (9, 500), Image.Resampling.LANCZOS),  # Pillow goes vertical first
    ]:
        calls.clear()
        bands.resize(image, size, resample, threads=2)
        assert calls[0] == (size, None) and len(calls) <= 2  # (Pillow resizes RGBA through RGBa)


def test_the_network_input_the_matte_and_a_fitted_background_are_the_same_as_in_one_piece(monkeypatch):
    """The three resizes of a cut-out's path that bands take over, on a 12 MP-like size."""
    photo = _image("RGB", (2400, 1800), 5)
    x_banded = preprocess(photo, U2NETP)
    prob = np.random.default_rng(6).random(U2NETP.input_size, dtype=np.float32)
    alpha_banded = postprocess(prob, U2NETP, photo.size)
    fitted_banded = fit_cover(_image("RGB", (900, 700), 7), photo.size)
    monkeypatch.setattr(bands, "BANDED_MIN_PIXELS", 10**12)  # one call each
    assert np.array_equal(preprocess(photo, U2NETP), x_banded)
    assert postprocess(prob, U2NETP, photo.size).tobytes() == alpha_banded.tobytes()
    assert fit_cover(_image("RGB", (900, 700), 7), photo.size).tobytes() == fitted_banded.tobytes()
