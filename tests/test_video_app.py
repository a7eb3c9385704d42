"""Video through the launched app: the named API (/video, /video_rerender,
/video_compare, /video_stop) with gradio_client, and POST /api/video with
httpx, on the real U2-Net-p weights (and a grey-level threshold as the
second provider of a comparison, and where the model is not what a test checks:
REST's way in and out, a closed session's files; a threshold held mid-clip for
the stop). Stop in the middle offers nothing and leaves
no file behind; a hosted video provider is reserved against the same caps as
an image, per client address. The app runs with a 1 MB video limit
(RMBG_VIDEO_MAX_MB), which its uploads follow; an image is held to its own
limit (RMBG_IMAGE_MAX_MB: 0.5 MB, and below a clip's size where a test says so)."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402
from PIL import Image  # noqa: E402

from rmbg.webapp import AppConfig  # noqa: E402
from rmbg.webapp.video import videos
from tests.support.app import serve  # noqa: E402
from tests.support.browser import files_served  # noqa: E402
from tests.video_clips import Threshold, davis, decoded, threshold_registered, write_clip  # noqa: E402

MB = 2**20


class Gate(Threshold):
    """The threshold, its 4th frame of a clip held until the test opens the gate: a clip in the middle
    of its run for as long as a test needs, at no model's cost."""

    id = "gate"
    label = "Gate (tests)"
    held, opened = threading.Event(), threading.Event()

    def matte(self, image):
        if self.calls == 3:
            Gate.held.set()
            assert Gate.opened.wait(300), "the test never opened the gate"
        return super().matte(image)


@contextlib.contextmanager
def gate_registered():
    """Gate as the registered local provider "gate", a new one for each clip it is built for."""
    from rmbg import registry
    from rmbg.declarations import ProviderInfo

    declared = ProviderInfo("gate", Gate.label, "local", lambda **_: Gate(), compare_by_default=False)
    registry.register("gate", declared.factory, declared)
    try:
        yield
    finally:
        Gate.opened.set()  # nothing left held
        registry.unregister("gate")


@pytest.fixture(scope="module")
def served(u2netp_path, tmp_path_factory):
    """(app URL, the app's temporary folder, the run counter, clips folder): every
    temporary file the app makes lands in that folder (tempfile.tempdir)."""
    root = tmp_path_factory.mktemp("video-app")
    (root / "tmp").mkdir()
    runs = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RMBG_VIDEO_MAX_MB", "1")  # read at launch too: the page's uploads follow it (the larger
        patch.setenv("RMBG_IMAGE_MAX_MB", "0.5")  # of the two limits), and each request reads them again
        patch.setattr(tempfile, "tempdir", str(root / "tmp"))
        engine = videos.remove_video
        patch.setattr(videos, "remove_video", lambda *a, **k: runs.append(a[1].id) or engine(*a, **k))
        with threshold_registered(), gate_registered(), serve(AppConfig()) as url:
            yield url, root / "tmp", runs, root


@pytest.fixture(scope="module")
def clip(served):
    """3 frames at 24 fps (0.125 s): every frame a model run in the tests that run one, and the clip's size
    is not what they check."""
    return write_clip(served[3] / "dog.mp4", davis("dog", 3))


@pytest.fixture
def client(served):
    """A gradio_client session, closed after the test (its page "closes": the app forgets its clips)."""
    from gradio_client import Client

    session = Client(served[0], verbose=False)
    yield session
    session.close()


def half_written(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.part*"))


def folders(folder: Path) -> set[str]:
    """The video folders in the app's temporary folder: a run's, and those kept for re-encoding
    (each session's last clip: its input's copy and its mattes)."""
    return {p.name for p in folder.iterdir() if p.name.startswith(("rmbg-app-video-", "rmbg-video-", "rmbg-rest"))}


def test_a_clip_through_the_api_then_another_background_without_a_model_run(served, clip, client, monkeypatch):
    from gradio_client import handle_file

    _, tmp, runs, _ = served
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "0.005")
    assert clip.stat().st_size > 0.005 * MB  # a clip over the image limit: held to the video limit only
    runs.clear()
    preview, file, line = client.predict(
        video=handle_file(str(clip)), provider="u2netp", format="mov", api_name="/video"
    )
    preview, file = (Path(p["video"] if isinstance(p, dict) else p) for p in (preview, file))
    assert (preview.suffix, file.suffix) == (".webm", ".mov") and runs == ["u2netp"]
    frames, times = decoded(preview, alpha=True)
    assert len(frames) == 3 and times == pytest.approx([i / 24 for i in range(3)], abs=1e-3)
    alphas = [f[..., 3] for f in frames]
    assert all(a.min() < 30 and a.max() > 150 for a in alphas)  # a subject, and a background cut away
    assert len(decoded(file, alpha=True)[0]) == 3
    assert "**U2-Net-p" in line and "3 frames, 0.12 s of video" in line and "this clip: free (local" in line
    assert "session: $0 hosted (cap $1.00)" in line

    green, green_file, again = client.predict(
        background="colour", colour="#00ff00", format="mp4", api_name="/video_rerender"
    )
    green = Path(green["video"] if isinstance(green, dict) else green)
    assert green.suffix == ".mp4" and runs == ["u2netp"] and "no model run, no new charge" in again
    rgb = decoded(green)[0][0][: alphas[0].shape[0], : alphas[0].shape[1]]
    background = rgb[alphas[0] < 10].astype(int)
    assert np.abs(background - [0, 255, 0]).mean() < 12  # where the subject is not: the colour
    assert half_written(tmp) == [] and half_written(Path(get_upload_folder())) == []


def test_two_providers_on_one_clip_side_by_side(served, clip, client):
    from gradio_client import handle_file

    left, right, frame, table, agreement = client.predict(
        video=handle_file(str(clip)), provider_a="u2netp", provider_b="threshold", api_name="/video_compare"
    )
    a, b = (Path(v["video"] if isinstance(v, dict) else v) for v in (left, right))
    assert a.suffix == b.suffix == ".webm" and a != b
    assert len(decoded(a, alpha=True)[0]) == len(decoded(b, alpha=True)[0]) == 3
    rows = table["data"] if isinstance(table, dict) else table
    assert [r[0] for r in rows] == ["U2-Net-p (tiny, ungated, Apache-2.0)", "Threshold (tests)"]
    assert all(r[1] == "3" for r in rows)
    iou = float(agreement.split("IoU ")[1].split(",")[0])  # U2-Net-p against a threshold: far apart
    assert (
        agreement.startswith("The mattes disagree: IoU" if iou < 0.6 else "The mattes") and "over 3 frames" in agreement
    )
    assert half_written(served[1]) == []


def test_stop_in_the_middle_offers_nothing_and_leaves_no_file(served, client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    _, tmp, _, root = served
    long_clip = write_clip(root / "stopme.mp4", davis("dog", 40))
    before = folders(tmp)
    job = client.submit(video=handle_file(str(long_clip)), provider="gate", format="mov", api_name="/video")
    assert Gate.held.wait(300)  # three frames done, the 4th held until the stop is in: the clip is mid-run
    deadline = time.monotonic() + 60  # the progress of those frames on its way to the client
    while not any("frames" in (p.desc or "") and p.progress for p in (job.status().progress_data or [])):
        assert time.monotonic() < deadline and not job.done(), "no frame was reported"
        time.sleep(0.05)
    said = [p.desc for p in job.status().progress_data or []]
    assert any(" / 40 frames" in d and "s left" in d for d in said), said
    client.predict(api_name="/video_stop")
    Gate.opened.set()
    with pytest.raises(AppError, match=r"Stopped after \d+ frame\(s\); no output was written"):
        job.result(timeout=60)
    assert [p.name for p in Path(get_upload_folder()).rglob("stopme-*")] == []  # no preview, no download
    assert folders(tmp) <= before and half_written(tmp) == []  # its copy of the clip, its mattes: gone
    nothing = ({"__type__": "update"},) * 3  # gr.skip(): nothing kept to re-encode, every output left as it is
    assert client.predict(format="webm", api_name="/video_rerender") == nothing


def test_a_client_that_drops_its_connection_stops_the_clip(served, monkeypatch):
    """A bare HTTP client (the /call/ API, no heartbeat) that drops its event stream mid-clip:
    gradio marks the job dead but would run it to the end; the clip stops at its next frame,
    with nothing written."""
    from rmbg.video import VideoStopped

    url, tmp, _, root = served
    long_clip = write_clip(root / "dropme.mp4", davis("dog", 40))
    started, ended, fates = threading.Event(), threading.Event(), []
    engine = videos.remove_video

    def watched(*args, **kwargs):
        report = kwargs.get("progress")

        def progress(done, total):
            started.set()
            if report is not None:
                report(done, total)

        try:
            result = engine(*args, **{**kwargs, "progress": progress})
            fates.append("finished")
            return result
        except VideoStopped as stopped:
            fates.append(stopped.frames_done)
            raise

    remove = videos.remove

    def handled(*args, **kwargs):  # the whole handler's work, its clean-up included
        try:
            return remove(*args, **kwargs)
        finally:
            ended.set()

    monkeypatch.setattr(videos, "remove_video", watched)
    monkeypatch.setattr(videos, "remove", handled)
    api = url.rstrip("/") + "/gradio_api"
    with httpx.Client(timeout=30) as http:
        uploaded = http.post(f"{api}/upload", files=[("files", ("dropme.mp4", long_clip.read_bytes(), "video/mp4"))])
        video = {"path": uploaded.json()[0], "meta": {"_type": "gradio.FileData"}}
        info = http.get(f"{url.rstrip('/')}/gradio_api/info").json()["named_endpoints"]["/video"]["parameters"]
        data = [video, *(p.get("parameter_default") for p in info[1:])]
        data[[p["parameter_name"] for p in info].index("provider")] = "u2netp"
        answer = http.post(f"{api}/call/video", json={"data": data})
        assert answer.status_code == 200, answer.text
        with http.stream("GET", f"{api}/call/video/{answer.json()['event_id']}") as stream:
            assert stream.status_code == 200
            assert started.wait(60)  # frames are going through the model
    assert ended.wait(60)
    assert len(fates) == 1 and fates[0] != "finished" and fates[0] < 40, fates
    assert [p.name for p in Path(get_upload_folder()).rglob("dropme-*")] == [] and half_written(tmp) == []


def test_a_closed_session_s_clips_are_deleted_at_once(served, clip, monkeypatch):
    from gradio_client import Client, handle_file

    monkeypatch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.5")  # how soon the server notices a closed page
    client = Client(served[0], verbose=False)
    tmp = served[1]
    before = folders(tmp)
    client.predict(video=handle_file(str(clip)), provider="threshold", api_name="/video")  # any model keeps them
    kept = folders(tmp) - before
    assert len(kept) == 2  # the clip's copy and its mattes, for another background or format
    client.close()  # its heartbeat ends: gradio runs the page's unload
    deadline = time.monotonic() + 20
    while folders(tmp) & kept:
        assert time.monotonic() < deadline, folders(tmp) & kept
        time.sleep(0.1)


def test_rest_video_from_a_file_and_from_a_url(served, clip, monkeypatch):
    """The threshold as the model: what is checked is REST's way in and out (U2-Net-p's own clips: the
    named API's tests above)."""
    url, tmp, _, root = served
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "0.005")  # the clip is over it: /api/video takes clips to the video limit
    before = folders(tmp)
    answer = httpx.post(
        url + "api/video",
        files={"video": ("dog.mp4", clip.read_bytes(), "video/mp4")},
        data={"provider": "threshold"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "video/webm" and answer.headers["x-rmbg-provider"] == "threshold"
    assert (answer.headers["x-rmbg-frames"], answer.headers["x-rmbg-duration"]) == ("3", "0.125")
    assert answer.headers["x-rmbg-cost-source"] in ("compute", "free")
    out = root / "rest.webm"
    out.write_bytes(answer.content)
    assert len(decoded(out, alpha=True)[0]) == 3

    monkeypatch.setenv("RMBG_URL_ALLOW_HOSTS", "127.0.0.1")  # a trusted deployment's explicit choice
    with files_served(clip.parent) as base:
        answer = httpx.post(
            url + "api/video",
            json={"url": f"{base}/dog.mp4", "provider": "threshold", "background": "#00ff00", "format": "mp4"},
            timeout=120,
        )
    assert answer.status_code == 200, answer.text
    assert (
        answer.headers["content-type"] == "video/mp4"
        and 'filename="dog-nobg.mp4"' in answer.headers["content-disposition"]
    )
    assert folders(tmp) <= before and half_written(tmp) == []  # REST keeps nothing
    document = httpx.get(url + "api/openapi.json", timeout=30).json()
    post = document["paths"]["/api/video"]["post"]
    assert set(post["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert "X-Rmbg-Frames" in post["responses"]["200"]["headers"]


@pytest.mark.parametrize(
    "fields, status, words",
    [
        ({"provider": "fal-bria"}, 400, "'fal-bria' does not run on video. Video providers: "),
        ({"format": "avi"}, 400, "Unknown video format 'avi': use one of webm, mov, mp4, matte, gif, webp."),
        ({"background": "#00ff00", "format": "webm"}, 400, "A colour background is drawn into an mp4"),
        ({"colour": "red"}, 400, "Unknown field(s) colour"),
    ],
)
def test_rest_video_refusals_are_json_sentences(served, clip, fields, status, words):
    answer = httpx.post(
        served[0] + "api/video", files={"video": ("dog.mp4", clip.read_bytes(), "video/mp4")}, data=fields, timeout=60
    )
    assert answer.status_code == status and words in answer.json()["error"], answer.text


def test_rest_video_refuses_a_background_picture_it_would_not_use(served, clip):
    """A background_image beside another background is refused in a sentence, never dropped in silence."""
    picture = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(picture, "PNG")
    for background in ("#00ff00", "transparent"):
        answer = httpx.post(
            served[0] + "api/video",
            files={
                "video": ("dog.mp4", clip.read_bytes(), "video/mp4"),
                "background_image": ("sky.png", picture.getvalue(), "image/png"),
            },
            data={"background": background, "format": "mp4"},
            timeout=60,
        )
        assert (answer.status_code, answer.json()) == (
            400,
            {
                "error": f'background_image is the picture for background "image", and this request asks for '
                f"{background!r}: send background=image, or leave out background_image."
            },
        )


def test_rest_video_without_a_clip_or_a_form(served):
    base = served[0] + "api/video"
    assert httpx.post(base, json={"provider": "u2netp"}, timeout=30).json() == {
        "error": 'Send the clip as the multipart field "video", or JSON {"url": "https://..."}.'
    }
    assert httpx.post(base, content=b"x", headers={"content-type": "text/plain"}, timeout=30).status_code == 415
    local = httpx.post(base, json={"url": "/etc/hostname"}, timeout=30)  # text is a URL, never a server path
    assert (local.status_code, local.json()) == (
        400,
        {"error": "Give the clip's URL as http(s)://..., such as https://example.com/clip.mp4."},
    )


def test_a_clip_given_as_a_file_and_a_url_is_refused_not_one_of_them_dropped(served, clip, client):
    """A file and a URL for one clip (REST's "video" and "url"; the Video tab's upload and URL box): the URL
    was ignored without a word and the file cut out. Now refused before either is read; the same for an
    image over POST /api/remove. Nothing runs."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    said = "Give the {} as a file or as a URL, not both: clear one of them and send again."
    before = len(served[2])
    both = httpx.post(
        served[0] + "api/video",
        files={"video": ("dog.mp4", clip.read_bytes(), "video/mp4")},
        data={"url": "https://example.com/other.mp4"},
        timeout=60,
    )
    assert (both.status_code, both.json()) == (400, {"error": said.format("clip")})
    with pytest.raises(AppError, match=re.escape(said.format("clip"))):
        client.predict(video=handle_file(str(clip)), url="https://example.com/other.mp4", api_name="/video")
    picture = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(picture, "PNG")
    image = httpx.post(
        served[0] + "api/remove",
        files={"image": ("sky.png", picture.getvalue(), "image/png")},
        data={"url": "https://example.com/other.png"},
        timeout=60,
    )
    assert (image.status_code, image.json()) == (400, {"error": said.format("image")})
    assert len(served[2]) == before


def test_the_named_api_reads_no_server_path_from_the_url_field(served, client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=r"Give the clip's URL as http\(s\)://"):
        client.predict(url="/etc/hostname", provider="u2netp", api_name="/video")


def fal_video_config(fal, cap: str) -> AppConfig:
    """The app with fal's video service at the fake, under a session cap of `cap` dollars: the product's
    attempts and polling (a first poll after 1 s: a clip sent again meanwhile finds its call in flight),
    without its back-off between attempts (seconds of a test's time for each refused submit)."""
    from dataclasses import replace

    from rmbg.providers.hosted.fal_video import VIDEO_RETRY

    no_backoff = replace(VIDEO_RETRY, base_delay=0.0, max_delay=0.0, jitter=0.0, deadline_s=60.0)
    return AppConfig(
        provider_config={"fal-bria-video": {"base_url": fal.url, "retry": no_backoff}}, cap_usd=Decimal(cap)
    )


@pytest.fixture(scope="module")
def fal_video_app():
    """(fake fal video service, URL of an app under a $1 cap that uses it): one launch for the tests that
    need room under the cap. Each test sends a clip of its own, as an answer is kept for a clip
    (rmbg.video.answers), and clears the fake's log first."""
    from tests.fakes.fal_video import FalVideoFake

    with FalVideoFake() as fal, serve(fal_video_config(fal, "1")) as url:
        yield fal, url


def test_a_hosted_video_clip_through_rest_is_paid_once_under_the_callers_caps(clip, fal_video_app):
    """fal's video service (a fake that follows its queue API) through POST /api/video: without a key
    the same key rule as images; over the session's cap refused before anything is sent; with room,
    one paid request, its cost in the answer and on the visitor's session."""
    from tests.fakes.fal import TEST_KEY

    video = {"video": ("dog.mp4", clip.read_bytes(), "video/mp4")}
    fal, roomy = fal_video_app
    fal.reset()
    paid = lambda: [c for c in fal.calls if c.method == "POST" and c.path.endswith("/v3")]  # noqa: E731
    with serve(fal_video_config(fal, "0.01")) as url:
        keyless = httpx.post(url + "api/video", files=video, data={"provider": "fal-bria-video"}, timeout=60)
        assert keyless.status_code == 401 and "X-Fal-Key" in keyless.json()["error"]
        capped = httpx.post(
            url + "api/video",
            files=video,
            data={"provider": "fal-bria-video"},
            headers={"X-Fal-Key": TEST_KEY},
            timeout=60,
        )
        assert capped.status_code == 402, capped.text
        assert "Spending cap reached" in capped.json()["error"] and paid() == []

    def post(fmt: str) -> httpx.Response:
        data, key = {"provider": "fal-bria-video", "format": fmt}, {"X-Fal-Key": TEST_KEY}
        return httpx.post(roomy + "api/video", files=video, data=data, headers=key, timeout=120)

    # the same clip three times at once (a client that retried, a double click): one paid call
    # (rmbg.video.answers), whichever comes first; the others are written from its answer
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(post, ["webm", "webm", "mov"]))
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert [a.headers["content-type"] for a in answers] == ["video/webm", "video/webm", "video/quicktime"]
    assert {a.headers["x-rmbg-provider"] for a in answers} == {"fal-bria-video"} and len(paid()) == 1
    assert {a.headers["x-rmbg-frames"] for a in answers} == {"3"}
    costs = sorted(Decimal(a.headers["x-rmbg-cost-usd"]) for a in answers)
    assert costs == [0, 0, Decimal("0.042")]  # 0.125 s billed as 1 s, once


def test_a_retried_hosted_clip_is_not_refused_by_a_cap_it_no_longer_needs(clip):
    """A REST client that gave up waiting and sent the clip again: the answer is kept (rmbg.video.answers),
    so the retry is free, and the session's cap, which the first call's $0.042 plus a second hold ($0.084)
    would pass, does not refuse it. Before, the retry was a 402 (and, under a larger cap, a second payment)."""
    from tests.fakes.fal import TEST_KEY
    from tests.fakes.fal_video import FalVideoFake

    video = {"video": ("dog.mp4", clip.read_bytes(), "video/mp4")}
    with FalVideoFake() as fal:
        with serve(fal_video_config(fal, "0.1")) as url:

            def post() -> httpx.Response:
                data, key = {"provider": "fal-bria-video"}, {"X-Fal-Key": TEST_KEY}
                return httpx.post(url + "api/video", files=video, data=data, headers=key, timeout=120)

            first, retried = post(), post()
        paid = [c for c in fal.calls if c.method == "POST" and c.path.endswith("/v3")]
    assert (first.status_code, retried.status_code) == (200, 200), retried.text
    assert [Decimal(a.headers["x-rmbg-cost-usd"]) for a in (first, retried)] == [Decimal("0.042"), 0]
    assert len(paid) == 1


def test_a_failed_paid_clip_tells_what_it_counted_against_the_caps(served, fal_video_app):
    """POST /api/video's refusals carry the cost headers /api/remove's do: a submit that left and got no
    answer may have been billed for the clip's second ($0.042: X-Rmbg-Cost-Source says so) and is not
    sent again; a submit refused with 429 each time counted nothing and says nothing of cost."""
    from tests.fakes.fal import TEST_KEY

    fal, url = fal_video_app
    fal.reset()
    # a clip no other test sends to this app: no answer is kept for it (rmbg.video.answers)
    video = {"video": ("dog.mp4", write_clip(served[3] / "failing.mp4", davis("dog", 5)).read_bytes(), "video/mp4")}
    submits = lambda: [c for c in fal.calls if c.method == "POST" and c.path.endswith("/v3")]  # noqa: E731
    answers = []
    for fault in ("drop", "rate-limit"):
        fal.inject(fault, op="submit", times=9)
        data, key = {"provider": "fal-bria-video"}, {"X-Fal-Key": TEST_KEY}
        answers.append(httpx.post(url + "api/video", files=video, data=data, headers=key, timeout=120))
        answers.append(len(submits()))
        fal.reset()  # its faults and its log of calls
    dropped, sent_dropped, limited, sent_limited = answers
    assert (dropped.status_code, sent_dropped) == (502, 1), dropped.text
    assert dropped.headers.get("x-rmbg-cost-usd") == "0.042"
    assert dropped.headers.get("x-rmbg-cost-source") == "may have been billed"
    assert (limited.status_code, sent_limited) == (429, 4), limited.text
    assert "x-rmbg-cost-usd" not in limited.headers and "x-rmbg-cost-source" not in limited.headers


def test_side_by_side_shows_the_side_that_worked_when_the_paid_side_drops_after_its_submit(served, fal_video_app):
    """/video_compare with a local model against fal, whose submit arrives and gets no answer (may have been
    billed: counted, not sent again). Before, the whole call was an error and the local side was lost; now the
    local side comes back as a video that plays, the other as none, and the agreement line says why it failed,
    what it counted and the session's total after the comparison."""
    from gradio_client import Client, handle_file

    from tests.fakes.fal import TEST_KEY

    fal, url = fal_video_app
    fal.reset()
    fal.inject("drop", op="submit", times=9)
    clip = write_clip(served[3] / "compared.mp4", davis("dog", 4))  # a clip no other test sends: no kept answer
    client = Client(url, verbose=False)
    try:
        left, right, _, table, said = client.predict(
            video=handle_file(str(clip)),
            provider_a="threshold",
            provider_b="fal-bria-video",
            fal_key=TEST_KEY,
            api_name="/video_compare",
        )
    finally:
        client.close()
    assert len([c for c in fal.calls if c.method == "POST" and c.path.endswith("/v3")]) == 1
    assert right is None and len(decoded(Path(left["video"] if isinstance(left, dict) else left), alpha=True)[0]) == 4
    rows = table["data"] if isinstance(table, dict) else table
    assert [r[4] for r in rows] == ["free (local)", "$0.0420 counted (failed call)"]
    failed, total = said.split("  \n")
    assert failed.startswith("**B (fal.ai · Bria video background removal (VRMBG 3.0)) failed:** fal-bria-video: ")
    assert failed.endswith(
        "It may have reached the provider and been billed, so it was not sent again. "
        "$0.0420 was counted against the spending caps for it."
    )
    assert total == "session: $0.0420 hosted (cap $1.00)"  # read from the ledger after the comparison


def test_the_page_url_box_fetches_checks_and_keeps_the_clip(served, clip, monkeypatch, tmp_path):
    from rmbg.errors import InvalidImageError
    from rmbg.video.limits import InvalidVideoError
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore
    from rmbg.webapp.video.clips import clip_from_url

    app = App.create(store=OutputStore(tmp_path / "store"))
    (tmp_path / "note.txt").write_text("not a video")
    with files_served(clip.parent) as base, files_served(tmp_path) as other:
        with pytest.raises(InvalidImageError, match="loopback address"):  # the URL guard's refusal
            clip_from_url(f"{base}/dog.mp4", app)
        monkeypatch.setenv("RMBG_URL_ALLOW_HOSTS", "127.0.0.1")
        kept = clip_from_url(f"{base}/dog.mp4", app)
        assert kept.name == "dog.mp4" and kept.read_bytes() == clip.read_bytes() and app.store.owns(kept)
        with pytest.raises(InvalidVideoError, match="is not a video we can read"):
            clip_from_url(f"{other}/note.txt", app)
    with pytest.raises(InvalidVideoError, match="Paste an http"):
        clip_from_url("clip.mp4", app)


def headers_only(url: str, path: str, length: int) -> tuple[int, dict[str, str], bytes]:
    """POST `path` declaring `length` bytes, send none of them, and wait for the answer (10 s at most)."""
    where = urlsplit(url)
    conn = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=10)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "multipart/form-data; boundary=x")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    except TimeoutError:
        pytest.fail(f"no answer to {path} within 10 s: the server waited for the body")
    finally:
        conn.close()


def test_uploads_follow_the_video_limit_and_one_over_it_is_answered_before_its_body(served):
    url = served[0]
    assert httpx.get(url + "config", timeout=30).json()["max_file_size"] == MB  # RMBG_VIDEO_MAX_MB
    folder = Path(get_upload_folder())
    before = sorted(folder.rglob("*"))
    for declared in (MB + 64 * 2**10 + 1, 10 * 2**30):  # past the limit and the form around the file
        status, headers, body = headers_only(url, "/gradio_api/upload", declared)
        assert (status, headers["connection"]) == (413, "close")
        said = json.loads(body)["error"]
        assert said.startswith("The upload is ") and said.endswith(" MB; this server takes at most 1.06 MB at once.")
    assert sorted(folder.rglob("*")) == before  # nothing written
    clip = httpx.post(url + "gradio_api/upload", files={"files": ("a.mp4", os.urandom(MB))}, timeout=30)
    assert clip.status_code == 200 and Path(clip.json()[0]).stat().st_size == MB


def test_an_image_over_the_image_limit_is_refused_by_its_size_before_it_is_opened(served, clip, client, monkeypatch):
    """Every form that takes an image: refused in the visitor's words, by the file's size. The image's
    pixels are cut off, so a run that opened it would have said it is damaged instead."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    root = served[3]
    noise = np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / "whole.png")
    big, small = root / "big.png", root / "small.png"
    big.write_bytes((root / "whole.png").read_bytes()[:16_000])
    Image.new("RGB", (8, 8), "white").save(small)
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "0.01")  # 10485 bytes: big.png is over it, small.png is not
    cases = [
        ("/remove", {"image": big, "provider": "u2netp"}, "This image"),
        (
            "/remove",
            {"image": small, "provider": "u2netp", "background": "image", "background_image": big},
            "The background image",
        ),
        ("/compare", {"image": big, "providers": ["u2netp"]}, "This image"),
        ("/replace", {"image": small, "prompt": "a beach", "reference_image": big}, "The reference image"),
        (
            "/video",
            {"video": clip, "background": "image", "background_image": big, "format": "mp4"},
            "The background image",
        ),
    ]
    for api_name, values, what in cases:
        sent = {k: handle_file(str(v)) if isinstance(v, Path) else v for k, v in values.items()}
        with pytest.raises(AppError) as caught:
            client.predict(**sent, api_name=api_name)
        assert str(caught.value) == f"{what} is 0.0153 MB; the limit is 0.01 MB.", api_name


def test_rest_video_refuses_a_clip_over_the_video_limit_with_413(served, clip, monkeypatch):
    url = served[0]
    over = httpx.post(url + "api/video", files={"video": ("long.mp4", os.urandom(MB + 1), "video/mp4")}, timeout=30)
    assert (over.status_code, over.json()) == (413, {"error": "The clip is 1.01 MB; the limit is 1 MB."})
    status, _, body = headers_only(url, "/api/video", 10 * 2**30)  # answered before the body is read
    said = "The request is over 1 MB, the largest clip this server takes (with a 0.5 MB background image)."
    assert (status, json.loads(body)) == (413, {"error": said})
    monkeypatch.setenv("RMBG_IMAGE_MAX_MB", "0.005")  # images keep their own limit
    image = httpx.post(url + "api/remove", files={"image": ("dog.mp4", clip.read_bytes(), "video/mp4")}, timeout=30)
    assert (image.status_code, image.json()) == (413, {"error": "The request is over 0.005 MB."})


def test_the_agreement_line_says_disagree_when_the_mattes_do():
    from rmbg.webapp.video.compare import agreement_words

    assert [agreement_words(v) for v in (1.0, 0.9, 0.899, 0.6, 0.599, 0.106)] == [
        "The mattes agree",
        "The mattes agree",
        "The mattes partly agree",
        "The mattes partly agree",
        "The mattes disagree",
        "The mattes disagree",
    ]


def test_a_video_model_that_cannot_run_here_is_not_offered_as_running_here(tmp_path, monkeypatch):
    from rmbg.webapp.catalog import Keys

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hub cache: the weights are not here
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    labels = [label for label, _ in videos.choices(Keys(), AppConfig())]
    unavailable = [label for label in labels if "unavailable" in label or "needs" in label]
    assert unavailable and not [label for label in unavailable if "runs here" in label], labels
