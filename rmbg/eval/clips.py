"""evaluate_clip: how well, and how steadily, a provider cuts out one sequence.

A sequence is a clip (any input remove_video takes) or a folder of frames
(images sorted by name), with a folder of ground-truth masks, one per frame
in the same order (sorted by name). The provider runs once per frame; the
same mattes are scored as they come (frame by frame) and after the temporal
filter (rmbg.video.smooth), so the two rows differ by the filter alone.
Scores: J, F and dtSSD (rmbg.eval.temporal). Clip scoring is evaluation's: it stands above
rmbg.video, which it drives, and nothing in rmbg.video imports it.

`rmbg evaluate DATA` scores a folder of such sequences through this function
(rmbg.eval.sequences: the layout, and the summary over sequences);
benchmarks/video.py scores with the same scorer (rmbg.eval.temporal) on frames of its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from ..image.io import is_image_file
from ..providers.base import Provider
from ..types import name_text
from ..video.api import local_provider
from ..video.decode import probe, spool
from ..video.limits import InvalidVideoError, VideoLimits
from ..video.pipeline import stream_mattes
from ..video.result import new_folder
from ..video.smooth import SmoothParams, TemporalSmoother
from .dataset import same_shape
from .run import load_ground_truth
from .temporal import SequenceScorer, SequenceScores


def _sorted_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _frames_and_mattes(
    source: str | os.PathLike[str], provider: Provider, limits: VideoLimits
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    path = Path(source)
    if path.is_dir():
        for image in _sorted_images(path):
            rgb = Image.open(image).convert("RGB")
            yield np.asarray(rgb), np.asarray(provider.matte(rgb).alpha)
        return
    folder = new_folder()
    try:
        info = probe(spool(source, Path(folder.name), limits), limits)
        for frame in stream_mattes(info, provider, limits=limits, smooth=None):
            yield frame.rgb, frame.alpha
    finally:
        folder.cleanup()


def evaluate_clip(
    source: str | os.PathLike[str],
    masks: str | os.PathLike[str],
    provider: str | Provider | None = None,
    *,
    smooth: SmoothParams | None = None,
    limits: VideoLimits | None = None,
) -> dict[str, SequenceScores]:
    """{"frame_by_frame": scores, "smoothed": scores} of one sequence (module doc); `smooth`:
    the filter's parameters (None: the defaults)."""
    chosen = local_provider(provider)
    gts = _sorted_images(Path(masks))
    if len(gts) < 2:
        raise InvalidVideoError(f"{masks} needs at least two masks, one per frame.")
    raw, smoothed = SequenceScorer(), SequenceScorer()
    smoother = TemporalSmoother(smooth or SmoothParams())
    count = 0
    for count, (rgb, alpha) in enumerate(_frames_and_mattes(source, chosen, limits or VideoLimits.from_settings()), 1):
        if count > len(gts):
            raise InvalidVideoError(f"The sequence has more frames than {masks} has masks ({len(gts)}).")
        gt = load_ground_truth(gts[count - 1])  # the image evaluation's reading of a mask (its alpha, or grey)
        # a mask of another aspect ratio than its frame would be squashed into scores that mean nothing
        why = same_shape((gt.shape[1], gt.shape[0]), (rgb.shape[1], rgb.shape[0]), of="frame")
        if why is not None:
            raise InvalidVideoError(f"Frame {count}'s mask {name_text(gts[count - 1].name)} {why}")
        if gt.shape != alpha.shape:  # a scaled mask (or a matte of another size): nearest keeps a binary mask binary
            gt = np.asarray(Image.fromarray(gt).resize(alpha.shape[::-1], Image.Resampling.NEAREST))
        raw.add(alpha, gt)
        for truth, out in smoother.push(rgb, alpha, gt):  # the frame a few frames back, with its mask
            smoothed.add(out, truth)
    if count != len(gts):
        raise InvalidVideoError(f"The sequence has {count} frames but {masks} has {len(gts)} masks.")
    for truth, out in smoother.flush():
        smoothed.add(out, truth)
    return {"frame_by_frame": raw.scores(), "smoothed": smoothed.scores()}
