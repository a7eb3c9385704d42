"""The app's memory with video clips: one clip of each size alone, then four 4K clips at once.

    RMBG_U2NETP_PATH=~/.cache/rmbg-test/u2netp.onnx python benchmarks/video_memory.py [--seconds 2]

Launches the app in its own process (benchmarks/app_memory.py's child, the allocator and warm-up
of `python app.py`) and samples its RSS every 0.2 s. Clips: `--seconds` of DAVIS dog
(data/davis2016-clips) scaled to 854x480, 1920x1080 and 3840x2160 (4K is scaled down to the
frame-size limit, 1920x1080, as it is cut), H.264, each with a tint of its own.

1. One 480p clip through POST /api/video warms the app (the model loaded, the codecs' libraries
   mapped); the RSS after it is the warm level.
2. Each size alone through POST /api/video, U2-Net-p, WebM out: peak RSS over the RSS before it.
   What rmbg.webapp.video.room's estimate (`need_bytes`) is fitted to.
3. Four 4K clips at once, as the issue measured them: two through POST /api/video, two through the
   page's /video API (gradio_client), each from its own thread: the peak RSS over the warm level,
   each request's wall time, and how long each waited for room (the order they ran in).

`--budget-mb N` sets RMBG_VIDEO_MEMORY_MB for the app (`--budget-mb 0`: unbounded, as before the
budget). The bound the app is held to: the same +1 GB over the warm level as images (docs/serving.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from app_memory import Sampler, free_port, rss_mib, serve, wait_up

from harness import table, write_results

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"480p": (854, 480), "1080p": (1920, 1080), "4K": (3840, 2160)}


def make_clip(path: Path, size: tuple[int, int], seconds: float, tint: int) -> Path:
    import av
    from PIL import Image

    n = int(seconds * 24)
    with av.open(str(ROOT / "data" / "davis2016-clips" / "dog" / "clip.mp4")) as c:
        frames = [f.to_image() for _, f in zip(range(n), c.decode(video=0))]
    colour = Image.new("RGB", frames[0].size, ((tint * 37) % 256, (tint * 91) % 256, (tint * 53) % 256))
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=24, options={"crf": "23", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        for image in frames:
            rgb = np.asarray(Image.blend(image, colour, 0.1).resize(size, Image.Resampling.BILINEAR))
            for packet in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)
    return path


def rest(url: str, clip: Path) -> None:
    import httpx

    with clip.open("rb") as f:
        answer = httpx.post(url + "api/video", files={"video": (clip.name, f, "video/mp4")}, timeout=1800)
    if answer.status_code != 200:
        raise SystemExit(f"POST /api/video answered {answer.status_code}: {answer.text[:300]}")


def page(url: str, clip: Path) -> None:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    try:
        client.predict(video=handle_file(str(clip)), provider="u2netp", api_name="/video")
    finally:
        threading.Thread(target=client.close, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--budget-mb", type=int, default=None, help="RMBG_VIDEO_MEMORY_MB (0: unbounded)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--results", default="video_memory")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(Path(__file__).parent)]))
    if args.budget_mb is not None:
        env["RMBG_VIDEO_MEMORY_MB"] = str(args.budget_mb or 10**7)
    budget = "unbounded" if args.budget_mb == 0 else f"{args.budget_mb or 'default'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clips = {name: make_clip(folder / f"{name}.mp4", size, args.seconds, 0) for name, size in SIZES.items()}
        fours = [make_clip(folder / f"4k-{i}.mp4", SIZES["4K"], args.seconds, i + 1) for i in range(4)]
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)
        try:
            wait_up(url, proc)
            sampler = Sampler(proc.pid)
            rest(url, make_clip(folder / "warm.mp4", SIZES["480p"], 0.5, 9))
            warm = rss_mib(proc.pid)
            alone = []
            for name, clip in clips.items():
                before = rss_mib(proc.pid)
                sampler.reset()
                started = time.perf_counter()
                rest(url, clip)
                alone.append(
                    [name, f"{clip.stat().st_size / 1024:.0f}", round(before), round(sampler.peak)]
                    + [round(sampler.peak - before), round(time.perf_counter() - started, 1)]
                )
                print(alone[-1], flush=True)
            settled = rss_mib(proc.pid)
            sampler.reset()
            times: list[list] = []
            t0 = time.perf_counter()

            def one(door: str, clip: Path) -> None:
                start = time.perf_counter()
                (rest if door == "REST" else page)(url, clip)
                times.append([door, clip.name, round(start - t0, 1), round(time.perf_counter() - t0, 1)])

            threads = [
                threading.Thread(target=one, args=(door, clip))
                for door, clip in zip(("REST", "REST", "page", "page"), fours)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            peak = sampler.peak
            sampler.stop()
        finally:
            proc.terminate()
            proc.wait(30)
    four = [[budget, round(warm), round(settled), round(peak), round(peak - warm), round(wall, 1)]]
    print(four, sorted(times, key=lambda r: r[3]), flush=True)
    tables = [
        table(
            "One clip alone through POST /api/video (U2-Net-p, WebM): peak RSS over the RSS before it",
            ["frames", "clip KiB", "RSS before MiB", "peak RSS MiB", "peak - before MiB", "seconds"],
            alone,
            f"{args.seconds:g} s at 24 fps; 4K is cut at 1920x1080 (the frame-size limit). The app warmed by "
            "one 480p clip first.",
        ),
        table(
            "Four 4K clips at once (two through POST /api/video, two through the page's /video API)",
            ["RMBG_VIDEO_MEMORY_MB", "warm RSS MiB", "RSS before MiB", "peak RSS MiB", "peak - warm MiB", "wall s"],
            four,
            "warm: the RSS after the warm-up clip; RSS before: after the clips alone; peak: sampled every "
            "0.2 s while the four ran. The bound: +1 GB over the warm level (docs/serving.md).",
        ),
        table(
            "The four requests: when each was sent and answered (seconds from the start)",
            ["door", "clip", "sent s", "answered s"],
            sorted(times, key=lambda r: r[3]),
            "All four sent at once; under the budget they run in turn, each waiting for room before it decodes.",
        ),
    ]
    path = write_results(args.results, None, tables, packages=("av", "gradio"))
    print(path.read_text())


if __name__ == "__main__":
    main()
