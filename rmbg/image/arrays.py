"""Pixel arrays in numpy, with OpenCV's loops where it is installed.

OpenCV is optional for the package (the app's install and the video extra
have it): each function here has a numpy path giving the same array.
OpenCV's calls used here run on the calling thread and release the GIL, so
they stay within the thread budget (rmbg.threads) of whoever calls them.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np


def opencv() -> ModuleType | None:
    """OpenCV's module where it is installed, else None. Imported whatever the work's size, so
    that one install always takes the same path: OpenCV's box sums and numpy's differ by about
    1e-5, which can move an edge colour by one grey level (a cut-out must not depend on what
    the process did before it). Its import takes about 0.1 s of CPU; the web app's warm-up
    takes it at start (rmbg.webapp.warmup)."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def rgba(rgb: np.ndarray, alpha: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The cut-out's RGBA (HxWx4 uint8, contiguous: `out` when given, else a new array) from RGB
    (HxWx3) and alpha (HxW): colour kept where alpha > 0, zeroed where it is 0 (never seen, and
    it costs no bits). With OpenCV a masked copy and a merge, about a third of numpy's time
    (archived benchmarks/video_stages.py); the same array as `rgba_numpy`."""
    cv2 = opencv()
    if cv2 is None:
        made = rgba_numpy(rgb, alpha)
        if out is None:
            return made
        np.copyto(out, made)
        return out
    seen = cv2.threshold(alpha, 0, 255, cv2.THRESH_BINARY)[1]  # 255 where alpha > 0
    rgb = np.ascontiguousarray(rgb)
    return np.asarray(cv2.merge([cv2.bitwise_and(rgb, rgb, mask=seen), alpha], dst=out))


def rgba_numpy(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """`rgba`'s definition in numpy (its path without OpenCV)."""
    return np.dstack([np.where(alpha[..., None] == 0, np.uint8(0), rgb), alpha])


def alpha_product(matte: np.ndarray, own: np.ndarray) -> np.ndarray:
    """A matte times an input's own alpha (both H x W uint8), rounded as compositing is: what was
    transparent in the input stays so, whatever the model made of it (an image's, a clip's frame's)."""
    return ((matte.astype(np.uint16) * own.astype(np.uint16) + 127) // 255).astype(np.uint8)
