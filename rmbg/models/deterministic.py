"""Deterministic weights for a network's key list: the tests' tiny caches and
the benchmarks' stand-in weights share them, so a golden image and a timed
forward run the same numbers on every machine.

A key list is a TSV file (key, shape, dtype per line, with a header), such as
tests/fixtures/rmbg-1.4.keys.tsv. numpy is imported here; torch only when a
state dict is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def read_keys(path: Path) -> list[tuple[str, tuple[int, ...], str]]:
    """A key list file (key, shape, dtype per line, with a header)."""
    rows = []
    for line in path.read_text().splitlines()[1:]:
        key, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
        rows.append((key, dims, dtype))
    return rows


def deterministic_state(keys: list[tuple[str, tuple[int, ...], str]], seed: int = 0) -> dict[str, Any]:
    """A state dict for a key list, from numpy's PCG64 only (the same on every
    machine and torch version). Conv/linear weights are He-scaled normals;
    BatchNorm statistics are near identity; index buffers are left to the
    caller (pass `overrides`)."""
    import torch

    rng = np.random.default_rng(seed)
    state: dict[str, Any] = {}
    for key, shape, dtype in keys:
        if dtype == "int64":
            state[key] = torch.zeros(shape, dtype=torch.int64)
            continue
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "running_var":
            arr = 1.0 + 0.1 * np.abs(rng.standard_normal(shape))
        elif leaf == "running_mean":
            arr = 0.05 * rng.standard_normal(shape)
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            arr = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        elif leaf == "weight":  # norm scale
            arr = 1.0 + 0.05 * rng.standard_normal(shape)
        else:  # biases and norm shifts
            arr = 0.02 * rng.standard_normal(shape)
        state[key] = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return state
