"""Rendering and encoding, to exact pixel values on synthetic images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from rmbg.errors import InvalidImageError
from rmbg.image import foreground
from rmbg.image.compose import encode, fit_cover, parse_colour, preview, render
from rmbg.image.foreground import estimate_foreground


def _solid(colour, size=(4, 2)) -> Image.Image:
    return Image.new("RGB", size, colour)


def _alpha(values, size=(4, 2)) -> Image.Image:
    return Image.fromarray(np.array(values, dtype=np.uint8).reshape(size[1], size[0]), "L")


ALPHA = [0, 51, 128, 255, 0, 51, 128, 255]


def test_transparent_hides_what_it_removes_and_keeps_edge_colours():
    out = render(_solid((10, 20, 30)), _alpha(ALPHA))
    assert out.mode == "RGBA"
    # alpha 0 -> RGB 0 (the old background is gone); soft pixels keep their colour, not premultiplied
    assert [tuple(p) for p in np.asarray(out).reshape(-1, len(out.getbands()))[:4].tolist()] == [
        (0, 0, 0, 0),
        (10, 20, 30, 51),
        (10, 20, 30, 128),
        (10, 20, 30, 255),
    ]


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_encoded_cutouts_carry_no_rgb_under_alpha_zero(fmt):
    """Whatever made the RGBA image, the file has RGB 0 wherever alpha is 0."""
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (40, 50, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rgba[..., 3] < 100, 0, rgba[..., 3])
    decoded = np.asarray(Image.open(io.BytesIO(encode(Image.fromarray(rgba, "RGBA"), fmt))))
    hidden = decoded[..., 3] == 0
    assert hidden.any() and (decoded[hidden][:, :3] == 0).all()
    visible = ~hidden
    assert np.array_equal(decoded[visible], rgba[visible])  # lossless, colours kept


@pytest.mark.parametrize(
    "fg, bg, expected",
    [
        # hand-computed: round(fg*a/255 + bg*(255-a)/255) for a = 0, 51, 128, 255
        ((255, 255, 255), "#000000", [0, 51, 128, 255]),
        ((100, 100, 100), (200, 200, 200), [200, 180, 150, 100]),
        ((0, 0, 0), "white", [255, 204, 127, 0]),
    ],
)
def test_colour_background_exact(fg, bg, expected):
    out = render(_solid(fg), _alpha(ALPHA), background=bg)
    assert out.mode == "RGB"
    assert [p[0] for p in [tuple(p) for p in np.asarray(out).reshape(-1, len(out.getbands()))[:4].tolist()]] == expected


def test_colour_forms():
    assert parse_colour("#ff8000") == (255, 128, 0)
    assert parse_colour("#f80") == (255, 136, 0)
    assert parse_colour("rebeccapurple") == (102, 51, 153)
    assert parse_colour("rgb(1, 2, 3)") == (1, 2, 3)
    assert parse_colour((9, 8, 7)) == (9, 8, 7)
    for bad in ("notacolour", (300, 0, 0), (1, 2)):
        with pytest.raises(InvalidImageError, match="not a colour"):
            parse_colour(bad)


def test_image_background_is_fitted_to_cover():
    bg = Image.new("RGB", (20, 10), (255, 0, 0))
    bg.paste((0, 0, 255), (10, 0, 20, 10))
    covered = fit_cover(bg, (10, 10))
    row = [covered.getpixel((x, 5)) for x in range(10)]
    assert row[:5] == [(255, 0, 0)] * 5 and row[5:] == [(0, 0, 255)] * 5
    out = render(_solid((0, 255, 0), (10, 10)), Image.new("L", (10, 10), 0), background=bg)
    assert out.getpixel((0, 0)) == (255, 0, 0) and out.getpixel((9, 9)) == (0, 0, 255)


def test_mask_only_returns_the_matte():
    alpha = _alpha(ALPHA)
    out = render(_solid((1, 2, 3)), alpha, background="red", mask_only=True)
    assert out.mode == "L" and np.asarray(out).ravel().tolist() == ALPHA


def test_alpha_must_match():
    with pytest.raises(ValueError, match="alpha must be mode L"):
        render(_solid((0, 0, 0)), Image.new("L", (3, 3)))


def _decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_png_and_webp_keep_alpha_exactly():
    cut = render(_solid((10, 20, 30)), _alpha(ALPHA))
    for fmt in ("png", "webp"):
        back = _decode(encode(cut, fmt))
        assert back.mode == "RGBA", fmt
        assert np.asarray(back)[..., 3].ravel().tolist() == ALPHA, fmt


def test_png_carries_provenance_text():
    data = encode(render(_solid((0, 0, 0)), _alpha(ALPHA)), "png", meta={"rmbg:provider": "rmbg-1.4"})
    assert _decode(data).text["rmbg:provider"] == "rmbg-1.4"


def test_jpeg_is_flattened_on_white_by_default_and_on_a_colour_on_request():
    cut = render(_solid((0, 0, 0), (16, 16)), Image.new("L", (16, 16), 0))
    assert _decode(encode(cut, "jpg")).getpixel((8, 8)) == (255, 255, 255)
    # Pure blue is not exactly representable after JPEG's YCbCr round trip: 254.
    assert _decode(encode(cut, "jpeg", background=(0, 0, 255))).getpixel((8, 8)) == (0, 0, 254)


def test_unknown_format():
    with pytest.raises(InvalidImageError, match="Unknown output format 'gif'"):
        encode(_solid((0, 0, 0)), "gif")


def test_preview_shows_a_checkerboard_under_transparency():
    cut = render(_solid((0, 0, 0), (32, 32)), Image.new("L", (32, 32), 0))
    shown = preview(cut)
    assert shown.mode == "RGB"
    assert shown.getpixel((0, 0)) == (255, 255, 255) and shown.getpixel((16, 0)) == (204, 204, 204)


# --- clean edge colours (estimate_foreground, render(refine_foreground=True)) -------


def _red_disc_on_green(size=96, radius=26.0, ramp=12.0, centre=None):
    """A pure red disc on pure green with a linear alpha ramp of `ramp` px at its
    edge; every pixel is the exact mix I = a*red + (1-a)*green (rounded)."""
    cx, cy = centre or (size / 2 - 0.5, size / 2 - 0.5)
    ys, xs = np.indices((size, size))
    a8 = np.rint(np.clip((radius + ramp - np.hypot(xs - cx, ys - cy)) / ramp, 0, 1) * 255).astype(np.uint8)
    a = a8.astype(np.float64)[..., None] / 255
    rgb = np.rint(a * [255, 0, 0] + (1 - a) * [0, 255, 0]).astype(np.uint8)
    return Image.fromarray(rgb, "RGB"), Image.fromarray(a8, "L")


def _ramp(alpha: Image.Image) -> np.ndarray:
    a = np.asarray(alpha)
    return (a > 0.1 * 255) & (a < 0.9 * 255)


def test_box_filter_is_a_clamped_window_mean():
    x = np.random.default_rng(1).random((23, 31), dtype=np.float32)
    for r in (0, 1, 4, 40):
        want = np.array(
            [[x[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].mean() for j in range(31)] for i in range(23)]
        )
        assert np.abs(foreground._box2d(x, r) - want).max() < 1e-5


def test_estimated_foreground_keeps_opaque_pixels_and_recovers_the_edge_colour():
    image, alpha = _red_disc_on_green()
    f = np.asarray(estimate_foreground(image, alpha)).astype(int)
    i = np.asarray(image).astype(int)
    opaque = np.asarray(alpha) == 255
    assert opaque.sum() > 1000 and np.array_equal(f[opaque], i[opaque])
    ramp = _ramp(alpha)
    assert ramp.sum() > 1000
    # Measured: input green 133, estimate green 18.5 (max 30), estimate red 236.
    assert i[ramp, 1].mean() > 120
    assert f[ramp, 1].mean() < 30 and f[ramp, 1].max() <= 40
    assert f[ramp, 0].mean() > 220


def test_refined_composite_has_less_of_the_old_background():
    image, alpha = _red_disc_on_green()
    ramp = _ramp(alpha)
    plain = np.asarray(render(image, alpha, background=(0, 0, 255))).astype(int)
    clean = np.asarray(render(image, alpha, background=(0, 0, 255), refine_foreground=True)).astype(int)
    # Measured on blue: mean green in the ramp 50.0 (max 64) plain, 7.0 (max 9) refined.
    assert plain[ramp, 1].mean() > 40
    assert clean[ramp, 1].mean() < 12 and clean[ramp, 1].max() <= 15
    cut = render(image, alpha, refine_foreground=True)
    assert cut.mode == "RGBA" and cut.getchannel("A").tobytes() == alpha.tobytes()
    visible = np.asarray(alpha) > 0  # under alpha 0 the cut-out carries RGB 0
    assert np.array_equal(np.asarray(cut)[..., :3][visible], np.asarray(estimate_foreground(image, alpha))[visible])
    assert (np.asarray(cut)[~visible] == 0).all()


def test_only_the_soft_region_is_computed_and_the_result_is_the_same():
    image, alpha = _red_disc_on_green(size=260, radius=14, centre=(200.0, 60.0))
    soft = (np.asarray(alpha) > 0) & (np.asarray(alpha) < 255)
    with foreground.ThreadPoolExecutor(1) as pool:
        whole = foreground._blur_fusion(np.asarray(image), np.asarray(alpha), pool)
    want = whole
    got = np.asarray(estimate_foreground(image, alpha))
    assert np.abs(got[soft].astype(int) - want[soft]).max() <= 1
    assert np.array_equal(got[~soft], np.asarray(image)[~soft])


def test_a_hard_matte_or_mask_only_is_unchanged_by_refining():
    image, alpha = _red_disc_on_green()
    hard = alpha.point(lambda v: 255 if v >= 128 else 0)
    assert estimate_foreground(image, hard).tobytes() == image.tobytes()
    assert render(image, alpha, mask_only=True, refine_foreground=True).tobytes() == alpha.tobytes()


def test_estimate_matches_the_formula_in_float64_on_random_data():
    rng = np.random.default_rng(3)
    h, w = 30, 40
    image8 = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    alpha8 = rng.choice(np.array([0, 1, 77, 128, 254, 255], np.uint8), (h, w))

    def box(x, r):
        return np.array(
            [
                [x[max(0, y - r) : y + r + 1, max(0, j - r) : j + r + 1].mean(axis=(0, 1)) for j in range(w)]
                for y in range(h)
            ]
        )

    i, a = image8 / 255.0, alpha8[..., None] / 255.0
    f, b = i, i
    for r in foreground.FOREGROUND_RADII:
        fb = box(f * a, r) / (box(a, r) + 1e-5)
        b = box(b * (1 - a), r) / (box(1 - a, r) + 1e-5)
        f = np.clip(fb + a * (i - a * fb - (1 - a) * b), 0, 1)
    got = np.asarray(estimate_foreground(Image.fromarray(image8), Image.fromarray(alpha8, "L"))).astype(int)
    soft = (alpha8 > 0) & (alpha8 < 255)
    assert np.abs(got[soft] - np.rint(f * 255)[soft]).max() <= 1
    assert np.array_equal(got[~soft], image8[~soft])


def test_estimate_foreground_in_tiles_is_the_same_as_in_one_piece():
    """Tiles carry every row a result row depends on (the blur radii), so
    bounding the memory changes the colours by float32 rounding at most."""
    rng = np.random.default_rng(7)
    image = Image.fromarray(rng.integers(0, 256, (300, 160, 3), dtype=np.uint8))
    alpha = Image.fromarray(rng.integers(0, 256, (300, 160), dtype=np.uint8), "L")
    whole = estimate_foreground(image, alpha, tile_pixels=10**9)
    tiled = estimate_foreground(image, alpha, tile_pixels=160 * 230)  # 38-row tiles inside 96-row margins
    diff = np.abs(np.asarray(tiled, np.int16) - np.asarray(whole, np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def _soft_disc(size=(320, 240)) -> tuple[Image.Image, Image.Image]:
    """A smooth photo-like gradient and a disc matte with a soft 12 px edge."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    photo = np.dstack([xs * 255 / w, ys * 255 / h, (xs + ys) * 127 / (w + h) + 64]).astype(np.uint8)
    radius = np.hypot(xs - w / 2, ys - h / 2)
    alpha = np.clip((90 - radius) * 255 / 12, 0, 255).astype(np.uint8)
    return Image.fromarray(photo, "RGB"), Image.fromarray(alpha, "L")


@pytest.mark.parametrize("mask_only", [False, True])
def test_png_is_exact_and_no_larger_than_pillows_default(mask_only):
    """Our zlib settings never cost bytes against Pillow's default (rembg's) on the same pixels."""
    photo, alpha = _soft_disc()
    out = render(photo, alpha, mask_only=mask_only)
    ours = encode(out, "png")
    buf = io.BytesIO()
    out.save(buf, "PNG")
    assert np.array_equal(np.asarray(_decode(ours)), np.asarray(out))
    assert len(ours) <= len(buf.getvalue())


def test_a_large_soft_region_takes_its_means_reduced_and_stays_close_to_the_full_estimate(monkeypatch):
    """Over WORK_PIXELS, the means come from the box reduced k-fold: on a soft disc
    (a photo-like gradient) the colours stay within a grey level of the full-size
    estimate on average, where alpha makes them visible (a 12 px edge at k = 2 is the
    hard case: real mattes scaled up to 12 MP have wide ones, 0.21 there)."""
    image, alpha = _soft_disc((400, 300))
    a8 = np.asarray(alpha)
    soft = (a8 > 0) & (a8 < 255)
    exact = np.asarray(estimate_foreground(image, alpha), np.int16)
    monkeypatch.setattr(foreground, "WORK_PIXELS", 30_000)  # the box is ~120k pixels: k = 2
    reduced = np.asarray(estimate_foreground(image, alpha), np.int16)
    diff = np.abs(reduced - exact).max(axis=2)
    weight = a8[soft] / 255
    assert soft.sum() > 5000
    assert (diff[soft] * weight).sum() / weight.sum() < 1.0  # measured 0.66
    assert np.percentile(diff[soft], 99) <= 3
    assert np.array_equal(reduced[~soft], np.asarray(image, np.int16)[~soft])


def test_the_reduced_estimate_still_removes_the_old_background(monkeypatch):
    monkeypatch.setattr(foreground, "WORK_PIXELS", 4_000)  # k = 3 on the disc's box
    image, alpha = _red_disc_on_green(size=150, radius=40, ramp=16)
    f = np.asarray(estimate_foreground(image, alpha)).astype(int)
    ramp = _ramp(alpha)
    assert ramp.sum() > 1000 and np.asarray(image)[ramp, 1].mean() > 120
    assert f[ramp, 1].mean() < 30 and f[ramp, 0].mean() > 220


def test_composite_follows_the_exact_integer_rule_for_every_value():
    """render() on a colour or image uses Pillow's composite: for every (fg, bg, alpha)
    of 8 bits it gives (fg*a + bg*(255-a) + 127) // 255, as the module says."""
    values = np.arange(256, dtype=np.uint16)  # fg*a + bg*(255-a) + 127 is at most 255*255 + 127: 16 bits hold it
    fg, bg, a = (grid.reshape(4096, 4096) for grid in np.meshgrid(values, values, values, indexing="ij", copy=False))
    want = (fg * a + bg * (255 - a) + 127) // 255
    three = [Image.fromarray(np.dstack([v.astype(np.uint8)] * 3)) for v in (fg, bg)]
    got = np.asarray(render(three[0], Image.fromarray(a.astype(np.uint8), "L"), background=three[1]))
    assert np.array_equal(got[..., 0], want) and np.array_equal(got[..., 2], want)


def test_the_reduced_estimate_is_the_same_in_one_thread_and_in_many_runs_on_two(monkeypatch):
    """_fuse_reduced's per-pixel step runs over runs of soft pixels in the pool's threads:
    how the pixels are split and how many threads take them changes no colour."""
    image, alpha = _soft_disc((400, 300))
    monkeypatch.setattr(foreground, "WORK_PIXELS", 30_000)
    monkeypatch.setattr(foreground, "THREADED_PIXELS", 10**12)  # one thread
    monkeypatch.setattr(foreground, "FUSE_RUN", 10**9)  # one run
    whole = estimate_foreground(image, alpha).tobytes()
    monkeypatch.setattr(foreground, "THREADED_PIXELS", 0)  # two threads
    monkeypatch.setattr(foreground, "FUSE_RUN", 97)  # ~100 runs of ragged length
    assert estimate_foreground(image, alpha).tobytes() == whole
