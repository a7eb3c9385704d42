"""The free models on this CPU: the precision gate, then end-to-end speed.

    python benchmarks/speed_cpu.py                          # all free models, 3 frames, 3 repeats
    python benchmarks/speed_cpu.py --models birefnet-lite --openvino --frames 3 --repeats 3
    python benchmarks/speed_cpu.py --models u2netp --out benchmarks/results/speed_cpu_zen4.json  # another CPU class
    python benchmarks/speed_cpu.py --models isnet-general --openvino --isnet-trained --out PATH  # real verdicts

For each model (BiRefNet_lite, IS-Net general, U2-Net-p) every configuration
(exact fp32; bf16 where the CPU has bf16 units; OpenVINO fp32, bf16 where
the CPU has bf16 units, and NNCF int8 with --openvino; ONNX Runtime's static
QDQ int8 of the ONNX models with --onnxruntime-int8) runs in its own worker process, and the workers take turns
in an order that rotates every round, so a busy machine slows them alike.

1. Gate (rmbg.eval.gate): on DAVIS sample frames at the model's trained size,
   each configuration's mattes against exact fp32's, next to exact fp32's
   own deviation when its input moves by at most +-1 grey level (a worker of
   its own). A configuration passes when it deviates no more than that.
2. Speed: end to end (file -> RGBA cut-out) on a 1 MP photo (1152x864) and a
   1024x1024 one, medians over repeats, and each as a ratio to exact fp32
   timed in the same rounds. BiRefNet_lite also gets the model card's recipe
   around our fp32 network (speed_birefnet.py adds the official code).

Writes benchmarks/results/speed_cpu.json (see write_results) and prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from cpu_configs import MODELS, files_for, onnxruntime_int8, serve, weights_note
from speed_workers import Worker

import harness
import speed_setup

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "davis2016-sample"
RESULTS = ROOT / "benchmarks" / "results" / "speed_cpu.json"
ONE_MP = (1152, 864)


def configs_for(model: str, openvino: bool, files: dict[str, str], ort_int8: bool = False) -> list[str]:
    """The configurations of one model, exact fp32 (the reference) first. bf16 only on a
    CPU with bf16 units: PyTorch's autocast (ONNX Runtime has no bf16 path for U2-Net-p)
    and OpenVINO's bf16 precision."""
    from rmbg.providers.local.device import cpu_bf16_units

    names = ["fp32", "fp32 input-noise"]
    bf16 = bool(cpu_bf16_units())
    if bf16 and (model == "birefnet-lite" or "safetensors" in files):  # PyTorch needs safetensors weights
        names.append("bf16")
    if openvino:
        names += ["openvino-fp32", *(["openvino-bf16"] if bf16 else [])]
        if not os.environ.get("ONEDNN_MAX_CPU_ISA"):  # under a cap OpenVINO's int8 does not compile (its notes)
            names.append("openvino-int8")
    if ort_int8 and model != "birefnet-lite":  # ONNX models: ONNX Runtime's static QDQ int8
        names.append("onnxruntime-int8")
    if model == "birefnet-lite":
        names.append("card-recipe")
    return names


def rotated(names: list[str], turn: int) -> list[str]:
    k = turn % len(names)
    return names[k:] + names[:k]


def gate_section(model: str, workers: dict[str, Worker], frames: list[Path]) -> list[list]:
    """Each configuration's deviation from exact fp32 and its verdict, as table rows."""
    from PIL import Image

    from rmbg.eval.gate import deviation, gate

    mattes: dict[str, list] = {name: [] for name in workers}
    with tempfile.TemporaryDirectory() as tmp:
        for turn, frame in enumerate(frames):
            for name in rotated(list(workers), turn):
                out = Path(tmp) / f"{turn}-{name.replace(' ', '_')}.png"
                workers[name].run(frame, out)
                mattes[name].append(Image.open(out).copy())
    floor = deviation(mattes["fp32 input-noise"], mattes["fp32"])
    rows = []
    for name, got in mattes.items():
        d = deviation(got, mattes["fp32"])
        verdict = (
            "reference"
            if name == "fp32"
            else "noise floor"
            if name == "fp32 input-noise"
            else ("pass" if gate(d, floor).passed else "fail")
        )
        rows.append([f"{model} {name}", *d.row(), verdict])
    return rows


def speed_section(model: str, workers: dict[str, Worker], images: dict[str, Path], repeats: int) -> list[list]:
    """Median end-to-end seconds per image size, and the ratio to exact fp32 in the same rounds."""
    seconds: dict[str, dict[str, list[float]]] = {n: {size: [] for size in images} for n in workers}
    rss: dict[str, float] = {}
    for size, image in images.items():
        for turn in range(repeats):
            for name in rotated(list(workers), turn):
                answer = workers[name].run(image)
                seconds[name][size].append(answer["seconds"])
                rss[name] = answer["rss_mib"]
    rows = []
    for name in workers:
        medians = [statistics.median(seconds[name][size]) for size in images]
        ratios = [
            statistics.median(a / b for a, b in zip(seconds[name][size], seconds["fp32"][size])) for size in images
        ]
        rows.append(
            [f"{model} {name}", *(round(m, 3) for m in medians), *(round(r, 3) for r in ratios), round(rss[name])]
        )
    return rows


def photos() -> dict[str, Path]:
    from PIL import Image

    made = speed_setup.test_images()
    one_mp = speed_setup.bench_cache() / "photo-1mp.jpg"
    if not one_mp.is_file():
        Image.open(speed_setup.EXAMPLE).convert("RGB").resize(ONE_MP, Image.Resampling.LANCZOS).save(one_mp, quality=92)
    return {"1 MP (1152x864)": one_mp, "1024x1024": made["1024x1024"]}


def write_results(path: Path, command: str, tables: list[dict]) -> None:
    """harness.write_results, keeping the tables of models not run this time, so
    that models can be measured one run each; each table keeps the command that
    made it, and the file's command lists those of the tables it holds."""
    ran = {t["title"].split(":", 1)[0] for t in tables}
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        old = {}
    kept = [t for t in old.get("tables", []) if t["title"].split(":", 1)[0] not in ran]
    every = kept + [{**t, "command": command} for t in tables]  # each table names the command that made it
    commands = list(dict.fromkeys(t.get("command", old.get("command", "")) for t in every))
    harness.write_results(
        path.stem, "; ".join(c for c in commands if c), every, folder=path.parent, packages=("openvino", "nncf")
    )


ISA_CAP_VARIABLES = speed_setup.ISA_CAP_VARIABLES


def run_model(model: str, args: argparse.Namespace, frames: list[Path], images: dict[str, Path]):
    """The gate table, then the speed table, of one model (each yielded as soon as it is measured)."""
    files = files_for(model, args.isnet_trained)
    label = f"{model} capped at {args.isa_cap}" if args.isa_cap else model  # capped tables are kept apart
    capped = (
        f"Instruction sets capped at {args.isa_cap} on this CPU ({', '.join(ISA_CAP_VARIABLES[args.isa_cap])}): "
        "an emulated older CPU class (same cores, caches and clock); ONNX Runtime is not capped, and "
        "OpenVINO int8 is left out (OpenVINO picks its int8 kernels from the CPU itself, which the cap then "
        "refuses: it does not compile). "
        if args.isa_cap
        else ""
    )
    calibration = ""
    if args.openvino or args.onnxruntime_int8:  # int8 calibration: 9 sample frames the gate does not use
        held_out = [p for p in sorted((args.data / "images").glob("*.jpg")) if p not in frames]
        chosen = held_out[1::3][:9]
        calibration = f"int8 calibrated on {len(chosen)} sample frames the gate does not use. "
        if len(chosen) < 9:  # the gate takes the whole sample: calibrate on its own frames (this favours int8)
            chosen = frames[1::3][:9]
            calibration = f"int8 calibrated on {len(chosen)} of the gate's own frames (none left out). "
        files["calibration"] = os.pathsep.join(str(p) for p in chosen)
    names = configs_for(model, args.openvino, files, args.onnxruntime_int8)
    if not any(name.endswith("int8") for name in names):
        calibration = ""
    if "onnxruntime-int8" in names:  # quantized here, not in its worker: the calibration's sessions
        # left that process at ONNX Runtime fp32's speed (0.25 s end to end against 0.10 s fresh)
        onnxruntime_int8(model, files["onnx"], files["calibration"].split(os.pathsep))
    load = [os.getloadavg()[0]]
    workers = {name: Worker(f"{model} {name}", files, script=__file__) for name in names}
    try:
        for worker in workers.values():  # warm-up: lazy loads, sessions, conversion, compilation
            worker.run(frames[0])
        gate_rows = gate_section(model, {n: w for n, w in workers.items() if n != "card-recipe"}, frames)
        load.append(os.getloadavg()[0])
        yield {
            "title": f"{label}: gate on {len(frames)} DAVIS frames at the trained size, against exact fp32",
            "columns": ["configuration", "worst IoU@0.5 drop", "mean |Δα| (grey levels)", "max |Δα|", "gate"],
            "rows": gate_rows,
            "notes": "A configuration passes when both its IoU drop and its mean |Δα| are no larger than the noise "
            f"floor's (exact fp32, input moved by ±1 grey level). {capped}{weights_note(model, files)} {calibration}"
            "Load average (1 min) "
            f"{load[0]:.2f} at the start, {load[1]:.2f} at the end.",
        }
        speed_rows = speed_section(model, workers, images, args.repeats)
    finally:
        for worker in workers.values():
            worker.close()
    verdicts = {row[0]: row[-1] for row in gate_rows}
    for row in speed_rows:
        row.append(verdicts.get(row[0], "not gated"))
    yield {
        "title": f"{label}: end to end on this CPU, median of {args.repeats}",
        "columns": [
            "configuration",
            *(f"{s} s" for s in images),
            *(f"× fp32 {s}" for s in images),
            "peak RSS MiB",
            "gate",
        ],
        "rows": speed_rows,
        "notes": f"{capped}Load average (1 min) {load[1]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end; "
        "ratios are per round (configurations alternate), then the median.",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", choices=MODELS, default=list(MODELS))
    parser.add_argument("--data", type=Path, default=DATA, help="a folder with images/*.jpg (default: DAVIS sample)")
    parser.add_argument("--frames", type=int, default=3, help="frames for the gate, spread over the sample")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--openvino", action="store_true", help="add OpenVINO fp32, bf16 and NNCF int8 (openvino, nncf)"
    )
    parser.add_argument(
        "--onnxruntime-int8",
        action="store_true",
        help="add ONNX Runtime's static QDQ int8 for the ONNX models (U2-Net-p, IS-Net general)",
    )
    parser.add_argument(
        "--isa-cap",
        choices=sorted(ISA_CAP_VARIABLES),
        help="run as an older CPU class: cap oneDNN, ATen and MKL at this instruction set (tables kept apart)",
    )
    parser.add_argument(
        "--isnet-trained", action="store_true", help="IS-Net general on trained weights (benchmarks/trained_isnet.py)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        serve(job["name"], job["files"])
        return
    if args.isa_cap:  # before any worker starts: they inherit it
        os.environ.update(ISA_CAP_VARIABLES[args.isa_cap])
    paths = sorted((args.data / "images").glob("*.jpg"))
    frames = paths[:: max(1, len(paths) // max(1, args.frames))][: args.frames]
    images = photos()
    command = ("python benchmarks/speed_cpu.py " + " ".join(sys.argv[1:])).strip()
    done: list[dict] = []
    for model in args.models:  # written after each table: a long run keeps what it measured
        for table in run_model(model, args, frames, images):
            done.append(table)
            print(harness.markdown([table]), flush=True)
            write_results(args.out, command, done)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
