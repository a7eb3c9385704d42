"""A Benchmark run stops calling paid providers when its caller goes away (a client that
cancels) and at its deadline (RMBG_BENCH_MAX_SECONDS), measured against a counting fake
fal through the launched app: nothing paid is sent after either."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from rmbg.webapp.benchmark import scoring as benchmark
from rmbg.webapp.benchmark.scoring import RunStop
from rmbg.webapp.catalog import SLOTS
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal import FalFake
from tests.fakes.runware import RunwareFake
from tests.support.app import app_config, serve, submits
from tests.support.benchmark import png_bytes


def test_the_run_flag_says_why_it_stopped():
    now = [0.0]
    flag = RunStop(10, clock=lambda: now[0])
    assert not flag.is_set() and flag.reason == ""
    now[0] = 10.5
    assert flag.is_set() and flag.reason == "deadline"
    pressed = RunStop(10, clock=lambda: 0.0)
    pressed.set()
    assert pressed.is_set() and pressed.reason == "stop"


class GatedFal(FalFake):
    """fal whose submits wait at a gate the test opens; `arrived` is set at the first one."""

    def __init__(self):
        super().__init__()
        self.arrived, self.gate = threading.Event(), threading.Event()

    def handle(self, call):
        if call.method == "POST":
            self.arrived.set()
            self.gate.wait(30)
        return super().handle(call)


def photos(tmp_path, n):
    """n photos and their ground-truth masks (a scored run: one provider is enough)."""
    from PIL import Image

    images, masks = [], []
    (tmp_path / "masks").mkdir()
    for i in range(n):
        path = tmp_path / f"p{i}.png"
        path.write_bytes(png_bytes((40, 32), (20 * i, 90, 160)))
        images.append(path)
        mask = tmp_path / "masks" / f"p{i}.png"
        Image.new("L", (40, 32), 255).save(mask)
        masks.append(mask)
    return images, masks


def event_known(job) -> threading.Event:
    """Set once gradio_client's job knows the id of its event on the server: Job.cancel() sends that id,
    and a cancel sent before the client's thread has it is None and cancels nothing (on a busy machine
    the server ran all 10 calls: the client had not read its event id when the test cancelled)."""
    known = threading.Event()
    helper = job.communicator

    class Told(type(helper)):
        def __setattr__(self, name, value):
            super().__setattr__(name, value)
            if name == "event_id" and value:
                known.set()

    helper.__class__ = Told
    if helper.event_id:  # set before the class changed
        known.set()
    return known


def test_a_client_that_cancels_stops_the_paid_calls(tmp_path):
    from gradio_client import Client, handle_file

    with GatedFal() as fal, RunwareFake() as runware, serve(app_config(fal, runware, cap_usd=Decimal(5))) as url:
        client = Client(url, verbose=False)
        images, masks = photos(tmp_path, 10)
        job = client.submit(
            images=[handle_file(str(p)) for p in images],
            truth=[handle_file(str(p)) for p in masks],
            providers=["fal-bria"],
            fal_key=FAL_KEY,
            api_name="/benchmark",
        )
        known = event_known(job)
        assert fal.arrived.wait(60)  # the first paid call is at the vendor
        assert known.wait(60)  # and the client can name it
        job.cancel()
        fal.gate.set()  # that call finishes; the run must not send another
        assert benchmark.STOPS.wait_idle(60)
        assert submits(fal) == 1  # 10 images were asked for; the first call was the last


def test_a_client_that_drops_the_connection_stops_the_paid_calls(tmp_path):
    """A bare HTTP client (gradio's /call/ API, as curl uses it: no heartbeat, no cancel) that
    drops its event stream mid-run: gradio marks the job dead but keeps running it; the run
    must ask for nothing more once that is so."""
    import httpx

    with GatedFal() as fal, RunwareFake() as runware, serve(app_config(fal, runware, cap_usd=Decimal(5))) as url:
        images, masks = photos(tmp_path, 10)
        api = url.rstrip("/") + "/gradio_api"
        with httpx.Client(timeout=30) as http:

            def uploaded(paths):
                files = [("files", (p.name, p.read_bytes(), "image/png")) for p in paths]
                return [
                    {"path": f, "meta": {"_type": "gradio.FileData"}}
                    for f in http.post(f"{api}/upload", files=files).json()
                ]

            data = [uploaded(images), uploaded(masks), ["fal-bria"], 100, FAL_KEY, *[""] * (len(SLOTS) - 1)]
            answer = http.post(f"{api}/call/benchmark", json={"data": data})
            event_id = answer.json()["event_id"]
            with http.stream("GET", f"{api}/call/benchmark/{event_id}") as stream:
                assert stream.status_code == 200
                assert fal.arrived.wait(60)  # the first paid call is at the vendor
            # the stream is closed here: the client has gone without a word
        assert benchmark.STOPS.wait_asked(30)  # the server noticed
        fal.gate.set()  # that call finishes; the run must not send another
        assert benchmark.STOPS.wait_idle(60)
        assert submits(fal) == 1  # 10 images were asked for; the call in flight was the last


def test_a_run_stops_at_the_servers_limit_and_scores_what_it_has(tmp_path):
    from gradio_client import Client, handle_file

    with FalFake() as fal, RunwareFake() as runware:
        config = app_config(fal, runware, cap_usd=Decimal(5), bench_max_s=1.0)
        with serve(config) as url:
            fal.inject("slow", op="submit", delay=1.5)  # the vendor is slow: the first call outlives the limit
            client = Client(url, verbose=False)
            images, masks = photos(tmp_path, 6)
            status, table, *_ = client.predict(
                images=[handle_file(str(p)) for p in images],
                truth=[handle_file(str(p)) for p in masks],
                providers=["fal-bria"],
                fal_key=FAL_KEY,
                api_name="/benchmark",
            )
    assert submits(fal) == 1
    assert status.startswith("**Stopped: results so far**")
    assert "The run reached this server's time limit for a run (1 s): what was done is scored" in status
    assert "RMBG_" not in status  # the setting's name is for operators (docs, logs), not visitors


@pytest.mark.parametrize("env, seconds", [({}, 600.0), ({"RMBG_BENCH_MAX_SECONDS": "90"}, 90.0)])
def test_the_limit_is_a_setting(env, seconds):
    from rmbg.webapp import AppConfig

    assert AppConfig.from_env(env).bench_max_s == seconds


def test_a_run_whose_models_would_outlast_the_limit_is_refused_before_anything_runs(tmp_path):
    """The expected model time (this server's medians, from the price book) is shown before the run and
    checked before any provider is built: 5 images x 3 s > a 10 s limit is refused; 3 x 3 s is not."""
    from rmbg.errors import RmbgError
    from rmbg.eval.votes import VoteStore
    from rmbg.webapp import AppConfig
    from rmbg.webapp.benchmark import request as benchrun
    from rmbg.webapp.benchmark.arena import Arena
    from rmbg.webapp.catalog import Keys
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore
    from tests.test_wording import local_result

    app = App.create(AppConfig(bench_max_s=10.0), store=OutputStore(tmp_path / "out"), cache=None)
    app.book.observe(local_result(3.0), "local")  # u2netp: 3 s an image here
    images, masks = photos(tmp_path, 5)
    shown = benchrun.estimate_line([str(p) for p in images], None, ["u2netp", "fal-bria"], app, 100)
    assert shown.endswith(" Local models: about 15 s of model time here.")
    with pytest.raises(RmbgError) as refused:
        benchrun.run(images, masks, ["u2netp"], Keys(), app, Arena(VoteStore()), session_id="s", volume=100)
    assert str(refused.value) == (
        "This run would take about 15 s of model time here (5 images × the ticked local models), over this "
        "server's time limit for a run (10 s). Choose fewer images or faster models, or run `rmbg evaluate` "
        "on your own machine."
    )
    assert app.book.timings()["u2netp"][2] == 1  # nothing ran
    benchrun.check_model_time(["u2netp", "fal-bria"], 3, app)  # 9 s: within the limit
