"""Screenshots of the web app: docs/images/app.png (the README's, 1400 px
wide, the Remove tab after a run on an example photo) and, with --narrow,
each tab at 420 px into --out, to check the phone layout by eye.

    python docs/hooks/screenshot.py                 # starts the app itself
    python docs/hooks/screenshot.py --url http://127.0.0.1:7860 --narrow --out test-artifacts

Needs Playwright and a Chromium (default /usr/bin/chromium). The run uses
the first ready local model (no key, no charge). It writes the docs, as fill.py beside it does; it
measures nothing, so it is not one of benchmarks/.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXAMPLE = min((ROOT / "examples").glob("*.jpg"))
TABS = {"Remove": "input-image", "Compare": "compare-image", "AI background": "ai-image"}


@contextlib.contextmanager
def served(url: str | None):
    """`url`, or a fresh `python app.py` on a free port (stopped afterwards)."""
    if url:
        yield url
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # the app is up once its port answers
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the app did not start")
            time.sleep(0.5)
        yield address
    finally:
        server.terminate()
        server.wait(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="an app already running (default: start one)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--image", type=Path, default=ROOT / "docs" / "images" / "app.png")
    parser.add_argument("--narrow", action="store_true", help="also each tab at 420 px into --out")
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts")
    args = parser.parse_args(argv)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=120_000)  # the first run loads a model

    with served(args.url) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.locator("#input-image input[type=file]").set_input_files(str(EXAMPLE))
        expect(page.locator("#input-image img")).to_have_count(1)
        page.locator("#run").click()
        expect(page.locator("#cost-line")).to_contain_text("this image:")
        expect(page.locator("#download")).to_be_visible()
        args.image.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.image), full_page=True)
        print(f"wrote {args.image}")
        if args.narrow:
            args.out.mkdir(parents=True, exist_ok=True)
            page.set_viewport_size({"width": 420, "height": 900})
            for tab, image in TABS.items():
                page.get_by_role("tab", name=tab).click()
                expect(page.locator(f"#{image}")).to_be_visible()
                name = args.out / f"narrow-{tab.split()[0].lower()}.png"
                page.screenshot(path=str(name), full_page=True)
                print(f"wrote {name}")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
