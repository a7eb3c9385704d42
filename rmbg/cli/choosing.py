"""What the command line's flags choose, shared by its commands (`rmbg remove`, `rmbg video`):
--bg as a colour or an image, the provider (the default with its reason on stderr), and the
render flags, generated from the one declaration of the render options (rmbg.options)."""

from __future__ import annotations

import argparse
import re
from contextvars import ContextVar
from pathlib import Path
from typing import TextIO

from ..defaults import default_provider
from ..errors import RmbgError
from ..image.compose import SeeThroughColour, parse_colour
from ..image.fetch import shown
from ..image.formats import URL
from ..image.framing import framing_of
from ..options import BY_NAME, Option, at, framing
from ..providers.base import Provider
from ..registry import get_provider
from ..types import Framing, RenderOptions
from ..wording import number_text, words
from .resume import UsageError, output_folder

# --verbose (rmbg.cli.main sets it for the command's run): the default's whole reason, not one line
VERBOSE: ContextVar[bool] = ContextVar("rmbg_cli_verbose", default=False)


def parse_background(text: str | None):
    """--bg: None, an image path or http(s) URL (fitted to cover), 'r,g,b' ('r,g,b,255'), '#RRGGBB' or a CSS
    name; a see-through colour is refused as parse_colour refuses it for every door."""
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

        try:
            return load_image(text).rgb
        except RmbgError as exc:  # a usage error (2), as an unknown colour is
            raise UsageError(f"--bg {text}: {words(exc, 'cli')}") from None
    number_text("--bg", text, UsageError)  # a colour's digits 0-9 only, said as the flag
    numbers = re.fullmatch(r"\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*(?:,\s*(\d{1,3})\s*)?", text, re.ASCII)
    try:
        return parse_colour(tuple(int(g) for g in numbers.groups() if g is not None) if numbers else text)
    except SeeThroughColour as exc:  # '#ff000080': refused in the words every door uses
        raise UsageError(f"--bg {exc}") from None
    except RmbgError:
        raise UsageError(
            f"--bg {text!r}: not a colour or an image file. Use r,g,b (for example 255,255,255), "
            "#RRGGBB, a CSS colour name such as white, or the path of an image."
        ) from None


def files_read(args) -> list[tuple[Path, str]]:
    """The files the run reads besides its inputs, each with what it is (the --bg image): no output may
    replace one (rmbg.cli.batch.plan)."""
    text = args.background
    return [(Path(text), f"the --bg image {text}")] if text and Path(text).is_file() else []


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


def add_render_flags(parser: argparse.ArgumentParser, among: tuple[Option, ...] | None = None) -> None:
    """The render options as flags (rmbg.options: each one's spelling, choices, default and help), an
    image's or those `among` (rmbg.options.VIDEO: a clip's); an option's value lands in args under its name."""
    for option in at("cli", among=among):
        said: dict[str, object] = {"dest": option.name, "help": option.help}
        if option.kind == "flag":
            said["action"] = "store_false" if option.default is True else "store_true"
        else:
            choices = option.cli_choices or option.choices
            said.update({"metavar": option.metavar} if option.metavar else {})
            said.update({"choices": list(choices)} if choices else {})
            said.update({"default": option.default} if option.default is not None else {})
        parser.add_argument(*option.flags, **said)  # type: ignore[arg-type]


def render_options(args, background, frame: Framing | None) -> RenderOptions:
    """The render flags as RenderOptions, with the background and the framing render_choices read."""
    look = {option.name: getattr(args, option.name) for option in at("cli", "look")}
    return RenderOptions(**{**look, "background": background}, framing=frame)


def render_choices(args):
    """`rmbg remove`'s output choices, checked before anything runs: (the output folder, the
    background, the framing); UsageError for a contradiction or a bad value."""
    clean, colours = BY_NAME["clean_edges"], BY_NAME["edge_colours"]
    if getattr(args, clean.name) and not getattr(args, colours.name):
        raise UsageError(
            f"{clean.flags[0]} estimates the edge colours and {colours.flags[0]} turns that off: choose one."
        )
    if args.mask_only and args.background is not None:  # the matte alone has no background to colour
        raise UsageError(
            f"{BY_NAME['mask_only'].flags[0]} writes the matte alone and --bg colours a background: choose one."
        )
    out_dir = output_folder(args.output)
    background = parse_background(args.background)
    try:
        frame = framing_of(**{option.name: getattr(args, option.name) for option in framing()})
    except RmbgError as exc:
        raise UsageError(words(exc, "cli")) from None
    return out_dir, background, frame
