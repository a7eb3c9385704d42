"""Building a PyTorch network and loading its safetensors file into it, strictly.

Called on the process's PyTorch thread (torch_thread) by the local torch
provider (torch_backend), and by the OpenVINO backend before it converts a
network.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def load_network(builder: Callable[[], Any], path, device: str, dtype, *, matmul_bf16: bool = False) -> Any:
    """Build the network, load the safetensors file with strict=True, move it.

    The network is built on the meta device and takes the file's tensors as
    its own (assign=True): the weights are in memory once, not twice (880 MB
    saved for Swin-L). In fp32 they stay views of the file's memory map.

    matmul_bf16 (CPU bf16 autocast): Linear and conv weights are stored in
    bf16, everything else (biases, norms, position-bias tables) in fp32, as
    they are read; `dtype` is then not applied. The weights are what autocast
    would cast them to on every forward, cast once: half the weight memory,
    no per-call casts. The fp32 tensors are copied out of the map, so that no
    view keeps the whole file resident beside the bf16 copies (843 MB for
    RMBG-2.0)."""
    import torch
    from safetensors.torch import load_file
    from torch import nn

    from ...errors import ModelUnavailableError

    with torch.device("meta"):
        net = builder()
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for a bad file
        raise ModelUnavailableError(
            f"{os.path.basename(str(path))} is not a readable safetensors file: {exc}"
        ) from None
    if matmul_bf16:
        matmul = {
            f"{name}.weight" for name, module in net.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d))
        }
        state = {key: t.to(torch.bfloat16) if key in matmul else t.clone() for key, t in state.items()}
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelUnavailableError(
            f"{os.path.basename(str(path))} does not match this network ({first}). Is it the right model file?"
        ) from None
    left = [name for name, t in (*net.named_parameters(), *net.named_buffers()) if t.is_meta]
    if left:  # a tensor the file does not hold (a non-persistent buffer): a bug in the builder
        raise RuntimeError(f"{len(left)} tensors were not in the state dict, e.g. {left[0]}")
    net.requires_grad_(False)
    if matmul_bf16:
        return net.to(device=device).eval()
    return net.to(device=device, dtype=dtype).eval()
