"""CPU (and GPU, when present) speed of the local models, end to end.

    python benchmarks/speed.py                 # RMBG-1.4 + U2-Net-p, 5 repeats
    python benchmarks/speed.py --birefnet --frames 4   # BiRefNet on the CPU: model card recipe vs ours

End to end = image file on disk -> RGBA cut-out in memory: load, preprocess,
network, postprocess, compose. Each configuration lives in its own worker
process (its model, allocator and thread pools are its own, as in a real
deployment; sharing one process made the autograd baseline twice as slow),
and the workers take turns within each repeat (round robin), so a busy
machine slows them all alike; tables show medians. Peak RSS (VmHWM) is the
worker's after the 1024x1024 runs. Throughput comes from one more fresh
process per configuration: images/s with 2 concurrent requests of 1 compute
thread each (a 2-vCPU Space serving two users).

Baseline = the RMBG-1.4 model card's recipe, written out: PIL load, torch
tensor, F.interpolate to 1024, /255 - 0.5, `result = model(image)` (no
no_grad, as on the card), F.interpolate back, min-max, uint8, putalpha on a
re-opened image; same network object, nothing reused between images.
Prints Markdown only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import speed_setup
from speed_configs import STAGES, child, our_birefnet, serve


def in_child(name: str, files: dict, image: Path, count: int) -> dict:
    arg = json.dumps(
        {"name": name, "files": {k: str(v) for k, v in files.items() if v}, "image": str(image), "count": count}
    )
    out = subprocess.run([sys.executable, __file__, "--child", arg], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


class Worker:
    """One configuration in its own long-lived process: its model, allocator
    and thread pools are its own, as in a real deployment, and workers take
    turns so they never compete for the cores."""

    def __init__(self, name: str, files: dict):
        self.name = name
        job = json.dumps({"name": name, "files": {k: str(v) for k, v in files.items() if v}})
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", job], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, image: Path, save: Path | None = None) -> dict:
        self.proc.stdin.write(json.dumps({"image": str(image), "save": str(save) if save else ""}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name!r} died (see stderr)")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def round_robin(workers: dict[str, Worker], image: Path, repeats: int) -> tuple[dict, dict]:
    """{name: {stage: median s, "total": .., "rss_mib": ..}}, {name: alpha of the last run}."""
    import tempfile

    from PIL import Image

    samples: dict[str, list[dict]] = {name: [] for name in workers}
    for worker in workers.values():  # warm-up: sessions, lazy loads, caches
        worker.run(image)
    alphas, rss = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for name, worker in workers.items():
                save = Path(tmp) / f"{len(alphas)}.png" if r == repeats - 1 else None
                answer = worker.run(image, save)
                times = answer["times"]
                times["total"] = sum(times.values())
                samples[name].append(times)
                rss[name] = answer["rss_mib"]
                if save:
                    alphas[name] = Image.open(save).copy()
    medians = {name: {k: statistics.median(s[k] for s in rows) for k in rows[0]} for name, rows in samples.items()}
    for name in medians:
        medians[name]["rss_mib"] = rss[name]
    return medians, alphas


def agreement(alpha, reference) -> tuple[int, float, float]:
    a, b = np.asarray(alpha).astype(np.int16), np.asarray(reference).astype(np.int16)
    d = np.abs(a - b)
    pa, pb = a >= 128, b >= 128
    union = (pa | pb).sum()
    return int(d.max()), float(d.mean()), float((pa & pb).sum() / union) if union else 1.0


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def stage_table(medians: dict) -> str:
    rows = []
    for name, m in medians.items():
        outside = m["total"] - m["network"]
        rows.append(
            [name]
            + [f"{m[s] * 1000:.0f}" for s in STAGES]
            + [f"{m['total'] * 1000:.0f}", f"{outside / m['network']:.2f}"]
        )
    return table(["configuration"] + [f"{s} ms" for s in STAGES] + ["total ms", "outside / network"], rows)


def workers_for(names: list[str], files: dict) -> dict[str, Worker]:
    return {name: Worker(name, files) for name in names}


def close_all(workers: dict[str, Worker]) -> None:
    for worker in workers.values():
        worker.close()


def rmbg14_section(files: dict, images: dict, repeats: int, children: int) -> None:
    from rmbg.providers.local.onnx_backend import choose_rmbg14_backend

    names = ["baseline (model card)", "baseline + no_grad", "torch fp32 (ours)", "onnx fp32", "onnx quantized"]
    if files.get("fp16"):
        names.append("onnx fp16")
    workers = workers_for(names, files)
    medians, alphas = round_robin(workers, images["1024x1024"], repeats)
    keep = ["baseline (model card)", "baseline + no_grad", "torch fp32 (ours)", "onnx fp32"]
    close_all({n: w for n, w in workers.items() if n not in keep})
    big, _ = round_robin({n: workers[n] for n in keep}, images["4000x3000 (12 MP)"], repeats)
    close_all({n: workers[n] for n in keep})
    base = medians["baseline (model card)"]["total"]
    fair = medians["baseline + no_grad"]["total"]
    ref = alphas["torch fp32 (ours)"]
    auto = choose_rmbg14_backend("auto", weights=None, device="cpu", precision="auto")
    rows = []
    for name in names:
        extra = in_child(name, files, images["1024x1024"], children)
        dmax, dmean, iou = agreement(alphas[name], ref)
        m = medians[name]
        rows.append(
            [
                name,
                f"{m['total'] * 1000:.0f}",
                f"{m['total'] / base:.2f}",
                f"{m['total'] / fair:.2f}",
                f"{m['rss_mib']:.0f}",
                f"{extra.get('images_per_s', float('nan')):.2f}",
                f"{dmax} / {dmean:.3f} / {iou:.4f}",
                "yes" if dmax <= 1 else "no",
            ]
        )
    print(f"\n### RMBG-1.4, 1024x1024 photo, CPU ({files['weights']} weights)\n")
    print(
        table(
            [
                "configuration",
                "end-to-end ms (median)",
                "x baseline",
                "x baseline + no_grad",
                "peak RSS MiB",
                "images/s (2 requests x 1 thread)",
                "vs torch fp32: max / mean abs diff, IoU@0.5",
                "within 1/255",
            ],
            rows,
        )
    )
    print(f"\nDefault CPU path of `rmbg-1.4` (backend='auto', precision='auto'): {auto} fp32.")
    print("\n#### Per stage, 1024x1024\n")
    print(stage_table(medians))
    print("\n#### Per stage, 4000x3000 (12 MP)\n")
    print(stage_table(big))


def u2netp_section(repeats: int, images: dict, children: int) -> None:
    print("\n### U2-Net-p (real weights), CPU\n")
    workers = workers_for(["u2netp"], {})
    rows = {}
    for label, image in images.items():
        medians, _ = round_robin(workers, image, repeats)
        rows[f"u2netp {label}"] = medians["u2netp"]
    close_all(workers)
    extra = in_child("u2netp", {}, images["1024x1024"], children * 3)
    print(stage_table(rows))
    print(
        f"\nPeak RSS {rows['u2netp 1024x1024']['rss_mib']:.0f} MiB; "
        f"{extra.get('images_per_s', float('nan')):.2f} images/s at 1024x1024 (2 requests x 1 thread)."
    )


DAVIS = Path(__file__).resolve().parents[1] / "data" / "davis2016-sample" / "images"


def flop_floor(model: str) -> None:
    """The network's work per 1024² forward (torch.utils.flop_counter: convolutions,
    matrix products, attention) against the fp32 rate of its largest dense kernel
    on this machine (the 7x7 offset conv of the last decoder block, 64 -> 98
    channels at 256², median of 5): the least time exact fp32 can take here."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    net = our_birefnet(model)
    with torch.inference_mode(), FlopCounterMode(display=False, depth=2) as counter:
        net(torch.zeros(1, 3, 1024, 1024))
    total = counter.get_total_flops()
    backbone = sum(counter.get_flop_counts()[f"{type(net).__name__}.bb"].values())  # both passes
    del net
    x, w = torch.randn(1, 64, 256, 256), torch.randn(98, 64, 7, 7)
    times = []
    with torch.inference_mode():
        for _ in range(6):
            start = time.perf_counter()
            F.conv2d(x, w, padding=3)
            times.append(time.perf_counter() - start)
    rate = 2 * 256 * 256 * 98 * 64 * 49 / statistics.median(times[1:])
    print(
        f"\n{model}: {total / 1e9:.0f} GFLOP per 1024² forward ({backbone / 1e9:.0f} in the backbone's two passes, "
        f"{(total - backbone) / 1e9:.0f} after it); fp32 7x7 conv here: {rate / 1e9:.0f} GFLOP/s, "
        f"so exact fp32 needs at least {total / rate:.1f} s for the network alone\n",
        flush=True,
    )


def birefnet_section(
    models: list[str], frames: int, official_code: str | None = None, compile_row: bool = False
) -> None:
    """BiRefNet on the CPU: the model card's recipe (around the official code's
    network when a checkout of it is given, and around ours) against our
    configurations, on `frames` DAVIS frames, each configuration in its own
    worker, taking turns. Agreement is with the official code's fp32 matte when
    it runs, else with ours in fp32."""
    import rmbg
    from rmbg.providers.local.device import cpu_allocator_choice, cpu_bf16_units

    paths = sorted(DAVIS.glob("*.jpg"))
    step = max(1, len(paths) // max(1, frames))
    paths = paths[::step][:frames]
    files: dict = {"lite": speed_setup.deterministic_weights("birefnet-lite")}
    if "rmbg-2.0" in models:
        files["rmbg20"] = speed_setup.rmbg20_weights()
    configs = [
        ("model card recipe, our fp32 network", "official recipe"),
        ("ours, fp32 (exact), RMBG_CPU_ALLOCATOR=reuse", "fp32 allocator reuse"),
        ("ours, fp32 (exact), RMBG_CPU_ALLOCATOR=system", "fp32 allocator system"),
        ("ours, bf16 autocast", "bf16"),
        ("ours, auto", "auto"),
        ("ours, fp32, input moved by up to ±1 grey level (the gate's noise floor)", "fp32 input-noise"),
    ]
    if compile_row:
        configs.append(("ours, fp32 under torch.compile (inductor)", "fp32 compile"))
    if official_code:
        files["official_code"] = official_code
        configs.insert(0, ("**official code, model card recipe**", "official code"))
    units = ",".join(cpu_bf16_units()) or "none"
    allocator = cpu_allocator_choice()
    print(f"\n### BiRefNet on the CPU ({len(paths)} DAVIS frames, deterministic weights; CPU bf16 units: {units})\n")
    if not cpu_bf16_units():
        configs = [c for c in configs if c[1] != "bf16"]
        print(
            "No bf16 row: without bf16 units the provider refuses precision='bf16' (emulated bf16 convolutions "
            "run PyTorch's reference kernel, far slower than fp32).\n"
        )
    for model in models:
        default = rmbg.get_provider(model, device="cpu").precision_used()
        flop_floor(model)
        workers = workers_for([f"{model} {key}" for _, key in configs], files)
        names = list(workers)
        reference = names[0] if official_code else names[1]
        times: dict[str, list[float]] = {n: [] for n in names}
        rss: dict[str, float] = {}
        agree: dict[str, list[tuple[int, float, float]]] = {n: [] for n in names}
        # warm-up: our providers' lazy loads (the card recipes load when their worker starts),
        # first-call allocations, compilation
        first: dict[str, float] = {}
        for n, worker in workers.items():
            first[n] = sum(worker.run(paths[0])["times"].values())
        for path in paths:
            medians, alphas = round_robin(workers, path, 1)
            for n in names:
                times[n].append(medians[n]["total"])
                rss[n] = medians[n]["rss_mib"]
                agree[n].append(agreement(alphas[n], alphas[reference]))
        close_all(workers)
        base = statistics.median(times[names[0]])
        rows = []
        for (label, key), n in zip(configs, names):
            ms = statistics.median(times[n]) * 1000
            worst_iou = min(a[2] for a in agree[n])
            mean_d = statistics.mean(a[1] for a in agree[n])
            max_d = max(a[0] for a in agree[n])
            gate = "reference" if n == reference else ("pass" if worst_iou >= 0.99 and mean_d <= 1 else "fail")
            if key == "auto":
                label = f"ours, auto (the default here: {default}, allocator {allocator})"
            rows.append(
                [
                    label,
                    f"{ms:.0f}",
                    f"{ms / 1000 / base:.2f}",
                    f"{rss[n]:.0f}",
                    f"{worst_iou:.4f} / {mean_d:.2f} / {max_d}",
                    gate,
                    f"{first[n]:.1f}",
                ]
            )
        print(f"\n#### {model}, end to end (file -> matte), median over frames\n")
        print(
            table(
                [
                    "configuration",
                    "ms",
                    f"x {configs[0][0].strip('*')}",
                    "peak RSS MiB",
                    "vs reference: worst IoU@0.5 / mean / max abs diff (grey levels)",
                    "gate (IoU >= 0.99, mean <= 1)",
                    "first call s",
                ],
                rows,
            ),
            flush=True,
        )


def gpu_section(files: dict, images: dict, repeats: int) -> None:
    import torch

    if not torch.cuda.is_available():
        print("\n(No GPU here: GPU rows skipped.)")
        return
    names = ["baseline (model card) cuda", "torch fp32 (ours) cuda", "torch fp16 (ours) cuda"]
    workers = workers_for(names, files)
    medians, _ = round_robin(workers, images["1024x1024"], repeats)
    close_all(workers)
    print(f"\n### RMBG-1.4 on {torch.cuda.get_device_name(0)}, 1024x1024\n")
    print(stage_table(medians))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--throughput-images", type=int, default=2, help="images per request in the throughput test")
    parser.add_argument(
        "--birefnet",
        nargs="*",
        choices=["birefnet-lite", "rmbg-2.0"],
        help="only the BiRefNet CPU table, for these models (default: both)",
    )
    parser.add_argument("--frames", type=int, default=4, help="DAVIS frames for --birefnet")
    parser.add_argument(
        "--official-code",
        help="a checkout of github.com/ZhengPeng7/BiRefNet: time its network too "
        "(needs torchvision, timm, einops, kornia; not installed by our requirements)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="with --birefnet: one more row, our fp32 network under torch.compile (the first call compiles: minutes)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        serve(job["name"], {k: Path(v) for k, v in job["files"].items()})
        return
    if args.child:
        job = json.loads(args.child)
        print(
            json.dumps(
                child(job["name"], {k: Path(v) for k, v in job["files"].items()}, Path(job["image"]), job["count"])
            )
        )
        return
    if args.birefnet is not None:
        print(table(["machine", ""], [list(row) for row in speed_setup.machine_info()]))
        birefnet_section(args.birefnet or ["birefnet-lite", "rmbg-2.0"], args.frames, args.official_code, args.compile)
        return
    files = speed_setup.rmbg14_files()
    images = speed_setup.test_images()
    print("## Speed benchmark\n")
    print(
        f"Command: `python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}`, "
        f"medians of {args.repeats} repeats after one warm-up.\n"
    )
    print(table(["machine", ""], [list(row) for row in speed_setup.machine_info()]))
    if files["weights"] == "deterministic":
        print(
            "\nRMBG-1.4 weights: deterministic (the real ones are gated); speed does not depend on them, "
            "but the agreement columns do."
        )
    if not files.get("fp16"):
        print("\n(onnxconverter-common not installed: no fp16 ONNX row.)")
    rmbg14_section(files, images, args.repeats, args.throughput_images)
    u2netp_section(args.repeats, images, args.throughput_images)
    gpu_section(files, images, args.repeats)


if __name__ == "__main__":
    main()
