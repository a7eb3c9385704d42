"""The state that must last besides the money (#42): the Benchmark tab's votes
(rmbg.money.ledger.votes) and the batch manifests' claims and rows
(rmbg.money.ledger.manifests), on the same storage as the ledger, against both
real databases: an SQLite file and a PostgreSQL server (tests.support.ledgers).
Concurrency is real: hundreds of threads, and several processes.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from rmbg.eval.votes import Vote, VoteStore
from rmbg.money.ledger import Account, close_all
from rmbg.money.ledger.manifests import GONE, MAY_HAVE_BEEN_BILLED, ManifestBook, Row
from rmbg.money.ledger.sql import SqlLedger
from rmbg.money.ledger.votes import Ballot, VoteBook
from rmbg.webapp.benchmark.arena import Arena, CutoutSet
from tests.support.ledgers import postgres, spec  # noqa: F401  (fixtures: both databases)

ROOT = Path(__file__).resolve().parents[1]
CUT = Image.new("RGBA", (4, 4), (200, 10, 10, 255))


@pytest.fixture
def storage(spec):  # noqa: F811
    opened = SqlLedger.open(spec)
    yield opened
    opened.close()


def dead_owner() -> str:
    """A "host:pid" of a process of this host that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{socket.gethostname()}:{proc.pid}"


# --- votes ----------------------------------------------------------------------------------


def test_one_vote_per_visitor_image_and_pair_whichever_side_each_was_shown(storage):
    book = storage.book(VoteBook)
    assert book.add(Ballot("v", "img", "a", "b", "a"))
    assert not book.add(Ballot("v", "img", "b", "a", "a"))  # the same pair, sides swapped
    assert book.add(Ballot("v", "img", "a", "c", "c")) and book.add(Ballot("v", "other", "a", "b", "b"))
    assert book.add(Ballot("w", "img", "a", "b", "b"))
    assert book.voted("v") == {("img", "a", "b"), ("img", "a", "c"), ("other", "a", "b")}
    assert [b.winner for b in book.all()] == ["a", "c", "b", "b"] and book.version()[0] == 4


def test_a_ticket_is_taken_once_by_its_own_visitor_with_its_vote(storage):
    book = storage.book(VoteBook)
    book.issue("t1", "v", "img", "b", "a", now=100.0)
    assert book.take("t1", "someone else", "left", now=101.0) is None
    taken = book.take("t1", "v", "left", now=102.0)
    assert taken is not None and taken.counted and taken.ballot == Ballot("v", "img", "b", "a", "b")
    assert book.take("t1", "v", "left", now=103.0) is None  # used
    book.issue("t2", "v", "img", "a", "b", now=104.0)
    again = book.take("t2", "v", "right", now=105.0)
    assert again is not None and not again.counted  # the ticket is used, the vote refused: one per pair
    book.issue("old", "v", "img2", "a", "b", now=0.0)
    assert book.take("old", "v", "left", now=200_000.0) is None  # stale
    assert len(book.all()) == 1


def test_hundreds_of_concurrent_votes_none_fail_and_each_visitor_counts_once(spec):  # noqa: F811
    """Issue #45: 8 of 320 concurrent vote requests failed. Here 320 visitors each
    send two votes on their one pair at the same moment (640 requests): every
    request is answered (a vote, or 'already voted'), and each visitor counts once."""
    store = VoteStore(spec)
    arena = Arena(store, seed=0)
    visitors = [f"visitor-{k}" for k in range(320)]
    tickets = []
    for visitor in visitors:
        arena.keep(visitor, CutoutSet({"img": {"a": CUT, "b": CUT}}))
        tickets += [(visitor, arena.pair(visitor, "white")[2]) for _ in range(2)]
    answers: list[str] = []
    lock = threading.Lock()
    go = threading.Barrier(len(tickets))

    def vote(visitor: str, ticket: str) -> None:
        go.wait()
        try:
            answer = arena.vote(visitor, ticket, "left")[0]
        except Exception as exc:
            answer = f"{type(exc).__name__}: {exc}"
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=vote, args=pair) for pair in tickets]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    counted = [a for a in answers if a.startswith("Left was")]
    refused = [a for a in answers if "already voted on this image's pair" in a]
    assert len(counted) == 320 and len(refused) == 320, {a for a in answers if a not in counted + refused}
    assert len(store.all()) == 320 and store.standings()[0].votes == 320
    print(f"640 concurrent vote requests on {spec.split(':')[0]}: {seconds:.1f} s")


VOTER = textwrap.dedent(
    """
    import sys, threading
    from PIL import Image
    from rmbg.eval.votes import VoteStore
    from rmbg.webapp.benchmark.arena import Arena, CutoutSet
    spec, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    arena = Arena(VoteStore(spec))
    cut = Image.new("RGBA", (4, 4))
    tickets = []
    for k in range(n):  # the same visitors in every process: their second request is another replica's
        arena.keep(f"v{k}", CutoutSet({"img": {"a": cut, "b": cut}}))
        tickets.append((f"v{k}", arena.pair(f"v{k}", "white")[2]))
    print("ready", flush=True)
    sys.stdin.readline()  # every process has its tickets: vote
    go = threading.Barrier(n)
    failed = []
    def vote(visitor, ticket):
        go.wait()
        try:
            arena.vote(visitor, ticket, "right")
        except Exception as exc:
            if "already voted" not in str(exc):
                failed.append(repr(exc))
    threads = [threading.Thread(target=vote, args=t) for t in tickets]
    [t.start() for t in threads]
    [t.join() for t in threads]
    print(len(failed), failed[:3])
    """
)


def test_replicas_voting_at_once_count_each_visitor_once(spec):  # noqa: F811
    """Four processes (as four app replicas), the same 80 visitors voting in each at the same time."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", VOTER, spec, str(p), "80"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(4)
    ]
    assert [w.stdout.readline() for w in workers] == ["ready\n"] * 4
    outs = [w.communicate("go\n", timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0] * 4
    assert all(out.startswith("0 []") for out in outs), outs
    assert len(VoteStore(spec).all()) == 80


def test_an_old_votes_file_is_copied_in_once(tmp_path, monkeypatch):
    old = tmp_path / "votes.sqlite3"
    with sqlite3.connect(old) as db:
        db.execute(
            "CREATE TABLE votes (id INTEGER PRIMARY KEY, at REAL NOT NULL, voter TEXT NOT NULL, image TEXT NOT NULL, "
            "left TEXT NOT NULL, right TEXT NOT NULL, winner TEXT NOT NULL)"
        )
        rows = [(1.0, "v", "i", "a", "b", "a"), (2.0, "v", "i", "b", "a", "a"), (3.0, "w", "i", "a", "b", "b")]
        db.executemany("INSERT INTO votes (at, voter, image, left, right, winner) VALUES (?, ?, ?, ?, ?, ?)", rows)
    db.close()
    monkeypatch.setenv("RMBG_VOTES_DB", str(old))
    assert VoteStore().all() == [Vote("v", "i", "a", "b", "a"), Vote("w", "i", "a", "b", "b")]  # v's repeat dropped
    close_all()
    store = VoteStore()  # a restart: not copied again
    store.add(Vote("x", "i", "a", "b", "a"))
    assert len(store.all()) == 3


# --- batch manifests ----------------------------------------------------------------------


def test_an_output_is_claimed_by_one_run_and_its_row_replaces_the_claim(storage):
    book = storage.book(ManifestBook)
    assert book.claim("F", "a.png", "run1", started=10.0, now=11.0).state == "ours"
    assert book.claim("F", "a.png", "run1", started=10.0, now=11.5).state == "ours"  # asking again
    busy = book.claim("F", "a.png", "run2", started=10.0, now=12.0)
    assert busy.state == "busy" and busy.who.endswith(f":{os.getpid()}")
    assert book.claim("G", "a.png", "run2", started=10.0, now=12.0).state == "ours"  # another folder
    book.record("F", "run1", Row("in/a.png", "a.png", "p", 1.5, 1300, "reported", "done", ""), now=13.0)
    assert book.claims("F") == []
    made = book.claim("F", "a.png", "run2", started=10.0, now=14.0)
    assert made == ("done", "run1")  # made by another run since run2 began: not again
    assert book.claim("F", "a.png", "run3", started=20.0, now=21.0).state == "ours"  # a later run (--overwrite)
    [(run, row)] = book.current("F").values()
    assert run == "run1" and row.cost == 1300 and row.status == "done"


def test_a_dead_runs_claims_are_made_again_unless_a_paid_request_may_have_been_sent(storage):
    book = storage.book(ManifestBook)
    for output, paid in (("free.png", False), ("paid.png", True), ("released.png", True)):
        book.claim("F", output, "dead", started=1.0, file=f"in/{output}", provider="p", paid=paid, now=2.0)
    released = storage.reserve("p", [Account("day:x")], Decimal("0.01"), probe=False)
    storage.release(released.id)
    with storage.backend.transaction() as run:
        run("UPDATE rmbg_claims SET owner = ?", (dead_owner(),))  # the run was killed
        run("UPDATE rmbg_claims SET hold = ? WHERE output = 'released.png'", (released.id,))
    assert book.sweep("F", now=3.0) == 1
    assert book.claims("F") == [] and book.uncertain("F") == {"paid.png"}
    [(run, row)] = book.current("F").values()
    assert (run, row.cost_source, row.status, row.error) == ("dead", MAY_HAVE_BEEN_BILLED, "failed", GONE)
    assert book.claim("F", "free.png", "next", started=4.0, now=5.0).state == "ours"
    assert book.claim("F", "released.png", "next", started=4.0, now=5.0).state == "ours"


def test_a_claim_of_another_hosts_process_is_dead_only_when_old(storage):
    book = storage.book(ManifestBook)
    book.claim("F", "a.png", "far", started=0.0, paid=True, now=1000.0)
    with storage.backend.transaction() as run:
        run("UPDATE rmbg_claims SET owner = 'another-host:1'")
    assert book.claim("F", "a.png", "near", started=1000.0, now=2000.0).state == "busy"  # may still run there
    assert book.claim("F", "a.png", "near", started=1000.0, now=1000.0 + 3601).state == "uncertain"


CLAIMER = textwrap.dedent(
    """
    import sys, threading
    from rmbg.money.ledger.manifests import ManifestBook, Row
    from rmbg.money.ledger.sql import SqlLedger
    spec, name, outputs, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    book = SqlLedger.open(spec).book(ManifestBook)
    go = threading.Barrier(threads)
    made = []
    def run(t):
        go.wait()
        for k in range(outputs):
            if book.claim("F", f"{k}.png", f"{name}-{t}", started=0.0).state == "ours":
                made.append(k)
                book.record("F", f"{name}-{t}", Row(f"{k}", f"{k}.png", "p", 0.0, 0, "", "done", ""))
    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    [w.start() for w in workers]
    [w.join() for w in workers]
    print(" ".join(map(str, made)))
    """
)


def test_runs_racing_for_one_folder_make_each_output_once(spec):  # noqa: F811
    """Three processes of four runs each claim the same 60 outputs at once: each is made by exactly one run."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, spec, f"p{p}", "60", "4"], env=env, stdout=subprocess.PIPE)
        for p in range(3)
    ]
    made = [int(k) for proc in procs for k in proc.communicate(timeout=300)[0].split()]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert sorted(made) == list(range(60))
    book = SqlLedger.open(spec).book(ManifestBook)
    assert len(book.current("F")) == 60 and book.claims("F") == []
