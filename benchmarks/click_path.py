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

--clip: a clip's path through rmbg/video/ instead. rmbg.remove_video runs the model on the
first frames of data/davis2016-clips/dog into one WebM, warm, then traced twice (CLIP_FRAMES
long, then twice that), the same hook on every thread counting each call into an rmbg/video
module from another one (or from outside it), a generator's resumption included: the calls
between two of its modules are the returns back up that a reader follows (issue #59). Two
lengths split each count into what a clip costs once and what each frame adds. Writes
benchmarks/results/clip_path.json.
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
VIDEO = str(ROOT / "rmbg" / "video") + os.sep
CLIP_FRAMES = 6


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


def short_clip(folder: Path, count: int) -> Path:
    """The first `count` frames of data/davis2016-clips/dog as an H.264 MP4 of their own."""
    import av

    path = folder / f"dog{count}.mp4"
    with av.open(str(ROOT / "data" / "davis2016-clips" / "dog" / "clip.mp4")) as src, av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        for index, frame in enumerate(src.decode(video=0)):
            if index == count:
                break
            if index == 0:
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")))
        out.mux(stream.encode(None))
    return path


def traced_clips(provider_id: str) -> tuple[dict[tuple[str, str], list[int]], dict[tuple[str, str], set[str]]]:
    """({(caller, module): [calls in a clip of CLIP_FRAMES, in one of twice that]},
    {(caller, module): {"caller's function -> function called"}}) of a warm clip."""
    import rmbg

    folder = Path(tempfile.mkdtemp())
    calls: dict[tuple[str, str], list[int]] = {}
    names: dict[tuple[str, str], set[str]] = {}
    run = [0]  # which of the two clips is running

    def caller_of(frame: FrameType | None) -> tuple[str, str]:
        while frame is not None and not frame.f_code.co_filename.startswith(PACKAGE):  # through contextlib, threading
            frame = frame.f_back
        if frame is None:
            return "(outside)", ""
        path = frame.f_code.co_filename
        return (path[len(VIDEO) :] if path.startswith(VIDEO) else "(rmbg)"), frame.f_code.co_name

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        path = frame.f_code.co_filename
        if event == "call" and path.startswith(VIDEO):
            caller, function = caller_of(frame.f_back)
            edge = (caller, path[len(VIDEO) :])
            if caller != edge[1]:
                calls.setdefault(edge, [0, 0])[run[0]] += 1
                names.setdefault(edge, set()).add(f"{function} -> {frame.f_code.co_name}".lstrip(" ->"))

    rmbg.remove_video(short_clip(folder, CLIP_FRAMES), provider_id, output=folder / "warm.webm").close()
    for run[0], count in enumerate((CLIP_FRAMES, 2 * CLIP_FRAMES)):
        clip = short_clip(folder, count)
        threading.setprofile(hook)
        sys.setprofile(hook)
        try:
            rmbg.remove_video(clip, provider_id, output=folder / f"out{count}.webm").close()
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
    return calls, names


def clip_tables(provider_id: str) -> list[dict[str, Any]]:
    calls, names = traced_clips(provider_id)
    inside = [edge for edge in calls if not edge[0].startswith("(")]
    jumps = sum(len(names[edge]) for edge in inside)
    short, long = (sum(calls[edge][i] for edge in inside) for i in (0, 1))
    frames = [f"{CLIP_FRAMES} frames", f"{2 * CLIP_FRAMES} frames"]
    rows = [[*edge, len(names[edge]), *calls[edge], ", ".join(sorted(names[edge]))] for edge in sorted(calls)]
    entered: dict[str, list[int]] = {}
    for (_, module), n in calls.items():
        entered[module] = [a + b for a, b in zip(entered.get(module, [0, 0]), n)]
    title = (
        f"A clip through rmbg/video/ ({provider_id}, one WebM out): {jumps} distinct calls from one of its modules "
        f"into another, made {short} times in a clip of {CLIP_FRAMES} frames, {long} in one of {2 * CLIP_FRAMES}"
    )
    print(title)
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
            [[m, *n] for m, n in sorted(entered.items())],
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
    if args.clip:
        print(f"Wrote {write_results('clip_path', None, clip_tables(args.provider))}", file=sys.stderr)
        return 0
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
