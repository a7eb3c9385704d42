"""`rmbg video`: cut the background out of clips, with a progress bar, resuming folders.

    rmbg video clip.mp4 -o clip.webm
    rmbg video clips/ -o out/ --provider u2netp --format mp4 --bg white

    rmbg video clip.mp4 -o clip.webm --provider fal-bria-video --max-cost 2
    rmbg video long.mp4 -o long.webm -p u2netp --engine ray --workers 8 --chunk-seconds 2
    rmbg video long.mp4 -o long.webm -p birefnet --engine ray --address auto --workers 4 --gpus-per-worker 0.5

One output per input clip: OUT is that file when there is one input and OUT
ends in .webm, .mov, .mp4, .gif or .webp (the extension is the format, and
--format or --bg that says otherwise is refused), else a folder (inputs'
names, the format's extension); several inputs need a folder. An output
that exists is complete (outputs are written to a temporary file and
renamed at the end), so a second run skips it: resume.

A hosted video service (rmbg.video.providers: one paid call per clip, priced
per second) runs as paid image runs do: the estimate is printed first, and
the run needs --yes (accept it) or --max-cost USD (a cap the run never
passes: each clip's hold is reserved against it, and the day's cap, before the
clip is sent). A clip whose request may have been billed and failed is marked
(`.NAME.may-be-billed` beside its output) and not sent again by a later run
unless --retry-uncertain; one whose answer came back and whose output then
failed is kept in the storage and written by the next run with no new call
(rmbg.cli.kept). A hosted image provider is refused: on video it
would be one paid call per frame.

--engine ray (rmbg.video.ray_video) cuts each clip's frames into chunks run by Ray
workers and joins them into the same output as a local run, frame for frame; it is for
local models: a hosted video service takes the whole clip in one paid call, and is
refused under it before anything is sent.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from ..errors import InvalidRequestError, RmbgError
from ..image.formats import URL
from ..options import VIDEO
from ..ray_cluster import add_ray_flags, count_arg, ray_flag, seconds_arg
from ..types import format_usd
from ..wording import clip_length, seconds_text, words
from .choosing import add_render_flags
from .interrupts import stopping_gently
from .kept import KEPT_ANSWER, answer_kept, clip_key, forget, gone, keep_answer, restore_answer
from .manifest import Manifest
from .paid import add_paid_flags, kept_line, run_cap
from .progress import printable
from .resume import UsageError
from .video_outputs import beside_clips, manifest_row, output_format, plan
from .writing import check_writable


def cmd_video(args, out: TextIO, err: TextIO) -> int:
    from tqdm import tqdm

    from ..money.charging import metered
    from ..video.limits import VideoStopped
    from .choosing import files_read, parse_background

    fmt = output_format(args.output, args.format, args.background)
    background = parse_background(args.background)
    pairs = plan(args.inputs, args.output, fmt, files_read(args))
    provider = _provider(args.provider, err)
    engine = _engine(args, provider)
    todo = [(src, dst) for src, dst in pairs if args.overwrite or not dst.exists()]
    if len(todo) < len(pairs):
        print(f"Skipping {len(pairs) - len(todo)} clip(s) already done (--overwrite redoes them).", file=err)
    if engine != "local" and todo:  # the workers the cluster has room for, before anything is written
        from .ray_engine import fitted_workers

        engine = replace(engine, workers=fitted_workers(engine.address, engine.workers, engine.gpus_per_worker, err))
    payer, failed, free = None, 0, set[tuple[str, Path]]()
    if provider.kind == "hosted":
        kept, free = _hold_back_uncertain(todo, args, provider, err)
        failed, todo = len(todo) - len(kept), kept  # held back: not run
        if not _confirm([pair for pair in todo if pair not in free], provider, args, err, kept=len(free)):
            return 2
        from ..money.payer import Payer

        payer = Payer.operator("video", run_cap(len(todo) - len(free), args.yes, args.max_cost))
    if todo:  # an -o that cannot be written: a sentence before any model runs or any clip is sent
        single = len(pairs) == 1 and pairs[0][1] == Path(args.output)
        check_writable(Path(args.output).parent if single else Path(args.output), f"-o {args.output}")
    # outputs beside their clips: OUT/manifest.csv tells a later run its outputs from clips (video_outputs.plan)
    rows = Manifest(Path(args.output), provider.id) if todo and beside_clips(args.inputs, args.output) else None
    with stopping_gently(err) as stop, rows or contextlib.nullcontext():
        for source, target in todo:
            if stop.is_set():
                break
            bar = tqdm(desc=printable(Path(source).name)[:40], unit="frame", file=err, leave=True)

            def progress(done: int, total: int | None, bar=bar) -> None:
                if total and bar.total != total:
                    bar.total = total
                bar.update(done - bar.n)

            with metered() as meter:
                try:
                    if (source, target) in free and not restore_answer(
                        target, clip_key(source, provider, args.hosted_format)
                    ):
                        raise RmbgError(gone())  # counted free, so never bought here
                    result = _remove(source, target, provider, fmt, background, args, progress, stop, payer, engine)
                except VideoStopped:
                    bar.close()
                    break
                except RmbgError as exc:
                    bar.close()
                    failed += 1
                    said = _said(exc, target, source, provider, args.hosted_format)
                    print(printable(f"rmbg: {source}: {said}"), file=err)
                    manifest_row(rows, source, target, error=said)
                    if provider.kind == "hosted" and meter.state.billable:
                        _mark_uncertain(target, provider.id, meter.request_id)
                    continue
                except BaseException:  # a second Ctrl-C mid-call: the clip may still be billed
                    if provider.kind == "hosted" and meter.state.billable:
                        _mark_uncertain(target, provider.id, meter.request_id)
                    raise
            bar.close()
            if uncertain_marker(target).exists():  # written: what an earlier run kept for it is dropped
                forget(target.parent, target.name)
            uncertain_marker(target).unlink(missing_ok=True)
            manifest_row(rows, source, target, result)
            if result.note:
                print(printable(f"{source}: {result.note}"), file=err)
            took = result.seconds.total
            print(
                printable(
                    f"{target}  {clip_length(result.frames, result.duration)} in "
                    f"{seconds_text(took)} s ({result.frames / max(took, 1e-9):.1f} fps), "
                    f"{result.cost.label()}"
                ),
                file=out,
            )
            result.close()
    if stop.is_set():
        print("rmbg: stopped; run the same command again to resume (finished clips are kept).", file=err)
        return 130
    return 1 if failed else 0


def _said(exc: RmbgError, target: Path, source: str, provider, hosted_format: str) -> str:
    """A clip's error in the CLI's words: a file in the way of its output's folder, in -o's terms; a paid
    answer whose output failed, kept for the next run (rmbg.cli.kept) or not."""
    from ..video.limits import OutputBlocked, VideoWriteError
    from .writing import in_the_way

    said = f"its output {target} could not be written: {in_the_way(exc.blocker)}." if isinstance(
        exc, OutputBlocked
    ) else words(exc, "cli")  # fmt: skip
    if not isinstance(exc, VideoWriteError) or exc.paid is None:
        return said
    if keep_answer(target, clip_key(source, provider, hosted_format), exc.paid):
        return f"{said.rstrip('.')}; {KEPT_ANSWER}."
    return f"{said} Its answer was paid for ({exc.paid.cost.label()}) and could not be kept for the next run."


def _provider(provider_id: str | None, err: TextIO):
    """The clip's provider: a hosted video service, else a local model (a hosted image provider is refused)."""
    from ..video.api import known_video_id, local_provider
    from ..video.providers import get_video_provider, is_hosted_video
    from .choosing import choose_provider

    if provider_id is not None and is_hosted_video(provider_id):
        return get_video_provider(provider_id)
    if provider_id is not None:  # hosted image providers are refused before their key or price is looked at
        known_video_id(provider_id)
        from ..registry import get_provider

        try:
            local_provider(get_provider(provider_id))
        except InvalidRequestError as exc:
            raise UsageError(str(exc)) from None
    return local_provider(choose_provider(provider_id, err))


def _engine(args, provider):
    """The Ray settings for --engine ray (checked before anything runs or is sent), else "local"."""
    if args.engine != "ray":
        return "local"
    from ..ray_cluster import import_ray
    from ..video.ray_video import RayVideo

    import_ray()  # without Ray: how to install it, before anything is written
    if provider.kind == "hosted":
        raise UsageError(
            f"{provider.id} takes the whole clip in one paid call: there is nothing to split across Ray workers, "
            "and a paid clip is never split into several calls. Run it without --engine ray."
        )
    if args.chunk_seconds is not None and args.chunk_frames is not None:
        raise UsageError("Give --chunk-seconds or --chunk-frames, not both.")
    try:
        return RayVideo(
            args.address, args.workers, args.chunk_seconds, args.chunk_frames, gpus_per_worker=args.gpus_per_worker
        )
    except RmbgError as exc:
        raise UsageError(words(exc, "cli")) from None


def _confirm(todo: list[tuple[str, Path]], provider, args, err: TextIO, *, kept: int = 0) -> bool:
    """Print the estimate of a paid run (billed seconds x price); False when it needs --yes or --max-cost.
    `kept`: how many more clips are written from answers an earlier run bought (said, not estimated)."""
    from ..providers.hosted.video_job import billed_seconds, price_text
    from ..video.decode import probe
    from ..video.hosted import clip_seconds
    from ..video.limits import VideoLimits

    if kept:
        print(kept_line(kept, len(todo) + kept, "clip(s)"), file=err)
    if not todo:
        return True
    billed, unknown = 0, 0
    limits = VideoLimits.from_settings()
    for source, _ in todo:
        try:
            if URL.match(source):
                raise InvalidRequestError("not probed")
            billed += billed_seconds(clip_seconds(probe(Path(source), limits)))
        except RmbgError:
            unknown += 1  # counted at the longest clip the service takes; the run itself says what is wrong
            billed += billed_seconds(provider.max_seconds)
    total = provider.estimate(billed).usd
    price = price_text(provider.usd_per_second)
    counted = f"; {unknown} not probed here, counted at {provider.max_seconds:g} s" if unknown else ""
    print(
        f"Estimated cost for {provider.id}: {len(todo)} clip(s), {billed} billed s x ${price}/s = "
        f"${format_usd(total)} (each clip's seconds rounded up{counted})",
        file=err,
    )
    if args.yes or args.max_cost is not None:
        return True
    print("This run is paid: pass --yes to accept the estimate, or --max-cost USD to cap the spending.", file=err)
    return False


def uncertain_marker(target: Path) -> Path:
    """Where a clip whose paid request may have been billed, and failed, is marked."""
    return target.with_name(f".{target.name}.may-be-billed")


def _mark_uncertain(target: Path, provider_id: str, request_id: str) -> None:
    import json
    import time

    target.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "provider": provider_id,
        "request": request_id,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    uncertain_marker(target).write_text(json.dumps(record) + "\n", encoding="utf-8")


def _hold_back_uncertain(todo: list[tuple[str, Path]], args, provider, err: TextIO) -> tuple[list, set]:
    """Leave out the clips whose earlier request may have been billed, unless --retry-uncertain; one whose
    paid answer an earlier run kept (rmbg.cli.kept) is written from it instead: (the clips to run, those of
    them written from a kept answer, with no request)."""
    retry, fmt = args.retry_uncertain, args.hosted_format
    uncertain = [(s, d) for s, d in todo if uncertain_marker(d).exists()]
    free = {(s, d) for s, d in uncertain if answer_kept(d, clip_key(s, provider, fmt))}
    marked = [pair for pair in uncertain if pair not in free]
    if marked and retry:
        print(
            f"rmbg: warning: --retry-uncertain: {len(marked)} clip(s) whose earlier request may have been billed "
            "are sent again; they may be billed twice.",
            file=err,
        )
        return todo, free
    for src, _ in marked:
        print(
            printable(
                f"rmbg: {src}: not sent again: its earlier request may have been billed (see the provider's "
                "dashboard); --retry-uncertain sends it again."
            ),
            file=err,
        )
    return [pair for pair in todo if pair not in marked], free


def _remove(source, target, provider, fmt, background, args, progress, stop, payer, engine):
    from ..video.api import remove_video

    return remove_video(
        source,
        provider,
        output=target,
        format=fmt,
        background=background,
        smooth=None if args.smooth else False,
        audio=args.audio,
        progress=progress,
        stop=stop,
        hosted_format=args.hosted_format,
        payer=payer,
        engine=engine,
    )


def add_parser(sub) -> None:
    vd = sub.add_parser("video", help="cut the background out of video clips (local models or hosted video services)")
    vd.add_argument("inputs", nargs="+", metavar="INPUT", help="clips (MP4, MOV, WebM, MKV, GIF), folders or URLs")
    vd.add_argument("-o", "--output", required=True, metavar="OUT", help="output file (one input) or folder")
    vd.add_argument(
        "--provider",
        "-p",
        metavar="ID",
        help=f"a local model, or a hosted video service ({', '.join(_hosted_video())}: paid per second of "
        "video, needs --yes or --max-cost); default: the best local model ready here",
    )
    add_render_flags(vd, VIDEO)  # --bg, --format, --no-audio, --no-smooth: a clip's settings (rmbg.options)
    vd.add_argument("--overwrite", action="store_true", help="redo clips whose output exists (default: skip them)")
    vd.add_argument(
        "--hosted-format",
        choices=["webm", "mov"],
        default="webm",
        help="what a hosted video service sends back: webm (VP9 with alpha, small; default) or mov (ProRes 4444)",
    )
    vd.add_argument(
        "--retry-uncertain",
        action="store_true",
        help="send again the clips whose paid request in an earlier run may have been billed (they may be billed "
        "twice; default: leave them)",
    )
    add_ray_flags(vd, "each clip's frames in chunks across Ray workers; local models", ("--ray-address", "--address"))
    ray_flag(
        vd,
        "--chunk-seconds",
        type=seconds_arg,
        metavar="S",
        help="with --engine ray: seconds of video per chunk (default 2)",
    )
    ray_flag(vd, "--chunk-frames", type=count_arg(1), metavar="N", help="with --engine ray: frames per chunk")
    add_paid_flags(vd)
    vd.set_defaults(func=cmd_video)


def _hosted_video() -> list[str]:
    """The hosted video services' ids, for the help (rmbg.declarations, kind "video"; nothing heavy imported)."""
    from ..provider_table import declarations  # the table alone: rmbg.video (PyAV, numpy's video code) waits

    return [d.id for d in declarations() if d.kind == "video"]
