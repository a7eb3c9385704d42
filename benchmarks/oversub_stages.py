"""Where a request's model time goes when the server is busy: every stage of each matte timed,
and what the rest of the server did meanwhile.

    python benchmarks/oversub_stages.py --seconds 10 --rounds 2 --scales 1,2 --before integ

Serves U²-Net-p through POST /api/remove as `python app.py` does (the matte cache off), in a
process of this script's own whose stages are wrapped in timers: nothing else changes. The
timers record, per call, its thread, its start and end, and its thread's CPU time: the matte
(run_stages: what X-Rmbg-Seconds reports), its preprocess, the wait for the device and the
threads, the network's run (OpenVINO's infer, or ONNX Runtime's run), its postprocess, every
wait for and hold of the thread budget (rmbg.threads, named by the function that asked), and
the rest of a request: reading the body, decoding the upload, rendering (the edge-colour
estimate inside it), encoding.

For each matte it reports the model seconds, the stages' times, the budget waits inside the
preprocess and the postprocess (counted in the model time: only the wait before the forward is
not), the rest of the model time (the time in the matte outside those stages), and how much of
the other requests' work ran while this one's network ran: unbudgeted work
(decoding, reading, rendering outside the estimate, encoding outside the PNG bands) competes
with the run's threads for the cores. One client, then 16 (the server benchmark's), in
alternating order; medians over the mattes. --before REV also serves that git revision's code
(benchmarks/oversubscription.py's way), the two servers in alternating order too. The load
average is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from harness import table, write_results
from vs_rembg_serving import PYTHON, ROOT, environment, weights

TRACE: list[tuple[str, int, float, float, float, float]] = []  # kind, thread, start, end, cpu, extra
UNBUDGETED = ("read body", "decode", "render", "encode")  # their own threads' work outside the budget


def _record(kind: str, start: float, cpu: float, extra: float = 0.0) -> None:
    TRACE.append((kind, threading.get_ident(), start, time.perf_counter(), time.thread_time() - cpu, extra))


def _timed(kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def waited(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return await fn(*args, **kwargs)
            finally:
                _record(kind, start, cpu)

        return waited

    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            out = fn(*args, **kwargs)
        except BaseException:
            _record(kind, start, cpu)
            raise
        _record(kind, start, cpu, getattr(out, "seconds", 0.0) if kind == "matte" else 0.0)
        return out

    return timed


def _swap(owner: Any, name: str, kind: str) -> None:
    """Wrap owner.name, and every module's reference to the same function (`from x import name`)."""
    original = getattr(owner, name)
    wrapped = _timed(kind, original)
    setattr(owner, name, wrapped)
    for module in list(sys.modules.values()):
        for attr, value in list(vars(module).items()) if module is not None else ():
            if value is original:
                setattr(module, attr, wrapped)


def _held(kind: str, take: Callable[..., Any]) -> Callable[..., Any]:
    """A context manager's wait (entry to its yield) and hold (yield to exit), as two records."""

    @functools.wraps(take)
    @contextmanager
    def held(*args: Any, **kwargs: Any) -> Iterator[Any]:
        caller = sys._getframe(2).f_code.co_name  # the function whose `with` asked
        start, cpu = time.perf_counter(), time.thread_time()
        with take(*args, **kwargs) as got:
            _record(f"{kind} wait:{caller}", start, cpu)
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                yield got
            finally:
                _record(f"{kind} hold:{caller}", start, cpu, float(got or 0))

    return held


def instrument() -> None:
    import onnxruntime.capi.onnxruntime_inference_collection as ort_sessions

    import rmbg.api
    import rmbg.image.compose
    import rmbg.image.foreground
    import rmbg.image.png
    import rmbg.webapp.actions
    import rmbg.webapp.rest
    from rmbg.providers.local import onnx_backend, openvino_backend, processing
    from rmbg.providers.local.pool import ModelPool
    from rmbg.threads import ThreadBudget

    for owner, name, kind in (
        (processing, "run_stages", "matte"),
        (onnx_backend.OnnxProvider, "preprocess", "preprocess"),
        (onnx_backend.OnnxProvider, "postprocess", "postprocess"),
        (ort_sessions.Session, "run", "run"),
        (openvino_backend.Compiled, "infer", "run"),
        (rmbg.webapp.rest, "read_body", "read body"),
        (rmbg.api, "load_image", "decode"),
        (rmbg.api, "render", "render"),
        (rmbg.image.compose, "estimate_foreground", "edge estimate"),
        (rmbg.image.compose, "encode", "encode"),
        (rmbg.image.png, "save_png", "png"),
        (rmbg.webapp.actions, "run", "request"),
    ):
        _swap(owner, name, kind)
    ThreadBudget.take = _held("budget", ThreadBudget.take)  # type: ignore[method-assign]
    ModelPool.forward = _held("device", ModelPool.forward)  # type: ignore[method-assign]


def serve(root: str) -> None:
    """The app of the code at `root`, served as its app.py serves it, with the timers in; stdin's
    "dump" answers the trace so far (and starts a new one). The code's folder is first on
    PYTHONPATH (Served), so its app and its rmbg are the ones imported."""
    import app
    import rmbg
    from rmbg.webapp.logs import configure_logging
    from rmbg.webapp.memory import serving_allocator

    for module in (app, rmbg):
        if not Path(str(module.__file__)).resolve().is_relative_to(Path(root).resolve()):
            raise SystemExit(f"--serve {root}: imported {module.__file__}, not the code at {root} (PYTHONPATH)")
    configure_logging()
    serving_allocator()
    instrument()
    app.warm_up(app.demo)
    app.demo.launch(**app.launch_kwargs(app.demo), prevent_thread_lock=True)
    print("ready", app.demo.local_url, flush=True)  # gradio takes the next port when the asked one is busy
    for line in sys.stdin:
        if line.strip() == "dump":
            got = list(TRACE)
            TRACE.clear()
            print(json.dumps(got), flush=True)


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _span(records: list[list], name: str) -> tuple[float, float]:
    found = [r for r in records if r[0] == name]
    return (found[0][2], found[0][3]) if found else (0.0, 0.0)


def _within(records: list[list], span: tuple[float, float], prefix: str) -> float:
    return sum(r[3] - r[2] for r in records if r[0].startswith(prefix) and span[0] <= r[2] and r[3] <= span[1])


def per_matte(trace: list[list]) -> list[dict[str, float]]:
    """Each matte's stages, from the records of its thread within it, and the other threads' work during its run."""
    out = []
    for kind, thread, start, end, _, seconds in trace:
        if kind != "matte":
            continue
        mine = [r for r in trace if r[1] == thread and start <= r[2] and r[3] <= end]
        others = [r for r in trace if r[1] != thread]
        pre, post, (run0, run1) = _span(mine, "preprocess"), _span(mine, "postprocess"), _span(mine, "run")
        row = {
            "model": seconds,
            "preprocess": pre[1] - pre[0],
            "pre budget wait": _within(mine, pre, "budget wait"),
            "pre cpu": next((r[4] for r in mine if r[0] == "preprocess"), 0.0),
            "forward wait": max((r[3] - r[2] for r in mine if r[0].startswith("device wait")), default=0.0),
            "run": run1 - run0,
            "postprocess": post[1] - post[0],
            "post budget wait": _within(mine, post, "budget wait"),
            "post cpu": next((r[4] for r in mine if r[0] == "postprocess"), 0.0),
        }
        row["rest"] = seconds - row["preprocess"] - row["run"] - row["postprocess"]
        # other requests' threads while this run ran: in unbudgeted stages (or a preprocess /
        # postprocess), less their waits for the budget there (nested in those stages)
        stages = (*UNBUDGETED, "preprocess", "postprocess")
        busy = sum(overlap(run0, run1, r[2], r[3]) for r in others if r[0] in stages)
        busy -= sum(overlap(run0, run1, r[2], r[3]) for r in others if r[0].startswith("budget wait"))
        row["others' unbudgeted work in run"] = max(busy, 0.0)
        out.append(row)
    return out


async def drive(url: str, photos: list[bytes], clients: int, seconds: float) -> int:
    deadline = time.perf_counter() + seconds
    answers = 0

    async def client_loop(index: int, client: httpx.AsyncClient) -> None:
        nonlocal answers
        n = index
        while time.perf_counter() < deadline:
            got = await client.post(
                url, data={"provider": "u2netp"}, files={"image": ("p.jpg", photos[n % len(photos)])}
            )
            n += clients
            if got.status_code != 200:
                raise SystemExit(f"{got.status_code}: {got.text[:300]}")
            answers += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        await asyncio.gather(*(client_loop(i, client) for i in range(clients)))
    return answers


COLUMNS = [
    "model",
    "preprocess",
    "pre budget wait",
    "pre cpu",
    "forward wait",
    "run",
    "postprocess",
    "post budget wait",
    "post cpu",
    "rest",
    "others' unbudgeted work in run",
]


class Served:
    """This script's --serve process on the code at `root`, and its trace."""

    def __init__(self, name: str, root: Path, port: int, env: dict[str, str]):
        self.name = name
        env = {**env, "GRADIO_SERVER_PORT": str(port), "PYTHONPATH": str(root)}
        argv = [PYTHON, __file__, "--serve", str(root)]
        self.proc = subprocess.Popen(argv, env=env, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        while not (line := self.proc.stdout.readline().split()) or line[0] != "ready":
            if self.proc.poll() is not None:
                raise SystemExit(f"{name}: the server exited")
        self.url = line[1].rstrip("/") + "/api/remove"

    def dump(self) -> list[list]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("dump\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def measure(servers: list[Served], scale: float, clients: list[int], seconds: float, rounds: int) -> list[list]:
    from oversubscription import photos_at

    photos = photos_at(scale)
    for server in servers:
        asyncio.run(drive(server.url, photos, 1, 3))  # warm: the model loaded, its first runs done
        server.dump()
    mattes: dict[tuple[str, int], list[dict[str, float]]] = {(s.name, c): [] for s in servers for c in clients}
    for r in range(rounds):
        for count in clients if r % 2 == 0 else clients[::-1]:
            for server in servers if r % 2 == 0 else servers[::-1]:
                asyncio.run(drive(server.url, photos, count, seconds))
                mattes[(server.name, count)] += per_matte(server.dump())
    rows = []
    for (name, count), found in mattes.items():
        med = [round(statistics.median(m[c] for m in found) * 1000, 1) for c in COLUMNS]
        rows.append([f"{round(854 * scale)}x{round(480 * scale)}", name, count, *med, len(found)])
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        return serve(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="seconds per server and condition in a round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scales", type=lambda text: [float(x) for x in text.split(",")], default=[1.0, 2.0])
    parser.add_argument("--clients", type=lambda text: [int(x) for x in text.split(",")], default=[1, 16])
    parser.add_argument("--before", metavar="REV", help="also serve this git revision's code, in alternating order")
    parser.add_argument("--results", default="oversub_stages")
    args = parser.parse_args()
    from oversubscription import before_tree

    env = environment(weights(), Path(tempfile.gettempdir()) / "vs-rembg-u2net-home")
    env = {**env, "GRADIO_SERVER_NAME": "127.0.0.1", "RMBG_CACHE_MB": "0"}
    servers: list[Served] = []
    with tempfile.TemporaryDirectory(prefix="oversub-stages-") as tmp:
        try:
            servers.append(Served("now", ROOT, 7875, env))
            if args.before:
                old = before_tree(args.before, Path(tmp) / "before")
                servers.append(Served(f"before ({args.before})", old, 7876, env))
            rows = [
                row for scale in args.scales for row in measure(servers, scale, args.clients, args.seconds, args.rounds)
            ]
        finally:
            for server in servers:
                server.close()
    note = (
        f"{args.rounds} rounds of {args.seconds:g} s per server and condition, in alternating order; medians "
        "over the mattes, ms. "
        "model: X-Rmbg-Seconds (run_stages' seconds); pre/post budget wait: waits for the thread budget inside "
        "the preprocess / postprocess (counted in the model time); pre/post cpu: the request thread's CPU time in "
        "them; forward wait: for the device and the threads (not counted); rest: model time outside "
        "preprocess, the network's run (OpenVINO's infer or ONNX Runtime's run) and postprocess; others' "
        "unbudgeted work in run: the seconds other "
        "requests' threads spent reading, decoding, rendering (less the edge estimate) or encoding while this "
        "request's run ran, summed over threads. The machine is shared: the load average is recorded."
    )
    columns = ["photo", "server", "clients", *(f"{c} ms" for c in COLUMNS), "mattes"]
    title = "Where U²-Net-p's model time goes through POST /api/remove, 1 and 16 clients"
    tables = [table(title, columns, rows, note)]
    print(write_results(args.results, None, tables, packages=("onnxruntime", "fastapi", "uvicorn")))


if __name__ == "__main__":
    sys.exit(main())
