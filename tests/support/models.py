"""Inputs for the local models' tests: a synthetic photo, a real DAVIS frame, a
tiny IS-Net-shaped ONNX graph, deterministic BiRefNet_lite weights (or any built
network's), and a local HTTP server that serves a weights file (and counts the downloads)."""

from __future__ import annotations

import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hfcache import deterministic_state, read_keys

ROOT = Path(__file__).resolve().parents[2]  # not from tests.support.app: that imports the web app
PHOTO = ROOT / "data" / "davis2016-sample" / "images" / "dog_00000.jpg"
LITE_KEYS_FILE = ROOT / "tests" / "fixtures" / "birefnet-lite.keys.tsv"
SMALL = (224, 224)  # 224/4 = 56 = 8 windows of 7: Swin-T's own padding path, unlike Swin-L's 12


def scene(width=160, height=120) -> Image.Image:
    """A fixed synthetic photo: a warm disc on a cool gradient."""
    ys, xs = np.mgrid[0:height, 0:width]
    bg = np.stack([xs * 0.3, ys * 0.5 + 40, 180 - xs * 0.2], -1)
    disc = ((xs - width * 0.55) ** 2 + (ys - height * 0.5) ** 2) < (height * 0.3) ** 2
    bg[disc] = (230, 120, 40)
    return Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8), "RGB")


def photo(name: str = "dog_00000") -> Image.Image:
    """A real photo: a frame of the DAVIS 2016 sample (data/davis2016-sample/images)."""
    return Image.open(PHOTO.parent / f"{name}.jpg").convert("RGB")


def tiny_isnet_graph() -> bytes:
    """input_image [1,3,H,W] -> output_image = sigmoid(4 * mean over channels), [1,1,H,W]."""
    return mean_sigmoid_graph("tiny-isnet", "input_image", "output_image", ("h", "w"))


def mean_sigmoid_graph(name: str, input_name: str, output_name: str, size: tuple) -> bytes:
    """An ONNX graph `input_name` [1,3,*size] -> `output_name` = sigmoid(4 * mean over channels), [1,1,*size]
    (`size`: numbers, or names for sizes left open): a model's inputs and outputs at a tiny cost."""
    from onnx import TensorProto, helper

    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [4.0])
    nodes = [
        helper.make_node("ReduceMean", [input_name], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean", "scale"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], [output_name]),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, *size])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [1, 1, *size])],
        [scale],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


@pytest.fixture(name="graph")
def tiny_isnet_file(tmp_path, monkeypatch):
    """The tiny IS-Net graph as an isnet-general-use.onnx file, with a matte cache of the test's own."""
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "isnet-general-use.onnx"
    path.write_bytes(tiny_isnet_graph())
    return path


def lite_weights() -> bytes:
    """Deterministic BiRefNet_lite weights (seed 0) as a safetensors file, with Swin-T's real position index."""
    from safetensors.torch import save

    from rmbg.models import swin

    state = deterministic_state(read_keys(LITE_KEYS_FILE), seed=0)
    for key in state:
        if key.endswith("relative_position_index"):
            state[key] = swin.relative_position_index(7)
    return save(state, metadata={"format": "pt"})


def network_weights(net, seed: int = 0) -> bytes:
    """Deterministic weights (seed) for a built network's own state-dict keys, as a safetensors file, with each
    Swin window's real position index: weights for a stand-in network that no checkpoint's key list describes."""
    from safetensors.torch import save

    from rmbg.models import swin

    keys = [(key, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for key, t in net.state_dict().items()]
    state = deterministic_state(keys, seed=seed)
    for key in state:
        if key.endswith("relative_position_index"):
            state[key] = swin.relative_position_index(math.isqrt(state[key].shape[0]))
    return save(state, metadata={"format": "pt"})


class WeightsServer:
    """A real HTTP server on 127.0.0.1 serving one file; counts the GETs."""

    def __init__(self, payload: bytes):
        self.payload, self.gets = payload, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.gets += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(owner.payload)))
                self.end_headers()
                self.wfile.write(owner.payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/isnet-general-use.onnx"

    def close(self):
        self.server.shutdown()
        self.server.server_close()
