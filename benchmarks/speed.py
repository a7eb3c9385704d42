"""CPU (and GPU, when present) speed of the local models, end to end.

    python benchmarks/speed.py                 # RMBG-1.4 + U2-Net-p, 5 repeats
    python benchmarks/speed.py --repeats 9 --rmbg20

End to end = image file on disk -> RGBA cut-out in memory: load, preprocess,
network, postprocess, compose. Every configuration is timed in the same
process and the configurations take turns within each repeat (round robin),
so a busy machine slows them all alike; tables show medians. Peak memory and
throughput come from one fresh child process per configuration: peak RSS
after loading the model and cutting out one 1024x1024 image, then images/s
with 2 concurrent requests of 1 compute thread each (a 2-vCPU Space serving
two users).

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
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed_setup  # noqa: E402

STAGES = ("load", "preprocess", "network", "postprocess", "compose")
Run = Callable[[Path], tuple[dict, object]]


def ours(provider) -> Run:
    """Our library path, stage by stage."""
    from rmbg.compose import render
    from rmbg.imageio import load_image

    def run(path: Path):
        times, t0 = {}, time.perf_counter()
        loaded = load_image(path)
        t1 = time.perf_counter()
        x = provider.preprocess(loaded.rgb)
        t2 = time.perf_counter()
        pred = provider.forward(x)
        t3 = time.perf_counter()
        alpha = provider.postprocess(pred, loaded.rgb.size)
        t4 = time.perf_counter()
        render(loaded.rgb, alpha)
        t5 = time.perf_counter()
        times.update(zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)))
        return times, alpha

    return run


def model_card(net, *, no_grad: bool = False, device: str = "cpu", half: bool = False) -> Run:
    """The model card's recipe (see module doc)."""
    import contextlib

    import torch
    import torch.nn.functional as F
    from PIL import Image

    def run(path: Path):
        t0 = time.perf_counter()
        im = np.array(Image.open(path))
        t1 = time.perf_counter()
        tensor = torch.tensor(im, dtype=torch.float32).permute(2, 0, 1)
        tensor = F.interpolate(torch.unsqueeze(tensor, 0), size=[1024, 1024], mode="bilinear")
        image = (torch.divide(tensor, 255.0) - 0.5) / 1.0
        image = image.to(device, torch.float16 if half else torch.float32)
        t2 = time.perf_counter()
        with torch.no_grad() if no_grad else contextlib.nullcontext():
            result = net(image)
        if device != "cpu":
            torch.cuda.synchronize()
        t3 = time.perf_counter()
        res = torch.squeeze(F.interpolate(result[0][0].float(), size=im.shape[:2], mode="bilinear"), 0)
        res = (res - res.min()) / (res.max() - res.min())
        mask = np.squeeze((res * 255).permute(1, 2, 0).cpu().data.numpy().astype(np.uint8))
        t4 = time.perf_counter()
        out = Image.open(path).copy()
        out.putalpha(Image.fromarray(mask))
        t5 = time.perf_counter()
        return dict(zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4))), Image.fromarray(mask)

    return run


def build(name: str, files: dict, threads: int | None = None) -> Run:
    """A configuration by name (also used inside the child processes)."""
    import rmbg

    if name.startswith("u2netp"):
        return ours(rmbg.get_provider("u2netp", device="cpu", threads=threads))
    if name.startswith("onnx"):
        precision = name.split()[1]
        return ours(rmbg.get_provider("rmbg-1.4", backend="onnx", weights=str(files[precision]), precision=precision,
                                      device="cpu", threads=threads))
    if name.startswith("rmbg-2.0"):
        return ours(rmbg.get_provider("rmbg-2.0", weights=str(files["rmbg20"]), device="cpu"))
    import torch

    device = "cuda" if "cuda" in name else "cpu"
    half = "fp16" in name
    if threads:
        torch.set_num_threads(threads)
    if name.startswith("torch"):
        return ours(rmbg.get_provider("rmbg-1.4", backend="torch", weights=str(files["safetensors"]), device=device,
                                      precision="fp16" if half else "fp32"))
    from safetensors.torch import load_file

    from rmbg.models.isnet import build_isnet

    net = build_isnet()
    net.load_state_dict(load_file(str(files["safetensors"])), strict=True)
    net = net.to(device, torch.float16 if half else torch.float32).eval()
    return model_card(net, no_grad="no_grad" in name, device=device, half=half)


def peak_rss_mib() -> float:
    """VmHWM of this process (Linux). Not getrusage: its ru_maxrss survives
    exec, so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(name: str, files: dict, image: Path, count: int) -> dict:
    """Peak RSS after one image; then images/s, 2 concurrent requests x 1 thread."""
    run = build(name, files)
    run(image)
    rss = peak_rss_mib()
    one = build(name, files, threads=1)
    one(image)
    barrier, done = threading.Barrier(2), []

    def worker():
        barrier.wait()
        for _ in range(count):
            one(image)
        done.append(time.perf_counter())

    workers = [threading.Thread(target=worker) for _ in range(2)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"rss_mib": rss, "images_per_s": 2 * count / (max(done) - start)}


def in_child(name: str, files: dict, image: Path, count: int) -> dict:
    arg = json.dumps({"name": name, "files": {k: str(v) for k, v in files.items() if v}, "image": str(image), "count": count})
    out = subprocess.run([sys.executable, __file__, "--child", arg], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def round_robin(runs: dict[str, Run], image: Path, repeats: int) -> tuple[dict, dict]:
    """{name: {stage: median s, "total": median s}}, {name: last alpha}."""
    samples: dict[str, list[dict]] = {name: [] for name in runs}
    alphas = {}
    for name, run in runs.items():  # warm-up: sessions, lazy loads, caches
        alphas[name] = run(image)[1]
    for _ in range(repeats):
        for name, run in runs.items():
            times, alphas[name] = run(image)
            times["total"] = sum(times.values())
            samples[name].append(times)
    medians = {name: {k: statistics.median(s[k] for s in rows) for k in rows[0]} for name, rows in samples.items()}
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
        rows.append([name] + [f"{m[s] * 1000:.0f}" for s in STAGES] + [f"{m['total'] * 1000:.0f}",
                     f"{outside / m['network']:.2f}"])
    return table(["configuration"] + [f"{s} ms" for s in STAGES] + ["total ms", "outside / network"], rows)


def rmbg14_section(files: dict, images: dict, repeats: int, children: int) -> None:
    from rmbg.providers.onnx import choose_rmbg14_backend

    names = ["baseline (model card)", "baseline + no_grad", "torch fp32 (ours)", "onnx fp32", "onnx quantized"]
    if files.get("fp16"):
        names.append("onnx fp16")
    runs = {name: build(name, files) for name in names}
    medians, alphas = round_robin(runs, images["1024x1024"], repeats)
    base = medians["baseline (model card)"]["total"]
    ref = alphas["torch fp32 (ours)"]
    auto = choose_rmbg14_backend("auto", weights=None, device="cpu", precision="auto")
    rows = []
    for name in names:
        extra = in_child(name, files, images["1024x1024"], children)
        dmax, dmean, iou = agreement(alphas[name], ref)
        rows.append([
            name, f"{medians[name]['total'] * 1000:.0f}", f"{medians[name]['total'] / base:.2f}",
            f"{extra.get('rss_mib', float('nan')):.0f}", f"{extra.get('images_per_s', float('nan')):.2f}",
            f"{dmax} / {dmean:.3f} / {iou:.4f}", "yes" if dmax <= 1 else "no",
        ])
    print(f"\n### RMBG-1.4, 1024x1024 photo, CPU ({files['weights']} weights)\n")
    print(table(["configuration", "end-to-end ms (median)", "x baseline", "peak RSS MiB",
                 "images/s (2 requests x 1 thread)", "vs torch fp32: max / mean abs diff, IoU@0.5", "within 1/255"], rows))
    print(f"\nDefault CPU path of `rmbg-1.4` (backend='auto', precision='auto'): {auto} fp32.")
    print("\n#### Per stage, 1024x1024\n")
    print(stage_table(medians))
    keep = ["baseline (model card)", "torch fp32 (ours)", "onnx fp32"]
    big, _ = round_robin({n: runs[n] for n in keep}, images["4000x3000 (12 MP)"], max(1, repeats // 2))
    print("\n#### Per stage, 4000x3000 (12 MP)\n")
    print(stage_table(big))


def u2netp_section(repeats: int, images: dict, children: int) -> None:
    print("\n### U2-Net-p (real weights), CPU\n")
    run = {"u2netp (onnx)": build("u2netp", {})}
    rows = []
    for label, image in images.items():
        medians, _ = round_robin(run, image, repeats)
        rows.append([f"u2netp {label}"] + [f"{medians['u2netp (onnx)'][s] * 1000:.0f}" for s in STAGES + ("total",)])
    extra = in_child("u2netp", {}, images["1024x1024"], children * 3)
    print(table(["image"] + [f"{s} ms" for s in STAGES] + ["total ms"], rows))
    print(f"\nPeak RSS {extra.get('rss_mib', float('nan')):.0f} MiB; "
          f"{extra.get('images_per_s', float('nan')):.2f} images/s at 1024x1024 (2 requests x 1 thread).")


def rmbg20_section(images: dict) -> None:
    files = {"rmbg20": speed_setup.rmbg20_weights()}
    run = {"rmbg-2.0 torch fp32": build("rmbg-2.0", files)}
    print("\n### RMBG-2.0 (deterministic weights), CPU, 1 repeat\n")
    rows = {}
    for label, image in images.items():
        medians, _ = round_robin(run, image, 1)
        rows[f"rmbg-2.0 {label}"] = medians["rmbg-2.0 torch fp32"]
    print(stage_table(rows))


def gpu_section(files: dict, images: dict, repeats: int) -> None:
    import torch

    if not torch.cuda.is_available():
        print("\n(No GPU here: GPU rows skipped.)")
        return
    names = ["baseline (model card) cuda", "torch fp32 (ours) cuda", "torch fp16 (ours) cuda"]
    medians, _ = round_robin({n: build(n, files) for n in names}, images["1024x1024"], repeats)
    print(f"\n### RMBG-1.4 on {torch.cuda.get_device_name(0)}, 1024x1024\n")
    print(stage_table(medians))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--throughput-images", type=int, default=2, help="images per request in the throughput test")
    parser.add_argument("--rmbg20", action="store_true", help="also RMBG-2.0 (about 25 s per CPU forward)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(child(job["name"], {k: Path(v) for k, v in job["files"].items()}, Path(job["image"]), job["count"])))
        return
    files = speed_setup.rmbg14_files()
    images = speed_setup.test_images()
    print("## Speed benchmark\n")
    print(f"Command: `python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:])}`, "
          f"medians of {args.repeats} repeats after one warm-up.\n")
    print(table(["machine", ""], [list(row) for row in speed_setup.machine_info()]))
    if files["weights"] == "deterministic":
        print("\nRMBG-1.4 weights: deterministic (the real ones are gated); speed does not depend on them, "
              "but the agreement columns do.")
    if not files.get("fp16"):
        print("\n(onnxconverter-common not installed: no fp16 ONNX row.)")
    rmbg14_section(files, images, args.repeats, args.throughput_images)
    u2netp_section(args.repeats, images, args.throughput_images)
    if args.rmbg20:
        rmbg20_section(images)
    gpu_section(files, images, args.repeats)


if __name__ == "__main__":
    main()
