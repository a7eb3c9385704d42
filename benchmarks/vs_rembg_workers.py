"""benchmarks/vs_rembg.py's worker processes: one library each ("rembg", or "rmbg ENGINE"),
so neither one's thread pools run on through the other's calls. Run by vs_rembg.py only."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from PIL import Image

from harness import timed

COLOUR = (51, 102, 204)


def rembg_image(session: Any, path: Path, output: str) -> Image.Image:
    """rembg's output image for `output`, before encoding."""
    from rembg import remove

    if output == "mask PNG":
        return remove(Image.open(path), session=session, only_mask=True)
    if output == "colour JPEG":
        return remove(Image.open(path), session=session, bgcolor=(*COLOUR, 255)).convert("RGB")
    return remove(Image.open(path), session=session)


def rembg_encode(image: Image.Image, output: str) -> bytes:
    """What a rembg user writes: Pillow's PNG defaults (rembg's own bytes output),
    lossless WebP, JPEG at quality 95."""
    buf = io.BytesIO()
    if output == "WebP":
        image.save(buf, "WEBP", lossless=True)
    elif output == "colour JPEG":
        image.save(buf, "JPEG", quality=95)
    else:
        image.save(buf, "PNG")
    return buf.getvalue()


def rembg_outputs(session: Any) -> dict[str, Callable[[Path], bytes]]:
    from rembg import remove

    def run(output: str) -> Callable[[Path], bytes]:
        return lambda path: rembg_encode(rembg_image(session, path, output), output)

    # The PNGs through rembg's own bytes-in, bytes-out path.
    return {
        "RGBA PNG": lambda path: remove(path.read_bytes(), session=session),
        "WebP": run("WebP"),
        "mask PNG": lambda path: remove(path.read_bytes(), session=session, only_mask=True),
        "colour JPEG": run("colour JPEG"),
    }


FORMAT = {"RGBA PNG": "png", "WebP": "webp", "mask PNG": "png", "colour JPEG": "jpeg"}
OUTPUTS = tuple(FORMAT)


def same_pixels_ratio(session: Any, path: Path, output: str) -> float:
    """Bytes of rmbg's encoder over rembg's on the very same pixels (rembg's)."""
    from rmbg.image.compose import encode

    image = rembg_image(session, path, output)
    return len(encode(image, FORMAT[output])) / len(rembg_encode(image, output))


def rmbg_outputs(chosen: Any = "u2netp") -> dict[str, Callable[[Path], bytes]]:
    """rmbg's four outputs through `chosen` (a provider id or a provider), nothing cached."""
    from rmbg import remove_background

    def run(fmt: str, **kwargs: Any) -> Callable[[Path], bytes]:
        return lambda path: remove_background(path, chosen, cache=None, **kwargs).encode(fmt)

    return {
        "RGBA PNG": run("png"),
        "WebP": run("webp"),
        "mask PNG": run("png", mask_only=True),
        "colour JPEG": run("jpeg", background=COLOUR),
    }


def serve(side: str) -> None:
    """Worker side: one library ("rembg", or "rmbg ENGINE") in this process, one JSON job per
    stdin line ({"image", "save", "output"}: that output's bytes, timed from the path, saved
    where asked; {"image", "same_pixels": output}: same_pixels_ratio; or, rembg only,
    {"image", "forward": runs}: the median seconds of its forward pass alone), one answer per line."""
    library, _, engine = side.partition(" ")
    if engine:
        os.environ["RMBG_U2NETP_ENGINE"] = engine
    session = None
    if library == "rembg":
        from rembg import new_session

        session = new_session("u2netp")
        outputs = rembg_outputs(session)
    else:
        outputs = rmbg_outputs()
    for line in sys.stdin:
        job = json.loads(line)
        path = Path(job["image"])
        if "same_pixels" in job:
            print(json.dumps({"ratio": same_pixels_ratio(session, path, job["same_pixels"])}), flush=True)
            continue
        if "forward" in job:  # rembg's forward pass alone, on its own network input
            x = session.normalize(Image.open(path), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), (320, 320))
            timing, _ = timed(partial(session.inner_session.run, None, x), int(job["forward"]))
            print(json.dumps({"seconds": timing.median}), flush=True)
            continue
        answer_output(job, outputs)


def answer_output(job: dict[str, Any], outputs: dict[str, Callable[[Path], bytes]]) -> None:
    """The job's output made from its image path, timed from the path, saved where asked; its
    seconds and size printed as one JSON line (the parent's answer)."""
    start = time.perf_counter()
    data = outputs[job["output"]](Path(job["image"]))
    seconds = time.perf_counter() - start
    if job["save"]:
        Path(job["save"]).write_bytes(data)
    # how this worker's OpenMP threads wait (rmbg sets GOMP_SPINCOUNT when its torch backend loads)
    omp = {k: os.environ[k] for k in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY") if k in os.environ}
    print(json.dumps({"seconds": seconds, "bytes": len(data), "omp": omp}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", required=True)
    serve(json.loads(parser.parse_args().worker)["name"])


if __name__ == "__main__":
    main()
