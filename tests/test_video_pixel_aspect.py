"""Clips whose pixels are not square (HDV's 1440x1080 shown 1920x1080, a DVD's 720x480 shown 640x480):
the cut-out is shown as the clip is, in every format, and a hosted vendor's alpha at the stored size
is taken and fitted. Before, the pixel aspect was dropped: a 16:9 clip stored 4:3 came out 4:3,
squeezed, and a vendor's answer at the stored size was refused after it was paid for."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import rmbg
from rmbg.money.ledger import Account
from rmbg.money.paying import Policy
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.video.hosted import Payer
from rmbg.video.providers import get_video_provider
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal_video import FalVideoFake
from tests.video_clips import Threshold, write_frames

SUBJECT, BACKDROP = (230, 200, 40), (30, 60, 200)  # Threshold(100): the subject is over 100, not the rest


def clip(path: Path, stored: tuple[int, int], pixel: Fraction, radius: int, frames: int = 6) -> Path:
    """A clip stored at `stored` with pixels `pixel` wide for 1 high, of a disc `radius` shown pixels
    across its middle: a circle as a player shows it, an ellipse in the stored pixels."""
    width, height = stored
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:] = BACKDROP
    ys, xs = np.mgrid[:height, :width]
    shown_x = (xs + 0.5 - width / 2) * float(pixel)
    rgb[shown_x**2 + (ys + 0.5 - height / 2) ** 2 < radius**2] = SUBJECT
    return write_frames(
        path, lambda: av.VideoFrame.from_ndarray(rgb, format="rgb24"), frames, "libx264", "yuv420p",
        sample_aspect_ratio=pixel,
    )  # fmt: skip


def shown(path: Path) -> tuple[float, float]:
    """(width, height) a player shows the file's frames at: its stored size, its pixel aspect applied."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pixel = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio or Fraction(1)
        return stream.codec_context.width * float(pixel), float(stream.codec_context.height)


def disc(alpha: np.ndarray) -> tuple[int, int]:
    """(width, height) in pixels of the subject in a matte."""
    rows, cols = np.nonzero(alpha > 127)
    return int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize(
    "stored, pixel, want",
    [
        ((320, 240), Fraction(4, 3), (427, 240)),  # stored 4:3, shown 16:9 (HDV, anamorphic DV)
        ((360, 240), Fraction(8, 9), (320, 240)),  # a DVD's narrow pixels
    ],
)
def test_the_cut_out_is_shown_as_the_clip_is_in_every_format(tmp_path, stored, pixel, want):
    source = clip(tmp_path / "in.mp4", stored, pixel, radius=80)
    with rmbg.remove_video(source, Threshold(), smooth=False, audio=False) as result:
        assert result.size == want
        width, height = disc(next(result.mattes()))
        assert abs(width - height) <= 3  # a circle, as the clip shows it, not an ellipse
        theirs = shown(source)
        for fmt in ("webm", "mov", "mp4", "gif"):
            out = result.save(tmp_path / f"out.{fmt}")
            w, h = shown(out)
            assert abs(w / h - theirs[0] / theirs[1]) < 0.01, (fmt, w, h)


def test_a_vendors_alpha_at_the_stored_size_is_fitted_not_refused(tmp_path):
    """The fake vendor decodes the clip's stored pixels and answers at that size (320x240), its pixel
    aspect not kept: the same shape as the clip's stored frames, scaled to ours, and paid once."""
    source = clip(tmp_path / "in.mp4", (320, 240), Fraction(4, 3), radius=80)
    with FalVideoFake() as fake:
        remover = get_video_provider(
            "fal-bria-video", api_key=FAL_KEY, base_url=fake.url, retry=RetryPolicy.immediate(max_attempts=1)
        )
        payer = Payer(Policy(), (Account("session:t", Decimal("5")), Account("day:t", Decimal("10"))))
        with rmbg.remove_video(source, remover, payer=payer) as result:
            assert result.size == (427, 240)
            mattes = list(result.mattes())
        submits = [c for c in fake.calls if c.method == "POST" and c.path.endswith("/v3")]
    assert len(mattes) == 6 and mattes[0].shape == (240, 427) and len(submits) == 1
    width, height = disc(mattes[0])
    assert abs(width - height) <= 4
