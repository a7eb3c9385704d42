"""CUDA figures for the local models: precision, speed, GPU memory, agreement.

    python benchmarks/cuda.py                      # every model, every precision
    python benchmarks/cuda.py --models rmbg-2.0 --repeats 30

For RMBG-1.4 (IS-Net), RMBG-2.0 (BiRefNet, Swin-L) and birefnet-lite
(Swin-T), through our own provider path (rmbg14/rmbg20/birefnet with
device="cuda", weights from a local safetensors file, so the real strict
load runs), it prints per precision:

- first call (load + cudnn warm-up), end-to-end median per 1024² JPEG
  (decode, preprocess, forward, matte), and for the default precision the
  same on a 12 MP photo;
- the network alone (CUDA events, median of --repeats after warm-up) at
  batch 1, launched kernel by kernel (eager) and replayed from a captured
  CUDA graph (what the provider runs: rmbg.providers.local.cuda_graph), and
  its throughput at batch 8;
- peak GPU memory (torch.cuda.max_memory_allocated) during one image;
- agreement of the final 8-bit matte with strict fp32 (TF32 off):
  IoU of alpha >= 128, mean and max |delta alpha| in grey levels.

Writes benchmarks/results/cuda.json (benchmarks/harness.py); without a CUDA
GPU it stops at once with a message and writes nothing.

Precisions: fp32 (TF32 off: the reference), tf32 (fp32 weights, TF32
matmuls and convolutions), fp16, bf16. BiRefNet's decoder has deformable
convolutions: our pip requirements install torch without torchvision, so
the pure-PyTorch version (rmbg.models.deform) is what users run; torchvision's
CUDA kernel is timed beside it when torchvision is installed.

Weights are deterministic (speed_setup.deterministic_weights), not BRIA's:
speed and memory do not depend on the values, agreement does a little
(real weights can saturate differently in half precision), so the agreement
columns say whether a precision is numerically sound on this network, not
the exact drift of the released checkpoints.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import numpy as np

import speed_setup
from harness import markdown, table, write_results
from speed_setup import test_images

MODELS = ("rmbg-1.4", "rmbg-2.0", "birefnet-lite")
PRECISIONS = ("fp32", "tf32", "fp16", "bf16")


def _weights(model: str) -> Path:
    return speed_setup.deterministic_weights(model)


def _provider(model: str, weights: Path, precision: str):
    from rmbg.providers.local.torch_backend import birefnet, rmbg14, rmbg20

    dtype = "fp32" if precision == "tf32" else precision
    if model == "rmbg-1.4":
        return rmbg14(weights=weights, device="cuda", precision=dtype, backend="torch")  # type: ignore[arg-type]
    if model == "rmbg-2.0":
        return rmbg20(weights=weights, device="cuda", precision=dtype)  # type: ignore[arg-type]
    return birefnet(model, weights=weights, device="cuda", precision=dtype)  # type: ignore[arg-type]


@contextlib.contextmanager
def _settings(precision: str, deform_backend: str):
    """TF32 on only for "tf32"; the pure deformable conv unless "torchvision"."""
    import torch

    from rmbg.models import deform

    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, deform.torchvision_deform_conv2d)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    if deform_backend == "pure":
        deform.torchvision_deform_conv2d = lambda: None  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[0], saved[1]
        deform.torchvision_deform_conv2d = saved[2]  # type: ignore[assignment]


def _cuda_ms(fn, repeats: int, warmup: int = 3) -> float:
    import torch

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _agreement(alpha: np.ndarray, ref: np.ndarray) -> tuple[float, float, int]:
    a, r = alpha >= 128, ref >= 128
    union = np.logical_or(a, r).sum()
    iou = float(np.logical_and(a, r).sum() / union) if union else 1.0
    diff = np.abs(alpha.astype(np.int16) - ref.astype(np.int16))
    return iou, float(diff.mean()), int(diff.max())


def measure(model: str, precision: str, deform_backend: str, images: dict, repeats: int, full_size: bool) -> dict:
    import torch
    from PIL import Image

    from rmbg.providers.local import cuda_graph
    from rmbg.providers.local.torch_backend import clear_loaded_models

    clear_loaded_models()
    torch.cuda.empty_cache()
    weights = _weights(model)
    photo = Image.open(images["1024x1024"]).convert("RGB")
    row: dict = {"model": model, "precision": precision, "deform": deform_backend}
    with _settings(precision, deform_backend), torch.inference_mode():
        provider = _provider(model, weights, precision)
        t0 = time.perf_counter()
        net = provider.network()
        provider.matte(photo)  # the graph is captured here
        row["first_s"] = time.perf_counter() - t0
        row["weights_mib"] = torch.cuda.memory_allocated() / 2**20

        e2e = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            matte = provider.matte(photo)
            e2e.append(time.perf_counter() - t0)
        row["e2e_ms"] = 1000 * statistics.median(e2e)
        row["alpha"] = np.asarray(matte.alpha)
        if full_size:
            big = Image.open(images["4000x3000 (12 MP)"]).convert("RGB")
            provider.matte(big)
            times = []
            for _ in range(max(3, repeats // 4)):
                t0 = time.perf_counter()
                provider.matte(big)
                times.append(time.perf_counter() - t0)
            row["e2e_12mp_ms"] = 1000 * statistics.median(times)

        param = next(p for p in net.parameters())
        x = torch.from_numpy(provider.preprocess(photo)).to(device=param.device, dtype=param.dtype)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        from rmbg.providers.local.processing import select_output

        row["finite"] = bool(torch.isfinite(select_output(net(x), provider.spec)).all())
        torch.cuda.synchronize()
        row["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        row["activations_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        row["net_ms"] = _cuda_ms(lambda: net(x), repeats)
        row["graph_ms"] = _cuda_ms(lambda: cuda_graph.forward(net, x), repeats)
        x8 = x.repeat(8, 1, 1, 1)
        try:
            row["batch8_img_s"] = 8000 / _cuda_ms(lambda: net(x8), max(3, repeats // 2))
        except torch.OutOfMemoryError:
            row["batch8_img_s"] = float("nan")
        if deform_backend == "pure" and precision in ("fp16", "bf16"):
            net_cl = net.to(memory_format=torch.channels_last)
            xcl = x.contiguous(memory_format=torch.channels_last)
            row["net_cl_ms"] = _cuda_ms(lambda: net_cl(xcl), repeats)
            net.to(memory_format=torch.contiguous_format)
    clear_loaded_models()
    return row


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/cuda.py needs a CUDA GPU (torch.cuda.is_available() is False).")

    from rmbg.models import deform

    images = test_images()
    rows = []
    for model in args.models:
        backends = ["pure"]
        if model != "rmbg-1.4" and deform.torchvision_deform_conv2d() is not None:
            backends.append("torchvision")
        configs = [(p, "pure") for p in args.precisions] + [("fp16", b) for b in backends[1:]]
        ref = None
        for precision, backend in configs:
            full = precision == "fp16" and backend == "pure"
            row = measure(model, precision, backend, images, args.repeats, full_size=full)
            if precision == "fp32" and backend == "pure":
                ref = row["alpha"]
            if ref is not None:
                row["iou"], row["mean_d"], row["max_d"] = _agreement(row["alpha"], ref)
            rows.append(row)
            print(f"done: {model} {precision} {backend}", flush=True)

    def cell(row, key, digits):
        value = row.get(key)
        return "–" if value is None else (round(value, digits) if digits else round(value))

    table_rows = [
        [
            r["model"],
            r["precision"],
            r["deform"] if r["model"] != "rmbg-1.4" else "–",
            round(r["first_s"], 1),
            round(r["e2e_ms"]),
            cell(r, "e2e_12mp_ms", 0),
            round(r["net_ms"], 1),
            round(r["graph_ms"], 1),
            cell(r, "net_cl_ms", 1),
            round(r["batch8_img_s"], 1),
            round(r["peak_mib"]),
            "yes" if r["finite"] else "NO",
            cell(r, "iou", 4),
            cell(r, "mean_d", 2),
            "–" if r.get("max_d") is None else int(r["max_d"]),
        ]
        for r in rows
    ]
    columns = [
        "model",
        "precision",
        "deform conv",
        "first call s",
        "1024² JPEG e2e ms",
        "12 MP e2e ms",
        "network ms",
        "CUDA graph ms",
        "channels_last ms",
        "batch 8 img/s",
        "peak GPU MiB",
        "finite",
        "IoU vs fp32",
        "mean abs d",
        "max abs d",
    ]
    gpu = torch.cuda.get_device_properties(0)
    notes = (
        f"{torch.cuda.get_device_name(0)}, {gpu.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, "
        f"cuDNN {torch.backends.cudnn.version()}; torchvision deformable conv: "
        f"{'available' if deform.torchvision_deform_conv2d() else 'absent'} (eager only: a CUDA graph runs the grid "
        f"version); medians of {args.repeats} repeats; "
        "deterministic weights."
    )
    tables = [table("The local models on a CUDA GPU, per precision", columns, table_rows, notes)]
    print(markdown(tables))
    print(write_results("cuda", None, tables))


if __name__ == "__main__":
    main()
