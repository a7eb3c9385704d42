"""Memory and disk of the web app as sessions come and go.

    python benchmarks/app_memory.py --sessions 50 --megapixels 12

Each session removes the background of its own 12 MP photo through the app's
action layer (rmbg.webapp.actions, what the Remove tab calls), with a
deterministic local provider so the model's own memory does not hide the
app's. After a warm-up of 5 sessions, RSS is sampled every 10 sessions.
Prints a table with the machine and versions: RSS after warm-up, its peak and
final value, what the shared stores hold, and the download folder's size.
"""

from __future__ import annotations

import argparse
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np

from harness import markdown, table, write_results


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Threshold:
    """A fast, deterministic local provider: alpha = brightness >= 128."""

    id = "bench-threshold"
    label = "threshold (benchmark)"
    kind = "local"

    def options(self):
        return {"threshold": 128}

    def status(self):
        from rmbg.providers.base import ProviderStatus

        return ProviderStatus("ready")

    def estimate(self):
        from rmbg.types import Cost

        return Cost.free()

    def matte(self, image):
        from rmbg.types import Cost, Matte

        return Matte(image.convert("L").point(lambda v: 255 if v >= 128 else 0), Cost(Decimal(0), "compute"), 0.0)


def photo(path: Path, megapixels: float, seed: int) -> None:
    from PIL import Image

    width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
    Image.fromarray(small).resize((width, height)).save(path, quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    import rmbg
    from rmbg.webapp import AppConfig, Keys, Look, Session, actions
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore

    rmbg.register(Threshold.id, lambda **_: Threshold())
    work = Path(tempfile.mkdtemp(prefix="rmbg-app-memory-"))
    app = App.create(AppConfig(), store=OutputStore(work / "downloads"))
    rows = []
    baseline = None
    for n in range(args.sessions):
        image = work / f"photo{n}.jpg"
        photo(image, args.megapixels, n)
        session, _ = actions.remove(Session(), str(image), Threshold.id, Look(), Keys(), app, 100_000,
                                    session_id=f"visitor-{n}")
        image.unlink()
        if n + 1 == args.warmup:
            baseline = rss_mib()
        if (n + 1) % 10 == 0 or n + 1 == args.sessions:
            rows.append((n + 1, rss_mib(), app.recent.nbytes / 2**20, (app.cache.nbytes if app.cache else 0) / 2**20))
    disk = sum(p.stat().st_size for p in (work / "downloads").rglob("*") if p.is_file()) / 2**20
    tables = [table(
        f"Web app memory: {args.sessions} sessions, one {args.megapixels:g} MP photo each",
        ["sessions", "RSS MiB", f"RSS − warm-up ({args.warmup} sessions) MiB", "recent results MiB",
         "matte cache MiB"],
        [[count, round(rss), f"{rss - baseline:+.0f}", round(recent), round(cache)]
         for count, rss, recent, cache in rows],
        notes=f"App memory budget {AppConfig().memory_mb} MiB; RSS after the warm-up {baseline:.0f} MiB; "
              f"downloads written {disk:.0f} MiB (content-addressed; gradio deletes them after an hour).")]
    print(markdown(tables))
    print(f"\nWrote {write_results('app_memory', None, tables)}")

if __name__ == "__main__":
    main()
