"""The matte's last step (min-max stretch, x255, clip, truncate to uint8) done in place gives the
bytes of the step-by-step formulas, leaves an input it may not write untouched, and allocates no
full-size float buffer beyond the resized map it is handed."""

from __future__ import annotations

import tracemalloc

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rmbg.models.specs import ISNET_GENERAL
from rmbg.providers.local import processing as P


def _step_by_step(x: np.ndarray, minmax: bool) -> np.ndarray:
    """The recipe's formulas one new array at a time: min-max stretch (a constant map is all
    background), x 255, clip, truncate to uint8."""
    if minmax:
        lo, hi = float(x.min()), float(x.max())
        x = np.zeros_like(x) if hi <= lo else (x - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(x * np.float32(255.0), 0, 255).astype(np.uint8)


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    scale=st.sampled_from([1e-4, 0.01, 1.0, 7.0]),
    offset=st.sampled_from([0.0, 0.5, -2.0, 3.0]),
    constant=st.booleans(),
    minmax=st.booleans(),
    writeable=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_in_place_gives_the_step_by_step_bytes(h, w, scale, offset, constant, minmax, writeable, seed):
    x = (np.random.default_rng(seed).standard_normal((h, w)) * scale + offset).astype(np.float32)
    if constant:
        x[:] = x.flat[0]
    expected = _step_by_step(x, minmax)
    given_map = x.copy()
    given_map.flags.writeable = writeable
    got = P._stretched_uint8(given_map, minmax)
    assert got.dtype == np.uint8 and np.array_equal(got, expected)
    if not writeable:
        assert np.array_equal(given_map, x)  # read-only: not written


def test_a_large_matte_allocates_no_float_buffer_beyond_the_resized_map():
    prob = np.random.default_rng(0).random((256, 256), dtype=np.float32)
    size = (2000, 1500)  # width, height: 12 MB of float32 once resized
    one_map = size[0] * size[1] * 4
    tracemalloc.start()
    try:
        matte = P.postprocess(prob, ISNET_GENERAL, size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert matte.size == size and matte.mode == "L"
    # the resized float32 map, the uint8 matte and Pillow's copy of it; the step-by-step
    # formulas held three float32 maps at once (about 3.5 maps)
    assert peak < 1.6 * one_map, peak / one_map


def test_a_matte_quantized_at_network_size_leaves_the_forward_output_as_it_was():
    """U2-Net-p (stretched) and RMBG-2.0 (not) turn the network's map into uint8 before any
    resize: the map the forward returned is not written, and the bytes are the formulas'."""
    from rmbg.models.specs import RMBG_20, U2NETP

    for spec in (U2NETP, RMBG_20):
        prob = np.random.default_rng(1).random((64, 48), dtype=np.float32) * 0.8 + 0.1
        kept = prob.copy()
        matte = P.postprocess(prob, spec, (48, 64))  # the network's own size: no resize after
        assert np.array_equal(prob, kept)
        assert np.array_equal(np.asarray(matte), _step_by_step(kept, spec.minmax))
