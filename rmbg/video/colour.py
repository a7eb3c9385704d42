"""A decoded frame's colours as a browser shows them on an ordinary (SDR) screen, as RGB numbers.

Measured in headless Chromium (tests/test_video_colour.py plays the clips and reads the pixels back):

- **Tagged SDR** (BT.709, BT.601, ...): through its own tags, as FFmpeg converts it.
- **Untagged**: Chromium's guesses. An H.264 is BT.709 from 720 rows up (960x720, 1278x720 and
  576x1024 are; 1280x536, 2048x700 and 960x718 are not: the test plays each) and BT.601 below; a
  VP8, VP9 or AV1 is BT.601 at every size. swscale's own guess is BT.601 always.
- **HDR** (HLG, as phones record by default, or PQ): tone-mapped to SDR as Chromium does. The light
  a display would give (HLG: its system gamma, 1.2 at a 1,000-nit peak; PQ: the nits it encodes),
  in units of 406 nits (twice HLG's reference white of 203 nits); the largest of R, G and B kept
  as it is up to KNEE and rolled off above it towards 1 (a tone map on the maximum, so hues hold);
  BT.2020's primaries brought to BT.709's; sRGB's curve. SDR_NITS and KNEE were fitted to what
  Chromium shows of grey ramps and colour patches; the test judges them on other colours (within
  6 levels of Chromium).

Without this, an iPhone's HDR clip was read as if its HLG numbers were SDR: the test's HLG subject,
(231, 125, 96) in Chromium, came out (204, 157, 122).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..image.arrays import opencv
from .planes import SCALE_THREADS

HLG, PQ = 18, 16  # AVCOL_TRC_ARIB_STD_B67, AVCOL_TRC_SMPTE2084
BT2020 = 9  # AVCOL_PRI_BT2020
UNSPECIFIED = (2, 3)  # AVCOL_SPC_UNSPECIFIED, RESERVED
# Decoders (FFmpeg's names) of the codecs Chromium reads untagged as BT.601 at every size
ALWAYS_601 = frozenset({"vp8", "vp9", "libvpx", "libvpx-vp9", "av1", "libdav1d", "libaom-av1"})
SDR_NITS = 406.0  # display light shown at SDR white before the roll-off
KNEE = 0.342  # linear output up to which light is kept as it is
HLG_PEAK_NITS = 1000.0  # HLG's nominal display peak: its system gamma is 1.2 there
LUMA_2020 = np.array([0.2627, 0.6780, 0.0593], np.float32)
# BT.2020 -> BT.709 in linear light (both D65)
TO_709 = np.array([[1.6605, -0.5876, -0.0728], [-0.1246, 1.1329, -0.0083], [-0.0182, -0.1006, 1.1187]], np.float32).T


def shown_rgb(frame: Any, width: int, height: int, codec: str) -> np.ndarray:
    """The frame at width x height as 8-bit RGB, in the colours it is shown in (the module doc)."""
    if frame.color_trc in (HLG, PQ):
        signal = frame.to_ndarray(format="rgb48le", width=width, height=height, threads=SCALE_THREADS)
        return to_sdr(signal, frame.color_trc, frame.color_primaries == BT2020)
    guess = {}
    if frame.colorspace in UNSPECIFIED:
        hd = codec not in ALWAYS_601 and frame.height >= 720
        guess = {"src_colorspace": "ITU709" if hd else "ITU601"}
    rgb: np.ndarray = frame.to_ndarray(format="rgb24", width=width, height=height, threads=SCALE_THREADS, **guess)
    return rgb


def to_sdr(signal: np.ndarray, transfer: int, bt2020: bool) -> np.ndarray:
    """16-bit HLG or PQ R'G'B' (H x W x 3) -> 8-bit sRGB as Chromium shows it on an SDR screen."""
    light = _light(transfer)[signal]  # HLG: scene light 0..1; PQ: display light / SDR_NITS
    planes = light[..., 0], light[..., 1], light[..., 2]
    gain = None
    if transfer == HLG:  # the display's light: the scene's luminance to the power 0.2, times each colour
        scene = planes[0] * LUMA_2020[0] + planes[1] * LUMA_2020[1] + planes[2] * LUMA_2020[2]
        gain = np.power(scene, np.float32(0.2)) * np.float32(HLG_PEAK_NITS / SDR_NITS)
    peak = np.maximum(np.maximum(planes[0], planes[1]), planes[2])  # (numpy's max over an axis of 3: ~10x slower)
    if gain is not None:
        peak *= gain
    # the largest colour kept up to KNEE, rolled off above it towards 1: each colour scaled alike
    rolled = np.float32(KNEE) - np.float32(1 - KNEE) * np.expm1((np.float32(KNEE) - peak) / np.float32(1 - KNEE))
    kept = np.where(peak > KNEE, rolled / np.maximum(peak, np.float32(1e-12)), np.float32(1.0))
    if gain is not None:
        kept *= gain
    for plane in planes:  # in place, a plane at a time (a broadcast over the last axis is slower)
        plane *= kept
    if bt2020:
        cv2 = opencv()  # the video extra has it; numpy's matmul gives the same within float32's rounding
        light = light @ TO_709 if cv2 is None else cv2.transform(light, np.ascontiguousarray(TO_709.T))
    np.clip(light, 0.0, 1.0, out=light)
    light *= np.float32(65535.0)
    light += np.float32(0.5)
    srgb: np.ndarray = _srgb()[light.astype(np.uint16)]
    return srgb


@functools.lru_cache(maxsize=2)
def _light(transfer: int) -> np.ndarray:
    """Signal (0..65535) -> light: HLG's inverse OETF (scene light, 0..1), or PQ's EOTF in SDR_NITS."""
    e = np.arange(65536, dtype=np.float64) / 65535.0
    if transfer == HLG:
        a, b, c = 0.17883277, 0.28466892, 0.55991073
        light = np.where(e <= 0.5, e * e / 3.0, (np.exp((e - c) / a) + b) / 12.0)
    else:
        m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 32, 3424 / 4096, 2413 / 128, 2392 / 128
        p = e ** (1 / m2)
        light = 10000.0 * (np.maximum(p - c1, 0.0) / (c2 - c3 * p)) ** (1 / m1) / SDR_NITS
    return light.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _srgb() -> np.ndarray:
    """Linear light (0..1 in 65536 steps) -> 8-bit sRGB."""
    lin = np.arange(65536, dtype=np.float64) / 65535.0
    encoded = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.round(encoded * 255.0).astype(np.uint8)
