"""`rmbg replace`: new AI backgrounds for files, folders and globs (fal's Bria
background replace; a paid call per input, billed per generated image).

    rmbg replace photos/ -o out/ --prompt "a sunlit marble counter" --num-images 2 --max-cost 1
    rmbg replace shoe.png -o out/ --ref studio.jpg --seed 42 --yes

Outputs: OUT/<the input's path, mirrored>/NAME.replace-1.png ...
NAME.replace-N.png, each written atomically. An input whose N outputs all
exist is skipped (resume) unless --overwrite, and only into outputs made with
the same request (OUT/.rmbg-options.json). Everything the command line says
is checked before anything is sent. The estimate and the --yes / --max-cost
rule are `rmbg remove`'s (cli.paid); the scheduler, atomic writes, manifest,
progress and summary are the batch's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..errors import InvalidImageError, InvalidRequestError, RmbgError
from ..image.io import load_image
from ..money.ledger.kept import KeptMatte
from ..ray_cluster import count_arg, number_arg
from ..registry import get_replacer
from ..replace import DEFAULT_REPLACER, run_replacer
from ..types import Cost, ReplaceRequest, check_replace_args
from . import batch, kept
from .interrupts import INTERRUPTED, stopping_gently, write_unless_abandoned
from .items import ANOTHER, read_files, replaced_read
from .manifest import Claims, uncertain_outputs
from .paid import add_paid_flags, confirm_paid, run_cap
from .progress import run_reported
from .resume import UsageError, check_resume, output_folder, record_options

DEFAULT_JOBS = 4  # requests in flight; each waits on fal's queue, not on this machine
# --seed and --num-images: whole numbers, in digits 0-9; their range is checked with the request
WHOLE = number_arg("a whole number", int, lambda _: None)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rp = sub.add_parser("replace", help="generate new backgrounds behind the subject (fal Bria; paid per image)")
    rp.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns ('photos/**/*.jpg')"
    )
    rp.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (the input layout is mirrored)")
    source = rp.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", metavar="TEXT", help="the new background in words")
    source.add_argument("--ref", metavar="IMAGE", help="a reference image whose look the new background takes")
    rp.add_argument("--negative-prompt", default="", metavar="TEXT", help="what to keep out of the new background")
    rp.add_argument(
        "--num-images", "-n", type=WHOLE, default=1, metavar="N", help="images per input, 1-4 (each is billed)"
    )
    rp.add_argument("--seed", type=WHOLE, metavar="S", help="0-2147483647; the same seed and prompt repeat a result")
    # Bria V2 on fal deprecated `fast`: the flag is still taken (scripts keep working) and ignored, with a line
    rp.add_argument("--no-fast", dest="no_fast", action="store_true", help=argparse.SUPPRESS)
    rp.add_argument(
        "--no-refine-prompt",
        dest="refine_prompt",
        action="store_false",
        help="send the prompt as written (by default the provider may rewrite it)",
    )
    rp.add_argument(
        "--provider", "-p", default=DEFAULT_REPLACER, metavar="ID", help=f"replacer id (default {DEFAULT_REPLACER})"
    )
    rp.add_argument(
        "--overwrite", action="store_true", help="redo inputs whose outputs exist (default: skip them, to resume)"
    )
    rp.add_argument("--jobs", "-j", type=count_arg(1), metavar="N", help=f"inputs at a time (default {DEFAULT_JOBS})")
    add_paid_flags(rp)
    rp.set_defaults(func=cmd_replace)


FIRST = ".replace-1.png"  # what ends the first output's name: the one batch.plan checks (names, clashes)


def output_names(output_rel: str, count: int) -> list[str]:
    """'sub/a.replace-1.png' -> ['sub/a.replace-1.png', ..., 'sub/a.replace-<count>.png']."""
    stem = output_rel.removesuffix(FIRST)
    return [f"{stem}.replace-{k}.png" for k in range(1, count + 1)]


def read_request(args: argparse.Namespace) -> tuple[ReplaceRequest, str | None]:
    """The request the command line describes, checked (a usage error
    otherwise), and the reference image's content digest (None without one)."""
    try:
        check_replace_args(
            args.prompt,
            args.ref is not None,
            args.negative_prompt,
            args.seed,
            args.num_images,
            args.refine_prompt,
        )
        ref = load_image(args.ref) if args.ref is not None else None
    except InvalidRequestError as exc:
        raise UsageError(str(exc)) from None
    except InvalidImageError as exc:
        raise UsageError(f"--ref {args.ref}: {exc}") from None
    request = ReplaceRequest(
        args.prompt,
        ref.rgb if ref else None,
        args.negative_prompt,
        args.seed,
        args.num_images,
        args.refine_prompt,
    )
    return request, (ref.digest if ref else None)


def request_options(provider_id: str, request: ReplaceRequest, ref_digest: str | None) -> dict[str, object]:
    """Everything that decides what the outputs are, for the resume check (the reference by content)."""
    return {
        "command": "replace",
        "provider": provider_id,
        "prompt": request.prompt,
        "ref": ref_digest,
        "negative_prompt": request.negative_prompt,
        "seed": request.seed,
        "num_images": request.num_images,
        "refine_prompt": request.refine_prompt,
    }


def cmd_replace(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    out_dir = output_folder(args.output)
    if args.no_fast:
        print("--no-fast is ignored: fal's Bria background replace (V2) deprecated `fast`.", file=err)
    request, ref_digest = read_request(args)
    replacer = get_replacer(args.provider)
    status = replacer.status()
    if not status.ready:
        raise RmbgError(f"{replacer.id} cannot run here: {status.message or status.state}.")
    items: list[batch.Item] = []
    outputs: dict[batch.Item, list[Path]] = {}
    reads = [(Path(args.ref), f"the --ref image {args.ref}")] if args.ref is not None else []
    planned = batch.plan(args.inputs, out_dir, "png", reads, suffix=FIRST)
    # the first output's name is checked by plan; the others replace no file the run reads either
    read = read_files([(i.source, f"the input {i.display}") for i in planned if isinstance(i.source, Path)] + reads)
    for item in planned:
        names = output_names(item.output_rel, request.num_images) if not item.error else []
        replaced = next(((n, what) for n in names[1:] if (what := replaced_read(out_dir / n, read))), None)
        if replaced:
            why = f"its output {replaced[0]} would replace {replaced[1]}: {ANOTHER}"
            item = dataclasses.replace(item, output_rel="", output=Path(), error=why)
        elif names:
            item = dataclasses.replace(item, output_rel="; ".join(names), output=out_dir / names[0])
            outputs[item] = [out_dir / name for name in names]
        items.append(item)

    def todo(item: batch.Item) -> bool:
        return not item.error and (args.overwrite or not all(p.exists() for p in outputs[item]))

    uncertain = {i.output_rel for i in items if todo(i)} & uncertain_outputs(out_dir)
    if uncertain:  # an earlier request that may have been billed is not sent again (rmbg.cli.interrupts)
        items = batch.hold_back(items, uncertain)
    runnable = [i for i in items if todo(i)]
    options = request_options(replacer.id, request, ref_digest)
    check_resume(out_dir, options, skipped=len(outputs) - len(runnable), overwrite=args.overwrite)
    each = replacer.estimate(request.num_images)
    # bought by an earlier run: written with no request, neither estimated nor held
    free = kept.bought_before(runnable, out_dir, lambda loaded: kept.request_of(loaded.digest, replacer.id, options))
    bought = len(runnable) - len(free)
    if not confirm_paid(bought, [(replacer.id, each)], args.yes, args.max_cost, err, kept=len(free)):
        return 2
    record_options(out_dir, options)

    def process(item: batch.Item) -> batch.Outcome:
        paid: list[tuple[Cost, bool]] = []  # images bought whose outputs then failed: (their cost, kept)

        def work() -> tuple[float, Cost]:
            started = time.perf_counter()
            loaded = load_image(item.source)
            asked = kept.request_of(loaded.digest, replacer.id, options)
            found = kept.find(out_dir, item.output_rel, asked)  # bought by a run that could not write them
            if found is not None:
                files, cost = unpacked(found), Cost.free("paid for by an earlier run")
            elif id(item) in free:  # counted free, so it holds nothing: never bought here
                raise RmbgError(kept.gone("them"))
            else:
                result = run_replacer(loaded.rgb, request, replacer, started=started)
                files, cost = [result.encode(i, "png") for i in range(len(result.images))], result.cost
            try:  # as a cut-out's (rmbg.cli.batch.process): nothing written once a second Ctrl-C gave its call up
                if not write_unless_abandoned(item.output, lambda: write_files(files, outputs[item])):
                    raise RmbgError(f"{INTERRUPTED}; the result was not written")  # its row: may have been billed
            except BaseException:  # bought: counted at its cost and kept for the next run, not bought twice
                if found is None and cost.usd:
                    sizes = [len(file) for file in files]
                    paid.append(
                        (cost, kept.keep_bytes(out_dir, item.output_rel, asked, replacer.id, b"".join(files), sizes))
                    )
                raise
            if found is not None:
                kept.forget(out_dir, item.output_rel)
            return time.perf_counter() - started, cost

        return batch.bought(batch.attempt(item, work), paid, kept.KEPT_IMAGES)

    def run(on_outcome: Callable[[batch.Outcome], None], claims: Claims | None) -> list[batch.Outcome]:
        return batch.run_items(
            items,
            runnable,
            process,
            on_outcome,
            estimate=each.usd,
            jobs=args.jobs or DEFAULT_JOBS,
            max_cost=run_cap(bought, args.yes, args.max_cost),
            provider_id=replacer.id,
            claims=claims,
            free=free,
        )

    with stopping_gently(err) as stop:  # SIGINT / SIGTERM: finish what is in flight, record it
        code = run_reported(items, out_dir, replacer.id, run, out, err)
    return 130 if stop.is_set() else code


def write_files(files: list[bytes], paths: list[Path]) -> None:
    """Each generated image's PNG to its file (atomically); fewer images than paths
    (the provider sent fewer) leave the rest unwritten, so a resume redoes them."""
    for data, path in zip(files, paths):
        batch.write_atomic(path, data)


def unpacked(found: KeptMatte) -> list[bytes]:
    """The PNGs kept together by a run that bought them and could not write them (rmbg.cli.kept)."""
    files, at = [], 0
    for size in json.loads(found.meta):
        files.append(found.png[at : at + size])
        at += size
    return files
