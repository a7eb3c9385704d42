"""What a batch is made of: one input and where its output goes (`Item`), and
what happened to it (`Outcome`). Shared by the scheduler (rmbg.cli.batch),
its budget (rmbg.cli.budget), the manifest and the Ray engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..types import Cost

Status = Literal["done", "skipped", "failed", "not_run"]


def not_utf8(text: str) -> str | None:
    """`text` with its bytes that are not UTF-8 shown as \\xNN, when a file name holds some (an old camera's,
    one unpacked from another system's zip: Python keeps them as lone surrogates); None when it is text.
    Such a name cannot go into the manifest, the ledger or a message as it is (it stopped the batch)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return None


@dataclass(frozen=True)
class Item:
    """One input image and where its output goes.

    display: the input path as shown to a person (relative to the working
        folder when it is inside it); output_rel: the output path relative to
        the output folder, '/'-separated; error: set when the input cannot be
        run at all (an argument that matched nothing, an output name clash, a
        request of an earlier run that may have been billed: `uncertain`).
    """

    source: Path | str  # a file, or an http(s) URL
    display: str
    output_rel: str
    output: Path
    error: str = ""
    uncertain: bool = False  # held back: an earlier run's request for it may have been billed


@dataclass(frozen=True)
class Outcome:
    """What happened to one item. seconds: wall seconds, load to written file;
    provider: who made its output ("" = the batch's provider); confidence: its
    matte's (rmbg.confidence), when a provider ran."""

    item: Item
    status: Status
    seconds: float = 0.0
    cost: Cost | None = None
    error: str = ""
    may_be_billed: bool = False  # failed after a paid request may have reached the provider
    provider: str = ""
    confidence: float | None = None
