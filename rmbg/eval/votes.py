"""Blind pairwise votes between providers, and the ranking they give.

Store: the votes live on the app's durable storage, the same database as the
money ledger (RMBG_LEDGER: an SQLite file by default, or a PostgreSQL URL
every replica shares; rmbg.money.ledger.votes), one row per vote: when, who (an
opaque visitor id), which image (a content hash, never the pixels), the
provider shown on the left and on the right, and the winner's id. One
visitor votes once on one image's pair: the database refuses a second vote
(its primary key), however the requests arrive. The ranking is recomputed
from the stored votes whenever one was added, so every process and every
newly opened page shows the current one, and a restart keeps it.

A votes file of an older version (RMBG_VOTES_DB, else
~/.local/share/rmbg/votes.sqlite3) is copied in once, when the votes are
first read.

Ranking: a Bradley-Terry model fitted by the classic minorise-maximise
iteration, reported on the Elo scale (400·log10 of the strength, centred on
1000). Every visitor carries the same total weight: each of a visitor's n
votes counts 1/n, so one tireless voter moves the ranking no more than
anyone else. A small prior (half a win each way between every pair that met)
keeps an unbeaten provider finite. The 95 % interval is the percentile range
over bootstrap resamples of the votes (fixed seed).

Importing this module loads neither torch nor gradio.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
ENV_PATH = "RMBG_VOTES_DB"
PRIOR = 0.5  # virtual wins each way between providers that met


@dataclass(frozen=True)
class Vote:
    voter: str
    image: str
    left: str
    right: str
    winner: str

    @property
    def loser(self) -> str:
        return self.right if self.winner == self.left else self.left


@dataclass(frozen=True)
class Standing:
    """One provider's place: Elo-scale score with its 95 % interval, votes it was in, and weighted wins."""

    provider: str
    score: float
    low: float
    high: float
    votes: int
    wins: int


def old_votes_file() -> Path:
    """Where an older version kept the votes (copied into the storage once)."""
    from .. import settings

    return settings.current().path(ENV_PATH) or Path.home() / ".local" / "share" / "rmbg" / "votes.sqlite3"


class VoteStore:
    """The votes on the storage named by `spec` (a path or a PostgreSQL URL;
    None: RMBG_LEDGER's when each call is made, an older version's votes file
    copied in once). The storage is opened on first use, not when the app starts."""

    def __init__(self, spec: str | os.PathLike[str] | None = None):
        self.spec = None if spec is None else str(spec)
        self._imported: set[str] = set()
        self._lock = threading.Lock()
        self._ranked: tuple[tuple[str, int, float], float, list[Standing]] | None = None  # version, read at, ranking
        self._ranking_lock = threading.Lock()

    @property
    def book(self):  # -> rmbg.money.ledger.votes.VoteBook
        from ..money.ledger import configured, open_ledger
        from ..money.ledger.votes import VoteBook

        spec = self.spec or configured()
        book = open_ledger(spec).book(VoteBook)
        if self.spec is None:
            with self._lock:
                if spec not in self._imported:
                    _import_old(book)
                    self._imported.add(spec)
        return book

    def add(self, vote: Vote) -> bool:
        """Write one vote; False when this voter already voted on this image's pair."""
        from ..money.ledger.votes import Ballot

        if vote.winner not in (vote.left, vote.right):
            raise ValueError("the winner must be one of the two providers shown")
        return self.book.add(Ballot(vote.voter, vote.image, vote.left, vote.right, vote.winner))

    def all(self) -> list[Vote]:
        return [Vote(*ballot) for ballot in self.book.all()]

    def standings(self) -> list[Standing]:
        """The ranking of every stored vote: computed again only when a vote
        was added since (by any process); callers that arrive while it is
        computed wait for that computation when it read the votes after they
        asked (so hundreds of concurrent votes share a few computations, and
        each caller's own vote is in what it gets)."""
        asked = time.monotonic()
        book = self.book
        with self._ranking_lock:
            version = (book.backend.where, *book.version())
            cached = self._ranked
            if cached is not None and (cached[0] == version or cached[1] >= asked):
                return cached[2]
            read_at = time.monotonic()
            standings = ranking([Vote(*ballot) for ballot in book.all()])
            self._ranked = (version, read_at, standings)
            return standings


def _import_old(book) -> None:
    path = old_votes_file()
    if not path.is_file():
        return
    try:
        counted = book.import_file(path)
    except Exception as exc:  # an unreadable old file must not stop the votes
        log.warning("The old votes file %s could not be read (%s); its votes are not in the ranking.", path, exc)
        return
    if counted is not None:
        log.info("Copied %d vote(s) from %s into the storage (RMBG_LEDGER); the file is no longer read.", counted, path)


def _strengths(n: int, winner: np.ndarray, loser: np.ndarray, weight: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Log10 Bradley-Terry strengths (mean zero) from weighted (winner, loser) index pairs."""
    wins = np.zeros((n, n))
    np.add.at(wins, (winner, loser), weight)
    met = (wins + wins.T) > 0
    wins = wins + PRIOR * met
    games = wins + wins.T
    total_wins = wins.sum(axis=1)
    strength = np.ones(n)
    for _ in range(iterations):
        denom = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        new = np.where(denom > 0, total_wins / np.where(denom > 0, denom, 1), strength)
        new = new / np.exp(np.mean(np.log(new)))
        done = np.allclose(new, strength, rtol=1e-10, atol=0)
        strength = new
        if done:
            break
    return np.log10(strength)


def ranking(votes: Sequence[Vote], *, bootstrap: int = 500, seed: int = 0) -> list[Standing]:
    """Providers best first, on the Elo scale with 95 % bootstrap intervals over votes
    (each resample re-weights its votes so every visitor in it still sums to 1)."""
    if not votes:
        return []
    providers = sorted({p for v in votes for p in (v.left, v.right)})
    index = {p: i for i, p in enumerate(providers)}
    winner = np.array([index[v.winner] for v in votes], dtype=np.intp)
    loser = np.array([index[v.loser] for v in votes], dtype=np.intp)
    voters = {name: i for i, name in enumerate(sorted({v.voter for v in votes}))}
    voter = np.array([voters[v.voter] for v in votes], dtype=np.intp)

    def fit(pick: np.ndarray) -> np.ndarray:
        per_voter = np.bincount(voter[pick], minlength=len(voters))
        return _strengths(len(providers), winner[pick], loser[pick], 1.0 / per_voter[voter[pick]])

    point = fit(np.arange(len(votes)))
    rng = np.random.default_rng(seed)
    reps = np.array([fit(rng.integers(0, len(votes), len(votes))) for _ in range(bootstrap)])
    low, high = np.percentile(reps, [2.5, 97.5], axis=0)
    shown = Counter(p for v in votes for p in (v.left, v.right))
    won = Counter(v.winner for v in votes)
    elo = lambda x: 1000 + 400 * float(x)  # noqa: E731
    out = [Standing(p, elo(point[i]), elo(low[i]), elo(high[i]), shown[p], won[p]) for i, p in enumerate(providers)]
    return sorted(out, key=lambda s: (-s.score, s.provider))


def ranking_rows(standings: Sequence[Standing]) -> list[list[object]]:
    """Rows for RANKING_HEADERS. A provider in fewer than INTERVAL_VOTES votes gets no interval: resampling
    one vote (or a few unanimous ones) gives back the same vote, an interval one point wide that claims a
    certainty a handful of votes cannot give."""
    return [[i + 1, s.provider, round(s.score), interval_text(s), s.votes, s.wins] for i, s in enumerate(standings)]


def interval_text(s: Standing) -> str:
    if s.votes < INTERVAL_VOTES:
        return f"too few votes ({s.votes} of {INTERVAL_VOTES})"
    return f"[{math.floor(s.low)}, {math.ceil(s.high)}]"


INTERVAL_VOTES = 10  # votes a provider needs before its 95 % interval is shown


RANKING_HEADERS = ["rank", "provider", "score (Elo scale)", "95 % interval", "votes", "wins"]
