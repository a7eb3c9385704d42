"""CPU (and GPU, when present) speed of RMBG-1.4 and U2-Net-p, end to end.

    python benchmarks/speed.py --repeats 7

End to end = image file on disk -> RGBA cut-out in memory: load, preprocess,
network, postprocess, compose. Each configuration lives in its own worker
process and the workers take turns within each repeat (speed_workers.py), so
a busy machine slows them all alike; tables show medians. Peak RSS (VmHWM) is
the worker's after the 1024x1024 runs. Throughput comes from one more fresh
process per configuration: images/s with 2 concurrent requests of 1 compute
thread each (a 2-vCPU Space serving two users).

Baseline = the RMBG-1.4 model card's recipe, written out: PIL load, torch
tensor, F.interpolate to 1024, /255 - 0.5, `result = model(image)` (no
no_grad, as on the card), F.interpolate back, min-max, uint8, putalpha on a
re-opened image; same network object, nothing reused between images.
BiRefNet's family: benchmarks/speed_birefnet.py and speed_cpu.py.

Writes benchmarks/results/speed.json (benchmarks/harness.py).
"""

from __future__ import annotations

import argparse

from speed_workers import agreement, close_all, in_child, round_robin, stage_table, workers_for

import speed_setup
from harness import markdown, table, write_results


def rmbg14_tables(files: dict, images: dict, repeats: int, children: int) -> list[dict]:
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
                round(m["total"] * 1000),
                round(m["total"] / base, 2),
                round(m["total"] / fair, 2),
                round(m["rss_mib"]),
                round(extra.get("images_per_s", float("nan")), 2),
                f"{dmax} / {dmean:.3f} / {iou:.4f}",
                "yes" if dmax <= 1 else "no",
            ]
        )
    columns = [
        "configuration",
        "end-to-end ms (median)",
        "x baseline",
        "x baseline + no_grad",
        "peak RSS MiB",
        "images/s (2 requests x 1 thread)",
        "vs torch fp32: max / mean abs diff, IoU@0.5",
        "within 1/255",
    ]
    weights = files["weights"]
    note = f"Default CPU path of `rmbg-1.4` (backend='auto', precision='auto'): {auto} fp32."
    if weights == "deterministic":
        note += " Deterministic weights (the real ones are gated): speed does not depend on them, agreement does."
    return [
        table(f"RMBG-1.4, 1024x1024 photo, CPU ({weights} weights)", columns, rows, note),
        stage_table("RMBG-1.4 per stage, 1024x1024", medians),
        stage_table("RMBG-1.4 per stage, 4000x3000 (12 MP)", big),
    ]


def u2netp_tables(repeats: int, images: dict, children: int) -> list[dict]:
    workers = workers_for(["u2netp"], {})
    rows = {}
    for label, image in images.items():
        medians, _ = round_robin(workers, image, repeats)
        rows[f"u2netp {label}"] = medians["u2netp"]
    close_all(workers)
    extra = in_child("u2netp", {}, images["1024x1024"], children * 3)
    stages = stage_table("U2-Net-p (real weights) per stage, CPU", rows)
    stages["notes"] = (
        f"Peak RSS {rows['u2netp 1024x1024']['rss_mib']:.0f} MiB; "
        f"{extra.get('images_per_s', float('nan')):.2f} images/s at 1024x1024 (2 requests x 1 thread)."
    )
    return [stages]


def gpu_tables(files: dict, images: dict, repeats: int) -> list[dict]:
    import torch

    if not torch.cuda.is_available():
        return []
    names = ["baseline (model card) cuda", "torch fp32 (ours) cuda", "torch fp16 (ours) cuda"]
    workers = workers_for(names, files)
    medians, _ = round_robin(workers, images["1024x1024"], repeats)
    close_all(workers)
    return [stage_table(f"RMBG-1.4 on {torch.cuda.get_device_name(0)}, 1024x1024", medians)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--throughput-images", type=int, default=2, help="images per request in the throughput test")
    args = parser.parse_args()
    files = speed_setup.rmbg14_files()
    images = speed_setup.test_images()
    tables = rmbg14_tables(files, images, args.repeats, args.throughput_images)
    tables += u2netp_tables(args.repeats, images, args.throughput_images)
    tables += gpu_tables(files, images, args.repeats)
    print(markdown(tables))
    print(write_results("speed", None, tables, packages=("onnxconverter-common",)))


if __name__ == "__main__":
    main()
