"""An animated GIF through POST /api/video is cut out like any clip (the app answered HTTP 500
"Something went wrong" when FFmpeg refused its frames)."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import httpx  # noqa: E402
import pytest  # noqa: E402

from rmbg.webapp import AppConfig  # noqa: E402
from tests.support.app import serve  # noqa: E402
from tests.test_video_gif import animated_gif  # noqa: E402
from tests.video_clips import threshold_registered, timeline  # noqa: E402


@pytest.fixture(scope="module")
def served():
    with threshold_registered(), serve(AppConfig()) as url:
        yield url


def test_an_animated_gif_through_rest(served, tmp_path):
    gif = animated_gif(tmp_path / "in.gif", 40, (160, 120))
    answer = httpx.post(
        served + "api/video",
        files={"video": ("in.gif", gif.read_bytes(), "image/gif")},
        data={"provider": "threshold"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "video/webm"
    assert (answer.headers["x-rmbg-frames"], answer.headers["x-rmbg-duration"]) == ("40", "1.600")
    out = tmp_path / "out.webm"
    out.write_bytes(answer.content)
    assert len(timeline(out)[0]) == 40
