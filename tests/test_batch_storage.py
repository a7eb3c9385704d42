"""`rmbg remove` as real processes on one output folder, with the manifest in
the storage (rmbg.cli.manifest; RMBG_LEDGER, SQLite and PostgreSQL), against
a fake paid vendor that counts what it gets (tests.fakes.runware):

- two batches started at once on the same folder make every output once: the
  vendor sees one paid call per image, not two;
- a batch killed with kill -9 resumes: the next run makes what is missing,
  holds back the images whose paid request was in flight (they may have been
  billed: the dead run's claims say so, where manifest.csv has no row), and
  `--retry-uncertain` sends those, and only those, again.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from rmbg.cli.manifest import FOLDER_ID, folder_id
from rmbg.money.ledger.manifests import MAY_HAVE_BEEN_BILLED, ManifestBook
from rmbg.money.ledger.sql import SqlLedger
from tests.fakes.runware import TEST_KEY, RunwareFake
from tests.support.ledgers import postgres, spec  # noqa: F401  (fixtures: both databases)

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 12


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(IMAGES):
        out = io.BytesIO()
        Image.new("RGB", (40, 30), (20 * i, 90, 160)).save(out, "PNG")
        (folder / f"p{i:02d}.png").write_bytes(out.getvalue())
    return folder


def paid_calls(fake: RunwareFake) -> int:
    return sum(
        sum(1 for task in call.json() if task.get("taskType") == "removeBackground")
        for call in list(fake.calls)
        if call.method == "POST" and call.path == "/v1"
    )


def batch(photos: Path, out: Path, spec: str, fake: RunwareFake, *extra: str, **popen) -> subprocess.Popen:  # noqa: F811
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RMBG_LEDGER": spec,
        "RMBG_RUNWARE_URL": fake.url,
        "RUNWARE_API_KEY": TEST_KEY,
    }
    command = [sys.executable, "-m", "rmbg", "remove", str(photos), "-o", str(out), "-p", "runware-rembg"]
    command += ["--max-cost", "1", "--jobs", "2", *extra]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def rows(out: Path) -> list[dict]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_two_batches_on_one_output_folder_make_each_output_once(photos, tmp_path, spec):  # noqa: F811
    out = tmp_path / "out"
    with RunwareFake() as fake:
        # each call takes a while: the two runs overlap (one run alone takes about 4 s, so the second
        # process may start that much later on a busy machine and still make some of the outputs)
        fake.inject("slow", delay=0.6, times=1000)
        runs = [batch(photos, out, spec, fake) for _ in range(2)]
        answers = [run.communicate(timeout=300) for run in runs]
        calls = paid_calls(fake)
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in answers]
    assert calls == IMAGES  # not 2 x 12: no image was sent by both
    assert sorted(p.name for p in out.glob("*.png")) == [f"p{i:02d}.png" for i in range(IMAGES)]
    done = [r for r in rows(out) if r["status"] == "done"]
    assert sorted(r["output"] for r in done) == [f"p{i:02d}.png" for i in range(IMAGES)]
    assert any("made by another run" in stdout for stdout, _ in answers)
    book = SqlLedger.open(spec).book(ManifestBook)
    folder = folder_id(out, create=False)
    assert folder and (out / FOLDER_ID).is_file()
    current = book.current(folder)
    assert len(current) == IMAGES and {row.status for _, row in current.values()} == {"done"}
    assert len({run for run, _ in current.values()}) == 2 and book.claims(folder) == []


def test_a_batch_killed_with_kill_9_resumes_without_sending_an_uncertain_image_twice(photos, tmp_path, spec):  # noqa: F811
    out = tmp_path / "out"
    with RunwareFake() as fake:
        fake.inject("slow", delay=0.1, times=5)  # five calls answer (the first alone, then two at a time) ...
        fake.inject("slow", delay=120, times=100)  # ... the next two hang until the batch is killed
        killed = batch(photos, out, spec, fake)
        deadline = time.monotonic() + 120
        while len(list(out.glob("*.png"))) < 5 or paid_calls(fake) < 7:
            assert killed.poll() is None and time.monotonic() < deadline, killed.communicate()
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=30)
        made_before = {p.name for p in out.glob("*.png")}
        sent = paid_calls(fake)
        assert (len(made_before), sent) == (5, 7)  # two requests sent, no output: their fate is unknown
        fake.reset()  # the hanging replies are let go; the fake counts afresh

        resumed = batch(photos, out, spec, fake)
        stdout, stderr = resumed.communicate(timeout=300)
        held_back = {r["output"] for r in rows(out) if r["cost_source"] == MAY_HAVE_BEEN_BILLED}
        assert resumed.returncode == 1, stderr  # the held-back images are failures until retried
        assert len(held_back) == 2 and not held_back & made_before and "may have been billed" in stdout
        assert paid_calls(fake) == IMAGES - 5 - 2  # the rest, and neither uncertain image sent again

        retried = batch(photos, out, spec, fake, "--retry-uncertain")
        stdout, stderr = retried.communicate(timeout=300)
        assert retried.returncode == 0, stderr
        assert paid_calls(fake) == IMAGES - 5  # the two uncertain ones, once more
    assert len(list(out.glob("*.png"))) == IMAGES
    book = SqlLedger.open(spec).book(ManifestBook)
    folder = folder_id(out, create=False)
    assert folder and book.claims(folder) == [] and book.uncertain(folder) == set()
    assert {row.status for _, row in book.current(folder).values()} == {"done"}
