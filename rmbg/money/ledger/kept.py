"""Paid mattes whose output could not be written, on the same database as the
money ledger (RMBG_LEDGER), so that the next run writes them without paying
for them again.

A batch's paid call can succeed and its output still fail: a full or
read-only disk, a file where the output's folder must be, a second Ctrl-C
while its file was being written. The matte was bought; without this table
it lived only in the process that bought it, so the next run either held
the image back (no output) or, with --retry-uncertain, bought it again. It
is kept here under the output folder's id and the output it was bought for
(rmbg.cli.manifest.folder_id: only a run into that folder finds it), with
the request it answers (a hash of the image's pixels, the provider and its
options), and dropped once that output is written (rmbg.cli.kept). A resume
holds back an image whose request may have been billed unless its matte is
kept here (rmbg.cli.manifest.uncertain_outputs), so a resume on another
storage, where it is not, still never sends it again.

Table (created on first use):
- rmbg_kept_mattes(folder, output, request, provider, matte, meta, kept):
  `matte` is the PNG of the alpha as base64 text (one column type on SQLite
  and PostgreSQL), `meta` the provider's provenance as JSON.
"""

from __future__ import annotations

import base64
import time
from typing import NamedTuple

from .backends import Book

MAX_BYTES = 64 * 2**20  # a matte's PNG larger than this is not kept (a resume holds its image back)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rmbg_kept_mattes (folder TEXT NOT NULL, output TEXT NOT NULL, request TEXT NOT NULL, "
    "provider TEXT NOT NULL, matte TEXT NOT NULL, meta TEXT NOT NULL, kept DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (folder, output))",
)


class KeptMatte(NamedTuple):
    png: bytes
    meta: str


class KeptMattes(Book):
    """Kept paid mattes on one database (see the module docstring)."""

    SCHEMA = SCHEMA

    def keep(self, folder: str, output: str, request: str, provider: str, png: bytes, meta: str) -> bool:
        """Keep the PNG of the matte that answers `request`, bought for `output` of the output folder `folder`
        (replacing one kept for it before); False when it is too large to keep."""
        if len(png) > MAX_BYTES:
            return False
        with self.backend.transaction() as tx:
            tx(
                "INSERT INTO rmbg_kept_mattes (folder, output, request, provider, matte, meta, kept) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (folder, output) DO UPDATE SET request = excluded.request, "
                "provider = excluded.provider, matte = excluded.matte, meta = excluded.meta, kept = excluded.kept",
                (folder, output, request, provider, base64.b64encode(png).decode("ascii"), meta, time.time()),
            )
        return True

    def find(self, folder: str, output: str, request: str) -> KeptMatte | None:
        """The matte kept for `output` of `folder` when it answers `request` (the same pixels, provider, options)."""
        with self.backend.read() as tx:
            found = tx(
                "SELECT matte, meta FROM rmbg_kept_mattes WHERE folder = ? AND output = ? AND request = ?",
                (folder, output, request),
            ).fetchone()
        return None if found is None else KeptMatte(base64.b64decode(found[0]), found[1])

    def outputs(self, folder: str) -> set[str]:
        """The outputs of the output folder `folder` whose paid matte is kept."""
        with self.backend.read() as tx:
            return {r[0] for r in tx("SELECT output FROM rmbg_kept_mattes WHERE folder = ?", (folder,)).fetchall()}

    def drop(self, folder: str, output: str) -> None:
        with self.backend.transaction() as tx:
            tx("DELETE FROM rmbg_kept_mattes WHERE folder = ? AND output = ?", (folder, output))
