"""No oversubscription: a request's model time when the cores are shared, against its time alone.

    python benchmarks/oversubscription.py --before integ

Serves U²-Net-p with `python app.py` (POST /api/remove, the DAVIS frames at 854x480 and 1708x960, the matte
cache off) and reads each answer's model seconds (X-Rmbg-Seconds: the model's own stages,
without the waits for the device or for threads). Four conditions: one client alone; one
client while another process burns a core (a busy loop in a subprocess); the server
benchmark's 16 clients; 16 clients and the busy loop. The goal (issue #46): the median model
time stays within 1.5x its time alone multiplied by the share of the cores the server gets,
cores / (cores - busy loops).

--before REV also serves the code of that git revision (extracted with `git archive`, run by
the same Python), so the change is measured against what it replaced in one run, the two
servers in alternating order. Only ratios mean anything on a shared CPU: the load average is
recorded with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import httpx
from PIL import Image

from harness import markdown, table, write_results
from speed_setup import stand_in_hub
from vs_rembg_serving import FRAMES, PYTHON, ROOT, Server, environment, p95, ready, weights

CONDITIONS = (("alone", 1, 0), ("a core busy", 1, 1), ("16 clients", 16, 0), ("16 clients, a core busy", 16, 1))


async def model_seconds(server: Server, photos: list[bytes], clients: int, seconds: float) -> dict:
    """`clients` clients posting photos for `seconds`: each answer's model seconds and latency."""
    model: list[float] = []
    latency: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + seconds

    async def client_loop(index: int, client: httpx.AsyncClient) -> None:
        n = index
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            photo = photos[n % len(photos)]
            got = await client.post(server.url, data=server.form, files={"image": ("p.jpg", photo, "image/jpeg")})
            n += clients
            if got.status_code != 200 or got.headers.get("x-rmbg-cached") == "true":
                errors.append(got.status_code)
                continue
            latency.append(time.perf_counter() - start)
            model.append(float(got.headers["x-rmbg-seconds"]))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(i, client) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return {"model": model, "latency": latency, "errors": errors, "rps": len(model) / elapsed}


def busy_loops(count: int) -> list[subprocess.Popen]:
    """`count` processes that each keep one core busy until killed."""
    return [subprocess.Popen([PYTHON, "-c", "while True: pass"]) for _ in range(count)]


def before_tree(rev: str, into: Path) -> Path:
    """The files of git revision `rev`, extracted under `into` (an app.py that imports its own rmbg)."""
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def photos_at(scale: float) -> list[bytes]:
    """The DAVIS frames (854x480) scaled by `scale`, as JPEG (quality 92)."""
    out = []
    for frame in FRAMES:
        with Image.open(frame) as image:
            size = (round(image.width * scale), round(image.height * scale))
            buf = BytesIO()
            image.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(buf, "JPEG", quality=92)
            out.append(buf.getvalue())
    return out


def measure(
    servers: dict[str, Server], scale: float, seconds: float, rounds: int, conditions: tuple = CONDITIONS
) -> list[list]:
    photos = photos_at(scale)
    with Image.open(BytesIO(photos[0])) as first:
        size = f"{first.width}x{first.height}"
    for server in servers.values():
        ready(server, photos[0])
    cores = len(os.sched_getaffinity(0))
    cells: dict = {
        (c, name): {"model": [], "latency": [], "errors": [], "rps": []} for c, *_ in conditions for name in servers
    }
    for r in range(rounds):
        for condition, clients, busy in conditions:
            order = list(servers) if r % 2 == 0 else list(servers)[::-1]
            for name in order:
                loops = busy_loops(busy)
                try:
                    got = asyncio.run(model_seconds(servers[name], photos, clients, seconds))
                finally:
                    for loop in loops:
                        loop.kill()
                        loop.wait()
                cell = cells[(condition, name)]
                for key in ("model", "latency", "errors"):
                    cell[key] += got[key]
                cell["rps"].append(got["rps"])
                print(size, condition, name, round(statistics.median(got["model"]), 3), flush=True)
    rows = []
    for name in servers:
        alone = statistics.median(cells[("alone", name)]["model"])
        for condition, _, busy in conditions:
            cell = cells[(condition, name)]
            med = statistics.median(cell["model"])
            bound = 1.5 * alone * cores / (cores - busy)
            rows.append(
                [
                    size,
                    name,
                    condition,
                    round(med * 1000),
                    round(p95(cell["model"]) * 1000),
                    round(med / alone, 2),
                    round(bound * 1000),
                    "yes" if med <= bound else "no",
                    round(statistics.median(cell["rps"]), 2),
                    round(p95(cell["latency"]) * 1000),
                    len(cell["model"]),
                    len(cell["errors"]),
                ]
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12, help="seconds per server and condition in a round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--scales",
        type=lambda text: [float(x) for x in text.split(",")],
        default=[1.0, 2.0],
        help="photo sizes, as scales of the 854x480 frames (2: 1708x960, where resizes, PNGs and the edge "
        "estimate run in threads)",
    )
    parser.add_argument(
        "--conditions",
        type=lambda text: tuple(c for c in CONDITIONS if c[0] in text.split(",")),
        default=CONDITIONS,
        help=f"some of: {', '.join(c[0] for c in CONDITIONS)} (comma-separated; all by default)",
    )
    parser.add_argument("--before", metavar="REV", help="also serve this git revision's code (the change's base)")
    parser.add_argument(
        "--provider",
        default="u2netp",
        help="the model served: u2netp (its real file), or a local torch model (rmbg-1.4, birefnet-lite, rmbg-2.0: "
        "deterministic weights of its network in a Hugging Face cache of the run's own)",
    )
    parser.add_argument("--results", default="oversubscription")
    args = parser.parse_args()
    env = environment(weights(), Path(tempfile.gettempdir()) / "vs-rembg-u2net-home")
    env = {**env, "GRADIO_SERVER_NAME": "127.0.0.1", "RMBG_CACHE_MB": "0"}
    form = {"provider": args.provider}
    with tempfile.TemporaryDirectory(prefix="oversubscription-") as tmp:
        if args.provider != "u2netp":
            env = {**env, "HF_HOME": str(stand_in_hub(args.provider, Path(tmp) / "hf")), "HF_HUB_OFFLINE": "1"}
        servers = {
            "now": Server("now", [PYTHON, "app.py"], {**env, "GRADIO_SERVER_PORT": "7873"}, _url(7873), form, "image")
        }
        if args.before:
            old = before_tree(args.before, Path(tmp) / "before")
            servers[f"before ({args.before})"] = Server(
                "before", [PYTHON, "app.py"], {**env, "GRADIO_SERVER_PORT": "7874"}, _url(7874), form, "image", old
            )
        try:
            rows = [
                row
                for scale in args.scales
                for row in measure(servers, scale, args.seconds, args.rounds, args.conditions)
            ]
        finally:
            for server in servers.values():
                server.close()
    tables = [
        table(
            f"A request's model time when the cores are shared: {args.provider} through POST /api/remove",
            [
                "photo",
                "server",
                "condition",
                "model ms (median)",
                "model ms (p95)",
                "x alone",
                "bound ms",
                "within",
                "req/s",
                "p95 latency ms",
                "answers",
                "errors",
            ],
            rows,
            f"{args.rounds} rounds of {args.seconds:g} s per server and condition, servers in alternating order. "
            "Model ms: X-Rmbg-Seconds of each answer (the model's own stages, without the waits for the device "
            "or for threads), pooled over rounds. Bound: 1.5 x the median alone x cores / (cores - busy loops), "
            "the goal of issue #46; 'a core busy': another process runs a busy loop meanwhile. 16 clients: the "
            "server benchmark's (benchmarks/vs_rembg_serving.py), the app's REST slots let 4 run at once. The "
            "matte cache is off (RMBG_CACHE_MB=0). The machine is shared: the load average is recorded.",
        )
    ]
    print(markdown(tables))
    print(write_results(args.results, None, tables, packages=("openvino", "fastapi", "uvicorn")))


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api/remove"


if __name__ == "__main__":
    sys.exit(main())
