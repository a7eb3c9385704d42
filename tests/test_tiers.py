"""The test tiers (tests/support/tiers.py): what a test uses is read from its code, its
fixtures and the helpers they call; a test needing a package this machine lacks is
skipped saying how to install it, and so is one that fails on importing it
(tests/support/skips.py); a fast-only run fails a test that imports a tier's package
or starts a PostgreSQL server (the `db` tier).

The sample tests below are only read, never run. They sit in a dict: a test that named
one would be read as using what the sample uses (these tests themselves are fast)."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest

from rmbg.webapp import AppConfig
from tests.hfcache import HFCache
from tests.ledger_servers import PostgresServer
from tests.support import ledgers, skips, tiers
from tests.support.app import serve
from tests.support.models import lite_weights
from tests.u2netp_fixture import u2netp_path

SAMPLES = {}


def sample(fn):
    SAMPLES[fn.__name__] = fn
    return fn


def _open_the_page():
    with serve(AppConfig()):
        pass


@sample
def through_a_helper():
    _open_the_page()


@sample
def plain():
    return AppConfig().cap_usd


@sample
def runs_u2netp(u2netp_path):
    pass


@sample
def makes_weights():
    return lite_weights()


@sample
def lays_out_a_file():
    HFCache(None).add("repo", "rev", "file", b"")


@sample
def lays_out_torch_weights():
    HFCache(None).add_state("repo", "rev", "file", {})  # safetensors.torch


@sample
def writes_a_clip(tmp_path):
    from tests.video_clips import write_clip  # PyAV, at that module's top

    write_clip(tmp_path / "a.mp4", frames=2)


@sample
def on_ray():
    pytest.importorskip("ray")


@sample
def on_a_database(spec):
    pass


@sample
def on_the_server(postgres):
    pass


SAMPLES["the u2netp_path fixture"] = u2netp_path.__wrapped__  # declared with @uses("onnxruntime")
SAMPLES["the spec fixture"] = ledgers.spec.__wrapped__
SAMPLES["the postgres fixture"] = ledgers.postgres.__wrapped__  # reaches PostgresServer, declared uses("postgresql")


class Item:
    """The parts of a collected test that the tiers read and write."""

    def __init__(self, name, fixtures=(), marks=()):
        self.module, self.obj = sys.modules[__name__], SAMPLES[name]
        defs = {name: [SimpleNamespace(func=SAMPLES[name])] for name in fixtures}
        self._fixtureinfo = SimpleNamespace(name2fixturedefs=defs)
        self.marks = list(marks)
        self.stash, self.config = pytest.Stash(), SimpleNamespace(stash=pytest.Stash())

    def iter_markers(self, name=None):
        return [mark for mark in self.marks if name in (None, mark.name)]

    def get_closest_marker(self, name):
        return next(iter(self.iter_markers(name)), None)

    def add_marker(self, marker):
        self.marks.append(getattr(pytest.mark, marker).mark if isinstance(marker, str) else marker.mark)


def tiers_of(name, **kwargs) -> set[str]:
    return {tiers.TIERS[p] for p in tiers.used_by(Item(name, **kwargs)) if p in tiers.TIERS}


def test_a_helper_that_launches_the_app_puts_its_callers_in_the_app_tier():
    assert tiers_of("through_a_helper") == {"app"}
    assert tiers_of("plain") == set()  # rmbg.webapp's own imports are light


def test_a_fixture_declared_with_uses_puts_every_test_that_reaches_it_in_its_tier():
    assert tiers_of("runs_u2netp", fixtures=["the u2netp_path fixture"]) == {"model"}


def test_imports_inside_helpers_count_and_safetensors_torch_is_torch():
    assert tiers_of("makes_weights") == {"model"}
    assert "torch" in tiers.used_by(Item("makes_weights"))


def test_a_helper_class_counts_by_the_methods_called_on_it():
    assert "torch" not in tiers.used_by(Item("lays_out_a_file"))
    assert "torch" in tiers.used_by(Item("lays_out_torch_weights"))


def test_a_test_that_writes_or_reads_a_clip_is_the_video_tier_not_fast():
    assert tiers_of("writes_a_clip") == {"video"}


def test_importorskip_and_the_uses_mark_count():
    assert tiers_of("on_ray") == {"ray"}
    assert tiers_of("plain", marks=[pytest.mark.uses("onnxruntime").mark]) == {"model"}


def test_a_fast_only_run_leaves_out_the_files_whose_own_import_puts_every_test_in_a_tier(tmp_path, monkeypatch):
    fast, whole = (SimpleNamespace(getoption=lambda name, default=None, e=e: e) for e in (" fast ", ""))
    for name, left_out in (
        ("test_openvino", True),
        ("test_ray", True),
        ("test_fuzz", True),
        ("test_mcp", True),  # a bare pytest.importorskip("mcp") at its top
        ("test_video_side_by_side", True),  # its clips are written through PyAV: the video tier
        ("test_png", False),
        ("test_ledger", False),
    ):
        path = tiers.ROOT / "tests" / f"{name}.py"
        left = tiers.left_out_of_a_fast_run
        assert (left(path, fast), left(path, whole)) == (left_out, False)
    assert not tiers.left_out_of_a_fast_run(tiers.ROOT / "tests" / "support" / "local_ray.py", fast)  # not a test file
    # A fast test in such a file (here: one read as importing Ray) stops the collection: -m fast would never run it.
    item = Item("plain")
    item.path, item.nodeid = tiers.ROOT / "tests" / "test_ray.py", "tests/test_ray.py::plain"
    with pytest.raises(pytest.UsageError, match="test_ray.py::plain is fast, yet `-m fast` leaves its file out"):
        tiers.classify([item])


def test_a_test_needing_a_package_that_is_not_installed_is_skipped_saying_how_to_get_it(monkeypatch):
    monkeypatch.setattr(tiers, "installed", lambda package: package != "torch")
    needing, fast = Item("makes_weights"), Item("plain")
    tiers.classify([needing, fast])
    assert [m.name for m in needing.marks] == ["model", "skip"]
    reason = needing.marks[1].kwargs["reason"]
    assert reason == 'needs torch (the torch extra: pip install "rmbg[torch]"): not installed here'
    assert [m.name for m in fast.marks] == ["fast"]


def test_a_ray_test_and_a_slow_one_are_long_checks_the_suites_command_leaves_out():
    on_ray, slow, model = Item("on_ray"), Item("plain", marks=[pytest.mark.slow.mark]), Item("makes_weights")
    tiers.classify([on_ray, slow, model])
    assert [m.name for m in on_ray.marks] == ["ray", "long"]
    assert [m.name for m in slow.marks] == ["slow", "slow", "long"]  # its own mark, then the tier's
    assert [m.name for m in model.marks] == ["model"]
    pyproject = (tiers.ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'addopts = """-ra -n auto --dist loadfile -m "not long"' in pyproject  # `python -m pytest`: no long one


def test_a_fast_only_run_fails_a_test_that_imports_a_tiers_package(monkeypatch):
    monkeypatch.setattr(tiers, "_GUARDED", ["rmbg_heavy_stand_in"])
    monkeypatch.delitem(sys.modules, "rmbg_heavy_stand_in", raising=False)
    item = Item("plain", marks=[pytest.mark.fast.mark])
    tiers.guard_fast_only(SimpleNamespace(items=[item], config=item.config))
    tiers.before_setup(item)
    tiers.after_call(item)  # nothing imported: passes
    monkeypatch.setitem(sys.modules, "rmbg_heavy_stand_in", None)  # blocked, as a "without the extra" test does
    tiers.after_call(item)  # a blocked import is no import: passes
    monkeypatch.setitem(sys.modules, "rmbg_heavy_stand_in", types.ModuleType("rmbg_heavy_stand_in"))
    with pytest.raises(pytest.fail.Exception, match=r"imported rmbg_heavy_stand_in: give it .*uses\('rmbg_heavy"):
        tiers.after_call(item)
    monkeypatch.undo()  # before this very run's own check of this test (a fast-only run checks it too)


def test_a_postgresql_server_is_the_db_tier_and_specs_sqlite_case_stays_fast():
    assert tiers_of("on_the_server", fixtures=["the postgres fixture"]) == {"db"}
    tiers_by_backend = {}
    for backend in ledgers.BACKENDS:  # as pytest parametrizes `spec`: each case carries its parameter's marks
        value, marks = (backend, []) if isinstance(backend, str) else (backend.values[0], backend.marks)
        item = Item("on_a_database", fixtures=["the spec fixture"], marks=[getattr(m, "mark", m) for m in marks])
        tiers.classify([item])
        tiers_by_backend[value] = [m.name for m in item.marks if m.name != "uses"]
    assert tiers_by_backend == {"sqlite": ["fast"], "postgresql": ["db"]}


def test_a_fast_only_run_fails_a_test_that_starts_a_postgresql_server(monkeypatch):
    monkeypatch.setattr(tiers, "_STARTED", set())
    item = Item("plain", marks=[pytest.mark.fast.mark])
    tiers.guard_fast_only(SimpleNamespace(items=[item], config=item.config))
    tiers.before_setup(item)
    tiers.after_call(item)  # nothing started: passes
    tiers.started("postgresql")
    with pytest.raises(pytest.fail.Exception, match=r"but started postgresql: give it .*uses\('postgresql'\)"):
        tiers.after_call(item)
    monkeypatch.undo()  # before this very run's own check of this test (a fast-only run checks it too)


def test_a_postgresql_server_says_it_started_before_it_runs_anything(monkeypatch, tmp_path):
    """PostgresServer.start tells the guard above (this test reads PostgresServer: it is in the db tier)."""
    monkeypatch.setattr(tiers, "_STARTED", set())
    server = PostgresServer.__new__(PostgresServer)  # its folders in tmp_path, where no initdb is
    server.bin, server.root, server.data, server.port, server.as_user = tmp_path, tmp_path, tmp_path / "data", 1, []
    with pytest.raises(FileNotFoundError, match="initdb"):
        server.start()
    assert tiers._STARTED == {"postgresql"}


def test_a_failure_on_importing_an_optional_package_this_machine_lacks_is_a_skip(monkeypatch):
    monkeypatch.setattr(skips, "installed", lambda package: package != "torch")

    def report_of(exc):
        report = SimpleNamespace(failed=True, outcome="failed", longrepr="trace", location=("tests/test_x.py", 9, "t"))
        skips.missing_as_skip(report, SimpleNamespace(excinfo=SimpleNamespace(value=exc)))
        return report.outcome, report.longrepr

    why = 'Skipped: needs torch (the torch extra: pip install "rmbg[torch]"): not installed here'
    assert report_of(ModuleNotFoundError("No module named 'torch.nn'", name="torch.nn")) == (
        "skipped",
        ("tests/test_x.py", 10, why),
    )
    assert report_of(ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime")) == ("failed", "trace")
    assert report_of(ModuleNotFoundError("No module named 'torchy'", name="torchy")) == ("failed", "trace")
    assert report_of(AssertionError("No module named 'torch'")) == ("failed", "trace")


def test_the_workers_get_the_heaviest_files_first_whatever_their_number_of_tests(pytestconfig):
    """heavy_files_first's order, then xdist's --dist loadfile as this suite configures it (order_files):
    the file with one slow test is handed out before the files of fast ones (xdist's own default would
    hand out the one with three first), and of those the one with more tests first."""
    from xdist.scheduler import LoadFileScheduling

    slow, fast = pytest.mark.slow.mark, pytest.mark.fast.mark
    many = [f"tests/test_many.py::t{n}" for n in range(3)]
    few = [f"tests/test_few.py::t{n}" for n in range(2)]  # as fast: after the file with more tests
    items = [
        SimpleNamespace(nodeid=nodeid, marks=[mark])
        for nodeid, mark in [*((n, fast) for n in few + many), ("tests/test_long.py::t", slow)]
    ]
    for item in items:
        item.path, item.iter_markers = item.nodeid.split("::")[0], lambda name=None, item=item: item.marks
    tiers.heavy_files_first(items)
    assert [item.nodeid for item in items] == ["tests/test_long.py::t", *many, *few]

    class Worker:  # what the scheduler calls on a worker: the tests it is sent, by their index in the collection
        shutting_down, sent = False, []

        def send_runtest_some(self, indices):
            self.sent.append(list(indices))

        def shutdown(self):
            self.shutting_down = True

    registered = []
    config = SimpleNamespace(
        option=SimpleNamespace(loadscopereorder=True),  # xdist's default: by number of tests
        getvalue=lambda name: ["popen"],
        pluginmanager=SimpleNamespace(register=lambda plugin, name: registered.append(name)),
    )
    tiers.order_files(config)
    assert registered == ["rmbg-files-in-order"] and pytestconfig.pluginmanager.has_plugin("rmbg-files-in-order")
    assert config.option.loadscopereorder is False is pytestconfig.option.loadscopereorder  # as this run has it
    scheduler, worker = LoadFileScheduling(config), Worker()
    scheduler.add_node(worker)
    scheduler.add_node_collection(worker, [item.nodeid for item in items])
    scheduler.schedule()
    for sent in worker.sent:  # each test run in turn; the scheduler sends the next file as the worker runs low
        for index in sent:
            scheduler.mark_test_complete(worker, index)
    assert worker.sent == [[0], [1, 2, 3], [4, 5]]  # the long file first, then the others in turn
