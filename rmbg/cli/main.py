"""The command line: `rmbg remove`, `rmbg providers`, `rmbg evaluate`, `rmbg replace`, `rmbg video`.

    rmbg remove photos/ -o out/ --provider u2netp --bg white --format jpg
    rmbg providers
    rmbg evaluate data/ --provider u2netp --provider runware-rembg --max-cost 1
    rmbg replace photos/ -o out/ --prompt "a marble kitchen counter" --num-images 2 --max-cost 1

Progress goes to stderr (a bar on a terminal, one line per image otherwise);
results (summaries, tables) to stdout. Every RmbgError becomes a one-line
message. Exit codes: 0 success; 1 something failed or was not run; 2 usage
errors, paid runs refused without --yes / --max-cost and providers refused for their licence
(RMBG_COMMERCIAL_ONLY=1); 130 interrupted; 141 the reader of stdout went away (`| head`), said by no
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .._version import __version__
from ..errors import BudgetError, InvalidRequestError, LicenceError, RmbgError, UnknownProviderError
from ..ray_cluster import add_ray_flags, count_arg, ray_flag, settle_ray_flags
from ..refine import list_refiners, resolve_refiner
from ..threads import calm_openmp
from ..wording import words
from . import batch, kept, ledger_cmd
from .cascade import add_escalate_flags
from .choosing import VERBOSE, add_render_flags, choose_provider, files_read, render_choices, render_options
from .interrupts import end_process, stopping_gently
from .ledger_cmd import add_parser as add_ledger_parser
from .manifest import uncertain_outputs
from .many import DEFAULT_JOBS, run_engine
from .paid import add_paid_flags, paid_gate, run_cap
from .progress import Progress, lines_shown, printable, run_reported
from .providers_cmd import cmd_providers
from .replace import add_parser as add_replace_parser
from .resume import UsageError, check_resume, output_options, record_options, resume_lock
from .video import add_parser as add_video_parser
from .writing import NotWritten, check_not_read, check_writable

# --- rmbg remove -------------------------------------------------------------------


def cmd_remove(args, out: TextIO, err: TextIO) -> int:
    if args.engine == "ray":
        from ..ray_cluster import import_ray

        import_ray()  # without Ray: how to install it, before anything is written
    out_dir, background, framing = render_choices(args)
    provider = choose_provider(args.provider, err)
    items = batch.plan(args.inputs, out_dir, args.format, files_read(args))
    uncertain = {i.output_rel for i in batch.to_run(items, args.overwrite)} & uncertain_outputs(out_dir)
    if uncertain and args.retry_uncertain:
        print(
            f"rmbg: warning: --retry-uncertain: {len(uncertain)} image(s) whose earlier request may have been "
            "billed are sent again; they may be billed twice.",
            file=err,
        )
    elif uncertain:
        items = batch.hold_back(items, uncertain)
    runnable = batch.to_run(items, args.overwrite)
    options = output_options(args, provider)
    check_resume(out_dir, options, skipped=sum(not i.error for i in items) - len(runnable), overwrite=args.overwrite)
    free = kept.bought_before(runnable, out_dir, kept.matte_requests(provider)) if provider.kind == "hosted" else ()
    if not paid_gate(len(runnable) - len(free), [provider], args.yes, args.max_cost, err, kept=len(free)):
        return 2
    workers = args.workers  # on Ray: the workers the cluster has room for, before anything is written or sent
    if args.engine == "ray" and len(runnable) > len(free):
        from .ray_engine import fitted_workers

        workers = fitted_workers(args.address, args.workers, args.gpus_per_worker, err)
    record_options(out_dir, options)
    jobs = args.jobs or DEFAULT_JOBS.get(provider.kind, 1)
    render = render_options(args, background, framing)
    cap = run_cap(len(runnable) - len(free), args.yes, args.max_cost)
    settings = batch.Settings(render, args.overwrite, jobs, cap, resolve_refiner(args.refine), frozenset(free))

    def on_engine(on_outcome, claims):
        return run_engine(
            items,
            provider,
            settings,
            on_outcome,
            claims=claims,
            engine=args.engine,
            address=args.address,
            workers=workers,
            gpus_per_worker=args.gpus_per_worker,
            batch_size=args.batch_size,
        )

    # one resume at a time where images are held back (rmbg.cli.resume); SIGINT / SIGTERM: finish what is in
    # flight, record it (rmbg.cli.interrupts)
    with resume_lock(out_dir, bool(uncertain) and not args.retry_uncertain), stopping_gently(err) as stop:
        code = run_reported(items, out_dir, provider.id, on_engine, out, err, retry_uncertain=args.retry_uncertain)
    return 130 if stop.is_set() else code


# --- rmbg evaluate -----------------------------------------------------------------


def cmd_evaluate(args, out: TextIO, err: TextIO) -> int:
    from ..eval.dataset import discover
    from ..eval.frontier import check_pairs
    from ..eval.records import REPORT_FILES
    from ..eval.run import evaluate
    from ..eval.sequences import is_sequence_set

    if is_sequence_set(args.data):  # clips (or frame folders) with masks/: J, F, dtSSD per sequence
        if args.cascade:
            raise UsageError("--cascade is simulated on images with masks, not on video sequences.")
        return cmd_evaluate_sequences(args, out, err)
    dataset = discover(args.data, categories=args.categories)
    csv = dataset.categories_file  # the reports have fixed names: none may be a file the run reads
    reads = [] if csv is None else [(csv, f"the categories file {csv}")]
    reads += [(p, f"the {what} {p}") for s in dataset.samples for p, what in ((s.image, "image"), (s.mask, "mask"))]
    check_not_read(Path(args.out), REPORT_FILES.values(), reads, f"--out {args.out}")
    pairs = cascade_pairs(args.cascade)
    named = list(dict.fromkeys(pid for pair in pairs for pid in pair)) if isinstance(pairs, list) else []
    providers = [choose_provider(pid, err) for pid in (args.provider or named or [None])]
    if pairs and len(providers) < 2:
        raise UsageError("--cascade needs two providers or more (repeat --provider).")
    if pairs:
        try:
            check_pairs(pairs, [p.id for p in providers])
        except InvalidRequestError as exc:
            raise UsageError(str(exc)) from None
    if not paid_gate(len(dataset), providers, args.yes, args.max_cost, err):
        return 2
    check_writable(Path(args.out), f"--out {args.out}")  # before any provider runs: the scores are written there
    progress = Progress(len(dataset) * len(providers), err)

    def on_row(done: int, total: int, row) -> None:
        progress.update(f"{row.provider} {row.name}", row.status, row.cost_usd, row.error)

    try:
        evaluation = evaluate(
            dataset,
            providers,
            max_cost=args.max_cost,
            progress=on_row,
            bootstrap=args.bootstrap,
            gt=args.gt,
            cascades=pairs or None,
        )
    finally:
        progress.close()
    print(lines_shown(evaluation.to_markdown()), file=out)
    paths = evaluation.write(args.out)
    print(printable(f"Wrote {', '.join(p.name for p in paths.values())} to {args.out}"), file=err)
    failed = sum(r.status == "failed" for r in evaluation.rows)
    if failed:
        print(f"{failed} image(s) failed; see per_image.csv for the reasons.", file=err)
    return 1 if failed else 0


def cascade_pairs(given: list[str] | None) -> list[tuple[str, str]] | str:
    """--cascade FREE:BETTER (repeatable), or --cascade auto alone; [] without the flag."""
    from ..eval.frontier import parse_pair

    if not given:
        return []
    if "auto" in given:
        if len(given) > 1:
            raise UsageError("--cascade auto pairs the providers itself: give it alone.")
        return "auto"
    try:
        return [parse_pair(text) for text in given]
    except InvalidRequestError as exc:
        raise UsageError(str(exc)) from None


def cmd_evaluate_sequences(args, out: TextIO, err: TextIO) -> int:
    from ..eval.sequences import discover_sequences, evaluate_sequences

    providers = [choose_provider(pid, err) for pid in (args.provider or [None])]
    hosted = [p.id for p in providers if p.kind != "local"]
    if hosted:
        raise UsageError(f"{', '.join(hosted)}: sequences are scored with local models (a clip is a call per frame).")
    check_writable(Path(args.out), f"--out {args.out}")
    progress = Progress(len(discover_sequences(args.data)) * len(providers), err, unit="sequence")
    try:
        evaluation = evaluate_sequences(
            args.data,
            providers,
            bootstrap=args.bootstrap,
            progress=lambda done, total, pid, name: progress.update(f"{pid} {name}", "done"),
        )
    finally:
        progress.close()
    print(lines_shown(evaluation.to_markdown()), file=out)
    paths = evaluation.write(args.out)
    print(printable(f"Wrote {', '.join(p.name for p in paths.values())} to {args.out}"), file=err)
    failed = evaluation.failed()
    if failed:  # as for images: the others are scored and written; the exit code says not all were
        print(f"{len(failed)} sequence(s) could not be scored; see 'Not scored' above for the reasons.", file=err)
    return 1 if failed else 0


# --- parser and entry point --------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rmbg", description="Remove or replace image backgrounds, list providers, measure quality."
    )
    parser.add_argument("--version", action="version", version=f"rmbg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    rm = sub.add_parser("remove", help="remove the background of files, folders (recursive) and globs")
    rm.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns ('photos/**/*.jpg')"
    )
    rm.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (the input layout is mirrored)")
    rm.add_argument(
        "--provider", "-p", metavar="ID", help="provider id (see `rmbg providers`); default: the best one ready here"
    )
    add_render_flags(rm)  # --bg, --mask-only, --format, the framing, ...: rmbg.options
    rm.add_argument(
        "--refine",
        choices=list_refiners(),
        help="refine the matte's soft edges after the provider: vitmatte (ViTMatte, Apache-2.0 weights "
        "from the Hub; only the band around the edge changes)",
    )
    add_ray_flags(rm, "Ray Data: workers on this machine or a cluster")
    ray_flag(
        rm,
        "--batch-size",
        type=count_arg(1),
        default=1,
        metavar="B",
        help="with --engine ray: images per batch handed to a worker (default 1)",
    )
    rm.add_argument(
        "--overwrite", action="store_true", help="redo outputs that already exist (default: skip them, to resume)"
    )
    rm.add_argument(
        "--retry-uncertain",
        action="store_true",
        help="send again the images whose request in an earlier run may have been billed (they may be "
        "billed twice; default: leave them, as manifest.csv says)",
    )
    rm.add_argument(
        "--jobs",
        "-j",
        type=count_arg(1),
        metavar="N",
        help="images at a time for hosted providers (default 4; local: 1)",
    )
    add_paid_flags(rm)
    add_escalate_flags(rm, cmd_remove)  # --escalate BETTER: the cascade (rmbg.cli.cascade); without it, cmd_remove

    pv = sub.add_parser("providers", help="list providers, whether they can run here, and their price")
    pv.set_defaults(func=cmd_providers)

    ev = sub.add_parser("evaluate", help="score providers on a labelled data set (images/ + masks/)")
    ev.add_argument(
        "data", metavar="DATA", help="data set folder with images/ and masks/, or video sequences (clip + masks/)"
    )
    ev.add_argument("--provider", "-p", action="append", metavar="ID", help="provider id; repeat for several")
    ev.add_argument(
        "--out",
        default="eval-results",
        metavar="DIR",
        help="folder for CSV, JSON, Markdown and plot (default ./eval-results)",
    )
    ev.add_argument("--categories", metavar="CSV", help="CSV with file,category[,group] (default DATA/categories.csv)")
    ev.add_argument(
        "--gt", choices=["auto", "binary", "alpha"], default="auto", help="ground-truth kind (default auto)"
    )
    ev.add_argument(
        "--bootstrap",
        type=count_arg(0),
        default=2000,
        metavar="N",
        help="bootstrap resamples for the 95%% CIs (default 2000; 0: no intervals)",
    )
    ev.add_argument(
        "--cascade",
        action="append",
        metavar="FREE:BETTER",
        help="also report the cascade FREE then BETTER on the least sure 0%%, 10%%, ..., 100%% of the images, "
        "simulated from the mattes this run makes (no extra calls); repeat for several, or 'auto' for each "
        "local provider with each hosted or better-scoring one; without --provider, the pairs' providers run",
    )
    add_paid_flags(ev)
    ev.set_defaults(func=cmd_evaluate)

    add_replace_parser(sub)
    add_ledger_parser(sub)
    add_video_parser(sub)
    for name in ("remove", "evaluate", "video"):  # the commands that choose a default provider
        sub.choices[name].add_argument(
            "--verbose", action="store_true", help="say why the default provider was chosen, not one line"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module doc)."""
    calm_openmp()  # before any model loads torch (rmbg.threads)
    try:
        args = build_parser().parse_args(argv)
        settle_ray_flags(args)  # --workers & co. only with --engine ray, checked before anything starts
        VERBOSE.set(getattr(args, "verbose", False))
        ledger_cmd.ledger_at_start(args.command, sys.stderr)  # RMBG_LEDGER means one thing, or nothing starts
        return args.func(args, sys.stdout, sys.stderr)
    except SystemExit as exc:  # argparse: --help, or a usage error it already printed
        return exc.code if isinstance(exc.code, int) else 2
    except (UsageError, UnknownProviderError, LicenceError, BudgetError, NotWritten) as exc:  # NotWritten: -o's
        print(f"rmbg: error: {printable(words(exc, 'cli'))}", file=sys.stderr)  # a name in it: escaped
        return 2
    except RmbgError as exc:
        print(f"rmbg: error: {printable(words(exc, 'cli'))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nrmbg: interrupted; run the same command again to resume (finished outputs are kept).", file=sys.stderr)
        return 130
    except BrokenPipeError:  # whoever read the output stopped (`rmbg ledger holds --all | head`): no traceback
        _output_gone()
        return 141  # as a tool the pipe's SIGPIPE ended


def _output_gone() -> None:
    """stdout pointed at nothing, so that the interpreter's last flush of what is left does not fail again."""
    import os

    try:
        descriptor = sys.stdout.fileno()
    except (OSError, ValueError):  # an in-process caller's stdout (a test's capture) has none: nothing to point
        return
    os.dup2(os.open(os.devnull, os.O_WRONLY), descriptor)


def entry() -> None:
    """The process's entry point (the `rmbg` script, `python -m rmbg`): main(), then the process ends; at
    once after a second Ctrl-C, without waiting for the calls it abandoned (rmbg.cli.interrupts.end_process)."""
    end_process(main())


if __name__ == "__main__":
    entry()
