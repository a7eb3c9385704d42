"""Blind voting for benchmarks without ground truth.

Each provider's cut-out of each uploaded image is kept (small previews, a
bounded number of sessions, in this process: a session's requests reach
the process that ran its benchmark). A pair is two providers' cut-outs of
the same image, sides drawn at random among the pairs this visitor has not
voted on yet, on the background the visitor picks; the names stay on the
server with a one-use ticket until the vote comes back, and only then are
shown. Tickets and votes are written to the durable storage
(rmbg.eval.votes, rmbg.money.ledger.votes: RMBG_LEDGER), which takes a ticket and
writes its vote in one transaction and refuses a visitor's second vote on
one image's pair; the ranking weighs every visitor the same.
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image

from ...errors import InvalidRequestError, RmbgError
from ...eval.votes import VoteStore, ranking_rows
from ...image.compose import parse_colour
from ...image.io import load_image
from ...types import format_usd
from ...wording import words
from ..catalog import Keys
from ..context import App
from .scoring import Report, Step, check_choice, paid_run
from .uploads import Upload

log = logging.getLogger(__name__)
PREVIEW_SIDE = 720
MAX_SETS = 64  # sessions whose cut-outs are kept
BACKGROUNDS = {"checkerboard": None, "white": "#ffffff", "black": "#000000", "grey": "#808080"}


@dataclass
class CutoutSet:
    """One session's blind benchmark: image key -> provider -> RGBA preview."""

    images: dict[str, dict[str, Image.Image]] = field(default_factory=dict)

    def pairs(self) -> list[tuple[str, str, str]]:
        out = []
        for image, cuts in self.images.items():
            ids = sorted(cuts)
            out += [(image, a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
        return out


class NothingToVote(InvalidRequestError):
    """No pair is left to draw for this visitor (none made yet, or every one voted on)."""


class Arena:
    """Cut-out sets per session (in memory), and the vote store (tickets and votes, durable)."""

    def __init__(self, store: VoteStore, seed: int | None = None):
        self.store = store
        self._sets: OrderedDict[str, CutoutSet] = OrderedDict()
        self._lock = threading.Lock()
        self._rng = secrets.SystemRandom() if seed is None else random.Random(seed)  # seeded: tests

    def keep(self, session_id: str, cutouts: CutoutSet) -> None:
        with self._lock:
            self._sets[session_id] = cutouts
            self._sets.move_to_end(session_id)
            while len(self._sets) > MAX_SETS:
                self._sets.popitem(last=False)

    def first_pair(
        self, session_id: str, background: str, colour: str | None = None
    ) -> tuple[Image.Image, Image.Image, str] | None:
        """`pair`, or None when there is nothing to vote on (the page's first pair after any run)."""
        try:
            return self.pair(session_id, background, colour)
        except NothingToVote:
            return None

    def pair(self, session_id: str, background: str, colour: str | None = None) -> tuple[Image.Image, Image.Image, str]:
        """Two cut-outs of one image on the chosen background, sides at random, and the ticket to vote with;
        only pairs this visitor has not voted on are drawn (NothingToVote, in words, when none is left)."""
        fill = backdrop_colour(background, colour)
        voter = voter_digest(session_id)
        with self._lock:
            cutouts = self._sets.get(session_id)
        if cutouts is None or not cutouts.pairs():
            raise NothingToVote(
                "Nothing to vote on yet: run a benchmark without ground truth with at least two providers first."
            )
        voted = self.store.book.voted(voter)
        choices = [pair for pair in cutouts.pairs() if pair not in voted]
        if not choices:
            raise NothingToVote(
                f"You have voted on every pair of this benchmark ({len(cutouts.pairs())}); each counts once. "
                "Run a benchmark on other images to vote on more."
            )
        with self._lock:
            image, a, b = self._rng.choice(choices)
            left, right = (a, b) if self._rng.random() < 0.5 else (b, a)
        token = secrets.token_urlsafe(16)
        self.store.book.issue(token, voter, image, left, right)
        cuts = cutouts.images[image]
        return on_background(cuts[left], fill), on_background(cuts[right], fill), token

    def vote(self, session_id: str, token: str, choice: str) -> tuple[str, list[list[object]]]:
        """Record 'left' or 'right' for the pair behind `token` (once); what the sides were, and the ranking."""
        side = (choice or "").strip().lower()
        if side not in ("left", "right"):
            raise InvalidRequestError("A vote is 'left' or 'right'.")
        if not (token or "").strip():
            raise InvalidRequestError("There is no pair to vote on yet: click *New pair* first.")
        taken = self.store.book.take(token or "", voter_digest(session_id), side)
        if taken is None:
            raise InvalidRequestError("This pair was already voted on or is no longer known: ask for a new pair.")
        ballot = taken.ballot
        if not taken.counted:
            raise InvalidRequestError(
                f"You already voted on this image's pair ({ballot.left} and {ballot.right}); your first vote "
                "counts. Ask for a new pair."
            )
        reveal = f"Left was **{ballot.left}**, right was **{ballot.right}**; you preferred **{ballot.winner}**."
        return reveal, self.ranking()

    def ranking(self) -> list[list[object]]:
        """The ranking of every stored vote, read from the storage (the current one, in any process)."""
        return ranking_rows(self.store.standings())

    def ranking_or_none(self) -> list[list[object]] | None:
        """The ranking for a newly opened page (None: no votes yet, or the storage
        cannot be read now: an empty table, the reason in the log)."""
        try:
            return self.ranking() or None
        except RmbgError as exc:
            log.warning("The Benchmark tab's ranking cannot be read: %s", exc)
            return None


def voter_digest(session_id: str) -> str:
    """The stored voter id: a hash, so the file never holds gradio's session ids."""
    return hashlib.sha256(f"rmbg-voter:{session_id}".encode()).hexdigest()[:16]


def backdrop_colour(background: str | None, colour: str | None) -> tuple[int, int, int] | None:
    name = (background or "checkerboard").strip().lower()
    if name == "colour":
        try:
            return parse_colour(colour or "#ffffff")
        except (ValueError, RmbgError):
            raise InvalidRequestError(f"Not a colour: {colour!r}.") from None
    if name not in BACKGROUNDS:
        raise InvalidRequestError(f"Background is one of {', '.join([*BACKGROUNDS, 'colour'])}.")
    hex_colour = BACKGROUNDS[name]
    return None if hex_colour is None else parse_colour(hex_colour)


def on_background(cutout: Image.Image, fill: tuple[int, int, int] | None) -> Image.Image:
    """The RGBA cut-out over a flat colour, or over a checkerboard when fill is None."""
    if fill is not None:
        base = Image.new("RGBA", cutout.size, (*fill, 255))
    else:
        base = checkerboard(cutout.size)
    return Image.alpha_composite(base, cutout).convert("RGB")


def checkerboard(size: tuple[int, int], square: int = 16) -> Image.Image:
    board = Image.new("RGBA", size, (255, 255, 255, 255))
    grey = Image.new("RGBA", (square, square), (204, 204, 204, 255))
    for y in range(0, size[1], square):
        for x in range((y // square % 2) * square, size[0], 2 * square):
            board.paste(grey, (x, y))
    return board


def run_blind(
    upload: Upload,
    provider_ids: Sequence[str],
    keys: Keys,
    app: App,
    *,
    session_id: str,
    report: Report | None = None,
    stop: threading.Event | None = None,
) -> tuple[CutoutSet, list[list[str]]]:
    """Every ticked provider on every uploaded image (paid up front), kept for voting.
    Returns the cut-outs and a status row per image and provider."""
    from ...api import matte_for

    ids = check_choice(provider_ids)
    if len(ids) < 2:
        raise RmbgError("Tick at least two providers to vote between them.")
    paths = {p.stem: p for p in (upload.root / "images").iterdir()}
    cutouts, status = CutoutSet(), []
    total, done = len(upload.names) * len(ids), 0
    with paid_run(ids, len(upload.names), keys, app, session_id) as providers:
        for name in upload.names:
            if stop is not None and stop.is_set():
                break
            try:
                loaded = load_image(paths[name])
            except RmbgError as exc:
                for provider in providers:
                    status.append([name, provider.id, words(exc, "page")])
                    done += 1
                    if report:
                        report(Step.of(done, total, len(providers), name, provider.id, False))
                continue
            key = loaded.digest[:16]
            preview = loaded.rgb.copy()
            preview.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
            for provider in providers:
                if stop is not None and stop.is_set():
                    break
                try:
                    matte, cached = matte_for(loaded, provider, cache=app.cache)
                except RmbgError as exc:
                    status.append([name, provider.id, words(exc, "page")])
                    ok = False
                else:
                    ok = True
                    if matte.cost.watermarked:  # a vendor's watermark in the cut-out: no fair vote
                        status.append([name, provider.id, "not in the vote · watermarked (a Photoroom sandbox key)"])
                        done += 1
                        if report:
                            report(Step.of(done, total, len(providers), name, provider.id, ok))
                        continue
                    cut = preview.copy()
                    cut.putalpha(matte.alpha.resize(preview.size, Image.Resampling.BILINEAR))
                    cutouts.images.setdefault(key, {})[provider.id] = cut
                    if cached:  # no call was made: neither the first call's seconds nor its cost are this row's
                        status.append([name, provider.id, "ok · cached matte · free (no new call)"])
                    else:
                        cost = "free" if matte.cost.source == "free" else f"${format_usd(matte.cost.usd)}"
                        status.append([name, provider.id, f"ok · {matte.seconds:.2f} s · {cost}"])
                done += 1
                if report:
                    report(Step.of(done, total, len(providers), name, provider.id, ok))
    return cutouts, status
