"""rmbg against rembg where rembg's users meet it: its server, its folder command, its one-photo command.

    pip install --no-deps rembg==2.0.86 pymatting numba llvmlite filetype asyncer sniffio   # benchmark only
    python benchmarks/vs_rembg_serving.py --seconds 15 --rounds 2 --repeats 3

Both run the same u2netp.onnx (rmbg's RMBG_U2NETP_PATH; rembg finds <U2NET_HOME>/u2netp.onnx,
the same file copied there, and never downloads). Three comparisons:

- server: `rembg s --no-ui` against `python app.py`'s POST /api/remove, both up at once on
  this machine; 1, 4 and 16 httpx async clients each post 854x480 DAVIS frames (cycling
  through data/davis2016-sample) for --seconds, the servers taking turns in alternating
  order (--rounds). rmbg is measured like for like (edge_colours=false: the photo's colours
  at soft edges, as rembg writes them) and as it serves by default (the estimate on). Its
  caps, identities and limits stay on; only the matte cache is off (RMBG_CACHE_MB=0), since
  the same frames come back and rembg has no cache. Requests per second, median and p95
  latency, and the peak RSS of each server's process tree (sampled every 0.1 s).
- folder: `rmbg remove DIR -o OUT` against `rembg p DIR OUT`, 100 photos (the 30 DAVIS frames
  copied under 100 names), each a new process, alternating, medians of --repeats.
- cold start: one photo from a new process, `rmbg remove photo.jpg -o OUT` against
  `rembg i photo.jpg out.png`, alternating, medians of --repeats.

Only ratios mean anything on a shared CPU: the load average is recorded with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

from harness import markdown, table, write_results

ROOT = Path(__file__).resolve().parents[1]
FRAMES = sorted((ROOT / "data" / "davis2016-sample" / "images").glob("*.jpg"))
PYTHON = sys.executable
BIN = Path(PYTHON).parent


def weights() -> Path:
    from rmbg.providers.local.u2netp_file import ensure_u2netp

    return ensure_u2netp()


def environment(onnx: Path, home: Path) -> dict[str, str]:
    """Both sides' environment: rmbg's weights file, and a U2NET_HOME holding the same file."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "u2netp.onnx").exists():
        shutil.copyfile(onnx, home / "u2netp.onnx")
    return {**os.environ, "RMBG_U2NETP_PATH": str(onnx), "U2NET_HOME": str(home), "PYTHONUNBUFFERED": "1"}


class Server:
    """A server process, its request, and the peak RSS of its process tree while sampled."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], url: str, form: dict, field: str, cwd: Path = ROOT
    ):
        self.name, self.url, self.form, self.field = name, url, form, field
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        self.peak = 0
        self._sampling = False

    def rss(self) -> int:
        try:
            root = psutil.Process(self.proc.pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            return 0

    def sample(self) -> None:
        while self._sampling:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.1)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def post(client: httpx.AsyncClient, server: Server, photo: bytes, form: dict) -> tuple[float, int, str]:
    start = time.perf_counter()
    response = await client.post(server.url, data=form, files={server.field: ("photo.jpg", photo, "image/jpeg")})
    return time.perf_counter() - start, response.status_code, response.headers.get("x-rmbg-cached", "")


async def load(server: Server, form: dict, photos: list[bytes], clients: int, seconds: float) -> dict:
    """`clients` clients posting photos in a loop for `seconds` (no new request after that; the ones
    in flight are awaited and counted): latencies of the answers, errors, and the seconds it all took."""
    latencies: list[float] = []
    errors: list[int] = []
    deadline = time.perf_counter() + seconds

    async def client_loop(index: int, client: httpx.AsyncClient) -> None:
        n = index
        while time.perf_counter() < deadline:
            took, status, cached = await post(client, server, photos[n % len(photos)], form)
            n += clients
            if status != 200 or cached == "true":
                errors.append(status)
            else:
                latencies.append(took)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(i, client) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


def ready(server: Server, photo: bytes, timeout: float = 240) -> None:
    """Wait for the server's first good answer, then warm it up with a few more."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.proc.poll() is not None:
            server.log.seek(0)
            sys.exit(f"{server.name} exited:\n{server.log.read().decode(errors='replace')[-3000:]}")
        try:
            took, status, _ = asyncio.run(_one(server, photo))
            if status == 200:
                for _ in range(3):
                    asyncio.run(_one(server, photo))
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    sys.exit(f"{server.name} did not answer within {timeout} s")


async def _one(server: Server, photo: bytes) -> tuple[float, int, str]:
    async with httpx.AsyncClient(timeout=120) as client:
        return await post(client, server, photo, server.form)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def serving(env: dict[str, str], concurrencies: list[int], seconds: float, rounds: int) -> dict:
    photos = [f.read_bytes() for f in FRAMES]
    ours_env = {**env, "GRADIO_SERVER_PORT": "7871", "GRADIO_SERVER_NAME": "127.0.0.1", "RMBG_CACHE_MB": "0"}
    ours = Server(
        "rmbg", [PYTHON, "app.py"], ours_env, "http://127.0.0.1:7871/api/remove", {"provider": "u2netp"}, "image"
    )
    theirs = Server(
        "rembg",
        [str(BIN / "rembg"), "s", "--no-ui", "-p", "7872", "-h", "127.0.0.1", "-l", "warning"],
        env,
        "http://127.0.0.1:7872/api/remove",
        {"model": "u2netp"},
        "file",
    )
    sides = [
        ("rembg s", theirs, {"model": "u2netp"}),
        ("rmbg, edge colours off", ours, {"provider": "u2netp", "edge_colours": "false"}),
        ("rmbg, edge colours on (default)", ours, {"provider": "u2netp"}),
    ]
    rows = []
    try:
        for server in (theirs, ours):
            ready(server, photos[0])
        for clients in concurrencies:
            cells: dict[str, dict] = {name: {"latencies": [], "errors": [], "rps": [], "peak": 0} for name, *_ in sides}
            for r in range(rounds):
                for name, server, form in sides if r % 2 == 0 else sides[::-1]:
                    server.peak, server._sampling = server.rss(), True
                    sampler = threading.Thread(target=server.sample, daemon=True)
                    sampler.start()
                    got = asyncio.run(load(server, form, photos, clients, seconds))
                    server._sampling = False
                    sampler.join()
                    cell = cells[name]
                    cell["latencies"] += got["latencies"]
                    cell["errors"] += got["errors"]
                    cell["rps"].append(len(got["latencies"]) / got["elapsed"])
                    cell["peak"] = max(cell["peak"], server.peak)
                    print(clients, name, round(cell["rps"][-1], 2), len(got["errors"]), flush=True)
            base = cells["rembg s"]
            for name, *_ in sides:
                cell = cells[name]
                rps, med, tail = (
                    statistics.median(cell["rps"]),
                    statistics.median(cell["latencies"]),
                    p95(cell["latencies"]),
                )
                rows.append(
                    [
                        clients,
                        name,
                        round(rps, 2),
                        round(rps / statistics.median(base["rps"]), 2),
                        round(med * 1000),
                        round(tail * 1000),
                        round(tail / p95(base["latencies"]), 2),
                        round(cell["peak"] / 2**20),
                        len(cell["latencies"]),
                        len(cell["errors"]),
                    ]
                )
                print(rows[-1], flush=True)
    finally:
        ours.close()
        theirs.close()
    return table(
        "Serving U²-Net-p: `rembg s` against `python app.py`'s POST /api/remove, 854x480 photos",
        [
            "clients",
            "server",
            "req/s",
            "req/s ratio",
            "median ms",
            "p95 ms",
            "p95 ratio",
            "peak RSS MiB",
            "answers",
            "errors",
        ],
        rows,
        f"{rounds} rounds of {seconds:g} s per server and concurrency, in alternating order; req/s: median over "
        "rounds; latencies pooled over rounds; ratios against rembg s (req/s above 1 and p95 below 1: rmbg is "
        "ahead). Peak RSS: the server's process tree, sampled every 0.1 s. rmbg's matte cache is off "
        "(RMBG_CACHE_MB=0; every answer was checked uncached); its request cap, limits and identities stay on. "
        "'Errors': answers other than 200.",
    )


def alternate_runs(commands: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[tuple[float, float]]]:
    """Each command `repeats` times (after one untimed run each), in alternating order: (wall, CPU)
    seconds of each run, CPU being its processes' user + system time (less moved by a busy machine)."""
    names = list(commands)
    for name in names:
        commands[name]()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            commands[name]()
            wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
            times[name].append((wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))
            print(name, round(wall, 2), flush=True)
    return times


def run(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def commands_table(env: dict[str, str], repeats: int, count: int) -> dict:
    """`rmbg remove` against `rembg p` on a folder of `count` photos (none for 0) and `rembg i` on one photo."""
    compileall.compile_dir(ROOT / "rmbg", quiet=1)  # as pip install does: rembg's bytecode is in site-packages
    rembg_bin = str(BIN / "rembg")
    rows = []
    with tempfile.TemporaryDirectory(prefix="vs-rembg-serving-") as tmp:
        folder, photo = Path(tmp) / "photos", FRAMES[0]
        folder.mkdir()
        for i in range(count):
            shutil.copyfile(FRAMES[i % len(FRAMES)], folder / f"{i:03d}_{FRAMES[i % len(FRAMES)].name}")

        def fresh(name: str) -> Path:
            out = Path(tmp) / name
            shutil.rmtree(out, ignore_errors=True)
            return out

        def one(*extra: str) -> None:
            out = str(fresh("ours1"))
            run([PYTHON, "-m", "rmbg", "remove", str(photo), "-o", out, "-p", "u2netp", "--overwrite", *extra], env)

        cases = {
            f"folder of {count} photos": {
                "rembg": lambda: run([rembg_bin, "p", "-m", "u2netp", str(folder), str(fresh("theirs"))], env),
                "rmbg": lambda: run(
                    [PYTHON, "-m", "rmbg", "remove", str(folder), "-o", str(fresh("ours")), "-p", "u2netp", "--yes"],
                    env,
                ),
            },
            "one photo, new process (cold start)": {
                "rembg": lambda: run([rembg_bin, "i", "-m", "u2netp", str(photo), str(Path(tmp) / "theirs.png")], env),
                "rmbg": one,
            },
            "one photo, new process, rmbg --no-edge-colours (rembg's work)": {
                "rembg": lambda: run([rembg_bin, "i", "-m", "u2netp", str(photo), str(Path(tmp) / "theirs.png")], env),
                "rmbg": lambda: one("--no-edge-colours"),
            },
        }
        if not count:
            del cases[f"folder of {count} photos"]
        for case, sides in cases.items():
            times = alternate_runs(sides, repeats)
            (a, ca), (b, cb) = ([statistics.median(t[k] for t in times[s]) for k in (0, 1)] for s in ("rmbg", "rembg"))
            rows.append([case, *(round(v, 2) for v in (a, b, a / b, ca, cb, ca / cb))])
            print(rows[-1], flush=True)
    return table(
        "Commands: `rmbg remove` against `rembg p` (a folder) and `rembg i` (one photo), U²-Net-p",
        ["work", "rmbg s", "rembg s", "time ratio", "rmbg CPU s", "rembg CPU s", "CPU ratio"],
        rows,
        f"Wall time and CPU time (user + system) of each command from a new process, medians of {repeats} runs "
        "after one untimed run each, in alternating order. "
        + (f"The folder: the {len(FRAMES)} DAVIS 854x480 frames copied under {count} names. " if count else "")
        + "Both write RGBA PNGs; rmbg's cut-outs estimate the subject's colour at soft edges (its default; rembg's "
        "do not), unless --no-edge-colours. rmbg's modules are compiled to bytecode first, as `pip install` does "
        "(rembg's are, in site-packages): a checkout run with PYTHONDONTWRITEBYTECODE=1 would compile them in "
        "every new process.",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--count", type=int, default=100, help="photos in the folder (0: no folder row)")
    parser.add_argument("--only", choices=("server", "commands"), help="one half of the benchmark")
    parser.add_argument("--results", default="vs_rembg_serving")
    args = parser.parse_args()
    env = environment(weights(), Path(tempfile.gettempdir()) / "vs-rembg-u2net-home")
    tables = []
    if args.only != "commands":
        tables.append(serving(env, [int(c) for c in args.clients.split(",")], args.seconds, args.rounds))
    if args.only != "server":
        tables.append(commands_table(env, args.repeats, args.count))
    print(markdown(tables))
    print(write_results(args.results, None, tables, packages=("rembg", "openvino", "fastapi", "uvicorn")))


if __name__ == "__main__":
    main()
