"""IS-Net general use (DIS, Apache-2.0): an ungated model, fetched once with a pinned checksum.

The network is RMBG-1.4's (IS-Net) with DIS's general-use weights, run through
the ONNX backend with the publisher's recipe (rmbg.models.specs.ISNET_GENERAL):
by ONNX Runtime in fp32, or, where the openvino extra is installed and the CPU has
bf16 units (AVX512-BF16 or AMX), by OpenVINO in bf16, the fastest CPU path that
passes the precision gate (0.24x ONNX Runtime's time on trained weights: docs/cpu.md;
the engine's choice: rmbg.providers.local.engines).
The publisher (xuebinqin/DIS) hands out `isnet-general-use.pth` on Google
Drive and Baidu Pan only: no stable download address and no checksum. Its
ONNX export, `isnet-general-use.onnx` (178,648,008 bytes), is a release asset
of the rembg project on GitHub, with a stable address and a widely recorded
SHA-256; that file is what we fetch, with pooch, and pooch refuses any bytes
whose SHA-256 is not the pinned one.

Lookup order: an explicit `weights` path (taken as given), then the cache file
<cache dir>/isnet-general-use.onnx when its SHA-256 is the pinned one, else a
download into the cache (unless RMBG_OFFLINE is set). The cache dir is the
one U2-Net-p uses (RMBG_CACHE_DIR, else $XDG_CACHE_HOME/rmbg, else ~/.cache/rmbg).

Environment:
- RMBG_ISNET_GENERAL_URL: download from this address instead (a mirror of the
  same file: the pinned SHA-256 still applies).
- RMBG_ISNET_GENERAL_SHA256: the SHA-256 of the file at that address, for a
  mirror that serves a re-export; used only together with RMBG_ISNET_GENERAL_URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import ModelUnavailableError, with_remedy
from ...models.specs import ISNET_GENERAL
from .engines import ENGINES, Engine, OpenVinoPath
from .onnx_backend import OnnxProvider, WeightsSource
from .pinned import ENV_OFFLINE, PinnedFile, cache_dir, offline

FILE = "isnet-general-use.onnx"
SHA256 = "60920e99c45464f2ba57bee2ad08c919a52bbf852739e96947fbb4358c0d964a"
ENV_URL = "RMBG_ISNET_GENERAL_URL"
ENV_SHA256 = "RMBG_ISNET_GENERAL_SHA256"
PINNED = PinnedFile(
    file=FILE,
    url=f"https://github.com/danielgatis/rembg/releases/download/v0.0.0/{FILE}",
    sha256=SHA256,
    size_mb=179,
    env_url=ENV_URL,
    env_sha256=ENV_SHA256,
)


def find(weights: str | os.PathLike | None = None) -> Path | None:
    """The weights file to use without downloading, or None when there is none yet."""
    if weights is not None:
        given = Path(weights).expanduser()
        if not given.is_file():
            raise ModelUnavailableError(f"isnet-general weights: file not found: {given}")
        return given
    return PINNED.find()


def ensure(weights: str | os.PathLike | None = None) -> Path:
    """find(), else a download into the cache unless RMBG_OFFLINE is set."""
    found = find(weights)
    if found is not None:
        return found
    if offline():
        url, sha256 = PINNED.shown(), PINNED.source()[1]
        raise with_remedy(
            ModelUnavailableError(
                f"{FILE} is not in {cache_dir()} and {ENV_OFFLINE} forbids downloading it ({url}, SHA-256 {sha256})."
            ),
            "weights",
            f"{FILE} is not on this machine and downloads are switched off here.",
        )
    return PINNED.fetch()


def status(weights: str | os.PathLike | None = None) -> tuple[str, str]:
    """("ready" | "unavailable", message). No download; when the file is not
    here, one shared, cached probe of its download host (about a second at most)."""
    try:
        given = find(weights) if weights is not None else None
    except ModelUnavailableError as exc:
        return "unavailable", str(exc)
    if given is not None:
        return "ready", f"local weights {given.name}"
    return PINNED.status()


def isnet_general(
    *,
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    threads: int | None = None,
    engine: Engine = "auto",
) -> OnnxProvider:
    """IS-Net general use (Apache-2.0, ungated); see the module doc. engine: "auto" runs it through
    OpenVINO bf16 on a CPU with bf16 units where the openvino extra is installed, else ONNX Runtime
    fp32; "onnxruntime" always ONNX Runtime (exact fp32); "openvino" OpenVINO, in bf16 where the CPU
    has bf16 units, else exact fp32. The provider's `engine`, `precision`, options() and each
    matte's meta say which runs."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}")
    label = str(weights) if weights is not None else f"{FILE} sha256 {SHA256[:12]}"
    weights_source = WeightsSource(path=lambda: ensure(weights), status=lambda: status(weights), label=label)
    return OnnxProvider(
        ISNET_GENERAL,
        weights_source,
        precision="fp32",
        device=device,
        threads=threads,
        engine=engine,
        openvino=OPENVINO,
    )


def _openvino(path: Path, threads: int, precision: str) -> Callable[[], Any]:
    """A loader of OpenVINO's compiled model of the file (imported only when used; openvino_backend.compiled_loader)."""
    from .openvino_backend import compiled_loader

    return compiled_loader("isnet-general", precision, path, [], threads)


# bf16 where the CPU has bf16 units, which "auto" takes; its fp32 is no faster than ONNX Runtime's (docs/cpu.md)
OPENVINO = OpenVinoPath(_openvino, bf16=True, auto=("bf16",))
