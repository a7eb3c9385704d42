"""Resume only into outputs made with the same options.

OUT/.rmbg-options.json records what the outputs in OUT were made with
(provider and its options, background, mask only, clean edges, format). A
run that would skip existing outputs made otherwise is refused, never silent.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..cache import options_key
from ..errors import RmbgError
from ..providers.base import Provider
from . import batch


class UsageError(RmbgError):
    """A command line that cannot run as given (exit code 2)."""


OPTIONS_FILE = ".rmbg-options.json"


def output_folder(text: str) -> Path:
    """-o OUT: a local folder (made when missing), never an existing file nor a URL."""
    if "://" in text:
        raise UsageError(
            f"-o {text}: outputs go to a folder on this machine (on a cluster, one every node "
            "mounts); URLs are for inputs only."
        )
    out_dir = Path(text)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"-o {text}: that is a file; -o names the output folder (it is created if missing).")
    return out_dir


def output_options(args, provider: Provider) -> dict[str, object]:
    """Everything that decides what an output file contains, for the resume check."""
    framing = [args.crop, args.canvas, args.margin, args.align]
    return {
        **({"framing": framing} if any(framing) else {}),  # absent when unused: older records still match
        **({} if args.edge_colours else {"edge_colours": False}),  # likewise
        "provider": provider.id,
        "provider_options": json.loads(options_key(provider.options())),
        "bg": args.bg,
        "mask_only": args.mask_only,
        "format": args.format,
        "refine_edges": args.refine_edges,
        "refine": args.refine,
    }


def check_resume(out_dir: Path, options: dict[str, object], *, skipped: int, overwrite: bool) -> None:
    """Resume only into outputs made with the same options (see record_options).

    Existing outputs are skipped (resume) only when OUT/.rmbg-options.json says
    they were made with these options; with other options, or with no record,
    a run that would skip files is refused instead of silently keeping them.
    """
    record = out_dir / OPTIONS_FILE
    before = None
    if record.is_file() and not record.is_symlink():
        try:
            before = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = None
    if skipped and not overwrite and before != options:
        why = "were made with other options" if before is not None else "were made by an unknown run"
        raise UsageError(
            f"{skipped} output(s) already in {out_dir} {why} ({_options_diff(before, options)}); "
            "they would be kept as they are. Use --overwrite to replace them, or another -o folder."
        )


def record_options(out_dir: Path, options: dict[str, object]) -> None:
    """OUT/.rmbg-options.json: the options the outputs in OUT are made with."""
    batch.write_atomic(out_dir / OPTIONS_FILE, json.dumps(options, sort_keys=True, indent=1).encode())


def _options_diff(before, now: dict[str, object]) -> str:
    if not isinstance(before, dict):
        return f"no {OPTIONS_FILE} record"
    changed = [k for k in now if before.get(k) != now[k]]
    return "changed: " + ", ".join(f"{k} {before.get(k)!r} -> {now[k]!r}" for k in changed)
