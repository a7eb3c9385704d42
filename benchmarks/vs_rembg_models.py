"""rmbg against rembg on the same IS-Net general and BiRefNet_lite networks, end to end: input file -> output bytes.

    pip install --no-deps rembg==2.0.86 pymatting numba llvmlite   # benchmark only (requirements-dev.txt)
    python benchmarks/vs_rembg_models.py --repeats 3
    python benchmarks/vs_rembg_models.py --repeats 3 --results vs_rembg_models_zen4   # another CPU class
    python benchmarks/vs_rembg_models.py --models birefnet-lite --isa-cap AVX2 --results vs_rembg_models_avx2cap
        # rmbg's engines capped at AVX2 (an AVX2-only CPU class emulated; rembg's ONNX Runtime keeps AVX-512)

The real weights cannot be downloaded here, so both libraries run the same
deterministic weights of our networks (or, for IS-Net general with
`--isnet-weights trained`, a trained IS-Net from npm: benchmarks/trained_isnet.py,
with a table of both libraries' mattes against the DAVIS truth:
benchmarks/vs_rembg_truth.py), exported to ONNX the way rembg's files
are made (benchmarks/rembg_exports.py: BiRefNet_lite as BiRefNet's authors
export their release files, its deformable convolution lowered to gathers;
IS-Net general in isnet-general-use.onnx's layout). rembg is pointed at those
files without touching its code: U2NET_HOME names a folder holding them under
the names its sessions look for (birefnet-general-lite.onnx,
isnet-general-use.onnx), where a session takes an existing file as it is and
downloads nothing; its own pre- and post-processing run.

For a DAVIS 854x480 frame and a 12 MP upscale of it (a JPEG on disk), each
library and configuration runs in a worker process of its own; they take turns
in an order that rotates every round (warm-up rounds untimed), each timing its
own call from the file's path to the encoded bytes. Times are medians of
--repeats rounds; the machine's load average is recorded, since only ratios of
one run mean anything on a shared CPU.

- IS-Net general: every output (RGBA PNG, WebP, mask PNG, colour JPEG; what
  each side does: vs_rembg.py), rmbg's provider as a plain install runs it
  (ONNX Runtime, the same file as rembg); and rmbg's RGBA PNG doing rembg's
  work ("edge colours off": the photo's colours at soft edges, as rembg writes
  them) against rembg's RGBA PNG.
- BiRefNet_lite: the RGBA PNG, rmbg's network through PyTorch fp32, PyTorch
  bf16 autocast (where the CPU has bf16 units), ONNX Runtime fp32 on the same
  export as rembg's, and OpenVINO fp32 when the openvino extra is installed.

Mattes: each configuration's (the alpha of its timed RGBA PNG) against rembg's,
by the precision gate (rmbg.eval.gate): no further from rembg's than rembg's
own matte moves when the photo moves by one grey level (its noise floor).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import statistics
import sys
import tempfile
from pathlib import Path

import rembg_exports
from PIL import Image
from speed_workers import Worker
from vs_rembg_models_workers import SAME_WORK
from vs_rembg_workers import OUTPUTS

import speed_setup
from harness import markdown, table, write_results
from vs_rembg import inputs

ROOT = Path(__file__).resolve().parents[1]
FRAME = ROOT / "data" / "davis2016-sample" / "images" / "blackswan_00000.jpg"
WORKERS = str(Path(__file__).with_name("vs_rembg_models_workers.py"))
SESSIONS = {"isnet-general": "isnet-general-use", "birefnet-lite": "birefnet-general-lite"}


def birefnet_configs() -> list[str]:
    from rmbg.providers.local.device import cpu_bf16_units

    configs = ["torch-fp32", *(["torch-bf16"] if cpu_bf16_units() else []), "onnxruntime"]
    return configs + (["openvino-fp32"] if importlib.util.find_spec("openvino") else [])


OMP_SEEN: dict[str, dict[str, str]] = {}  # rmbg configuration -> the OpenMP wait settings its worker ran with


def rounds(workers: dict[str, Worker], path: Path, output: str, repeats: int, warmup: int, keep: Path) -> dict:
    """{name: (median seconds, bytes)}: every worker once per round, the order rotated each round;
    the last round's files saved in `keep` as <index>.out."""
    names = list(workers)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    size: dict[str, int] = {}
    for r in range(warmup + repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            save = keep / f"{names.index(name)}.out" if r == warmup + repeats - 1 else None
            answer = workers[name].run(path, save, output=output)
            size[name] = answer["bytes"]
            if answer.get("omp") and name.startswith("rmbg"):
                OMP_SEEN[name.split(" ", 2)[2]] = answer["omp"]
            if r >= warmup:
                seconds[name].append(answer["seconds"])
        print(f"  round {r + 1}: {output} {path.name}", flush=True)
    return {name: (statistics.median(seconds[name]), size[name]) for name in names}


def alpha(path: Path, output: str) -> Image.Image:
    """The matte in a saved output: a mask PNG itself, an RGBA PNG's alpha."""
    image = Image.open(io.BytesIO(path.read_bytes()))
    return image.convert("L") if output == "mask PNG" else image.getchannel("A")


def gate_row(label: str, output: str, mattes: dict[str, Image.Image], floor: Image.Image, reference: str) -> list:
    from rmbg.eval.gate import deviation, gate

    rows = []
    ref = mattes[reference]
    noise = deviation([floor], [ref])
    for name, matte in mattes.items():
        if name == reference:
            continue
        verdict = gate(deviation([matte], [ref]), noise)
        dev = deviation([matte], [ref])
        rows.append([label, output, name, *dev.row(), *noise.row()[:2], "pass" if verdict.passed else "fail"])
    return rows


GATE_COLUMNS = [
    "image",
    "output",
    "configuration",
    "IoU drop vs rembg",
    "mean |Δα| vs rembg",
    "max |Δα| vs rembg",
    "noise floor IoU drop",
    "noise floor mean |Δα|",
    "gate",
]


def compare(model: str, configs: list[str], files: dict, images: list, outputs: tuple, args) -> tuple[dict, dict]:
    """The speed table and the matte table of one model."""
    session = SESSIONS[model]
    reference = f"rembg {session}"
    names = [reference, *(f"rmbg {model} {c}" for c in configs)]
    workers = {name: Worker(name, files, script=WORKERS) for name in names}
    speed, mattes = [], []
    try:
        for i, (label, path) in enumerate(images):
            for output in outputs:
                with tempfile.TemporaryDirectory(prefix="vs-rembg-models-") as tmp:
                    warmup = args.warmup if i == 0 and output == outputs[0] else 0
                    medians = rounds(workers, path, output, args.repeats, warmup, Path(tmp))
                    if output in ("RGBA PNG", "mask PNG"):
                        floor = Path(tmp) / "floor.png"
                        workers[reference].run(path, floor, noisy="1")
                        found = {name: alpha(Path(tmp) / f"{k}.out", output) for k, name in enumerate(names)}
                        mattes += gate_row(label, output, found, Image.open(floor).convert("L"), reference)
                base = medians[reference][0]
                for name in names[1:]:
                    t, size = medians[name]
                    speed.append(
                        [
                            label,
                            output,
                            name.split(" ", 2)[2],
                            round(t, 3),
                            round(base, 3),
                            round(t / base, 2),
                            round(size / medians[reference][1], 2),
                        ]
                    )
                print(speed[-len(names) + 1 :], flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    what = {"isnet-general": "IS-Net general", "birefnet-lite": "BiRefNet_lite"}[model]
    return (
        table(
            f"rmbg vs rembg 2.0.86 ({session}), {what}, file path to output bytes",
            ["image", "output", "rmbg configuration", "rmbg s", "rembg s", "time ratio", "size ratio"],
            speed,
            f"Medians of {args.repeats} rounds, every configuration and rembg in a worker process of its own, "
            "taking turns in an order rotated each round (warm-up untimed; each worker times its own call). "
            "Time ratio below 1: rmbg is faster. Size ratio: rmbg's file over rembg's. OpenMP's wait in rmbg's "
            f"workers, as each reported it: {omp_note()}.{cap_note(args.isa_cap)}",
        ),
        table(
            f"{what}: rmbg's mattes against rembg's, by the precision gate",
            GATE_COLUMNS,
            mattes,
            "Each configuration's matte (the last timed output's alpha) against rembg's; the noise floor is "
            "rembg's own matte of the photo moved by at most one grey level per pixel. 'pass': no further "
            "from rembg's than that on both measures (rmbg.eval.gate).",
        ),
    )


def cap_note(cap: str | None) -> str:
    if not cap:
        return ""
    return (
        f" rmbg's engines capped at {cap} on this CPU ({', '.join(speed_setup.ISA_CAP_VARIABLES[cap])}): "
        "an emulated older CPU class (same cores, caches and clock); rembg's ONNX Runtime keeps this CPU's "
        "wider instructions (its kernels take no cap), which can only make rembg faster than it would be there."
    )


def omp_note() -> str:
    seen = sorted({", ".join(f"{k}={v}" for k, v in sorted(omp.items())) for omp in OMP_SEEN.values()})
    return "; ".join(seen) or "none set (OpenMP's defaults)"


def network_agreement(weights: Path, export: Path, frame: Path) -> dict:
    """rmbg's fp32 BiRefNet_lite (PyTorch) against the exported graph in ONNX Runtime, on the same
    network input: whatever separates the two libraries' mattes beyond this is their recipes."""
    import numpy as np
    import onnxruntime as ort

    import rmbg

    ours = rmbg.get_provider("birefnet-lite", weights=weights, device="cpu", precision="fp32")
    x = ours.preprocess(rmbg.load_image(frame).rgb)
    torch_prob = ours.forward(x)
    session = ort.InferenceSession(str(export), providers=["CPUExecutionProvider"])
    onnx_prob = 1 / (1 + np.exp(-session.run(None, {"input_image": x})[0][0, 0]))
    gap = np.abs(torch_prob - onnx_prob) * 255
    return table(
        "BiRefNet_lite: rmbg's PyTorch network against the exported graph, on one network input",
        ["image", "max |Δ| grey levels", "mean |Δ| grey levels"],
        [[frame.name, round(float(gap.max()), 3), round(float(gap.mean()), 4)]],
        "Sigmoid of the logits at 1024x1024, x255, before any resize: rmbg's fp32 network in PyTorch, and the "
        "ONNX file rembg reads in ONNX Runtime.",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds before the first table's")
    parser.add_argument("--frame", type=Path, default=FRAME)
    parser.add_argument("--models", default="isnet-general,birefnet-lite")
    parser.add_argument("--configs", default="", help="BiRefNet_lite's rmbg configurations (default: all here)")
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE in every worker: PyTorch's OpenMP threads sleep at barriers instead of spinning",
    )
    parser.add_argument(
        "--isa-cap",
        choices=sorted(speed_setup.ISA_CAP_VARIABLES),
        help="rmbg as on an older CPU class: its engines (oneDNN, ATen, MKL) capped at this instruction set",
    )
    parser.add_argument(
        "--isnet-weights",
        choices=("deterministic", "trained"),
        default="deterministic",
        help="IS-Net general's weights: our deterministic ones, or a trained network from npm "
        "(benchmarks/trained_isnet.py; adds the mattes against the DAVIS truth)",
    )
    parser.add_argument("--results", default="vs_rembg_models", help="benchmarks/results/NAME.json, one per CPU class")
    args = parser.parse_args()
    if args.isa_cap:  # before any worker starts (they inherit it), and before cpu_bf16_units() reads it
        os.environ.update(speed_setup.ISA_CAP_VARIABLES[args.isa_cap])
    if args.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read when a worker's OpenMP runtime loads (its torch import)
    if importlib.util.find_spec("rembg") is None:
        sys.exit("rembg is not installed: pip install --no-deps rembg==2.0.86 pymatting numba llvmlite")

    weights, birefnet = rembg_exports.birefnet_lite()
    if args.isnet_weights == "trained":
        from trained_isnet import trained_isnet

        isnet = trained_isnet()
    else:
        isnet = rembg_exports.isnet_general()
    files = {"birefnet-lite": str(weights), "birefnet-lite-onnx": str(birefnet), "isnet-general": str(isnet)}
    tables = []
    with tempfile.TemporaryDirectory(prefix="vs-rembg-models-home-") as home:
        # rembg's sessions take <U2NET_HOME>/<session>.onnx as it is (no download, no checksum)
        os.symlink(birefnet, Path(home) / "birefnet-general-lite.onnx")
        os.symlink(isnet, Path(home) / "isnet-general-use.onnx")
        os.environ["U2NET_HOME"] = home  # the workers inherit it
        with tempfile.TemporaryDirectory(prefix="vs-rembg-models-") as tmp:
            images = inputs(args.frame, Path(tmp))
            for model in [m.strip() for m in args.models.split(",") if m.strip()]:
                if model == "isnet-general":
                    tables += compare(model, ["onnxruntime"], files, images, (*OUTPUTS, SAME_WORK), args)
                else:
                    configs = [c for c in args.configs.split(",") if c] or birefnet_configs()
                    tables += compare(model, configs, files, images, ("RGBA PNG",), args)
        if args.isnet_weights == "trained" and "isnet-general" in args.models:
            from vs_rembg_truth import truth_table

            tables.append(truth_table(Path(home)))
    if "birefnet-lite" in args.models:
        tables.append(network_agreement(weights, birefnet, args.frame))
    tables.append(
        table(
            "The exported BiRefNet_lite graph",
            ["ONNX operator", "nodes"],
            [
                [op, n]
                for op, n in rembg_exports.operators(birefnet).items()
                if op in ("GatherND", "GridSample", "Conv")
            ],
            "How the deformable convolutions were lowered (benchmarks/rembg_exports.py): GatherND, not GridSample.",
        )
    )
    print(markdown(tables))
    print(write_results(args.results, None, tables, packages=("rembg", "openvino")))


if __name__ == "__main__":
    main()
