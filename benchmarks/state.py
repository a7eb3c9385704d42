"""What the state beside the money costs on the storage (RMBG_LEDGER), on
SQLite and on PostgreSQL: the Benchmark tab's votes and the batch manifests.

    python benchmarks/state.py [--visitors 320] [--outputs 400] [--postgres-url postgresql://user@host:port/db]

For each store:
- votes: --visitors visitors each send two votes on their one pair at the same
  moment (threads of one process, through rmbg.webapp.benchmark.arena.Arena as the app
  runs it): the wall time, the requests that failed (anything but a vote or
  'already voted'), and the votes counted (one per visitor);
- the ranking of 1,000 stored votes (500 bootstrap resamples): what each
  vote would cost if it were computed per vote rather than once per change;
- manifests: one output's claim and row (rmbg.money.ledger.manifests: two
  transactions per image of a batch; median and p95 over --outputs outputs,
  one thread), and outputs per second when 4 processes race for the same
  --outputs outputs of one folder (each made once; start-up included).

SQLite is a fresh file in a temporary folder (WAL, synchronous=FULL);
PostgreSQL is the server named by --postgres-url (this benchmark's rows are
removed first). Writes benchmarks/results/state.json (benchmarks/harness.py).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from PIL import Image

from harness import table, write_results
from rmbg.eval.votes import Vote, VoteStore, ranking
from rmbg.money.ledger.manifests import ManifestBook, Row
from rmbg.money.ledger.sql import SqlLedger
from rmbg.webapp.benchmark.arena import Arena, CutoutSet

CLAIMER = """
import sys
from rmbg.money.ledger.manifests import ManifestBook, Row
from rmbg.money.ledger.sql import SqlLedger
book = SqlLedger.open(sys.argv[1]).book(ManifestBook)
folder, run = sys.argv[2], sys.argv[3]
for k in range(int(sys.argv[4])):
    if book.claim(folder, f"{k}.png", run, started=0.0).state == "ours":
        book.record(folder, run, Row(str(k), f"{k}.png", "p", 0.0, 0, "", "done", ""))
"""


def concurrent_votes(spec: str, visitors: int) -> tuple[float, int, int]:
    """(wall seconds, failed requests, votes counted) for 2 x `visitors` requests at once."""
    arena = Arena(VoteStore(spec), seed=0)
    cut = Image.new("RGBA", (4, 4))
    tickets = []
    prefix = uuid.uuid4().hex[:8]
    for k in range(visitors):
        arena.keep(f"{prefix}-{k}", CutoutSet({"img": {"a": cut, "b": cut}}))
        tickets += [(f"{prefix}-{k}", arena.pair(f"{prefix}-{k}", "white")[2]) for _ in range(2)]
    failed, counted = [], []
    go = threading.Barrier(len(tickets))

    def vote(visitor: str, ticket: str) -> None:
        go.wait()
        try:
            arena.vote(visitor, ticket, "left")
            counted.append(visitor)
        except Exception as exc:
            if "already voted" not in str(exc):
                failed.append(exc)

    threads = [threading.Thread(target=vote, args=pair) for pair in tickets]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, len(failed), len(counted)


def ranking_seconds() -> float:
    votes = [Vote(f"v{k % 200}", f"i{k}", "abcde"[k % 5], "abcde"[(k + 1) % 5], "abcde"[k % 5]) for k in range(1000)]
    start = time.perf_counter()
    ranking(votes)
    return time.perf_counter() - start


def claim_ms(book: ManifestBook, outputs: int) -> tuple[float, float]:
    folder, run, seconds = uuid.uuid4().hex, uuid.uuid4().hex, []
    for k in range(outputs):
        start = time.perf_counter()
        book.claim(folder, f"{k}.png", run, started=0.0)
        book.record(folder, run, Row(str(k), f"{k}.png", "p", 0.0, 0, "", "done", ""))
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    return statistics.median(seconds) * 1000, seconds[int(len(seconds) * 0.95)] * 1000


def racing_per_second(spec: str, outputs: int, processes: int = 4) -> tuple[float, int]:
    folder = uuid.uuid4().hex
    start = time.perf_counter()
    workers = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, spec, folder, uuid.uuid4().hex, str(outputs)])
        for _ in range(processes)
    ]
    if any(w.wait() for w in workers):
        raise SystemExit("a worker process failed")
    seconds = time.perf_counter() - start
    made = len(SqlLedger.open(spec).book(ManifestBook).current(folder))
    return outputs / seconds, made


def measure(name: str, spec: str, visitors: int, outputs: int) -> tuple[list, list]:
    wall, failed, counted = concurrent_votes(spec, visitors)
    book = SqlLedger.open(spec).book(ManifestBook)
    claim_ms(book, 20)  # warm-up
    median, p95 = claim_ms(book, outputs)
    rate, made = racing_per_second(spec, outputs)
    votes = [name, 2 * visitors, round(wall, 2), failed, counted]
    manifests = [name, round(median, 2), round(p95, 2), round(rate), f"{made} of {outputs}"]
    return votes, manifests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=320)
    parser.add_argument("--outputs", type=int, default=400)
    parser.add_argument("--postgres-url", default="", help="a PostgreSQL database to measure as well")
    args = parser.parse_args()
    stores = [("SQLite (WAL, synchronous=FULL)", str(Path(tempfile.mkdtemp()) / "ledger.sqlite3"))]
    if args.postgres_url:
        stores.append(("PostgreSQL (same machine, TCP)", args.postgres_url))
    measured = [measure(name, spec, args.visitors, args.outputs) for name, spec in stores]
    rank_s = ranking_seconds()
    votes = table(
        "Concurrent votes (one process, one thread per request)",
        ["store", "requests at once", "wall s", "failed", "votes counted"],
        [row for row, _ in measured],
        f"Each visitor sends two votes on its one pair at once: one counts, the other is refused as 'already "
        f"voted'. A ranking of 1,000 votes (500 bootstrap resamples) takes {rank_s:.2f} s here; it is computed "
        "once per change of the votes, and concurrent callers share that computation.",
    )
    manifests = table(
        "Batch manifests: an output's claim and row",
        ["store", "ms per output (median)", "p95 ms", "outputs/s, 4 processes racing", "made"],
        [row for _, row in measured],
        "Each output of a batch is claimed before it starts and its row replaces the claim when it ends: two "
        "transactions. The racing processes claim the same outputs of one folder; each is made once. Their "
        "figure includes their start-up, so it is a lower bound.",
    )
    path = write_results("state", None, [votes, manifests])
    print(path.read_text())


if __name__ == "__main__":
    main()
