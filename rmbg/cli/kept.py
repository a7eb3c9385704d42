"""A batch's paid mattes that could not be written: kept in the storage, written by the next run for free.

A paid call that succeeded, whose output then could not be written (a full or read-only disk, a file
where its folder must be, a second Ctrl-C during its write), was billed: it is counted at what it cost
(reported, else the price table's), not at an estimate, and its row says it may have been billed, so a
resume holds it back unless its matte is kept. The matte is kept on the ledger's database
(rmbg.money.ledger.kept) under the output folder's id and the output it was bought for; a resume does not
hold that output back (rmbg.cli.manifest.uncertain_outputs), and the run into that folder asking for the
same matte for it (same pixels, provider and options) takes it from there instead of sending the request
again; it is dropped once that output is written. Where it cannot be kept (no matte cache: the Ray
engine's workers; the storage refused; too large), a resume holds the image back as before: never sent
twice without --retry-uncertain.

`rmbg replace` keeps its paid images the same way (keep_bytes, find, forget: rmbg.cli.replace), under the
request its images answer (the input's pixels, the replacer and the request's options).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

from PIL import Image

from ..cache import MatteCache, options_key
from ..errors import RmbgError
from ..image.io import LoadedImage
from ..money.ledger import LedgerError, configured, open_ledger
from ..money.ledger.kept import KeptMatte, KeptMattes
from ..providers.base import Provider
from ..types import Cost, Matte
from .manifest import folder_id

log = logging.getLogger(__name__)
KEPT = (
    "its paid matte is kept: run the same command again (once the output can be written) to write it "
    "without paying again"
)
KEPT_IMAGES = KEPT.replace("matte is", "images are").replace("write it", "write them")


def request_of(*parts: object) -> str:
    """The request a kept answer answers, as it lasts across processes: a hash of its parts (pixels,
    provider, options)."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def _request(loaded: LoadedImage, provider: Provider) -> str:
    return request_of(loaded.digest, provider.id, options_key(provider.options()))


def _book() -> KeptMattes:
    return open_ledger(configured()).book(KeptMattes)


def restore(cache: MatteCache | None, loaded: LoadedImage, provider: Provider, out_dir: Path, output: str) -> bool:
    """Put the paid matte kept for `output` of `out_dir`, when it answers this request, into `cache` (True), so
    the call is not made again; RmbgError (nothing sent) when the storage cannot say whether one is kept."""
    if cache is None or provider.kind != "hosted":
        return False
    found = find(out_dir, output, _request(loaded, provider))
    if found is None:
        return False
    try:
        alpha = Image.open(io.BytesIO(found.png))
        alpha.load()
        meta = json.loads(found.meta)
    except (OSError, ValueError) as exc:  # a kept matte may be there: not bought again meanwhile
        raise RmbgError(
            f"the storage's kept paid mattes could not be read ({exc}); nothing was sent. Run again once it answers."
        ) from None
    if alpha.mode != "L" or alpha.size != loaded.size:
        return False
    matte = Matte(alpha, Cost.free("paid for by an earlier run"), 0.0, meta)
    cache.put(MatteCache.key_of(loaded.digest, provider), matte)
    return True


def keep(cache: MatteCache | None, loaded: LoadedImage, provider: Provider, out_dir: Path, output: str) -> bool:
    """Keep the paid matte `cache` holds for this request in the storage, for `output` of `out_dir`;
    False where it cannot be."""
    matte = None if cache is None else cache.get(MatteCache.key_of(loaded.digest, provider))
    if matte is None:
        return False
    png = io.BytesIO()
    matte.alpha.save(png, "PNG")
    return keep_bytes(out_dir, output, _request(loaded, provider), provider.id, png.getvalue(), dict(matte.meta))


def keep_bytes(out_dir: Path, output: str, request: str, provider_id: str, data: bytes, meta: object) -> bool:
    """Keep what a paid call answering `request` returned (`data`, with `meta` as JSON) for `output` of
    `out_dir`; False where it cannot be."""
    try:
        folder = folder_id(out_dir, create=False)
        if folder is None:
            return False
        return _book().keep(folder, output, request, provider_id, data, json.dumps(meta, default=str))
    except (LedgerError, OSError, RmbgError) as exc:
        log.warning("A paid answer whose output could not be written could not be kept either (%s).", exc)
        return False


def find(out_dir: Path, output: str, request: str) -> KeptMatte | None:
    """What is kept for `output` of `out_dir` when it answers `request`; RmbgError (nothing sent) when the
    storage cannot say."""
    try:
        folder = folder_id(out_dir, create=False)
        return None if folder is None else _book().find(folder, output, request)
    except (LedgerError, OSError) as exc:  # a kept answer may be there: not bought again meanwhile
        raise RmbgError(
            f"the storage's kept paid mattes could not be read ({exc}); nothing was sent. Run again once it answers."
        ) from None


def forget(out_dir: Path, output: str) -> None:
    """Drop the matte kept for `output` once it is written (a storage that fails: it stays, unused)."""
    try:
        folder = folder_id(out_dir, create=False)
        if folder is not None:
            _book().drop(folder, output)
    except (LedgerError, OSError, RmbgError) as exc:
        log.warning("A kept paid matte could not be dropped (%s).", exc)
