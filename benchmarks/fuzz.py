"""The longer fuzz run, and what a hostile request costs the server.

    python benchmarks/fuzz.py --examples 2000 --rest-examples 400

1. Runs the property tests of tests/test_fuzz.py with --examples examples
   each and the schemathesis run of tests/test_hostile.py with
   --rest-examples requests against the launched app (the CI runs 150 and
   60); a table of each one's outcome and time.
2. Launches the app in this process and posts tiny uploads (an 80x60 PNG,
   156 bytes) with the frames the issue measured and the largest a tiny
   upload may still get, through REST with U2-Net-p; the peak RSS growth of the process
   (ru_maxrss, MiB) after each, and the answer's status.

Writes benchmarks/results/fuzz.json (benchmarks/harness.py).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from harness import write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROPERTIES = [
    "tests/test_fuzz.py",
    "tests/test_hostile.py::test_rest_schema_fuzzing_gets_no_server_error",
]
FRAMES = [
    ("crop, margin 7000px", {"crop": "true", "margin": "7000px"}),
    ("canvas 10000x10000", {"canvas": "10000x10000"}),
    ("crop, margin 9950px, 1:1", {"crop": "true", "margin": "9950", "canvas": "1:1"}),
    ("canvas 2048x2048 on white (largest allowed)", {"canvas": "2048x2048", "background": "white"}),
    ("canvas 2048x2048, clean edges, webp", {"canvas": "2048x2048", "clean_edges": "true", "format": "webp"}),
]


def fuzz_table(examples: int, rest_examples: int) -> dict:
    env = {
        **os.environ,
        "RMBG_FUZZ_EXAMPLES": str(examples),
        "RMBG_FUZZ_REST_EXAMPLES": str(rest_examples),
        "PYTHONPATH": str(ROOT),
    }
    rows = []
    for target in PROPERTIES:
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        tail = (run.stdout.strip().splitlines() or ["?"])[-1]
        rows.append(
            [
                target,
                examples if "test_fuzz" in target else rest_examples,
                tail,
                round(time.perf_counter() - started, 1),
            ]
        )
        print(rows[-1], flush=True)
    return {
        "title": "Fuzzing (hypothesis properties; schemathesis against the launched app)",
        "columns": ["target", "examples each", "pytest says", "seconds"],
        "rows": rows,
        "notes": "A failure prints hypothesis's smallest failing example; the CI runs 150 and 60 examples.",
    }


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def launched_app():
    """The app as `python app.py` builds it, launched in this process on a free port; (demo, base URL)."""
    import importlib.util
    import socket

    spec = importlib.util.spec_from_file_location("app", ROOT / "app.py")  # the repository's entry file
    assert spec is not None and spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    demo = app.build_demo()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_kwargs(demo)
    )
    return demo, f"http://127.0.0.1:{port}/"


def memory_table() -> dict:
    import httpx
    from PIL import Image

    from rmbg.providers.local.u2netp_file import ensure_u2netp

    os.environ.setdefault("RMBG_U2NETP_PATH", str(ensure_u2netp()))  # the free local model: no key, no fake
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 30, 30)).save(buf, "PNG", optimize=True)
    tiny = buf.getvalue()
    rows = []
    demo, base = launched_app()
    try:

        def post(fields: dict) -> httpx.Response:
            return httpx.post(
                base + "api/remove",
                files={"image": ("tiny.png", tiny, "image/png")},
                data={"provider": "u2netp", **fields},
                timeout=120,
            )

        post({})  # warm: the app's first request, the model's first run
        warm = rss_mib()
        for label, fields in FRAMES:
            answer = post(fields)
            rows.append(
                [
                    label,
                    answer.status_code,
                    round(rss_mib() - warm, 1),
                    answer.json()["error"][:90] if answer.status_code >= 400 else f"{len(answer.content)} bytes",
                ]
            )
            print(rows[-1], flush=True)
    finally:
        demo.close()
    return {
        "title": f"A {len(tiny)}-byte upload (80x60 PNG) with hostile frames: the server's peak RSS growth",
        "columns": ["frame", "status", "peak RSS growth over warm, MiB (cumulative)", "answer"],
        "rows": rows,
        "notes": "One app process (app.build_demo, as `python app.py`), U2-Net-p, frames in this order; "
        "ru_maxrss never falls, so each row is the peak so far. Refused frames are refused before the model runs.",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="hypothesis examples per property")
    parser.add_argument("--rest-examples", type=int, default=400, help="schemathesis requests against the app")
    parser.add_argument("--skip-fuzz", action="store_true", help="only the memory table")
    args = parser.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    tables = [] if args.skip_fuzz else [fuzz_table(args.examples, args.rest_examples)]
    tables.append(memory_table())
    print(write_results("fuzz", None, tables, packages=("hypothesis", "schemathesis")))


if __name__ == "__main__":
    main()
