"""A stand-in for U2-Net-p's weights: a three-node ONNX graph with the real file's input and output
(`input.1` [1,3,320,320] -> `1959` [1,1,320,320]), alpha = sigmoid(4 * the mean of the channels).
`rmbg.get_provider("u2netp", weights=...)` (or RMBG_U2NETP_PATH) runs it as the real file: the same
resize, normalisation, min-max and engine, in about 1 % of the real forward's CPU time. For the tests
whose check does not depend on what the real model sees (how chunks are handed out, a stop, a resume);
its mattes still follow each frame's content, so a frame paired with another's matte shows."""

from __future__ import annotations

from pathlib import Path

from tests.support.tiers import uses


@uses("onnxruntime")  # run as U2-Net-p is (ONNX Runtime, or OpenVINO where installed): the `model` tier
def write_stand_in_u2netp(path: Path) -> Path:
    from onnx import TensorProto, helper

    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [4.0])
    nodes = [
        helper.make_node("ReduceMean", ["input.1"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean", "scale"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["1959"]),
    ]
    graph = helper.make_graph(
        nodes,
        "stand-in-u2netp",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 320, 320])],
        [helper.make_tensor_value_info("1959", TensorProto.FLOAT, [1, 1, 320, 320])],
        [scale],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path
