"""The Video tab's forms (rmbg.webapp.ui.forms has the rules): /video,
/video_rerender and /video_compare; a clip's settings are declared once
(rmbg.options.VIDEO), its format field generated from there. None takes the session state: a
session's clips are kept on the app's shelf by its gradio session
(rmbg.webapp.shelf), so the named API and the page behave alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ...options import VIDEO
from ..inputs import ImageFile, Text, VideoFormat
from ..ui.forms import Form, with_keys, with_options
from .videos import VideoLook


class VideoLooks:
    """A form with the video look's fields gives its VideoLook."""

    def look(self) -> VideoLook:
        return VideoLook.of(
            getattr(self, "background", None),
            getattr(self, "colour", None),
            getattr(self, "background_image", None),
            getattr(self, "format", None),
        )


@with_keys(after="format")
@with_options("page", after="background_image", among=VIDEO)
@dataclass(frozen=True)
class VideoForm(Form, VideoLooks):
    """/video (and the page's Remove background on the Video tab)."""

    PROGRESS = gr.Progress

    video: Any = None
    url: Text = None
    provider: Text = None
    background: Text = "transparent"
    colour: Text = "#ffffff"
    background_image: ImageFile = None
    format: VideoFormat = None


@with_options("page", after="background_image", among=VIDEO)
@dataclass(frozen=True)
class VideoRerenderForm(Form, VideoLooks):
    """/video_rerender: the last clip with another background or format (no model run)."""

    PROGRESS = gr.Progress

    background: Text = "transparent"
    colour: Text = "#ffffff"
    background_image: ImageFile = None
    format: VideoFormat = None


@with_keys()
@dataclass(frozen=True)
class VideoCompareForm(Form):
    """/video_compare: one clip through two providers, side by side."""

    PROGRESS = gr.Progress

    video: Any = None
    url: Text = None
    provider_a: Text = None
    provider_b: Text = None
