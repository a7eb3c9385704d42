"""Product-photo framing: crop to the subject, aspect and fixed canvases."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.errors import InvalidImageError
from rmbg.image.compose import render
from rmbg.image.framing import SUBJECT_THRESHOLD, frame, frame_source, framing_of, layout, subject_box
from rmbg.types import Framing, RenderOptions
from tests.support.providers import CountingProvider


def photo(width=200, height=100, box=(50, 40, 90, 60)) -> tuple[Image.Image, Image.Image]:
    """A noisy photo and a matte: 255 inside `box`, a faint 10 outside it (below the threshold)."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
    alpha = np.full((height, width), 10, np.uint8)
    left, top, right, bottom = box
    alpha[top:bottom, left:right] = 255
    alpha[top, left] = 128  # a soft corner pixel belongs to the subject
    return rgb, Image.fromarray(alpha, "L")


def test_subject_is_the_box_of_alpha_at_or_above_the_threshold():
    _, alpha = photo()
    assert subject_box(alpha) == (50, 40, 90, 60)
    assert subject_box(Image.new("L", (8, 8), SUBJECT_THRESHOLD - 1)) is None
    assert subject_box(Image.new("L", (8, 8), SUBJECT_THRESHOLD)) == (0, 0, 8, 8)


@pytest.mark.parametrize(
    "kwargs, size, at",
    [
        ({"crop": True}, (40, 20), (0, 0)),
        ({"crop": True, "margin": "10%"}, (48, 28), (4, 4)),  # 10 % of the longer side (40)
        ({"crop": True, "margin": "6px"}, (52, 32), (6, 6)),
        ({"crop": True, "margin": 6}, (52, 32), (6, 6)),
        ({"canvas": "1:1"}, (40, 40), (0, 10)),
        ({"canvas": "1:1", "align": "bottom"}, (40, 40), (0, 20)),
        ({"canvas": "1:2", "margin": 5}, (50, 100), (5, 40)),
        ({"canvas": "4:1"}, (80, 20), (20, 0)),
    ],
)
def test_crop_and_aspect_keep_the_subject_at_its_own_scale(kwargs, size, at):
    rgb, alpha = photo()
    framing = framing_of(**kwargs)
    assert layout((50, 40, 90, 60), framing) == (size, (40, 20), at)
    out_rgb, out_alpha = frame(rgb, alpha, framing)
    assert out_rgb.size == out_alpha.size == size
    x, y = at
    # the subject's pixels, exactly; everything else alpha 0 and RGB 0
    want = np.asarray(alpha)[40:60, 50:90]
    got = np.asarray(out_alpha)
    assert np.array_equal(got[y : y + 20, x : x + 40], want)
    assert np.array_equal(np.asarray(out_rgb)[y : y + 20, x : x + 40], np.asarray(rgb)[40:60, 50:90])
    outside = np.ones(got.shape, bool)
    outside[y : y + 20, x : x + 40] = False
    assert got[outside].max(initial=0) == 0 and np.asarray(out_rgb)[outside].max(initial=0) == 0


@pytest.mark.parametrize(
    "canvas, margin, align, placed",
    [
        ("2000x2000", 0, "center", ((2000, 1000), (0, 500))),
        ("2000x2000", "10%", "center", ((1600, 800), (200, 600))),
        ("2000x2000", "10%", "bottom", ((1600, 800), (200, 1000))),
        ((300, 100), "10px", "center", ((160, 80), (70, 10))),
    ],
)
def test_a_fixed_canvas_scales_the_subject_into_its_margins(canvas, margin, align, placed):
    rgb, alpha = photo()
    framing = framing_of(canvas=canvas, margin=margin, align=align)
    (width, height), subject, at = layout((50, 40, 90, 60), framing)
    assert (subject, at) == placed
    out_rgb, out_alpha = frame(rgb, alpha, framing)
    assert out_alpha.size == (width, height)
    assert subject_box(out_alpha, threshold=1) == (at[0], at[1], at[0] + subject[0], at[1] + subject[1])


def test_scaling_does_not_bleed_the_old_background_into_the_edge():
    # two white parts with a transparent gap of black scene between them, inside
    # the subject's box: resizing on premultiplied colours keeps every visible
    # pixel white (only alpha softens); straight colours would grey the edges
    rgb = Image.new("RGB", (40, 40), (0, 0, 0))
    alpha = Image.new("L", (40, 40), 0)
    for left in (10, 24):
        rgb.paste((255, 255, 255), (left, 10, left + 6, 30))
        alpha.paste(255, (left, 10, left + 6, 30))
    out_rgb, out_alpha = frame(rgb, alpha, framing_of(canvas="97x97", margin=10))
    a, c = np.asarray(out_alpha), np.asarray(out_rgb)
    assert ((a > 0) & (a < 255)).sum() > 100  # soft edges exist
    assert c[a > 8].min() >= 250

    straight = Image.merge("RGB", rgb.split()).crop((10, 10, 30, 30)).resize((77, 77), Image.Resampling.LANCZOS)
    assert np.asarray(straight)[a[10:87, 10:87] > 8].min() < 200  # what premultiplying avoids


def test_an_empty_matte_keeps_the_whole_frame():
    rgb, _ = photo()
    empty = Image.new("L", rgb.size, 0)
    out_rgb, out_alpha = frame(rgb, empty, framing_of(crop=True))
    assert out_rgb.size == rgb.size and np.asarray(out_alpha).max() == 0


def test_backgrounds_and_the_mask_follow_the_frame():
    rgb, alpha = photo()
    options = RenderOptions(background="#ff0000", framing=framing_of(crop=True, margin=5))
    out = render(rgb, alpha, options=options)
    assert out.mode == "RGB" and out.size == (50, 30)
    assert out.getpixel((0, 0)) == (255, 0, 0)  # the margin is the chosen colour
    mask = render(rgb, alpha, options=RenderOptions(mask_only=True, framing=options.framing))
    assert mask.mode == "L" and mask.size == (50, 30) and mask.getpixel((0, 0)) == 0 and mask.getpixel((25, 15)) == 255
    cut = render(rgb, alpha, options=RenderOptions(framing=options.framing))
    assert cut.mode == "RGBA" and cut.getpixel((0, 0)) == (0, 0, 0, 0)


def test_api_frames_and_reframes_without_calling_the_provider_again():
    rgb, alpha = photo()
    provider = CountingProvider()
    scene = Image.merge("RGB", (alpha, *rgb.split()[1:]))  # the counting provider's matte is the red channel
    result = rmbg.remove_background(scene, provider, canvas="1000x1000", margin="5%", align="bottom", cache=None)
    assert result.image.size == (1000, 1000) and result.alpha.size == (200, 100)
    assert subject_box(result.image.getchannel("A"), threshold=1)[3] == 950  # stands on the bottom margin
    square = result.render(crop=True)
    assert square.image.size == (40, 20) and provider.calls == 1


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"canvas": "big"}, "neither a size such as '2000x2000' nor an aspect"),
        ({"canvas": "0x100"}, "each side 1 to 10000 pixels"),
        ({"canvas": "20001x10"}, "each side 1 to 10000 pixels"),
        ({"canvas": "30:1"}, "at most 20:1"),
        ({"canvas": (10, 2.5)}, "whole pixels"),
        ({"crop": True, "margin": "50%"}, "under 50 %"),
        ({"crop": True, "margin": "ten"}, "not a size"),
        ({"crop": True, "margin": "2.5px"}, "whole number of pixels"),
        ({"crop": True, "margin": -3}, "out of range"),
        ({"crop": True, "align": "top"}, "Unknown alignment 'top'"),
        ({"margin": "10%"}, "needs crop=True or a canvas (canvas=...)"),
    ],
)
def test_framing_values_are_checked_before_any_call(kwargs, words):
    provider = CountingProvider()
    with pytest.raises(InvalidImageError, match=words.replace("(", r"\(").replace(")", r"\)")):
        rmbg.remove_background(Image.new("RGB", (8, 8)), provider, cache=None, **kwargs)
    assert provider.calls == 0


@pytest.mark.parametrize(
    "kwargs", [{"margin": "0"}, {"margin": "0%"}, {"margin": " 0px "}, {"margin": 0}, {"align": "Center"}]
)
def test_a_zero_margin_or_centred_alignment_without_a_frame_asks_for_nothing(kwargs):
    """What a framing field means decides whether it needs a frame, not how it is spelt: "0%" and
    "Center" were refused as "needs crop" while 0 and "center" passed (MCP sends "0" and "center")."""
    assert framing_of(**kwargs) is None
    result = rmbg.remove_background(Image.new("RGB", (8, 8)), CountingProvider(), cache=None, **kwargs)
    assert result.image.size == (8, 8)


def test_a_margin_that_is_no_size_is_refused_as_one_with_or_without_a_frame():
    for crop in (True, False):
        with pytest.raises(InvalidImageError, match=r"Margin '-5%' is negative: use 0 or more"):
            framing_of(crop, None, "-5%", None)
        with pytest.raises(InvalidImageError, match=r"Margin 'wide' is not a size"):
            framing_of(crop, None, "wide", None)


def test_a_margin_that_fills_the_canvas_is_refused():
    with pytest.raises(InvalidImageError, match="leaves no room on a 20x20 canvas"):
        layout((0, 0, 5, 5), Framing(canvas=(20, 20), margin=10))


def test_no_framing_asked_is_none():
    assert framing_of() is None and framing_of(False, "none", "", "center") is None


def test_the_photo_is_framed_like_its_cut_out():
    """A before/after view after a crop or a canvas: the photo in the cut-out's geometry, pixel for pixel
    where the subject is, the canvas around it filled."""
    rgb = Image.new("RGB", (200, 100), (10, 200, 30))
    rgb.paste((250, 0, 0), (60, 20, 120, 80))
    alpha = Image.new("L", (200, 100), 0)
    alpha.paste(255, (60, 20, 120, 80))
    for framing in (framing_of(True, None, "10px", None), framing_of(False, "300x300", "5%", "bottom")):
        cut, cut_alpha = frame(rgb, alpha, framing)
        before = frame_source(rgb, alpha, framing, (236, 236, 236))
        assert before.size == cut.size
        inside = np.asarray(cut_alpha) == 255
        assert np.array_equal(np.asarray(before)[inside], np.asarray(cut)[inside])
        assert tuple(np.asarray(before)[0, 0]) == (236, 236, 236)
