"""The transparent cut-out with estimated edge colours made in one array (foreground.cutout_estimated,
what render() returns for a cut-out) and the OpenCV paths under it: the same pixels as the
two-step path (estimate_foreground, then cutout) and as the numpy paths, in every branch."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rmbg.image import arrays, foreground
from rmbg.image.compose import _MADE_CLEAN, cutout, encode, render
from rmbg.image.foreground import cutout_estimated, estimate_foreground

pytestmark = pytest.mark.fast

ENGINES = ["opencv", "numpy"]


@pytest.fixture(autouse=True)
def _opencv_imported():
    """OpenCV loaded, as in a server (rmbg.webapp.warmup imports it): its loops then run at every
    size (a fresh process imports it only for large work, tested below)."""
    assert arrays.opencv() is not None, "the dev install has OpenCV"


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    """Each test once with OpenCV's loops and once with the numpy paths (an install without OpenCV)."""
    if request.param == "numpy":
        monkeypatch.setattr(foreground, "opencv", lambda: None)
        monkeypatch.setattr(arrays, "opencv", lambda: None)
    return request.param


def _photo(size, seed=0):
    rng = np.random.default_rng(seed)
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    smooth = np.dstack([xs * 255 / w, ys * 255 / h, (xs + ys) * 127 / (w + h) + 64])
    return Image.fromarray(np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8), "RGB")


def _disc(size, edge=12.0):
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = np.hypot(xs - w / 2, ys - h / 2)
    return Image.fromarray(np.clip((min(w, h) / 3 - radius) * 255 / edge, 0, 255).astype(np.uint8), "L")


def _scattered(size, seed=1):
    """A matte like a weak model's: mostly 0 or 255, soft pixels strewn over the whole frame
    (so the soft region's box is the whole photo, however few they are)."""
    rng = np.random.default_rng(seed)
    w, h = size
    a = np.where(rng.random((h, w)) < 0.3, 255, 0).astype(np.uint8)
    strewn = rng.random((h, w)) < 0.01
    a[strewn] = rng.integers(1, 255, strewn.sum())
    return Image.fromarray(a, "L")


def _two_step(image, alpha):
    return np.asarray(cutout(estimate_foreground(image, alpha), alpha))


CASES = {
    "disc, whole": (_disc, {}),
    "disc, tiled": (_disc, {"tile_pixels": 160 * 230}),
    "disc, reduced means": (_disc, {"WORK_PIXELS": 30_000}),
    "strewn, reduced means, two threads": (_scattered, {"WORK_PIXELS": 20_000, "THREADED_PIXELS": 0}),
    "strewn, whole": (_scattered, {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_array_gives_the_pixels_of_estimate_then_cutout(case, engine, monkeypatch):
    make, settings = CASES[case]
    tiles = settings.get("tile_pixels", foreground.TILE_PIXELS)
    for name, value in settings.items():
        if name != "tile_pixels":
            monkeypatch.setattr(foreground, name, value)
    image = _photo((320, 241))
    alpha = make((320, 241))
    got = cutout_estimated(image, alpha, tile_pixels=tiles)
    assert got.mode == "RGBA" and got.size == image.size
    want = np.asarray(cutout(estimate_foreground(image, alpha, tile_pixels=tiles), alpha))
    assert np.array_equal(np.asarray(got), want)
    soft = (np.asarray(alpha) > 0) & (np.asarray(alpha) < 255)
    assert soft.sum() > 300
    # the colours really were estimated: at soft pixels they differ from the photo's
    assert (np.asarray(got)[soft][:, :3] != np.asarray(image)[soft]).any(axis=1).mean() > 0.5


@pytest.mark.parametrize("matte", ["hard", "empty", "opaque"])
def test_without_soft_pixels_it_is_the_plain_cutout(matte, engine):
    image = _photo((97, 64))
    a = {"hard": np.asarray(_disc((97, 64), edge=0.001)), "empty": np.zeros((64, 97)), "opaque": np.full((64, 97), 255)}
    alpha = Image.fromarray(a[matte].astype(np.uint8), "L")
    assert np.array_equal(np.asarray(cutout_estimated(image, alpha)), np.asarray(cutout(image, alpha)))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_any_photo_mode_is_taken_as_its_rgb(mode, engine):
    image = _photo((90, 70)).convert(mode)
    alpha = _disc((90, 70))
    assert np.array_equal(np.asarray(cutout_estimated(image, alpha)), _two_step(image.convert("RGB"), alpha))


def test_render_returns_it_for_a_cutout_and_encode_takes_it_as_clean(engine):
    image, alpha = _photo((200, 150)), _disc((200, 150))
    out = render(image, alpha)
    assert _MADE_CLEAN.get(id(out)) is out  # encode() will not clean it a second time
    assert np.array_equal(np.asarray(out), _two_step(image, alpha))
    png = Image.open(__import__("io").BytesIO(encode(out, "png")))
    assert np.array_equal(np.asarray(png), np.asarray(out))
    # with framing, or on a background, the two-step path still runs and agrees
    assert np.array_equal(np.asarray(render(image, alpha, background="white"))[0, 0], [255, 255, 255])


def test_the_matte_must_fit_the_photo():
    with pytest.raises(ValueError, match="alpha must be mode L"):
        cutout_estimated(_photo((20, 10)), _disc((10, 20)))


@pytest.mark.parametrize("seed", range(40))
def test_opencv_box_mean_is_the_cumulative_sums_within_1e5(seed, monkeypatch):
    """Random shapes, windows wider than the array included (each window clamped at the borders)."""
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 260, 2))
    r = int(rng.integers(0, 120))
    x = rng.random((h, w), dtype=np.float32)
    fast = foreground._box2d(x, r)
    monkeypatch.setattr(foreground, "opencv", lambda: None)
    slow = foreground._box2d(x, r)
    assert fast.shape == slow.shape == (h, w)
    assert np.abs(fast - slow).max() < 1e-5


@pytest.mark.parametrize("engine_name", ENGINES)
def test_box_mean_is_the_clamped_window_mean_on_either_path(engine_name, monkeypatch):
    if engine_name == "numpy":
        monkeypatch.setattr(foreground, "opencv", lambda: None)
    x = np.random.default_rng(3).random((17, 29), dtype=np.float32)
    for r in (0, 2, 9, 40):
        want = np.array(
            [[x[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].mean() for j in range(29)] for i in range(17)]
        )
        assert np.abs(foreground._box2d(x, r) - want).max() < 1e-5


@pytest.mark.parametrize("seed", range(12))
def test_reduce_over_a_box_is_the_crop_reduced(seed):
    """_fuse_reduced asks Pillow to reduce a box of the photo in place of cropping it first."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (83, 131, 3), dtype=np.uint8), "RGB")
    x0, y0 = (int(v) for v in rng.integers(0, 40, 2))
    box = (x0, y0, int(rng.integers(x0 + 1, 132)), int(rng.integers(y0 + 1, 84)))
    k = int(rng.integers(1, 6))
    for im in (image, image.convert("L")):
        assert np.array_equal(np.asarray(im.reduce(k, box)), np.asarray(im.crop(box).reduce(k)))


@pytest.mark.parametrize("seed", range(6))
def test_rgba_array_is_the_same_with_or_without_opencv(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 90, 2))
    rgb = rng.integers(0, 256, (h, w + 3, 3), dtype=np.uint8)[:, 3:]  # not contiguous
    alpha = np.where(rng.random((h, w)) < 0.4, 0, rng.integers(0, 256, (h, w))).astype(np.uint8)
    got = arrays.rgba(rgb, alpha)
    assert np.array_equal(got, arrays.rgba_numpy(rgb, alpha))
    assert got.flags.c_contiguous and got.shape == (h, w, 4)
    assert not got[alpha == 0][:, :3].any() and np.array_equal(got[alpha > 0][:, :3], rgb[alpha > 0])


SAME_IN_A_NEW_PROCESS = """
import sys
import numpy as np
from PIL import Image
from rmbg.image.compose import encode, render
photo, matte = Image.open(sys.argv[1]), Image.open(sys.argv[2])
sys.stdout.buffer.write(encode(render(photo, matte), "png"))
"""


@pytest.mark.parametrize("size", [(80, 64), (854, 480), (1500, 1000)])
def test_a_cutout_is_the_same_in_a_new_process_as_in_a_long_lived_one(size, tmp_path):
    """Which loops the estimate runs (OpenCV's box sums or numpy's, up to 1e-5 apart) depends on
    the install, never on what the process did before: a one-photo command in a fresh process
    writes the bytes this process (which has imported OpenCV) writes. They differed when a new
    process kept numpy's loops for small photos (Ray's workers against the local engine)."""
    import subprocess
    import sys

    from rmbg.image.compose import encode, render

    photo, matte = _photo(size), _disc(size)
    photo.save(tmp_path / "photo.png")
    matte.save(tmp_path / "matte.png")
    argv = [sys.executable, "-c", SAME_IN_A_NEW_PROCESS, str(tmp_path / "photo.png"), str(tmp_path / "matte.png")]
    done = subprocess.run(argv, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == encode(render(photo, matte), "png")


def test_a_lazily_opened_photo_gives_the_same_cutout(tmp_path, engine):
    """render() is public: a photo straight from Image.open (not read yet) is read once, before
    the bands' threads crop it (Pillow's first load from several threads corrupted the decode)."""
    photo, matte = _photo((854, 480)), _disc((854, 480))
    photo.save(tmp_path / "photo.png")
    with Image.open(tmp_path / "photo.png") as lazy:
        assert np.array_equal(np.asarray(render(lazy, matte)), np.asarray(render(photo, matte)))


@pytest.mark.parametrize("seed", range(4))
def test_thin_and_tiny_photos_give_the_two_step_pixels(seed, engine, monkeypatch):
    """Rows or columns of one pixel, photos smaller than a band or a blur window, and the
    reduced means on photos far under a megapixel (WORK_PIXELS lowered): random sizes and mattes."""
    rng = np.random.default_rng(seed)
    for trial in range(40):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        h, w = (1 if trial % 3 == 0 else h), (1 if trial % 5 == 0 else w)
        photo = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
        matte = Image.fromarray(rng.choice(np.array([0, 7, 128, 250, 255], np.uint8), size=(h, w)), "L")
        monkeypatch.setattr(foreground, "WORK_PIXELS", int(rng.choice([1_500_000, 50, 200])))
        assert np.array_equal(np.asarray(cutout_estimated(photo, matte)), _two_step(photo, matte)), (h, w)


def test_the_cutout_can_be_edited_and_pickled_like_any_image():
    """The cut-out is Pillow's view of a numpy array (Image.frombuffer, read-only): a caller's
    putpixel, drawing, paste or thumbnail works on its own copy, and it pickles (Ray, ZeroGPU)."""
    import pickle

    from PIL import ImageDraw

    photo, matte = _photo((120, 90)), _disc((120, 90))
    before = np.asarray(render(photo, matte)).copy()
    edited = render(photo, matte)
    edited.putpixel((0, 0), (1, 2, 3, 4))
    ImageDraw.Draw(edited).rectangle((10, 10, 20, 20), fill=(255, 0, 0, 255))
    edited.paste((0, 0, 255, 255), (30, 30, 35, 35))
    assert edited.getpixel((0, 0)) == (1, 2, 3, 4) and edited.getpixel((15, 15)) == (255, 0, 0, 255)
    assert edited.getpixel((32, 32)) == (0, 0, 255, 255)
    small = render(photo, matte)
    small.thumbnail((60, 60))
    assert small.size == (60, 45)
    again = pickle.loads(pickle.dumps(render(photo, matte)))
    assert np.array_equal(np.asarray(again), before) and np.array_equal(np.asarray(render(photo, matte)), before)
