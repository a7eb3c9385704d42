"""From a provider's matte to a trimap, a bounded window for the network, and back.

The trimap rule (values as ViTMatte expects them: 0 background, 128 unknown,
255 foreground), for an H x W matte:

  r = band_radius(W, H) = clamp(round(max(W, H) / 100), 3, 64) pixels
      (1 % of the longer side: 10 px on a 1000 px photo, 40 px on 4000 px);
  certain foreground = erode(alpha >= 240, r);
  certain background = not dilate(alpha > 15, r);
  unknown            = everything else.

So every soft pixel of the provider (15 < alpha < 240) is unknown, plus a band
of r pixels on both sides of every edge. Erosion and dilation use a square of
side 2r + 1; the image frame counts as foreground for the erosion, so a subject
cut by the frame stays certain there.

Only unknown pixels are ever replaced (`paste`): outside the band the refined
matte is exactly the provider's matte.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .morph import dilate, erode

FG_MIN = 240  # alpha >= this is candidate foreground
BG_MAX = 15  # alpha <= this is candidate background
UNKNOWN = 128


def band_radius(width: int, height: int) -> int:
    """Half-width of the unknown band in pixels: 1 % of the longer side, 3..64."""
    return int(min(64, max(3, round(max(width, height) / 100))))


def make_trimap(alpha: np.ndarray, radius: int | None = None) -> np.ndarray:
    """uint8 trimap (0 / 128 / 255) of a uint8 H x W matte; the rule is in the module docstring."""
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise ValueError(f"alpha must be 2-D (H, W), got shape {alpha.shape}")
    h, w = alpha.shape
    r = band_radius(w, h) if radius is None else int(radius)
    fg = erode(alpha >= FG_MIN, r)
    bg = ~dilate(alpha > BG_MAX, r)
    trimap = np.full(alpha.shape, UNKNOWN, dtype=np.uint8)
    trimap[fg] = 255
    trimap[bg] = 0
    return trimap


@dataclass(frozen=True)
class Window:
    """The part of the image the network sees.

    box: (x0, y0, x1, y1) in image pixels, x1/y1 exclusive.
    size: (width, height) the crop is resized to before the network
        (equal to the box size when no downscale is needed).
    """

    box: tuple[int, int, int, int]
    size: tuple[int, int]

    @property
    def scale(self) -> float:
        return self.size[0] / (self.box[2] - self.box[0])


def plan_window(unknown: np.ndarray, max_side: int, margin: int) -> Window | None:
    """Bounding box of the unknown pixels plus `margin` pixels of context, clipped
    to the image, downscaled (aspect kept) so its longer side is <= max_side.

    None when nothing is unknown (then there is nothing to refine).
    """
    rows = np.flatnonzero(unknown.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(unknown.any(axis=0))
    h, w = unknown.shape
    x0, y0 = max(0, int(cols[0]) - margin), max(0, int(rows[0]) - margin)
    x1, y1 = min(w, int(cols[-1]) + 1 + margin), min(h, int(rows[-1]) + 1 + margin)
    bw, bh = x1 - x0, y1 - y0
    factor = min(1.0, max_side / max(bw, bh))
    size = (max(1, round(bw * factor)), max(1, round(bh * factor)))
    return Window((x0, y0, x1, y1), size)


def paste(alpha: np.ndarray, refined: np.ndarray, window: Window, unknown: np.ndarray) -> np.ndarray:
    """`alpha` with the unknown pixels inside `window.box` taken from `refined`
    (uint8, the box's size). Every other pixel is the input, bit for bit."""
    x0, y0, x1, y1 = window.box
    out = np.array(alpha, dtype=np.uint8, copy=True)
    region = out[y0:y1, x0:x1]
    band = unknown[y0:y1, x0:x1]
    region[band] = refined[band]
    return out


def to_uint8(values: np.ndarray) -> np.ndarray:
    """Float alpha in [0, 1] -> uint8 (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(values, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
