"""Where a click on Remove goes: the rmbg modules whose code runs during one warm click.

    python benchmarks/click_path.py [--provider u2netp]

Builds the web app's state in this process (rmbg.webapp.context.App, no server),
makes one cut-out of the example photo to warm the model, then traces a second
identical click (rmbg.webapp.remove.actions.remove: the options checked, the
provider built and wrapped, the matte, the render, the preview and download,
the cost line) with a profile hook on every thread, and counts the calls made
in each module of the package. The count of modules is the number of stops a
reader follows from the click to the forward and back (issue #59 asks for
about 20). The model's own file is found as the tests find it (RMBG_U2NETP_PATH,
else the test cache). Writes benchmarks/results/click_path.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from harness import table, write_results

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = str(ROOT / "rmbg") + os.sep
EXAMPLE = ROOT / "examples" / "cat.jpg"


def traced_click(provider_id: str) -> tuple[Counter[str], dict[str, set[str]]]:
    """(calls per module, function names per module) of one warm click on Remove."""
    from rmbg.webapp import AppConfig, Keys, Look, Session
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore
    from rmbg.webapp.remove import actions

    app = App.create(AppConfig(), store=OutputStore(Path(tempfile.mkdtemp())), cache=None)

    def click() -> None:
        actions.remove(Session(), str(EXAMPLE), provider_id, Look(), Keys(), app, 100)

    click()  # the model loaded, the page's first-run work done
    calls: Counter[str] = Counter()
    names: dict[str, set[str]] = {}

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        path = frame.f_code.co_filename
        if event == "call" and path.startswith(PACKAGE):
            module = "rmbg/" + path[len(PACKAGE) :]
            calls[module] += 1
            if not frame.f_code.co_name.startswith("<"):  # lambdas and comprehensions: their function is named
                names.setdefault(module, set()).add(frame.f_code.co_name)

    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        click()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return calls, names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="u2netp", help="a local model (default u2netp)")
    args = parser.parse_args(argv)
    if args.provider == "u2netp" and not os.environ.get("RMBG_U2NETP_PATH"):
        cached = Path.home() / ".cache" / "rmbg-test" / "u2netp.onnx"
        if cached.is_file():
            os.environ["RMBG_U2NETP_PATH"] = str(cached)
    calls, names = traced_click(args.provider)
    rows = [[module, calls[module], ", ".join(sorted(names.get(module, ())))] for module in sorted(calls)]
    by_room = Counter(module.split("/")[1] if module.count("/") > 1 else "rmbg" for module in calls)
    rooms = [[room, count] for room, count in sorted(by_room.items())]
    tables = [
        table(
            f"Modules whose code runs in one warm Remove click ({args.provider}): {len(calls)}",
            ["module", "calls", "functions"],
            rows,
        ),
        table("The same modules by folder", ["folder", "modules"], rooms + [["all", len(calls)]]),
    ]
    print(f"{len(calls)} modules; {', '.join(f'{room} {n}' for room, n in rooms)}")
    print(f"Wrote {write_results('click_path', None, tables)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
