"""What the command line's flags choose, shared by its commands (`rmbg remove`, `rmbg video`):
--bg as a colour or an image, and the provider (the default with its reason on stderr)."""

from __future__ import annotations

import re
from contextvars import ContextVar
from pathlib import Path
from typing import TextIO

from ..defaults import default_provider
from ..errors import RmbgError
from ..image.compose import parse_colour
from ..image.fetch import shown
from ..image.formats import URL
from ..image.framing import framing_of
from ..providers.base import Provider
from ..registry import get_provider
from ..wording import words
from .resume import UsageError, output_folder

# --verbose (rmbg.cli.main sets it for the command's run): the default's whole reason, not one line
VERBOSE: ContextVar[bool] = ContextVar("rmbg_cli_verbose", default=False)


def parse_background(text: str | None):
    """--bg: None, an image path or http(s) URL (fitted to cover), 'r,g,b', '#RRGGBB' or a CSS name."""
    if text is None:
        return None
    if URL.match(text.strip()):  # fetched once, behind the SSRF guard
        from ..image.io import load_image

        try:
            return load_image(text.strip()).rgb
        except RmbgError as exc:
            raise UsageError(f"--bg {shown(text)}: {exc}") from None
    if Path(text).is_file():
        from ..image.io import load_image

        return load_image(text).rgb
    numbers = re.fullmatch(r"\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*", text)
    try:
        if numbers:
            return parse_colour(tuple(int(g) for g in numbers.groups()))
        return parse_colour(text)
    except RmbgError:
        raise UsageError(
            f"--bg {text!r}: not a colour or an image file. Use r,g,b (for example 255,255,255), "
            "#RRGGBB, a CSS colour name such as white, or the path of an image."
        ) from None


def choose_provider(provider_id: str | None, err: TextIO) -> Provider:
    """The asked-for provider, or the default, named in one line on stderr (its whole reason with
    --verbose; `rmbg providers` says it too); must be ready."""
    if provider_id is None:
        provider_id, reason = default_provider()
        if VERBOSE.get():
            print(
                reason
                if reason.startswith("Using")
                else f"Using {provider_id} ({reason}); pick another with --provider.",
                file=err,
            )
        else:
            print(
                f"Using {provider_id}, the default here (--provider picks another; --verbose or `rmbg providers` "
                "says why).",
                file=err,
            )
    provider = get_provider(provider_id)
    status = provider.status()
    if not status.ready:
        raise RmbgError(f"{provider.id} cannot run here: {status.message or status.state}.")
    return provider


def render_choices(args):
    """`rmbg remove`'s output choices, checked before anything runs: (the output folder, the
    background, the framing); UsageError for a contradiction or a bad value."""
    if args.refine_edges and not args.edge_colours:
        raise UsageError("--refine-edges estimates the edge colours and --no-edge-colours turns that off: choose one.")
    out_dir = output_folder(args.output)
    background = parse_background(args.bg)
    try:
        framing = framing_of(args.crop, args.canvas, args.margin, args.align)
    except RmbgError as exc:
        raise UsageError(words(exc, "cli")) from None
    return out_dir, background, framing
