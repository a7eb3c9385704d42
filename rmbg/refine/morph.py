"""Binary morphology on numpy arrays (no SciPy/OpenCV needed).

Square structuring elements, separable: a dilation by radius r is a running
maximum over 2r+1 pixels along rows, then along columns. Outside the image
counts as "not set", so a mask touching the border does not grow from it and
erosion treats the border as background (what a trimap wants: an object cut
by the frame is still certain at the frame).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _running_max(mask: np.ndarray, radius: int, axis: int) -> np.ndarray:
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius, radius)
    padded = np.pad(mask, pad, mode="constant", constant_values=False)
    return sliding_window_view(padded, 2 * radius + 1, axis=axis).max(axis=-1)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Boolean mask grown by `radius` pixels (square, Chebyshev distance)."""
    mask = np.asarray(mask, dtype=bool)
    if radius <= 0:
        return mask.copy()
    return _running_max(_running_max(mask, radius, 0), radius, 1)


def erode(mask: np.ndarray, radius: int, *, border_is_set: bool = True) -> np.ndarray:
    """Boolean mask shrunk by `radius` pixels (square).

    border_is_set: pixels beyond the frame count as set, so a subject that
    touches the image edge is not eaten away from the edge.
    """
    mask = np.asarray(mask, dtype=bool)
    if radius <= 0:
        return mask.copy()
    inverse = ~mask
    if border_is_set:
        grown = dilate(inverse, radius)
    else:
        framed = np.pad(inverse, radius, mode="constant", constant_values=True)
        grown = dilate(framed, radius)[radius:-radius, radius:-radius]
    return ~grown
