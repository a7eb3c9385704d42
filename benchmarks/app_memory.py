"""Memory and disk of the launched web app under mixed load, each session a new visitor.

    RMBG_U2NETP_PATH=~/.cache/rmbg-test/u2netp.onnx \\
        python benchmarks/app_memory.py --sessions 50 --megapixels 12 --idle 120

Launches the app (app.build_demo, as `python app.py` does) in a child process
on 127.0.0.1 with its own gradio temporary folder, then drives it over HTTP
with gradio_client, a new Client (a new browser session) per session: /remove
of its own photo with U2-Net-p, /rerender on a colour as WebP, /compare of
U2-Net-p against a second registration of it ("u2netp-copy", so the matte
cache does not answer the comparison). Photos: an example upscaled to
--megapixels, with a per-session tint so no two are alike. The child's RSS
is sampled every 0.2 s: warm level (after --warmup sessions), peak over the
run, and --idle seconds after the last request; temporary files: count and
MiB in the app's temporary folder at the end of the run and after the idle time.
Writes benchmarks/results/app_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from harness import markdown, table, write_results

ROOT = Path(__file__).resolve().parents[1]


def serve(port: int) -> None:
    """The child: the app with a second U2-Net-p id, on 127.0.0.1:port, until killed."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import rmbg
    from rmbg.registry import ProviderInfo

    def copy(**config):
        provider = rmbg.get_provider("u2netp", **config)
        provider.id, provider.label = "u2netp-copy", "U2-Net-p (second id)"
        return provider

    rmbg.register("u2netp-copy", copy, ProviderInfo("u2netp-copy", "U2-Net-p (second id)", "local", copy))
    try:
        from rmbg.webapp.memory import serving_allocator
    except ImportError:  # a tree from before rmbg.webapp.memory (a before/after comparison)
        pass
    else:
        serving_allocator()  # as `python app.py` does before it launches
    import app  # found through the PYTHONPATH the parent gives this child

    demo = app.demo
    warm_up = getattr(app, "warm_up", None)  # a tree from before rmbg.webapp.warmup has none
    if warm_up is not None:
        warm_up(demo)  # as `python app.py` does as it launches
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=False, quiet=True, **app.launch_kwargs(demo)
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Sampler:
    """RSS of a process every `every` seconds, in a thread; peak since the last reset."""

    def __init__(self, pid: int, every: float = 0.2):
        self.pid, self.every, self.peak, self._stop = pid, every, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.peak = max(self.peak, rss_mib(self.pid))
            except OSError:
                return

    def reset(self) -> None:
        self.peak = rss_mib(self.pid)

    def stop(self) -> None:
        self._stop.set()


def temp_files(folder: Path) -> tuple[int, float]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files) / 2**20


def photo(path: Path, megapixels: float, n: int) -> None:
    from PIL import Image

    source = Image.open(ROOT / "examples" / "cat.jpg").convert("RGB")
    width = int((megapixels * 1e6 * source.width / source.height) ** 0.5)
    height = int(width * source.height / source.width)
    tint = Image.new("RGB", source.size, ((n * 37) % 256, (n * 91) % 256, (n * 53) % 256))
    Image.blend(source, tint, 0.08).resize((width, height), Image.Resampling.BICUBIC).save(path, quality=92)


def session(url: str, image: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    client.predict(image=handle_file(str(image)), provider="u2netp", api_name="/remove")
    client.predict(background="colour", colour="#2060c0", format="webp", api_name="/rerender")
    client.predict(image=handle_file(str(image)), providers=["u2netp", "u2netp-copy"], api_name="/compare")
    # close() tells the client's heartbeat to stop at once, then waits up to 1 s for its thread, which
    # sits in a read of the event stream the whole second: the next visitor need not wait for it.
    threading.Thread(target=client.close, daemon=True).start()


def wait_up(url: str, proc: subprocess.Popen, limit_s: float = 180) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited ({proc.returncode}) before it answered")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)  # a benchmark waiting for a child process to listen, not a test
    raise SystemExit(f"the app did not answer within {limit_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--warmup-megapixels", type=float, help="photo size of the warm-up sessions (default: --megapixels)"
    )
    parser.add_argument("--idle", type=float, default=120.0, help="seconds to wait after the last request")
    parser.add_argument("--no-write", action="store_true", help="print the summary line only (tests)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    work = Path(tempfile.mkdtemp(prefix="rmbg-app-memory-"))
    env = dict(os.environ, GRADIO_TEMP_DIR=str(work / "gradio"), PYTHONPATH=str(ROOT))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)
    try:
        wait_up(url, proc)
        sampler = Sampler(proc.pid)
        images = [work / f"photo{n}.jpg" for n in range(2)]
        rows = []
        for n in range(args.warmup + args.sessions):
            warming = n < args.warmup and args.warmup_megapixels is not None
            photo(images[n % 2], args.warmup_megapixels if warming else args.megapixels, n)
            start = time.perf_counter()
            session(url, images[n % 2])
            if n + 1 == args.warmup:
                warm = rss_mib(proc.pid)
                sampler.reset()
            done = n + 1 - args.warmup
            if done > 0 and (done % 10 == 0 or done == args.sessions):
                count, mib = temp_files(work / "gradio")
                rows.append([done, round(rss_mib(proc.pid)), round(sampler.peak), count, round(mib, 1)])
                print(
                    f"{done} sessions: RSS {rss_mib(proc.pid):.0f} MiB, peak {sampler.peak:.0f}, "
                    f"temp files {count} ({mib:.0f} MiB); last session {time.perf_counter() - start:.1f} s",
                    flush=True,
                )
        end_count, end_mib = temp_files(work / "gradio")
        time.sleep(args.idle)  # idle, as a server between visitors
        idle_rss = rss_mib(proc.pid)
        idle_count, idle_mib = temp_files(work / "gradio")
        sampler.stop()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    summary = [
        ["warm (after warm-up)", round(warm), 0],
        ["peak over the run", round(sampler.peak), round(sampler.peak - warm)],
        [f"{args.idle:g} s after the last request", round(idle_rss), round(idle_rss - warm)],
    ]
    tables = [
        table(
            f"App RSS, {args.sessions} sessions of /remove + /rerender + /compare, {args.megapixels:g} MP photos",
            ["when", "RSS MiB", "over warm MiB"],
            summary,
            notes=f"Temporary files: {end_count} ({end_mib:.0f} MiB) after the last request, "
            f"{idle_count} ({idle_mib:.0f} MiB) after the idle time.",
        ),
        table("Along the run", ["sessions", "RSS MiB", "peak so far MiB", "temp files", "temp MiB"], rows),
    ]
    summary_line = {
        "warm_mib": warm,
        "peak_over_warm_mib": sampler.peak - warm,
        "idle_over_warm_mib": idle_rss - warm,
        "temp_files": end_count,
        "temp_mib": end_mib,
        "temp_files_idle": idle_count,
    }
    print("SUMMARY " + json.dumps(summary_line), flush=True)
    if args.no_write:
        return
    print(markdown(tables))
    command = "python benchmarks/app_memory.py " + " ".join(a for a in sys.argv[1:] if a != "--no-write")
    print(f"\nWrote {write_results('app_memory', command, tables, packages=('gradio',))}")


if __name__ == "__main__":
    main()
