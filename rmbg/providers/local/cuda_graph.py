"""A local network's CUDA forward replayed from a captured graph.

At batch 1 a CUDA forward of our networks is bound by the host, not the GPU:
Python and the dispatcher issue each of its kernels one by one (about 4,400
for RMBG-2.0, 1,900 for BiRefNet_lite, 1,200 for RMBG-1.4, counted with
torch.profiler on an H100) and the GPU waits between them. A captured graph
(torch.cuda.CUDAGraph) records the kernels of one forward once and launches
them all in one call after: in fp16 on an H200, RMBG-2.0's forward took 55 ms
eagerly and 33 ms replayed, BiRefNet_lite's 50 and 19 ms
(benchmarks/results/cuda.json, docs/performance.md).

A graph is fixed to its input's shape and dtype and to the buffers it read and
wrote: it is captured per network and input shape (at most MAX_SHAPES each;
a further shape runs eagerly), its input copied into the captured input
buffer, and its output read from the captured output before the next replay
(the forward's caller copies it to the host at once, under the pool's device
lock). Replays compute what the eager forward computes, kernel for kernel.
A graph keeps its forward's working memory allocated for as long as its
network is loaded.

RMBG_CUDA_GRAPHS: "auto" (unset) captures on a CUDA GPU, "off" never does.
ZeroGPU Spaces never capture (not measured there: a call holds its GPU only
for its own duration). A capture that fails leaves that network eager for
good, with one warning in the log.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from ...settings import current
from .device import on_zerogpu

MAX_SHAPES = 2  # a forward at the model's size, and one other (a caller's own batch, say)

log = logging.getLogger(__name__)


class _Capture:
    """One network's graph at one input shape: its input buffer and its output."""

    def __init__(self, net: Any, example: Any) -> None:
        import torch

        self.input = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # lazy initialisations (cuBLAS, cuDNN plans) stay out of the graph
            for _ in range(2):
                net(self.input)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = net(self.input)

    def run(self, tensor: Any) -> Any:
        self.input.copy_(tensor)
        self.graph.replay()
        return self.output


_captures: weakref.WeakKeyDictionary[Any, dict[tuple, _Capture]] = weakref.WeakKeyDictionary()
_eager: weakref.WeakSet[Any] = weakref.WeakSet()  # networks whose capture failed


def enabled(device: str) -> bool:
    """Whether forwards on `device` replay graphs (RMBG_CUDA_GRAPHS, not on ZeroGPU)."""
    if device != "cuda" or on_zerogpu():
        return False
    return current().choice("RMBG_CUDA_GRAPHS", ("auto", "off"), "auto") == "auto"


def forward(net: Any, tensor: Any) -> Any:
    """net(tensor), through a graph captured for this network and the tensor's
    shape and dtype; eagerly past MAX_SHAPES or after a failed capture.
    The output belongs to the graph: read it before the next forward of `net`."""
    if net in _eager:
        return net(tensor)
    shapes = _captures.setdefault(net, {})
    key = (tuple(tensor.shape), tensor.dtype)
    capture = shapes.get(key)
    if capture is None:
        if len(shapes) >= MAX_SHAPES:
            return net(tensor)
        try:
            capture = shapes[key] = _Capture(net, tensor)
        except Exception as exc:  # the network stays eager; its result is still computed below
            _eager.add(net)
            _captures.pop(net, None)
            log.warning("CUDA graph capture failed (%s: %s); this model runs eagerly", type(exc).__name__, exc)
            return net(tensor)
    return capture.run(tensor)


def captured_shapes(net: Any) -> list[tuple]:
    """The (shape, dtype) keys captured for `net` (for tests and benchmarks)."""
    return list(_captures.get(net, {}))
