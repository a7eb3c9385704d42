"""Whether the network is being captured as a graph rather than run eagerly.

The eager network computes some products a block at a time to bound its
memory: Swin's MLP and window attention, and the CPU deformable convolution
(embedding_bag blocks written in place with out=). Captured, those blocks
unroll into Python loops over slices written in place, which OpenVINO's
converter cannot take (TorchScript: aten::add with out=; torch.export at
1024²: a slice_scatter with a ragged last block). So while a graph is being
captured (TorchScript tracing, or torch.export), the network takes the
whole-map products instead: the same sums, grouped in one block, and the
deformable convolution as grid_sample (the GPU version). Eager runs, and
torch.compile, never see this switch.
"""

from __future__ import annotations

import torch


def capturing() -> bool:
    """True while torch.jit.trace or torch.export is recording the network."""
    return torch.jit.is_tracing() or torch.compiler.is_exporting()
