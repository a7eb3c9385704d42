"""`rmbg video`: cut the background out of clips, with a progress bar, resuming folders.

    rmbg video clip.mp4 -o clip.webm
    rmbg video clips/ -o out/ --provider u2netp --format mp4 --bg white

One output per input clip: OUT is that file when there is one input and OUT
ends in a video extension, else a folder (inputs' names, the format's
extension). An output that exists is complete (outputs are written to a
temporary file and renamed at the end), so a second run skips it: resume.
Hosted providers are refused for video for now (rmbg.video.api.local_provider),
so --yes / --max-cost have nothing to pay yet.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from ..errors import InvalidRequestError, RmbgError
from ..image.formats import URL
from ..wording import words
from .interrupts import stopping_gently
from .paid import add_paid_flags
from .resume import UsageError

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".gif", ".m4v")


def plan(inputs: list[str], output: str, fmt: str) -> list[tuple[str, Path]]:
    """(input, output path) pairs: folders are searched (recursively) for clips."""
    from ..video.encode import SUFFIX

    found: list[tuple[str, Path | None]] = []
    for text in inputs:
        path = Path(text)
        if URL.match(text):
            found.append((text, None))
        elif path.is_dir():
            clips = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            found += [(str(p), p.relative_to(path)) for p in clips]
        elif path.is_file():
            found.append((text, Path(path.name)))
        else:
            raise UsageError(f"{text}: no such file or folder.")
    if not found:
        raise UsageError("No video found in the inputs (looked for " + ", ".join(VIDEO_SUFFIXES) + ").")
    out = Path(output)
    if len(found) == 1 and out.suffix.lower() in (".webm", ".mov", ".mp4", ".gif", ".webp"):
        return [(found[0][0], out)]
    pairs = []
    for source, rel in found:
        name = rel if rel is not None else Path(source.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "video")
        stem = name.with_suffix("")
        pairs.append((source, out / stem.parent / (stem.name + ("-matte" if fmt == "matte" else "") + SUFFIX[fmt])))
    return pairs


def cmd_video(args, out: TextIO, err: TextIO) -> int:
    from tqdm import tqdm

    from ..video.api import local_provider
    from ..video.limits import VideoStopped
    from .main import choose_provider, parse_background

    fmt = args.format or ("mp4" if args.bg else "webm")
    if args.bg and fmt != "mp4":
        raise UsageError(f"--bg needs --format mp4 ({fmt} keeps the transparency).")
    background = parse_background(args.bg)
    pairs = plan(args.inputs, args.output, fmt)
    if args.provider is not None:  # hosted ones are refused before their key or price is looked at
        from ..registry import get_provider

        try:
            local_provider(get_provider(args.provider))
        except InvalidRequestError as exc:
            raise UsageError(str(exc)) from None
    provider = local_provider(choose_provider(args.provider, err))
    todo = [(src, dst) for src, dst in pairs if args.overwrite or not dst.exists()]
    if len(todo) < len(pairs):
        print(f"Skipping {len(pairs) - len(todo)} clip(s) already done (--overwrite redoes them).", file=err)
    failed = 0
    with stopping_gently(err) as stop:
        for source, target in todo:
            if stop.is_set():
                break
            bar = tqdm(desc=Path(source).name[:40], unit="frame", file=err, leave=True)

            def progress(done: int, total: int | None, bar=bar) -> None:
                if total and bar.total != total:
                    bar.total = total
                bar.update(done - bar.n)

            try:
                result = _remove(source, target, provider, fmt, background, args, progress, stop)
            except VideoStopped:
                bar.close()
                break
            except RmbgError as exc:
                bar.close()
                failed += 1
                print(f"rmbg: {source}: {words(exc, 'cli')}", file=err)
                continue
            bar.close()
            if result.note:
                print(f"{source}: {result.note}", file=err)
            print(
                f"{target}  {result.frames} frames, {result.duration:.1f} s of video in "
                f"{result.seconds.total:.1f} s ({result.frames / max(result.seconds.total, 1e-9):.1f} fps), "
                f"{result.cost.label()}",
                file=out,
            )
            result.close()
    if stop.is_set():
        print("rmbg: stopped; run the same command again to resume (finished clips are kept).", file=err)
        return 130
    return 1 if failed else 0


def _remove(source, target, provider, fmt, background, args, progress, stop):
    from ..video.api import remove_video

    return remove_video(
        source,
        provider,
        output=target,
        format=fmt,
        background=background,
        smooth=not args.no_smooth,
        audio=not args.no_audio,
        progress=progress,
        stop=stop,
    )


def add_parser(sub) -> None:
    vd = sub.add_parser("video", help="cut the background out of video clips (local models)")
    vd.add_argument("inputs", nargs="+", metavar="INPUT", help="clips (MP4, MOV, WebM, MKV, GIF), folders or URLs")
    vd.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (one input) or folder")
    vd.add_argument("--provider", "-p", metavar="ID", help="local provider id; default: the best one ready here")
    vd.add_argument("--bg", metavar="COLOUR|IMAGE", help="background for mp4: '#RRGGBB', a CSS name, 'r,g,b', an image")
    vd.add_argument(
        "--format",
        "-f",
        choices=["webm", "mov", "mp4", "matte", "gif", "webp"],
        help="webm (transparent, default), mov (ProRes 4444), mp4 (on --bg, white by default), "
        "matte (the alpha as MP4), gif, webp",
    )
    vd.add_argument("--no-audio", action="store_true", help="drop the sound (default: kept in webm, mov, mp4)")
    vd.add_argument("--no-smooth", action="store_true", help="no temporal smoothing: each frame's matte as it comes")
    vd.add_argument("--overwrite", action="store_true", help="redo clips whose output exists (default: skip them)")
    add_paid_flags(vd)
    vd.set_defaults(func=cmd_video)
