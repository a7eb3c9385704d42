"""Video: cut the background out of a clip, frame by frame, locally (docs/video.md).

    api       remove_video: a clip's path, each stage called in order (its docstring)
    decode    the clip in (PyAV): header checks, frames upright with their timestamps
    limits    duration, frame size, frame count, file size (RMBG_VIDEO_MAX_SECONDS, ...), the errors
    pipeline  stream_mattes (decode ahead -> provider -> smoothing), a frame at a time
    smooth    the temporal filter on the mattes (a centred window), its state carried frame to frame
    encode    WebM/VP9 alpha, MOV/ProRes 4444, MP4/H.264, matte, GIF, WebP writers; audio
    result    write_clip (the frames to the writers, on the encoding thread), VideoResult (mattes
              stored compressed on disk; save() re-encodes)
    providers the providers a clip can go through (list_video_providers: local models, and the
              hosted video services with their price per second)
    hosted    a clip through a hosted video service: one paid call, per second, through rmbg.money.paying
    alpha     the alpha of the video a hosted service sends back, checked and matched to our frames
    planes    a frame's own alpha (a clip's or an answer's): libvpx for WebM's alpha layer, read from its plane
    answers   the hosted services' answers kept on disk by the clip's content: one clip, one paid call

A clip scored against its masks (J, F, dtSSD) is evaluation's: rmbg.eval.clips.evaluate_clip.
PyAV (`av`) is imported inside functions: `import rmbg` does not load it.
"""

from .api import remove_video
from .limits import InvalidVideoError, OutputBlocked, VideoLimitError, VideoLimits, VideoStopped, VideoWriteError
from .result import VideoResult
from .smooth import SmoothParams, SmoothState, TemporalSmoother, smooth_flush, smooth_push

__all__ = [
    "InvalidVideoError",
    "OutputBlocked",
    "SmoothParams",
    "SmoothState",
    "TemporalSmoother",
    "VideoLimitError",
    "VideoLimits",
    "VideoResult",
    "VideoStopped",
    "VideoWriteError",
    "remove_video",
    "smooth_flush",
    "smooth_push",
]
