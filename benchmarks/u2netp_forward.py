"""U²-Net-p's forward pass alone (320x320, batch 1) under each engine setting tried, on the CPU at hand.

    python benchmarks/u2netp_forward.py --repeats 20
    python benchmarks/u2netp_forward.py --repeats 20 --results u2netp_forward_zen3   # another CPU class

Where rmbg and rembg run the same file through the same engine, the forward
pass is most of a small photo's time (benchmarks/vs_rembg.py); this asks
whether any setting makes that pass faster. Each setting runs in its own
process (ONNX Runtime's busy-waiting threads would otherwise steal the next
setting's cores), on one DAVIS frame prepared as rmbg prepares it; the
median of --repeats runs after three warm-ups, and each output's largest
difference from ONNX Runtime's default (rembg's session) in probability.
A second table is ONNX Runtime's own profile of the default session: the
share of the time per operator type. Reads u2netp.onnx as rmbg finds it
(RMBG_U2NETP_PATH, else its cache; downloads it if neither has it).
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness import markdown, table, write_results
from vs_rembg import FRAME

# name -> (engine, ONNX Runtime session settings or OpenVINO precision, what it is)
SETTINGS: dict[str, tuple[str, dict[str, Any], str]] = {
    "onnxruntime default": ("ort", {}, "rembg's session: SessionOptions() as they come"),
    "onnxruntime, rmbg's": ("ort", {"threads": 0, "spin": "0"}, "usable cores, no busy-waiting (rmbg's session)"),
    "busy-waiting on": ("ort", {"threads": 0, "spin": "1"}, ""),
    "one thread": ("ort", {"threads": 1, "spin": "0"}, ""),
    "extended optimisation": ("ort", {"threads": 0, "spin": "0", "level": "extended"}, "instead of all"),
    "dynamic block base 4": ("ort", {"threads": 0, "spin": "0", "session.dynamic_block_base": "4"}, ""),
    "denormals as zero": ("ort", {"threads": 0, "spin": "0", "session.set_denormal_as_zero": "1"}, ""),
    "openvino fp32": ("openvino", {"precision": "f32"}, "rmbg's openvino extra"),
    "openvino bf16": ("openvino", {"precision": "bf16"}, "fails the precision gate (docs/cpu.md)"),
}


def network_input() -> np.ndarray:
    from PIL import Image

    from rmbg.models.specs import U2NETP
    from rmbg.providers.local.processing import preprocess

    with Image.open(FRAME) as image:
        return preprocess(image.convert("RGB"), U2NETP)


def ort_session(path: Path, settings: dict[str, Any], profile: str | None = None) -> Any:
    import onnxruntime as ort

    from rmbg.threads import usable_cores

    options = ort.SessionOptions()
    if "threads" in settings:
        options.intra_op_num_threads = settings["threads"] or usable_cores()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", settings["spin"])
    if settings.get("level") == "extended":
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    for key, value in settings.items():
        if key.startswith("session."):
            options.add_session_config_entry(key, value)
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def child(name: str, path: Path, repeats: int, out: Path) -> None:
    """Time one setting in this process; write its times and output to `out` (.npz)."""
    x = network_input()
    engine, settings, _ = SETTINGS[name]
    if engine == "ort":
        session = ort_session(path, settings)
        feed, first = session.get_inputs()[0].name, session.get_outputs()[0].name

        def run() -> np.ndarray:
            return session.run([first], {feed: x})[0]
    else:
        import openvino as ov

        core = ov.Core()
        if settings["precision"] == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            np.savez(out, seconds=np.array([]), output=np.zeros(0))
            return
        compiled = core.compile_model(
            core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": settings["precision"]}
        )
        request = compiled.create_infer_request()

        def run() -> np.ndarray:
            return np.array(request.infer({0: x})[compiled.output(0)])

    for _ in range(3):
        output = run()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    np.savez(out, seconds=np.array(seconds), output=output)


def op_shares(path: Path, runs: int = 10) -> list[list[Any]]:
    """ONNX Runtime's profile of the default session: [op type, ms per run, share %, nodes]."""
    x = network_input()
    with tempfile.TemporaryDirectory() as tmp:
        session = ort_session(path, {}, profile=str(Path(tmp) / "profile"))
        feed = session.get_inputs()[0].name
        for _ in range(runs):
            session.run(None, {feed: x})
        events = json.loads(Path(session.end_profiling()).read_text())
    micros: collections.Counter[str] = collections.Counter()
    nodes: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            micros[event["args"]["op_name"]] += event["dur"]
            nodes[event["args"]["op_name"]] += 1
    total = sum(micros.values())
    shares = micros.most_common()
    return [[op, round(us / runs / 1000, 1), round(100 * us / total, 1), nodes[op] // runs] for op, us in shares]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--results", default="u2netp_forward", help="the results file's name (benchmarks/results/NAME.json)"
    )
    args = parser.parse_args()

    from rmbg.providers.local.u2netp_file import ensure_u2netp

    path = ensure_u2netp()
    if args.child:
        child(args.child, path, args.repeats, args.out)
        return
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETTINGS:
            out = Path(tmp) / "out.npz"
            command = [sys.executable, __file__, "--repeats", str(args.repeats), "--child", name, "--out", str(out)]
            subprocess.run(command, check=True)
            with np.load(out) as got:
                results[name] = (got["seconds"], got["output"])
    baseline_ms = float(np.median(results["onnxruntime default"][0])) * 1000
    reference = results["onnxruntime default"][1]
    rows = []
    for name, (seconds, output) in results.items():
        note = SETTINGS[name][2]
        if not seconds.size:
            rows.append([name, "", "", "", "no bf16 units on this CPU"])
            continue
        ms = float(np.median(seconds)) * 1000
        gap = float(np.abs(output - reference).max())  # output 0 is already a probability
        rows.append([name, round(ms, 1), round(ms / baseline_ms, 2), f"{gap:.1e}", note])
    tables = [
        table(
            "U²-Net-p forward pass, 320x320, by engine setting",
            ["setting", "ms", "x onnxruntime default", "largest probability gap", "note"],
            rows,
            f"Median of {args.repeats} runs after 3 warm-ups, each setting in its own process; the gap is the "
            "largest difference of output 0 (a probability) from the default session's.",
        ),
        table(
            "Where ONNX Runtime's default session spends the forward pass (its own profiler)",
            ["operator", "ms per run", "share %", "nodes"],
            op_shares(path),
            "Conv runs in ONNX Runtime's blocked layout (the Reorder nodes convert to and from it).",
        ),
    ]
    print(markdown(tables))
    print(write_results(args.results, None, tables, packages=("openvino",)))


if __name__ == "__main__":
    main()
