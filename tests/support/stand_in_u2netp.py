"""A stand-in for U2-Net-p's weights: a three-node ONNX graph with the real file's input and output
(`input.1` [1,3,320,320] -> `1959` [1,1,320,320]), alpha = sigmoid(4 * the mean of the channels).
`rmbg.get_provider("u2netp", weights=...)` (or RMBG_U2NETP_PATH) runs it as the real file: the same
resize, normalisation, min-max and engine, in about 1 % of the real forward's CPU time. For the tests
whose check does not depend on what the real model sees (how chunks are handed out, a stop, a resume);
its mattes still follow each frame's content, so a frame paired with another's matte shows."""

from __future__ import annotations

from pathlib import Path

from tests.support.models import mean_sigmoid_graph
from tests.support.tiers import uses


@uses("onnxruntime")  # run as U2-Net-p is (ONNX Runtime, or OpenVINO where installed): the `model` tier
def write_stand_in_u2netp(path: Path) -> Path:
    path.write_bytes(mean_sigmoid_graph("stand-in-u2netp", "input.1", "1959", (320, 320)))
    return path
