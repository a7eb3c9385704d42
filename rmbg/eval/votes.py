"""Blind pairwise votes between providers, kept in SQLite, and the ranking they give.

Store: one SQLite file (RMBG_VOTES_DB, else ~/.local/share/rmbg/votes.sqlite3),
table `votes` with one row per vote: when, who (an opaque visitor id), which
image (a content hash, never the pixels), the provider shown on the left and
on the right, and the winner's id. It is a plain file the operator can copy,
back up or open with the sqlite3 shell; the ranking is recomputed from it,
so it survives restarts.

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

import math
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_PATH = "RMBG_VOTES_DB"
PRIOR = 0.5  # virtual wins each way between providers that met
SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    voter TEXT NOT NULL,
    image TEXT NOT NULL,
    left TEXT NOT NULL,
    right TEXT NOT NULL,
    winner TEXT NOT NULL
)
"""


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


def default_path() -> Path:
    from .. import settings

    return settings.current().path(ENV_PATH) or Path.home() / ".local" / "share" / "rmbg" / "votes.sqlite3"


class VoteStore:
    """The votes file. Each call opens its own connection, so threads never share one."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()

    def _connect(self) -> sqlite3.Connection:
        """A connection; the file (and its folder) is made on the first vote, not when the app starts."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        with db:
            db.execute(SCHEMA)
        return db

    def add(self, vote: Vote) -> None:
        if vote.winner not in (vote.left, vote.right):
            raise ValueError("the winner must be one of the two providers shown")
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO votes (at, voter, image, left, right, winner) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), vote.voter, vote.image, vote.left, vote.right, vote.winner),
            )

    def all(self) -> list[Vote]:
        if not self.path.exists():
            return []
        with closing(self._connect()) as db:
            rows = db.execute("SELECT voter, image, left, right, winner FROM votes ORDER BY id").fetchall()
        return [Vote(*row) for row in rows]


def voter_weights(votes: Sequence[Vote]) -> np.ndarray:
    """1/n for each of a visitor's n votes: every visitor's votes sum to 1."""
    per_voter = Counter(v.voter for v in votes)
    return np.array([1.0 / per_voter[v.voter] for v in votes])


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


def bradley_terry(
    providers: Sequence[str], votes: Sequence[Vote], weights: np.ndarray, iterations: int = 200
) -> np.ndarray:
    """Log10 strengths (mean zero) of `providers` from weighted votes."""
    index = {p: i for i, p in enumerate(providers)}
    winner = np.array([index[v.winner] for v in votes], dtype=np.intp)
    loser = np.array([index[v.loser] for v in votes], dtype=np.intp)
    return _strengths(len(providers), winner, loser, np.asarray(weights, dtype=np.float64), iterations)


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
    """Rows for RANKING_HEADERS."""
    return [
        [i + 1, s.provider, round(s.score), f"[{math.floor(s.low)}, {math.ceil(s.high)}]", s.votes, s.wins]
        for i, s in enumerate(standings)
    ]


RANKING_HEADERS = ["rank", "provider", "score (Elo scale)", "95 % interval", "votes", "wins"]
