"""A batch's paid mattes that could not be written: kept in the storage, written by the next run for free.

A paid call that succeeded, whose output then could not be written (a full or read-only disk, a file
where its folder must be, a second Ctrl-C during its write), was billed: it is counted at what it cost
(reported, else the price table's), not at an estimate, and its row says it may have been billed, so a
resume holds it back unless its matte is kept. The matte is kept on the ledger's database
(rmbg.money.ledger.kept) under the output folder's id and the output it was bought for; a resume does not
hold that output back (rmbg.cli.manifest.uncertain_outputs), and the run into that folder asking for the
same matte for it (same pixels, provider and options) takes it from there instead of sending the request
again; it is dropped once that output is written. A Ray worker keeps nothing itself (it may be on another
machine): it hands the matte back with the outcome (Paid), and the driver keeps it in its storage. Where it
cannot be kept (the storage refused; too large), a resume holds the image back as before: never sent twice
without --retry-uncertain.

`rmbg replace` keeps its paid images the same way (keep_bytes, find, forget: rmbg.cli.replace), under the
request its images answer (the input's pixels, the replacer and the request's options); `rmbg video` a paid
clip's answer (the file the service sent back: keep_answer, restore_answer), under the clip's bytes, the
service and the format asked, handed on the next run to the process's kept answers (rmbg.video.answers).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..cache import MatteCache, options_key, payer_scope
from ..errors import RmbgError
from ..image.formats import STORE_URI, URL
from ..image.io import LoadedImage, load_image
from ..money.ledger import LedgerError, configured, open_ledger
from ..money.ledger.kept import KeptMatte, KeptMattes
from ..providers.base import Provider
from ..types import Cost, Matte
from .items import Item
from .manifest import folder_id

if TYPE_CHECKING:  # a photo's run loads none of the video path (tests/test_cold_start.py)
    from ..video.limits import PaidAnswer

log = logging.getLogger(__name__)
KEPT = (
    "its paid matte is kept: run the same command again (once the output can be written) to write it "
    "without paying again"
)
KEPT_IMAGES = KEPT.replace("matte is", "images are").replace("write it", "write them")
KEPT_ANSWER = KEPT.replace("matte", "answer")
GONE = "what an earlier run bought and kept for it could no longer be read from the storage"


def gone(them: str = "it") -> str:
    """The one sentence for an input the estimate counted as kept (it held nothing against the caps) whose
    answer is gone from the storage by the time it runs: never bought unasked, it fails and the next run
    estimates it again. `them`: what the next run buys ("it", "them")."""
    return f"{GONE}; nothing was sent. Run the same command again to buy {them}."


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


@dataclass(frozen=True)
class Paid:
    """A paid matte whose output could not be written, as keep_bytes keeps it: the request it answers, the
    provider's id, the matte as PNG and its meta. Plain values: a Ray worker hands it back to the driver,
    which keeps it in its own storage (rmbg.cli.ray_engine)."""

    request: str
    provider_id: str
    png: bytes
    meta: dict[str, Any]


def paid_matte(cache: MatteCache | None, loaded: LoadedImage, provider: Provider) -> Paid | None:
    """The paid matte `cache` holds for this request, to keep; None where there is none."""
    matte = None if cache is None else cache.get(MatteCache.key_of(loaded.digest, provider))
    if matte is None:
        return None
    png = io.BytesIO()
    matte.alpha.save(png, "PNG")
    return Paid(_request(loaded, provider), provider.id, png.getvalue(), dict(matte.meta))


def keep(out_dir: Path, output: str, paid: Paid | None) -> bool:
    """Keep a paid matte in the storage, for `output` of `out_dir`; False where it cannot be (or none)."""
    return paid is not None and keep_bytes(out_dir, output, paid.request, paid.provider_id, paid.png, paid.meta)


def keep_bytes(
    out_dir: Path, output: str, request: str, provider_id: str, data: bytes, meta: object, *, create: bool = False
) -> bool:
    """Keep what a paid call answering `request` returned (`data`, with `meta` as JSON) for `output` of
    `out_dir` (`create`: giving the folder its id if it has none); False where it cannot be."""
    try:
        folder = folder_id(out_dir, create=create)
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


def kept_here(out_dir: Path) -> set[str]:
    """The outputs of `out_dir` something is kept for (to be checked against their request with find), for a
    run's estimate; none where the storage cannot say (the estimate then counts them all)."""
    try:
        folder = folder_id(out_dir, create=False)
        return set() if folder is None else _book().outputs(folder)
    except (LedgerError, OSError, RmbgError):
        return set()


def bought_before(items: Iterable[Item], out_dir: Path, request: Callable[[LoadedImage], str]) -> set[int]:
    """The ids of `items` for whose output an earlier run bought and kept the answer to this same request (the
    `request` of its input's pixels): written with no new request, so neither estimated nor held. One whose
    input cannot be read, or whose storage cannot say, is not (the run says why, or buys it as asked)."""
    on_hand, free = kept_here(out_dir), set()
    for item in items:
        try:
            if item.output_rel in on_hand and find(out_dir, item.output_rel, request(load_image(item.source))):
                free.add(id(item))
        except RmbgError:
            continue
    return free


def matte_requests(provider: Provider) -> Callable[[LoadedImage], str]:
    """The request a cut-out's kept matte answers, for bought_before."""
    return lambda loaded: _request(loaded, provider)


def forget(out_dir: Path, output: str) -> None:
    """Drop the matte kept for `output` once it is written (a storage that fails: it stays, unused)."""
    try:
        folder = folder_id(out_dir, create=False)
        if folder is not None:
            _book().drop(folder, output)
    except (LedgerError, OSError, RmbgError) as exc:
        log.warning("A kept paid matte could not be dropped (%s).", exc)


ClipKey = tuple[str, str, str, str]  # rmbg.video.hosted.answer_key: clip digest, service, whose key pays, format


def clip_key(source: str, provider: Any, hosted_format: str) -> ClipKey | None:
    """What a paid clip's answer is kept under (rmbg.video.hosted.answer_key); None for a clip behind a URL,
    whose bytes are not there before it is fetched."""
    from ..video.answers import clip_digest

    if URL.match(source.strip()) or STORE_URI.match(source):
        return None
    return (clip_digest(Path(source)), provider.id, payer_scope(provider), hosted_format)


def _clip_request(key: ClipKey) -> str:
    """The request a clip's answer answers across processes: its key less whose key pays, which is salted per
    process (rmbg.providers.hosted.base.key_scope), as a matte's request has no key in it either."""
    return request_of(key[0], key[1], key[3])


def keep_answer(target: Path, key: ClipKey | None, paid: PaidAnswer) -> bool:
    """Keep a paid clip's answer whose output `target` could not be written, for the next run; False where it
    cannot be (a clip behind a URL, the storage refused, too large)."""
    meta = {"type": paid.content_type, "meta": paid.meta}
    return key is not None and keep_bytes(
        target.parent, target.name, _clip_request(key), key[1], paid.data, meta, create=True
    )


def answer_kept(target: Path, key: ClipKey | None) -> bool:
    """Whether an answer is kept for `target` that answers this clip (its estimate leaves it out); False where
    the storage cannot say."""
    try:
        return (
            key is not None
            and target.parent.is_dir()
            and find(target.parent, target.name, _clip_request(key)) is not None
        )
    except RmbgError:
        return False


def restore_answer(target: Path, key: ClipKey | None) -> bool:
    """Hand the answer kept for `target` to this process's kept answers (rmbg.video.answers), so the clip is
    written from it with no new call (True); RmbgError (nothing sent) when the storage cannot say."""
    from ..video.answers import default_answers

    found = None if key is None or not target.parent.is_dir() else find(target.parent, target.name, _clip_request(key))
    if key is None or found is None:
        return False
    said = json.loads(found.meta)
    with tempfile.TemporaryDirectory(prefix="rmbg-kept-") as folder:
        (Path(folder) / "answer").write_bytes(found.png)
        with default_answers().once(key, Path(folder)) as turn:
            if turn.found is None:
                turn.keep(Path(folder) / "answer", said["type"], said["meta"])
    return True
