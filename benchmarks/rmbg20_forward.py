"""Time one forward pass of our BiRefNet network (RMBG-2.0 / BiRefNet: Swin-L; BiRefNet_lite: Swin-T) on CPU.

Random weights (speed does not depend on the values), fp32, batch 1,
torch.inference_mode. Each size runs in a fresh child process so that its
peak RSS (resource.getrusage ru_maxrss) belongs to that size alone.

    python benchmarks/rmbg20_forward.py --sizes 512 1024 --threads 2 --repeats 1
    python benchmarks/rmbg20_forward.py --backbone swin_t --sizes 1024 --repeats 3   # birefnet-lite

A table per run: size, seconds per forward (each repeat), the time spent in
the backbone (both passes), squeeze block, decoder and, inside those, in the
deformable convs; RSS after building the model and peak RSS (MiB). Writes
benchmarks/results/rmbg20_forward_<backbone>.json (benchmarks/harness.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from harness import markdown, table, write_results


def _rss_mib(which: str) -> float:
    """'peak' from getrusage, 'now' from /proc/self/status (Linux), in MiB."""
    import resource

    if which == "peak":
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(size: int, threads: int, repeats: int, attention: str, backbone: str) -> dict:
    import torch

    from rmbg.models import deform
    from rmbg.models.birefnet import build_birefnet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_birefnet(attention, backbone=backbone)
    built_rss = _rss_mib("now")

    parts = {"backbone": 0.0, "squeeze": 0.0, "decoder": 0.0, "deform": 0.0}
    starts: dict = {}

    def timed_hooks(module, key):
        module.register_forward_pre_hook(lambda *_: starts.__setitem__(key, time.perf_counter()))
        module.register_forward_hook(lambda *_: parts.__setitem__(key, parts[key] + time.perf_counter() - starts[key]))

    timed_hooks(model.bb, "backbone")
    timed_hooks(model.squeeze_module, "squeeze")
    timed_hooks(model.decoder, "decoder")
    inner = deform.deform_conv2d

    def timed_deform(*args, **kwargs):
        t0 = time.perf_counter()
        out = inner(*args, **kwargs)
        parts["deform"] += time.perf_counter() - t0
        return out

    deform.deform_conv2d = timed_deform  # DeformableConv2d looks the name up at call time

    x = torch.randn(1, 3, size, size)
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with torch.inference_mode():
            outs = model(x)
        seconds.append(time.perf_counter() - t0)
        assert torch.isfinite(outs[-1]).all()
    per_run = {k: v / repeats for k, v in parts.items()}
    return {
        "size": size,
        "threads": threads,
        "attention": attention,
        "backbone": backbone,
        "seconds": seconds,
        "parts": per_run,
        "built_rss_mib": built_rss,
        "peak_rss_mib": _rss_mib("peak"),
        "torch": torch.__version__,
        "deform_backend": "pure gather version (always on a CPU)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--attention", choices=["sdpa", "plain"], default="sdpa")
    parser.add_argument("--backbone", choices=["swin_l", "swin_t"], default="swin_l")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.threads, args.repeats, args.attention, args.backbone)))
        return
    rows = []
    for size in args.sizes:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(size),
            "--threads",
            str(args.threads),
            "--repeats",
            str(args.repeats),
            "--attention",
            args.attention,
            "--backbone",
            args.backbone,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    table_rows = [
        [
            f"{r['size']}²",
            " / ".join(f"{s:.1f}" for s in r["seconds"]),
            round(r["parts"]["backbone"], 1),
            round(r["parts"]["squeeze"], 1),
            round(r["parts"]["decoder"], 1),
            round(r["parts"]["deform"], 1),
            round(r["built_rss_mib"]),
            round(r["peak_rss_mib"]),
        ]
        for r in rows
    ]
    columns = [
        "input",
        "forward s",
        "backbone x2 s",
        "squeeze s",
        "decoder s",
        "of which deform s",
        "RSS after build MiB",
        "peak RSS MiB",
    ]
    title = f"One forward of our BiRefNet network ({args.backbone}, fp32, batch 1) on the CPU"
    notes = (
        f"{args.threads} threads, attention={args.attention}, deformable conv: {rows[0]['deform_backend']}; "
        "random weights; each size in a fresh process."
    )
    tables = [table(title, columns, table_rows, notes)]
    print(markdown(tables))
    print(write_results(f"rmbg20_forward_{args.backbone}", None, tables))


if __name__ == "__main__":
    main()
