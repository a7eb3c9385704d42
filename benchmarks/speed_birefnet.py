"""BiRefNet's family on the CPU, end to end: the model card's recipe (around
the official code's network when a checkout of it is given, and around ours)
against our configurations, on DAVIS frames, each configuration in its own
worker process, taking turns (speed_workers.py); plus the network's FLOP
count against this CPU's fp32 rate (the least time exact fp32 can take).

    python benchmarks/speed_birefnet.py --models birefnet-lite --frames 3
    python benchmarks/speed_birefnet.py --models rmbg-2.0 --official-code CHECKOUT

The gate column here is the old absolute one (IoU >= 0.99, mean <= 1 grey
level against the reference); the noise-floor gate that decides what runs is
benchmarks/speed_cpu.py's. Writes benchmarks/results/speed_birefnet.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from speed_workers import agreement, close_all, round_robin, workers_for

import speed_setup
from harness import markdown, table, write_results
from speed_configs import our_birefnet

DAVIS = Path(__file__).resolve().parents[1] / "data" / "davis2016-sample" / "images"


def flop_floor(model: str) -> str:
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
    return (
        f"{model}: {total / 1e9:.0f} GFLOP per 1024² forward ({backbone / 1e9:.0f} in the backbone's two passes, "
        f"{(total - backbone) / 1e9:.0f} after it); fp32 7x7 conv here: {rate / 1e9:.0f} GFLOP/s, "
        f"so exact fp32 needs at least {total / rate:.1f} s for the network alone."
    )


def birefnet_tables(
    models: list[str], frames: int, official_code: str | None = None, compile_row: bool = False
) -> list[dict]:
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
    setting = f"{len(paths)} DAVIS frames, deterministic weights; CPU bf16 units: {units}"
    missing = ""
    if not cpu_bf16_units():
        configs = [c for c in configs if c[1] != "bf16"]
        missing = (
            " No bf16 row: without bf16 units the provider refuses precision='bf16' (emulated bf16 convolutions "
            "run PyTorch's reference kernel, far slower than fp32)."
        )
    tables = []
    for model in models:
        default = rmbg.get_provider(model, device="cpu").precision_used()
        floor = flop_floor(model)
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
                    round(ms),
                    round(ms / 1000 / base, 2),
                    round(rss[n]),
                    f"{worst_iou:.4f} / {mean_d:.2f} / {max_d}",
                    gate,
                    round(first[n], 1),
                ]
            )
        columns = [
            "configuration",
            "ms",
            f"x {configs[0][0].strip('*')}",
            "peak RSS MiB",
            "vs reference: worst IoU@0.5 / mean / max abs diff (grey levels)",
            "gate (IoU >= 0.99, mean <= 1)",
            "first call s",
        ]
        title = f"{model} on the CPU, end to end (file -> matte), median over frames ({setting})"
        tables.append(table(title, columns, rows, floor + missing))
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=["birefnet-lite", "rmbg-2.0"], default=["birefnet-lite"])
    parser.add_argument("--frames", type=int, default=4, help="DAVIS frames")
    parser.add_argument(
        "--official-code",
        help="a checkout of github.com/ZhengPeng7/BiRefNet: time its network too "
        "(needs torchvision, timm, einops, kornia; not installed by our requirements)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="one more row, our fp32 network under torch.compile (the first call compiles: minutes)",
    )
    args = parser.parse_args()
    tables = birefnet_tables(args.models, args.frames, args.official_code, args.compile)
    print(markdown(tables))
    print(write_results("speed_birefnet", None, tables))


if __name__ == "__main__":
    main()
