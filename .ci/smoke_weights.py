"""Stand-in weights for the install smoke (.ci/smoke_app.py), written with the standard library only.

The smoke runs on exactly what the README's first command installs, offline: no real model file,
and not the `onnx` package (a dev requirement). So the two ONNX models it needs are encoded here
by hand, as the protobuf messages of onnx.proto (field numbers from that file): one ReduceMean
over the colour channels, under the input and output names of U2-Net-p's and IS-Net general's
exports. ONNX Runtime runs them like the real files; the app min-max stretches the output, so a
matte has both a cut-away background and a kept subject (the image's dark and bright parts).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# (input name, output name) of each export (rmbg.models.specs: onnx_input, onnx_output).
U2NETP_IO = ("input.1", "1959")
ISNET_GENERAL_IO = ("input_image", "output_image")

_INT64, _FLOAT32 = 7, 1  # AttributeProto.INTS; TensorProto.FLOAT


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _tensor_value(name: str, dims: tuple[int | str, ...]) -> bytes:
    """ValueInfoProto: a float tensor; an int is a fixed dimension, a str a named (dynamic) one."""
    shape = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in dims)
    tensor_type = _int(1, _FLOAT32) + _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def channel_mean_onnx(io: tuple[str, str]) -> bytes:
    """A ModelProto (opset 13): output [1,1,H,W] = the mean of input [1,3,H,W] over its channels."""
    source, target = io
    axes = _bytes(1, "axes") + _int(8, 1) + _int(20, _INT64)
    keepdims = _bytes(1, "keepdims") + _int(3, 1) + _int(20, 2)  # AttributeProto.INT
    node = _bytes(1, source) + _bytes(2, target) + _bytes(3, "mean") + _bytes(4, "ReduceMean")
    node += _bytes(5, axes) + _bytes(5, keepdims)
    graph = _bytes(1, node) + _bytes(2, "channel-mean")
    graph += _bytes(11, _tensor_value(source, (1, 3, "h", "w"))) + _bytes(12, _tensor_value(target, (1, 1, "h", "w")))
    opset = _bytes(1, "") + _int(2, 13)
    return _int(1, 8) + _bytes(2, "rmbg-smoke") + _bytes(7, graph) + _bytes(8, opset)


def write_models(folder: Path) -> dict[str, str]:
    """Writes both stand-ins into `folder` (IS-Net general's under the name its cache uses); returns the
    environment that makes the app and the CLI find them: RMBG_U2NETP_PATH, RMBG_CACHE_DIR and the
    SHA-256 that IS-Net general's cached file must have."""
    folder.mkdir(parents=True, exist_ok=True)
    u2netp = folder / "u2netp-smoke.onnx"
    u2netp.write_bytes(channel_mean_onnx(U2NETP_IO))
    isnet = channel_mean_onnx(ISNET_GENERAL_IO)
    (folder / "isnet-general-use.onnx").write_bytes(isnet)
    return {
        "RMBG_U2NETP_PATH": str(u2netp),
        "RMBG_CACHE_DIR": str(folder),
        "RMBG_ISNET_GENERAL_SHA256": hashlib.sha256(isnet).hexdigest(),
    }
