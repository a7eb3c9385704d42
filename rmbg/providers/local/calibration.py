"""How long each free model takes for a 1 MP photo on this CPU, measured once and kept on disk.

The default model (rmbg.defaults.default_provider) is the best one that
answers within BUDGET_S here, and whether BiRefNet_lite does depends on the
CPU far more than its flags tell (2.6 s to 8 s on 2-core machines). So we
measure: the median of three end-to-end cut-outs of a synthetic 1 MP photo
through the model's own provider (its engine and the precision it would use),
after one warm-up call, with stand-in weights when the real ones are not on
disk yet (speed does not depend on the weights' values, so nothing is
downloaded to decide).

Results are cached in <cache dir>/cpu-calibration.json under a key made of
the CPU model (with its family and model numbers: rmbg.providers.local.cpuinfo),
its SIMD and matrix flags, the usable cores, the instruction-set
caps set for oneDNN and PyTorch (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY) and
the versions of rmbg, torch, onnxruntime and openvino: a new machine, a new
version or a capped run measures again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .cpuinfo import this_cpu
from .pinned import cache_dir
from .torch_thread import passing_call

BUDGET_S = 3.0
# Timed runs after the warm-up, their median kept: on a shared CPU one run can be a tenth
# slower or faster, and BiRefNet_lite sits within that of the budget on some CPUs (2.97 s
# with bf16 on a 2-core Zen 4: docs/cpu.md), where one run would pick the default by chance.
RUNS = 3
PHOTO = (1152, 864)  # 1 MP, 4:3
FILE = "cpu-calibration.json"
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "neon", "asimd")


def machine() -> dict[str, Any]:
    """What the timings depend on: the CPU, its flags, the cores, the versions."""
    from ..._version import __version__
    from .onnx_backend import default_threads

    cpu = this_cpu()
    found: dict[str, Any] = {
        "cpu": cpu.name,
        "flags": [f for f in FLAGS if f in cpu.flags],
        "cores": default_threads(),
        "rmbg": __version__,
        # Instruction-set caps a user may set (an AVX2-class run on a newer CPU): the flags
        # stay the same under them, the speed does not.
        "isa_caps": {
            name: value
            for name, value in (
                ("ONEDNN_MAX_CPU_ISA", os.environ.get("ONEDNN_MAX_CPU_ISA")),
                ("ATEN_CPU_CAPABILITY", os.environ.get("ATEN_CPU_CAPABILITY")),
            )
            if value
        },
    }
    from importlib.metadata import PackageNotFoundError, version

    for package in ("torch", "onnxruntime", "openvino"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:  # not installed: that is part of the key too
            found[package] = "none"
    return found


def machine_key() -> str:
    return hashlib.sha256(json.dumps(machine(), sort_keys=True).encode()).hexdigest()[:16]


def _path() -> Path:
    return cache_dir() / FILE


def _read() -> dict[str, Any]:
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cached(model_id: str, config: str) -> float | None:
    """The stored seconds of `model_id` in `config` (e.g. "bf16-autocast") on this machine, or None."""
    entry = _read().get(machine_key(), {}).get("seconds", {}).get(model_id)
    if isinstance(entry, dict) and entry.get("config") == config:
        return float(entry["s"])
    return None


def store(model_id: str, config: str, seconds: float) -> None:
    """Record one measurement for this machine (atomic replace; a failed write only costs a re-measure)."""
    data, key = _read(), machine_key()
    entry = data.setdefault(key, {"machine": machine(), "seconds": {}})
    entry["seconds"][model_id] = {
        "config": config,
        "s": round(seconds, 3),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        _path().parent.mkdir(parents=True, exist_ok=True)
        part = _path().with_name(f".{FILE}.{os.getpid()}.part")
        part.write_text(json.dumps(data, indent=1))
        os.replace(part, _path())
    except OSError:
        pass


def config_of(model_id: str) -> str:
    """What a measurement of `model_id` depends on besides the machine: its engine and precision
    (isnet-general's follows the CPU: OpenVINO bf16 or ONNX Runtime fp32, rmbg.providers.local.engines;
    RMBG-1.4 runs ONNX Runtime fp32 on a CPU)."""
    if model_id == "birefnet-lite":
        from .torch_backend import birefnet

        return "torch " + birefnet("birefnet-lite", device="cpu").precision_used()
    if model_id == "isnet-general":
        from .isnet_general import isnet_general

        provider = isnet_general(device="cpu")  # nothing loaded: the engine is chosen from the CPU's flags
        return f"{provider.engine} {provider.precision}"
    return "onnxruntime fp32"


def seconds_for(model_id: str) -> float:
    """Seconds for one 1 MP cut-out by `model_id` on this CPU: cached, else measured now and stored."""
    config = config_of(model_id)
    found = cached(model_id, config)
    if found is None:
        found = measure(model_id)
        store(model_id, config, found)
    return found


def measure(model_id: str, size: tuple[int, int] = PHOTO, runs: int | None = None) -> float:
    """The median of `runs` (RUNS) timed cut-outs of a synthetic photo of `size` after a
    warm-up, with stand-in weights. The stand-in's network or session is dropped from
    the model pool after (every pooled model loaded from its temporary folder), so it
    does not stay in memory; nothing else the pool holds is touched."""
    import numpy as np
    from PIL import Image

    from .pool import POOL

    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")
    with tempfile.TemporaryDirectory(prefix="rmbg-calibrate-") as tmp:
        folder = Path(tmp).resolve()
        try:
            made = passing_call(functools.partial(stand_in, model_id, folder))  # torch's work: a thread that ends
            return median_seconds(made, photo, runs or RUNS)
        finally:
            POOL.clear(lambda held: Path(held.source).resolve().is_relative_to(folder))


def median_seconds(provider: Any, photo: Any, runs: int) -> float:
    """The median seconds of `runs` timed `provider.matte(photo)` calls, after one
    untimed warm-up call (load, kernel selection, first allocations)."""
    provider.matte(photo)
    took = []
    for _ in range(runs):
        start = time.perf_counter()
        provider.matte(photo)
        took.append(time.perf_counter() - start)
    return statistics.median(took)


def stand_in(model_id: str, folder: Path) -> Any:
    """The model's own provider on weights of the right shapes (deterministic, not trained)."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    if model_id == "birefnet-lite":
        from ...models.birefnet import build_birefnet
        from .torch_backend import birefnet

        path = folder / "model.safetensors"
        save_file(build_birefnet(backbone="swin_t").state_dict(), str(path))
        return birefnet("birefnet-lite", weights=path, device="cpu")
    if model_id in ("isnet-general", "rmbg-1.4"):
        import warnings

        from ...models.isnet import build_isnet
        from ...models.specs import ISNET_GENERAL
        from .isnet_general import isnet_general

        class FirstMask(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = build_isnet()

            def forward(self, x: Any) -> Any:
                return self.net(x)[0][0]

        path = folder / "isnet.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                FirstMask().eval(),
                (torch.zeros(1, 3, 64, 64),),
                str(path),
                opset_version=17,
                dynamo=False,
                input_names=[ISNET_GENERAL.onnx_input],
                output_names=[ISNET_GENERAL.onnx_output],
                dynamic_axes={ISNET_GENERAL.onnx_input: {2: "h", 3: "w"}},
            )
        # RMBG-1.4's CPU path is ONNX Runtime's; IS-Net general's engine follows the CPU (config_of)
        return isnet_general(weights=path, device="cpu", engine="onnxruntime" if model_id == "rmbg-1.4" else "auto")
    raise ValueError(f"no calibration for {model_id!r}")
