"""The model pool (rmbg.providers.local.pool): each key loaded once however many
threads ask, loads of other keys not held up, what is held listed and cleared,
and forwards on the device one at a time whoever calls them, with no lock
taken by the caller."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path

import pytest

import rmbg
from rmbg.providers.local.pool import POOL, ModelPool
from rmbg.types import Matte
from tests.support.models import photo

WAIT = 60  # seconds before a test that would otherwise hang fails instead


def run_threads(*targets) -> list:
    """Run each target in its own thread, all started at once; their results, or what they raised."""
    out: list = [None] * len(targets)
    start = threading.Barrier(len(targets))

    def work(i: int) -> None:
        start.wait()
        try:
            out[i] = targets[i]()
        except BaseException as exc:  # handed to the test, not lost in the thread
            out[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_two_threads_asking_for_one_key_load_it_once_and_share_it():
    pool, key = ModelPool(), ("test", "model.bin")
    loads: list[str] = []

    def load() -> object:
        loads.append(threading.current_thread().name)
        # The load ends only once the other thread is in get() for the same key, waiting for it.
        assert pool.wait_for(lambda p: p.loading().get(key) == 2, WAIT)
        return object()

    first, second = run_threads(lambda: pool.get(key, load), lambda: pool.get(key, load))
    assert len(loads) == 1
    assert not isinstance(first, BaseException)
    assert first is second
    assert pool.loading() == {}
    assert [held.key for held in pool.held()] == [key]


def test_two_threads_asking_for_one_onnx_session_create_it_once(u2netp_path, monkeypatch):
    """The real backend: two providers of U2-Net-p, each in its own thread, ask for
    the same session at once; ONNX Runtime is asked to make it once."""
    import onnxruntime

    from rmbg.providers.local import onnx_backend

    onnx_backend.clear_sessions()
    made: list[str] = []
    make = onnxruntime.InferenceSession

    def both_asking(pool: ModelPool) -> bool:
        return any(key[0] == "onnxruntime" and n == 2 for key, n in pool.loading().items())

    def recording(path, *args, **kwargs):
        made.append(path)
        assert POOL.wait_for(both_asking, WAIT)  # the other thread asks meanwhile
        return make(path, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", recording)
    first, second = [rmbg.get_provider("u2netp", device="cpu", threads=1, engine="onnxruntime") for _ in range(2)]
    sessions = run_threads(first.session, second.session)
    assert made == [str(u2netp_path)]
    assert isinstance(sessions[0], make) and sessions[0] is sessions[1]
    assert onnx_backend.loaded_sessions() == [(str(u2netp_path), ("CPUExecutionProvider",), 1)]


def test_a_load_does_not_hold_up_the_load_of_another_key():
    pool = ModelPool()
    other_loaded = threading.Event()

    def slow() -> str:
        assert other_loaded.wait(WAIT)  # returns once the other key was loaded meanwhile
        return "slow"

    slow_thread = threading.Thread(target=lambda: pool.get(("test", "slow"), slow))
    slow_thread.start()
    assert pool.wait_for(lambda p: ("test", "slow") in p.loading(), WAIT)
    assert pool.get(("test", "quick"), lambda: "quick") == "quick"
    other_loaded.set()
    slow_thread.join()
    assert [(held.key, pool.get(held.key, lambda: "again")) for held in pool.held()] == [
        (("test", "quick"), "quick"),
        (("test", "slow"), "slow"),
    ]


def test_a_failed_load_keeps_nothing_and_the_next_caller_loads_again():
    pool, key = ModelPool(), ("test", "broken")
    calls: list[int] = []

    def broken() -> object:
        calls.append(1)
        raise OSError("unreadable")

    with pytest.raises(OSError, match="unreadable"):
        pool.get(key, broken)
    assert pool.held() == [] and pool.loading() == {}
    assert pool.get(key, lambda: "fixed") == "fixed"
    assert calls == [1]


def test_held_lists_sources_and_sizes_and_clear_takes_a_backend_a_prefix_or_a_predicate():
    pool = ModelPool()
    pool.get(("torch", "a", "cpu"), lambda: b"1234", source="/w/a.safetensors", size=len)
    pool.get(("torch", "b", "cpu"), lambda: b"12", source="/w/b.safetensors", size=len)
    pool.get(("onnxruntime", "/w/c.onnx"), lambda: b"1", source="/w/c.onnx", size=lambda _: 1 / 0)
    held = pool.held()
    assert [(h.backend, h.source, h.nbytes) for h in held] == [
        ("torch", "/w/a.safetensors", 4),
        ("torch", "/w/b.safetensors", 2),
        ("onnxruntime", "/w/c.onnx", 0),  # a size that cannot be told is 0, never a failed load
    ]
    assert all(h.seconds >= 0 for h in held)
    assert pool.clear(("torch", "b")) == [held[1]]
    assert pool.clear(lambda h: h.source.endswith(".onnx")) == [held[2]]
    assert pool.clear("torch") == [held[0]]
    assert pool.held() == [] and pool.clear() == []


def test_the_pool_holds_real_models_with_their_sizes_and_clearing_frees_them(u2netp_path, tmp_path):
    import torch

    provider = recording_torch_provider(tmp_path, Spans())
    session = rmbg.get_provider("u2netp", device="cpu", threads=1, engine="onnxruntime").session()
    net = weakref.ref(provider.network())
    mine = {h.source: h for h in POOL.held() if h.source in (str(u2netp_path), str(tmp_path / "net.safetensors"))}
    weights = sum(t.numel() * 4 for t in recorder(Spans()).state_dict().values())
    assert {source: (h.backend, h.nbytes) for source, h in mine.items()} == {
        str(u2netp_path): ("onnxruntime", u2netp_path.stat().st_size),
        str(tmp_path / "net.safetensors"): ("torch", weights),
    }
    assert session is rmbg.get_provider("u2netp", device="cpu", threads=1, engine="onnxruntime").session()
    assert isinstance(net(), torch.nn.Module)
    removed = POOL.clear(lambda h: h.source == str(tmp_path / "net.safetensors"))
    assert removed == [mine[str(tmp_path / "net.safetensors")]]
    gc.collect()
    assert net() is None  # nothing else held the network: its memory is gone
    assert mine[str(u2netp_path)] in POOL.held()  # what was not named stays


class Spans:
    """(start, end) of every forward, recorded inside it. A forward starts only once every
    caller expected has said it is calling (`calling()`, just before its matte): whichever
    forward runs first, the others are at its door the whole time, so the device lock alone
    keeps them out (one forward a thread is a real chance to overlap, every time)."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.spans: list[tuple[float, float, str]] = []
        self.callers = self.expected = 0

    def expect(self, callers: int) -> None:
        with self.lock:
            self.spans, self.callers, self.expected = [], 0, callers

    def calling(self) -> None:
        with self.lock:
            self.callers += 1
            self.lock.notify_all()

    @contextmanager
    def span(self, name: str):
        with self.lock:
            assert self.lock.wait_for(lambda: self.callers >= self.expected, WAIT)
        start = time.perf_counter()
        yield
        end = time.perf_counter()
        with self.lock:
            self.spans.append((start, end, name))

    def overlaps(self) -> list[tuple]:
        spans = sorted(self.spans)
        return [(a, b) for a, b in zip(spans, spans[1:]) if b[0] < a[1]]


def recorder(spans: Spans):
    """A small convolutional network whose forward records its span."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.convs = torch.nn.ModuleList(torch.nn.Conv2d(c, 16, 3, padding=1) for c in (3, 16, 16, 16))
            self.head = torch.nn.Conv2d(16, 1, 1)

        def forward(self, x):
            with spans.span("torch"):
                for conv in self.convs:
                    x = torch.relu(conv(x))
                return torch.sigmoid(self.head(x))

    return Net()


def recording_torch_provider(folder: Path, spans: Spans):
    import dataclasses

    import torch
    from safetensors.torch import save_file

    from rmbg.models.specs import U2NETP
    from rmbg.providers.local.torch_backend import LocalProvider

    torch.manual_seed(0)
    path = folder / "net.safetensors"
    save_file(recorder(spans).state_dict(), str(path))
    spec = dataclasses.replace(U2NETP, id="recorder", output_path=(), input_size=(256, 256))
    return LocalProvider(spec, lambda: recorder(spans), weights=path, device="cpu", precision="fp32")


class RecordingSession:
    """An ONNX Runtime session whose run() records its span."""

    def __init__(self, session, spans: Spans):
        self._session, self._spans = session, spans

    def __getattr__(self, name: str):
        return getattr(self._session, name)

    def run(self, *args, **kwargs):
        with self._spans.span("onnxruntime"):
            return self._session.run(*args, **kwargs)


def recording_onnx_provider(spans: Spans):
    provider = rmbg.get_provider("u2netp", device="cpu", threads=1, engine="onnxruntime")
    session = provider.session
    provider.session = lambda: RecordingSession(session(), spans)  # the provider's own forward runs it
    return provider


class RecordingModel:
    """OpenVINO's compiled model, whose infer requests record their spans."""

    def __init__(self, model, spans: Spans):
        self._model, self._spans = model, spans

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def create_infer_request(self):
        return RecordingRequest(self._model.create_infer_request(), self._spans)


class RecordingRequest:
    """An OpenVINO infer request whose infer() records its span."""

    def __init__(self, request, spans: Spans):
        self._request, self._spans = request, spans

    def __getattr__(self, name: str):
        return getattr(self._request, name)

    def infer(self, *args, **kwargs):
        with self._spans.span("openvino"):
            return self._request.infer(*args, **kwargs)


def recording_openvino_provider(u2netp_path: Path, spans: Spans, monkeypatch):
    from rmbg.providers.local.openvino_backend import compiled_model

    POOL.clear(lambda h: h.backend == "openvino" and h.source == str(u2netp_path))  # no idle requests left
    compiled = compiled_model("u2netp", "fp32", u2netp_path, [], 1)  # the one the provider runs
    monkeypatch.setattr(compiled, "model", RecordingModel(compiled.model, spans))
    return rmbg.get_provider("u2netp", device="cpu", threads=1, engine="openvino")


@pytest.fixture(scope="module")
def made(u2netp_path, tmp_path_factory):
    """Each backend's provider, built once for the module, making one Spans record of every forward they run."""
    import importlib.util

    spans = Spans()
    with pytest.MonkeyPatch.context() as monkeypatch:
        made = {
            "torch": recording_torch_provider(tmp_path_factory.mktemp("recorder"), spans),
            "onnxruntime": recording_onnx_provider(spans),
        }
        if importlib.util.find_spec("openvino") is not None:  # the optional extra
            made["openvino"] = recording_openvino_provider(u2netp_path, spans, monkeypatch)
        yield spans, made


def one_forward_each(spans: Spans, *chosen) -> list:
    """One matte from each provider chosen, each in its own thread, all called at once."""
    spans.expect(len(chosen))
    image = photo().resize((240, 160))

    def call(provider):
        spans.calling()
        return provider.matte(image)

    return run_threads(*[lambda p=p: call(p) for p in chosen])


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_forwards_from_two_threads_through_one_provider_never_overlap(made, backend):
    spans, providers = made
    if backend not in providers:
        pytest.skip(f"{backend} is not installed")
    results = one_forward_each(spans, providers[backend], providers[backend])
    assert [type(r) for r in results] == [Matte, Matte]  # no thread raised
    assert len(spans.spans) == 2 and {name for *_, name in spans.spans} == {backend}
    assert spans.overlaps() == []


def test_forwards_of_every_backend_at_once_never_overlap(made):
    spans, providers = made
    results = one_forward_each(spans, *providers.values())
    assert [type(r) for r in results] == [Matte] * len(providers)  # no thread raised
    assert sorted(name for *_, name in spans.spans) == sorted(providers)
    assert spans.overlaps() == []


def test_every_instance_of_the_u2netp_fixture_names_one_file(tmp_path_factory):
    """pytest makes one instance of the session's u2netp_path for conftest and one more for each test file that
    imports it; each sets RMBG_U2NETP_PATH. They must all name the same file, or a test holding one instance's
    path sees another's model in the pool (CI: the pool's tests found .../u2netp4/ where .../u2netp0/ was asked)."""
    import os

    import tests.u2netp_fixture as fixtures

    before = os.environ.get("RMBG_U2NETP_PATH")
    first, second = (fixtures.u2netp_path.__wrapped__(tmp_path_factory) for _ in range(2))
    one, other = next(first), next(second)
    assert one == other and os.environ["RMBG_U2NETP_PATH"] == str(one) and one.is_file()
    second.close()  # torn down as pytest does, the last made first
    first.close()
    assert os.environ.get("RMBG_U2NETP_PATH") == before
