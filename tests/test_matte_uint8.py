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
    expected = P._to_uint8(P._minmax(x)) if minmax else P._to_uint8(x)
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
