"""The one place an error becomes each front door's words.

The library's errors speak Python ("pass api_key=..."): that is what
str(exc) says. An error that carries a Remedy (rmbg.errors) is said here in
the terms of the door it went out of: the CLI's flags and variables, the web
page's boxes and lists, the REST API's headers and fields, the MCP tool's
arguments. An error without a Remedy reads the same everywhere.

A number a person types is read here too, from ASCII digits 0-9 only (number_text): text holding other
digits gets one sentence at every door, naming the field and the text as it would be typed in 0-9.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from typing import Literal

from .errors import InvalidRequestError, Remedy
from .options import FRAMING_TITLE, framing, label
from .vendors import BY_ENV, KEY_VARS

Door = Literal["python", "cli", "page", "rest", "mcp"]


# An absolute path on the server: "/" not after a word character, ":", "/" or "." (so not a URL's path,
# "1/255" or "and/or"), then path characters.
SERVER_PATH = re.compile(r"(?<![\w:/.])/(?:[\w.~+@-]+/)*[\w.~+@-]+/?")


# A setting's name (an environment variable the operator sets: rmbg's own, the Hub's, a vendor's key),
# with a value after "=" if one is given; and an aside in brackets that names one.
SETTING = r"\b(?:RMBG_[A-Z0-9_]+|HF_[A-Z0-9_]+|" + "|".join(map(re.escape, KEY_VARS)) + r")\b(?:=[^\s),;]*)?"
SETTING_NAME = re.compile(SETTING)
SETTING_ASIDE = re.compile(r"\s*\([^()]*" + SETTING + r"[^()]*\)")
# A vendor's key variable, alone or followed by the key it holds in brackets ("(a <label> API key)").
KEY_NAME = re.compile(r"\b(" + "|".join(map(re.escape, KEY_VARS)) + r")\b(?!=)")
KEY_WITH_ASIDE = re.compile(KEY_NAME.pattern + r"\s*\((an? [^()]*\bkey)\)")
# A visitor's value echoed back (a provider, a colour: text fields hold up to 10,000 characters): an
# unbroken run longer than any word or link of ours, and a message longer than any sentence of ours.
LONG_RUN = re.compile(r"\S{81,}")
MAX_SAID = 1000


def words(exc: BaseException, door: Door) -> str:
    """`exc`'s message as `door` says it. The web doors (page, REST, MCP) speak to visitors: they
    never show a path on the server (each is cut to its last part, a file's name) nor a setting's
    name (an aside naming one goes; a bare one becomes "a server setting"), whoever wrote the
    message; the CLI and Python keep both (the operator's terms, as the docs and logs use)."""
    remedy: Remedy | None = getattr(exc, "remedy", None)
    if remedy is None or door == "python":
        text = str(exc) or type(exc).__name__
    else:
        text = f"{remedy.situation} {_fix(remedy, door)}"
    return text if door in ("python", "cli") else shortened(without_setting_names(without_server_paths(text)))


def shortened(text: str) -> str:
    """`text` with each unbroken run over 80 characters cut to its first 40 and last 10 (a value a
    visitor sent, quoted back), and, still over MAX_SAID characters, cut in the middle: a sentence
    to read, never the 10,000 characters that were sent."""
    text = LONG_RUN.sub(lambda m: f"{m.group(0)[:40]}…{m.group(0)[-10:]}", text)
    return text if len(text) <= MAX_SAID else f"{text[:700]} … {text[-200:]}"


def without_setting_names(text: str) -> str:
    """`text` for a visitor: a vendor's key variable said as the key it holds ("needs <its variable> (a
    <label> API key)" -> "needs a <label> API key"; "<its variable>" alone -> "the <label> key": the visitor
    can paste one; rmbg.vendors), asides in brackets that name a setting removed, any other setting's name
    said as such."""
    text = KEY_WITH_ASIDE.sub(lambda m: m.group(2), text)
    text = KEY_NAME.sub(lambda m: f"the {BY_ENV[m.group(1)].label} key", text)
    return SETTING_NAME.sub("a server setting", SETTING_ASIDE.sub("", text))


def without_server_paths(text: str) -> str:
    """`text` with each absolute path replaced by its last part ("/tmp/x/u2netp.onnx" -> "u2netp.onnx")."""
    return SERVER_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "the server's folder", text)


def other_digits(field: str, text: str) -> str | None:
    """The one sentence for `text`, typed into `field` ("Canvas", "Seed"; "" where the door names the field
    itself, as argparse names a flag), when it holds digits other than 0-9 (full-width "２０００",
    Arabic-Indic "٢٠٠٠"...), with the text as it is typed in 0-9; None when it holds none."""
    if not any(c.isdigit() and not c.isascii() for c in text):
        return None
    typed = "".join(
        str(unicodedata.digit(c)) if c.isdigit() and not c.isascii() else c for c in unicodedata.normalize("NFKC", text)
    )
    wide = all("\uff10" <= c <= "\uff19" for c in text if c.isdigit() and not c.isascii())
    which = "full-width digits" if wide else "digits other than 0-9"
    return f"{field} {text!r}".lstrip() + f" uses {which}; type them as 0-9, such as {typed.strip()!r}."


def number_text(field: str, text: str, error: Callable[[str], Exception] = InvalidRequestError) -> str:
    """A person's `text` that holds a number (or numbers), as its reader may read it: every reader of a
    number typed into a field (a size, a colour, a seed, a count, a fraction, an amount) calls this
    first, as float(), int(), Decimal() and re's \\d read "２０００" and "٢٠٠٠" as 2000. Text holding
    digits other than 0-9 raises `error` with other_digits' sentence; text holding any other character
    that is not ASCII is "", which no reader takes (it then says "not a number" in its own words); ASCII
    text is itself."""
    said = other_digits(field, text)
    if said is not None:
        raise error(said)
    return text if text.isascii() else ""


def seconds_text(seconds: float) -> str:
    """A length of time in seconds, the unit left to the sentence: tenths from 1 s up ('2.4'), two
    significant digits under it ('0.12', '0.042', '0.1'), so a one-frame clip's 42 ms never reads as '0.0'."""
    if seconds <= 0:
        return "0"
    two = f"{seconds:.{max(1, 1 - math.floor(math.log10(seconds)))}f}"
    return f"{seconds:.1f}" if float(two) >= 1 else two.rstrip("0")


def clip_length(frames: int, seconds: float) -> str:
    """'3 frames, 0.12 s of video', '1 frame, 0.042 s of video': a clip's length, in every door's summary."""
    return f"{frames} frame{'' if frames == 1 else 's'}, {seconds_text(seconds)} s of video"


def _fix(remedy: Remedy, door: Door) -> str:
    """How to fix it, in `door`'s terms."""
    if remedy.kind == "key":
        return _key_fix(remedy.subject, door)
    if (
        remedy.kind == "refiner"
    ):  # an edge refiner's weights (rmbg.refine), not the provider's: another provider won't help
        return {
            "cli": f"These are the {remedy.subject} refiner's weights: run once with network access to download them "
            f"into the cache, or leave out --refine {remedy.subject}.",
            "page": "These are the edge refiner's weights: untick the refined-edges box; this server cannot "
            "download them now.",
        }.get(
            door,
            "These are the edge refiner's weights: leave out the refinement; this server cannot download them now.",
        )
    if remedy.kind in ("weights", "model"):
        return {
            "cli": "Run once with network access to download it, or choose another --provider (`rmbg providers`).",
            "page": "Pick another model from the Provider list; this server cannot download this one now.",
        }.get(door, "Choose another provider; this server cannot download this model now.")
    if remedy.kind == "licence":
        return {
            "cli": "RMBG_COMMERCIAL_ONLY=1 is set: choose another --provider (`rmbg providers` shows each "
            "model's licence).",
            "page": "Pick another model from the Provider list: it shows only the models this server offers.",
            "rest": 'Send another "provider"; leave it out for this server\'s default.',
        }.get(door, "Pass another provider, or leave it empty for this server's default.")
    if remedy.kind == "framing":
        return _framing_fix(remedy.subject, door)
    return ""


def _framing_fix(field: str, door: Door) -> str:
    """A framing option (`field`) that needs a frame: the options that make one (rmbg.options, those
    that `frames`), in `door`'s terms."""
    frames = [o for o in framing() if o.frames]
    flag, menu = frames[0], frames[-1]  # a box to tick, then a value to choose
    if door == "cli":
        need = " or ".join(o.flags[0] for o in frames)
        return f"Add {need}, or leave out {' and '.join(o.flags[0] for o in framing() if not o.frames)}."
    if door == "page":
        return (
            f"Under *{FRAMING_TITLE}*, tick *{flag.label}* or choose a *{label(menu.name)}*, "
            f"or reset the *{label(field)}* field."
        )
    return f"Send {flag.name}=true or a {menu.name}, or leave out {field}."


def _key_fix(env_var: str, door: Door) -> str:
    vendor = BY_ENV.get(env_var)  # each hosted service's key, declared once (rmbg.vendors)
    name, header, argument = (
        (vendor.label, vendor.header, vendor.argument) if vendor else ("its service's", "X-...-Key", "the key argument")
    )
    if door == "cli":
        return f"Set the environment variable {env_var} (`export {env_var}=...`), or choose a local --provider."
    if door == "page":
        return (
            f"Paste your {name} key in the *API keys for hosted providers* box at the top of the page, "
            "or pick a local model from the Provider list (free)."
        )
    if door == "rest":
        return f"Send your key in the {header} header, or choose a local provider."
    return f"Pass your key as {argument}, or choose a local provider."
