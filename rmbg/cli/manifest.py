"""A batch's manifest: what each output's run came to, kept where it lasts.

Two copies of every row:
- in the storage (RMBG_LEDGER, the money ledger's database: an SQLite file
  shared by the machine's processes, or PostgreSQL shared by several
  machines; rmbg.money.ledger.manifests), keyed by the output folder's id and the
  run. It is the resume state: which outputs another run is making now (a
  claim), which ended "may have been billed", which a killed run left
  behind. A run claims each output before starting it, so two processes
  (or two machines) on one output folder never make the same output; after
  kill -9 the next run finds the dead process's claims and makes those
  outputs again, or, when their paid request may have been sent, holds them
  back as "may have been billed";
- OUT/manifest.csv, appended as each output ends: the record a person reads.

The folder's id lives in OUT/.rmbg-folder-id (made on the first run, never
through a link), so the manifest moves with the folder and a new folder of
the same name starts a new one. When the storage cannot be used, a batch
still runs from manifest.csv alone, with a warning: no claims, so another
process on the same folder may make the same outputs.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from ..money.ledger import LedgerError, configured, to_nano
from ..types import MAY_HAVE_BEEN_BILLED
from .interrupts import uncertain_in_csv
from .items import Item, Outcome
from .writing import NotWritten, OutputRefused, open_no_follow

log = logging.getLogger(__name__)
WITHOUT_CLAIMS = "%s This batch runs without claims: another process on %s may make the same outputs."
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ["file", "output", "provider", "seconds", "cost_usd", "cost_source", "status", "error"]
FOLDER_ID = ".rmbg-folder-id"
_ID = re.compile(r"rmbg-folder ([0-9a-f]{32})\s*")
HELD_BACK = (
    "its request in an earlier run may have been billed and left no output; not sent again "
    "(--retry-uncertain sends it again)"
)


def folder_id(out_dir: Path, *, create: bool) -> str | None:
    """The output folder's id (OUT/.rmbg-folder-id); made when missing and `create`, else None."""
    path = out_dir / FOLDER_ID
    try:
        fd = open_no_follow(path, os.O_RDONLY, "the folder's id file")
    except FileNotFoundError:
        if not create:
            return None
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / f".{FOLDER_ID}.{os.getpid()}.{secrets.token_hex(4)}.part"
        fd = open_no_follow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, "the temporary file")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(f"rmbg-folder {uuid.uuid4().hex}\n")
        except OSError as exc:  # a full disk: in words, and no temporary file left behind
            tmp.unlink(missing_ok=True)
            raise NotWritten(path, exc) from exc
        try:
            os.link(tmp, path)  # fails when another process made it first: then theirs is the id
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return folder_id(out_dir, create=False)
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as fh:
        text = fh.read(200)
    found = _ID.fullmatch(text)
    if found is None:
        raise OutputRefused(f"{path} is not an rmbg folder id; move it aside (a new one starts a new manifest).")
    return found.group(1)


@dataclass(frozen=True)
class Claims:
    """One run's claims on one output folder, in the storage named by `spec`
    (plain values: Ray workers get a copy and open the storage themselves)."""

    spec: str
    folder: str
    run: str
    started: float
    retry_uncertain: bool = False

    @property
    def book(self):  # -> rmbg.money.ledger.manifests.ManifestBook
        from ..money.ledger import open_ledger
        from ..money.ledger.manifests import ManifestBook

        return open_ledger(self.spec).book(ManifestBook)

    def claim(self, item: Item, provider_id: str, *, paid: bool = False, hold: str | None = None) -> Outcome | None:
        """Claim `item`'s output for this run: None to go ahead, else the outcome
        to report instead (another run makes it or made it: skipped; a dead
        run's request for it may have been billed: failed, held back)."""
        got = self.book.claim(
            self.folder, item.output_rel, self.run, started=self.started, file=item.display, provider=provider_id,
            paid=paid, hold=hold,
        )  # fmt: skip
        if got.state == "uncertain" and self.retry_uncertain:
            return self.claim(item, provider_id, paid=paid, hold=hold)
        if got.state == "ours":
            return None
        if got.state == "busy":
            return Outcome(item, "skipped", error=f"another run is making it (process {got.who})")
        if got.state == "done":
            return Outcome(item, "skipped", error="another run made it meanwhile")
        return Outcome(item, "failed", error=HELD_BACK, may_be_billed=True)

    def record(self, outcome: Outcome, provider_id: str) -> None:
        """The outcome's row (its claim goes with it); a skip writes nothing."""
        from ..money.ledger.manifests import Row

        if outcome.status == "skipped":
            return
        self.book.record(self.folder, self.run, Row(*row_of(outcome, provider_id)))


def row_of(outcome: Outcome, provider_id: str) -> tuple[str, str, str, float, int, str, str, str]:
    """(file, output, provider, seconds, cost in nano-USD, cost source, status, error); the
    provider is the one that made the output (the outcome's), else `provider_id`."""
    cost = outcome.cost
    # resume reads this marker: an image whose request may have been billed is not sent again
    marked = outcome.status == "failed" and outcome.may_be_billed
    source = MAY_HAVE_BEEN_BILLED if marked else (cost.source if cost else "")
    usd = cost.usd if cost else Decimal(0)
    return (
        outcome.item.display,
        outcome.item.output_rel,
        outcome.provider or provider_id,
        outcome.seconds,
        to_nano(usd),
        source,
        outcome.status,
        outcome.error,
    )


def hold_back(items: Sequence[Item], uncertain: set[str]) -> list[Item]:
    """Items whose earlier request may have been billed (`uncertain` output
    paths, rmbg.cli.manifest.uncertain_outputs) marked not to be sent again."""
    return [
        replace(i, error=HELD_BACK, uncertain=True) if not i.error and i.output_rel in uncertain else i for i in items
    ]


def makers(out_dir: Path) -> dict[str, str]:
    """Each output (case-folded, as rmbg.cli.items.OutputNames compares names) whose last "done" row in
    OUT/manifest.csv names the input that made it, and that input as shown then: a file added since under
    the same output name is the newcomer, and the maker keeps its output (rmbg.cli.items.local_items)."""
    path = out_dir / MANIFEST
    if not path.is_file() or path.is_symlink():
        return {}
    made: dict[str, str] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get("status") == "done" and row.get("output") and row.get("file"):
                    made[row["output"].casefold()] = row["file"]
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    return made


def made_in(out_dir: Path) -> Callable[[str], bool]:
    """Whether an output (output_rel; `rmbg replace`'s "a-1.png; a-2.png": all of them) is in `out_dir`."""
    return lambda output: all((out_dir / part).is_file() for part in output.split("; "))


def uncertain_outputs(out_dir: Path) -> set[str]:
    """Outputs whose request in an earlier run may have been billed and made
    nothing: by the storage (dead runs' paid claims included), and by
    manifest.csv for outputs the storage does not know (an older version's
    runs, another storage); less those whose paid matte the storage keeps."""
    from_csv = uncertain_in_csv(out_dir, MANIFEST)
    try:
        folder = folder_id(out_dir, create=False) if out_dir.is_dir() else None
        if folder is None:
            return from_csv
        from ..money.ledger import open_ledger
        from ..money.ledger.kept import KeptMattes
        from ..money.ledger.manifests import ManifestBook

        ledger = open_ledger(configured())
        book = ledger.book(ManifestBook)
        book.sweep(folder, made=made_in(out_dir))
        known = book.current(folder)
        # a paid matte kept for the next run (rmbg.cli.kept) is written from there: not held back
        return (book.uncertain(folder) | {out for out in from_csv if out not in known}) - ledger.book(
            KeptMattes
        ).outputs(folder)
    except LedgerError as exc:
        log.warning("%s Resuming from manifest.csv alone.", exc)
        return from_csv


class Manifest:
    """The manifest of one run on `out_dir` (see the module docstring):
    manifest.csv appended one row per outcome as it happens, and the same
    row in the storage; `claims` is None when the storage cannot be used."""

    def __init__(self, out_dir: Path, provider_id: str, *, retry_uncertain: bool = False):
        self.path = out_dir / MANIFEST
        self.provider_id = provider_id
        try:  # a full or read-only disk: in words (the CLI's exit code 2), before any image runs
            out_dir.mkdir(parents=True, exist_ok=True)
            fd = open_no_follow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, "the manifest")
            self._fh = os.fdopen(fd, "a", newline="", encoding="utf-8")
            new = os.fstat(fd).st_size == 0
            self._writer = csv.writer(self._fh)
            if new:
                self._writer.writerow(MANIFEST_COLUMNS)
                self._fh.flush()
        except OSError as exc:
            raise NotWritten(self.path, exc) from exc
        self.claims: Claims | None = None
        folder = folder_id(out_dir, create=True)
        assert folder is not None
        claims = Claims(configured(), folder, uuid.uuid4().hex, time.time(), retry_uncertain)
        try:
            claims.book.sweep(folder, made=made_in(out_dir))
            self.claims = claims
        except LedgerError as exc:
            log.warning(WITHOUT_CLAIMS, exc, out_dir)

    def write(self, outcome: Outcome) -> None:
        """Record a run, failure or budget stop; skips are not rows (the earlier row stands)."""
        if outcome.status == "skipped":
            return
        file, output, provider, seconds, _, source, status, error = row_of(outcome, self.provider_id)
        cost = outcome.cost
        self._writer.writerow([file, output, provider, f"{seconds:.3f}", str(cost.usd) if cost else "0", source,
                               status, error])  # fmt: skip
        self._fh.flush()
        if self.claims is not None:
            try:
                self.claims.record(outcome, self.provider_id)
            except LedgerError as exc:  # the storage went mid-run (its rows are in manifest.csv): said once, not fatal
                self.claims = None
                log.warning(WITHOUT_CLAIMS, exc, self.path.parent)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
