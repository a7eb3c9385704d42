"""Budgets before work: a frame's size is refused from the header's size and
the options, before anything decodes, runs or pays; what an accepted frame
of a tiny upload costs in memory is measured."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.errors import InvalidImageError
from rmbg.image.framing import OUTPUT_FLOOR_PIXELS, check_budget, framing_of, output_budget
from tests.test_api import CountingProvider


def tiny_png(width=80, height=60) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("options", [
    {"crop": True, "margin": "7000px"},
    {"crop": True, "margin": 9950},
    {"canvas": "1:20", "crop": True, "margin": "1500px"},
    {"canvas": "3000x3000"},
])
def test_a_frame_over_budget_is_refused_before_the_provider_is_called(options):
    provider = CountingProvider()
    with pytest.raises(InvalidImageError, match="at most 4.2 MP|would be 3080x61600"):
        rmbg.remove_background(tiny_png(), provider, cache=None, **options)
    assert provider.calls == 0  # a paid provider is never called for a frame that will be refused


def test_a_canvas_over_the_pixel_limit_is_refused_when_parsed():
    with pytest.raises(InvalidImageError, match="100.0 MP, over the limit of 40 MP"):
        framing_of(canvas="10000x10000")


def test_the_budget_is_checked_on_the_header_before_decoding():
    """A PNG whose pixel data is garbage: refused for its frame, not for its damage (nothing was decoded)."""
    whole = tiny_png(4000, 3000)
    data = whole[: len(whole) // 2]  # the header is whole, the pixels cut off: decoding would fail
    provider = CountingProvider()
    with pytest.raises(InvalidImageError, match="could make a"):
        rmbg.remove_background(bytes(data), provider, cache=None, crop=True, margin="3000px")
    with pytest.raises(InvalidImageError, match="damaged|truncated"):
        rmbg.remove_background(bytes(data), provider, cache=None)


def test_budget_grows_with_the_photo_and_stops_at_the_pixel_limit(monkeypatch):
    monkeypatch.delenv("RMBG_MAX_PIXELS", raising=False)
    assert output_budget((80, 60)) == OUTPUT_FLOOR_PIXELS
    assert output_budget((2000, 1500)) == 4 * 2000 * 1500
    assert output_budget((6000, 6000)) == 40_000_000
    check_budget((4000, 3000), framing_of(crop=True, margin="10%"))  # 4800x3800: fine
    with pytest.raises(InvalidImageError):
        check_budget((4000, 3000), framing_of(crop=True, margin="49%"))


def test_rerendering_with_a_frame_over_budget_is_refused_before_allocating():
    result = rmbg.remove_background(tiny_png(), CountingProvider(), cache=None)
    with pytest.raises(InvalidImageError, match="could make a"):
        result.render(crop=True, margin="7000px")
    assert result.render(canvas="2000x2000").image.size == (2000, 2000)


MEASURE = textwrap.dedent("""
    import io, json, resource, sys
    from PIL import Image
    import rmbg
    from tests.test_api import CountingProvider
    buf = io.BytesIO(); Image.new("RGB", (80, 60), (200, 30, 30)).save(buf, "PNG")
    provider = CountingProvider(); rmbg.remove_background(buf.getvalue(), provider, cache=None)  # warm
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for options in json.loads(sys.argv[1]):
        try:
            rmbg.remove_background(buf.getvalue(), provider, cache=None, **options).encode("png")
        except rmbg.InvalidImageError:
            pass
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
""")

# The largest frames a tiny upload may still ask for, and those the issue measured.
WORST = [{"canvas": "2048x2048", "background": "white"}, {"canvas": "2048x2048", "clean_edges": True},
         {"canvas": "1:1", "crop": True, "margin": "994px", "background": "white"},
         {"crop": True, "margin": "7000px"}, {"canvas": "10000x10000"}, {"canvas": "9999x1"}]


def test_a_tiny_upload_costs_under_300_mb_whatever_its_frame(tmp_path):
    options = [{("refine_foreground" if k == "clean_edges" else k): v for k, v in o.items()} for o in WORST]
    out = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(options)], capture_output=True, text=True,
                         timeout=120, check=True)
    grown_mb = float(out.stdout.strip().splitlines()[-1])
    assert grown_mb < 300, out.stdout
