"""When local models replay CUDA graphs (rmbg.providers.local.cuda_graph):
on a CUDA GPU unless RMBG_CUDA_GRAPHS is off or the process is a ZeroGPU
Space's. What a replay computes is checked on a GPU (tests/test_cuda.py)."""

from __future__ import annotations

import pytest

from rmbg.providers.local import cuda_graph


def test_graphs_only_on_a_cuda_gpu_and_not_on_zerogpu(monkeypatch):
    monkeypatch.delenv("RMBG_CUDA_GRAPHS", raising=False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert [cuda_graph.enabled(d) for d in ("cuda", "cpu", "mps")] == [True, False, False]
    monkeypatch.setenv("RMBG_CUDA_GRAPHS", "OFF")
    assert cuda_graph.enabled("cuda") is False
    monkeypatch.setenv("RMBG_CUDA_GRAPHS", "auto")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert cuda_graph.enabled("cuda") is False


def test_a_misspelt_switch_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("RMBG_CUDA_GRAPHS", "yes")
    with pytest.raises(ValueError, match=r"RMBG_CUDA_GRAPHS='yes': expected auto or off"):
        cuda_graph.enabled("cuda")
