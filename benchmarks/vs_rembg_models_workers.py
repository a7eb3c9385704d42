"""benchmarks/vs_rembg_models.py's worker processes: one library and configuration each
("rembg SESSION" or "rmbg MODEL CONFIG"), so no one's thread pools run on through another's
calls. Run by vs_rembg_models.py only.

rembg's sessions find our exported files through U2NET_HOME (set by the parent), rmbg's
providers read the files named in the job's "files".
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from vs_rembg_workers import answer_output, rembg_outputs, rmbg_outputs


def noisy(path: Path) -> Image.Image:
    """The photo moved by at most one grey level per pixel and channel (the same draw each time)."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    moved = rgb + np.random.default_rng(0).integers(-1, 2, size=rgb.shape)
    return Image.fromarray(np.clip(moved, 0, 255).astype(np.uint8))


def birefnet_onnx(path: str) -> Any:
    """Our ONNX Runtime provider on the exported BiRefNet_lite: birefnet-lite's recipe, the export's graph."""
    from rmbg.models.specs import BIREFNET_VARIANTS
    from rmbg.providers.local.onnx_backend import OnnxProvider, WeightsSource

    spec = BIREFNET_VARIANTS["birefnet-lite"].spec  # input_image -> output_image (logits), as the export
    source = WeightsSource(path=lambda: Path(path), status=lambda: ("ready", path), label=Path(path).name)
    return OnnxProvider(spec, source, precision="fp32", device="cpu")


def provider(model: str, config: str, files: dict[str, str]) -> Any:
    """rmbg's provider for one configuration: "onnxruntime", "torch-fp32", "torch-bf16", "openvino-fp32"."""
    import rmbg

    if model == "isnet-general":
        # ONNX Runtime, as rembg runs it: the same engine on both sides (the default may be OpenVINO bf16)
        return rmbg.get_provider("isnet-general", weights=files["isnet-general"], device="cpu", engine="onnxruntime")
    if config == "onnxruntime":
        return birefnet_onnx(files["birefnet-lite-onnx"])
    if config == "openvino-fp32":
        from rmbg.providers.local.openvino_backend import openvino_provider

        return openvino_provider("birefnet-lite", weights=files["birefnet-lite"], precision="fp32")
    precision = config.removeprefix("torch-")
    return rmbg.get_provider("birefnet-lite", weights=files["birefnet-lite"], device="cpu", precision=precision)


# rmbg's RGBA PNG doing rembg's work: the photo's colours at soft edges, no edge-colour estimate
SAME_WORK = "RGBA PNG, edge colours off"


def same_work(chosen: Any, path: Path) -> bytes:
    from rmbg import remove_background
    from rmbg.types import RenderOptions

    return remove_background(path, chosen, cache=None, options=RenderOptions(edge_colours=False)).encode("png")


def serve(side: str, files: dict[str, str]) -> None:
    """One JSON job per stdin line: {"image", "save", "output"}: that output's bytes, timed from
    the path, saved where asked; rembg only, {"image", "save", "noisy": true}: its mask PNG of the
    photo moved by one grey level (noisy()). One JSON answer per line."""
    library, model, *config = side.split(" ")
    session = None
    if library == "rembg":
        from rembg import new_session, remove

        session = new_session(model)
        outputs = rembg_outputs(session)
        outputs[SAME_WORK] = outputs["RGBA PNG"]  # rembg's cut-out keeps the photo's colours at soft edges
    else:
        chosen = provider(model, config[0], files)
        outputs = rmbg_outputs(chosen)
        outputs[SAME_WORK] = partial(same_work, chosen)
    for line in sys.stdin:
        job = json.loads(line)
        path = Path(job["image"])
        if job.get("noisy"):
            remove(noisy(path), session=session, only_mask=True).save(job["save"])
            print(json.dumps({"seconds": 0.0, "bytes": 0}), flush=True)
            continue
        answer_output(job, outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", required=True)
    job = json.loads(parser.parse_args().worker)
    serve(job["name"], job["files"])


if __name__ == "__main__":
    main()
