"""Where a click on Remove goes, and a clip: the rmbg modules whose code runs during one of each.

    python benchmarks/click_path.py [--provider u2netp]
    python benchmarks/click_path.py --clip [--provider u2netp]

Builds the web app's state in this process (rmbg.webapp.context.App, no server),
makes one cut-out of the example photo to warm the model, then traces a second
identical click (rmbg.webapp.remove.actions.remove: the options checked, the
provider built and wrapped, the matte, the render, the preview and download,
the cost line) with a profile hook on every thread, and counts the calls made
in each module of the package. The count of modules is the number of stops a
reader follows from the click to the forward and back (issue #59 asks for
about 20). The model's own file is found as the tests find it (RMBG_U2NETP_PATH,
else the test cache). Writes benchmarks/results/click_path.json.

--clip: a clip's path through rmbg/video/ instead: rmbg.remove_video on DAVIS frames into one
WebM (video.speed_clip), warm, then traced on a clip of CLIP_FRAMES frames and one of twice
that, the same hook counting each call into an rmbg/video module from another (a generator's
resumption included): the jumps a reader follows (issue #59), and which grow with the clip.
Writes benchmarks/results/clip_path.json.
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
CLIP_FRAMES = 6

Call = tuple[str, str, str, str]  # the caller's module and function, the module and function called


def traced(run: Any, scope: str) -> Counter[Call]:
    """The calls into the modules under `scope` (a folder of the package) while run() runs, on every thread.
    The caller is the nearest frame in the package (through contextlib, threading): "(outside)" where there is
    none (a thread's start, this script), "(rmbg)" where it is outside `scope`."""
    calls: Counter[Call] = Counter()

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        path = frame.f_code.co_filename
        if event == "call" and path.startswith(scope):
            back = frame.f_back
            while back is not None and not back.f_code.co_filename.startswith(PACKAGE):
                back = back.f_back
            caller = "" if back is None else back.f_code.co_filename
            where = (
                "(outside)" if back is None else caller[len(str(ROOT)) + 1 :] if caller.startswith(scope) else "(rmbg)"
            )
            function = "" if back is None else back.f_code.co_name
            calls[(where, function, path[len(str(ROOT)) + 1 :], frame.f_code.co_name)] += 1

    threading.setprofile(hook)
    sys.setprofile(hook)
    try:
        run()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return calls


# The click's steps of work: the network's call (under the pool's lock), the render, the download's PNG.
STEPS = {"rmbg/providers/local/pool.py": "forward", "rmbg/image/compose.py": "render", "rmbg/image/png.py": "save_png"}


def chain(calls: Counter[Call], module: str, function: str) -> list[str]:
    """The modules from the click to `function` of `module`, following its first traced caller back."""
    files, seen = [module], {(module, function)}
    while caller := next(((w, f) for w, f, m, c in calls if (m, c) == (module, function) and w[0] != "("), None):
        if caller in seen:
            break
        (module, function), files = caller, ([caller[0]] if caller[0] != files[0] else []) + files
        seen.add(caller)
    return [f.removeprefix("rmbg/") for f in files]


def click_tables(provider_id: str) -> list[dict[str, Any]]:
    """One warm click on Remove: the calls made in each module of the package, and its functions that ran."""
    from rmbg.webapp import AppConfig, Keys, Look, Session
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore
    from rmbg.webapp.remove import actions

    app = App.create(AppConfig(), store=OutputStore(Path(tempfile.mkdtemp())), cache=None)

    look, keys = Look(), Keys()  # the page makes them from its form before the click reaches actions.remove

    def click() -> None:
        actions.remove(Session(), str(EXAMPLE), provider_id, look, keys, app, 100)

    click()  # the model loaded, the page's first-run work done
    traces = traced(click, PACKAGE)
    calls: Counter[str] = Counter()
    names: dict[str, set[str]] = {}
    for (_, _, module, function), n in traces.items():
        calls[module] += n
        if not function.startswith("<"):  # lambdas and comprehensions: their function is named
            names.setdefault(module, set()).add(function)
    rows = [[module, calls[module], ", ".join(sorted(names.get(module, ())))] for module in sorted(calls)]
    steps = {step: chain(traces, module, step) for module, step in STEPS.items()}
    on_path = sorted({f for files in steps.values() for f in files})
    by_room = Counter(module.split("/")[1] if module.count("/") > 1 else "rmbg" for module in calls)
    rooms = [[room, count] for room, count in sorted(by_room.items())]
    print(f"{len(calls)} modules; {', '.join(f'{room} {n}' for room, n in rooms)}")
    return [
        table(
            f"Modules whose code runs in one warm Remove click ({provider_id}): {len(calls)}",
            ["module", "calls", "functions"],
            rows,
        ),
        table("The same modules by folder", ["folder", "modules"], rooms + [["all", len(calls)]]),
        table(
            f"The click's path to its work and back: {len(on_path)} files ({', '.join(on_path)})",
            ["step", "files on the stack, from the click"],
            [[step, " -> ".join(files)] for step, files in steps.items()],
            "rmbg/ left out of the names; a file entered twice in a row is named once.",
        ),
    ]


def clip_tables(provider_id: str) -> list[dict[str, Any]]:
    """A warm clip of CLIP_FRAMES frames and one of twice that: the calls from one rmbg/video module into another."""
    import rmbg
    from video import speed_clip

    folder, video = Path(tempfile.mkdtemp()), str(ROOT / "rmbg" / "video") + os.sep
    clips = {count: speed_clip(folder, count / 24) for count in (CLIP_FRAMES, 2 * CLIP_FRAMES)}  # made untraced

    def clip(count: int) -> None:
        rmbg.remove_video(clips[count], provider_id, output=folder / f"{count}.webm").close()

    clip(CLIP_FRAMES)  # warm
    runs = [traced(lambda: clip(count), video) for count in clips]  # noqa: B023  (run at once)
    calls: dict[tuple[str, str], list[int]] = {}
    names: dict[tuple[str, str], set[str]] = {}
    for i, run in enumerate(runs):
        for (caller, function, module, called), n in run.items():
            edge = (caller.removeprefix("rmbg/video/"), module.removeprefix("rmbg/video/"))
            if edge[0] != edge[1]:
                calls.setdefault(edge, [0, 0])[i] += n
                names.setdefault(edge, set()).add(f"{function} -> {called}".lstrip(" ->"))
    inside = [edge for edge in calls if not edge[0].startswith("(")]
    short, long = (sum(calls[edge][i] for edge in inside) for i in (0, 1))
    entered: dict[str, list[int]] = {}
    for (_, module), n in calls.items():
        entered[module] = [a + b for a, b in zip(entered.get(module, [0, 0]), n)]
    title = (
        f"A clip through rmbg/video/ ({provider_id}, one WebM out): {sum(len(names[e]) for e in inside)} distinct "
        f"calls from one of its modules into another, made {short} times in a clip of {CLIP_FRAMES} frames, {long} "
        f"in one of {2 * CLIP_FRAMES}"
    )
    print(title)
    frames = [f"{CLIP_FRAMES} frames", f"{2 * CLIP_FRAMES} frames"]
    rows = [[*edge, len(names[edge]), *calls[edge], ", ".join(sorted(names[edge]))] for edge in sorted(calls)]
    return [
        table(
            title,
            ["from", "into", "distinct", *frames, "caller -> function called"],
            rows,
            "(outside): a thread's start, or this script; (rmbg): a module outside rmbg/video/. A generator is "
            "counted where it is pulled, its first pull included.",
        ),
        table(
            "The times each rmbg/video module is entered",
            ["module", *frames],
            sorted([m, *n] for m, n in entered.items()),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="u2netp", help="a local model (default u2netp)")
    parser.add_argument("--clip", action="store_true", help="a clip's path through rmbg/video/ instead")
    args = parser.parse_args(argv)
    if args.provider == "u2netp" and not os.environ.get("RMBG_U2NETP_PATH"):
        cached = Path.home() / ".cache" / "rmbg-test" / "u2netp.onnx"
        if cached.is_file():
            os.environ["RMBG_U2NETP_PATH"] = str(cached)
    name, tables = (
        ("clip_path", clip_tables(args.provider)) if args.clip else ("click_path", click_tables(args.provider))
    )
    print(f"Wrote {write_results(name, None, tables)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
