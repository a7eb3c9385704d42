"""edge_colours=False: a cut-out keeps the photo's colours at soft edges (no
foreground estimate), asked for through RenderOptions, the web app's Look or
the REST field; the default still estimates them."""

from __future__ import annotations

import numpy as np
from PIL import Image

from rmbg.image.compose import cutout, render
from rmbg.types import RenderOptions
from rmbg.webapp.look import Look
from rmbg.webapp.rest.types import fields_of


def photo_and_matte() -> tuple[Image.Image, Image.Image]:
    rng = np.random.default_rng(46)
    image = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "RGB")
    alpha = np.zeros((24, 32), dtype=np.uint8)
    alpha[6:18, 8:24] = 255
    alpha[5, 8:24] = alpha[18, 8:24] = 128  # soft rows, where the estimate changes colours
    return image, Image.fromarray(alpha, "L")


def test_off_keeps_the_photos_colours_and_the_default_estimates_them() -> None:
    image, alpha = photo_and_matte()
    off = render(image, alpha, options=RenderOptions(edge_colours=False))
    assert np.array_equal(np.asarray(off), np.asarray(cutout(image, alpha)))
    on = render(image, alpha, options=RenderOptions())
    assert np.array_equal(np.asarray(on)[..., 3], np.asarray(off)[..., 3])
    assert not np.array_equal(np.asarray(on), np.asarray(off))


def test_clean_edges_still_wins_and_a_colour_background_is_unchanged() -> None:
    image, alpha = photo_and_matte()
    clean = render(image, alpha, options=RenderOptions(clean_edges=True, edge_colours=False))
    assert np.array_equal(np.asarray(clean), np.asarray(render(image, alpha, options=RenderOptions())))
    white = RenderOptions(background="white")
    assert np.array_equal(
        np.asarray(render(image, alpha, options=white)),
        np.asarray(render(image, alpha, options=RenderOptions(background="white", edge_colours=False))),
    )


def test_rest_field_reaches_the_render_options() -> None:
    assert fields_of({"edge_colours": "false"}).edge_colours == "false"  # read as a flag by Look.of
    assert Look.of(edge_colours=fields_of({"edge_colours": "false"}).edge_colours).options().edge_colours is False
    assert Look.of(edge_colours=fields_of({}).edge_colours).options().edge_colours is True
    assert Look.of().options().edge_colours is True
