"""Which track is the clip, and which file its result's save() reads.

- A file whose first video track is a one-frame thumbnail (a cover or preview track before the
  picture, as some editors and cameras write them) was taken for that thumbnail and refused as
  "cut off": the picture is FFmpeg's pick among the video tracks, everywhere a clip is read
  (the header, the packets, the frames, Ray's chunks).
- `result.save()` decodes the clip again to pair its frames with the stored mattes: a clip changed
  or deleted since was a bare ValueError (a different frame count) or, with the same count, the old
  mattes on new frames. It is now refused in words, nothing written.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

import rmbg
from rmbg.video.decode import probe
from rmbg.video.limits import InvalidVideoError, VideoLimits
from rmbg.video.packets import frame_pts
from tests.video_clips import Threshold, davis, decoded, write_clip


def with_thumbnail_first(path, pictures):
    """An MKV whose first video track is one grey 32x32 frame, the clip's frames in the second."""
    with av.open(str(path), "w") as out:
        thumb = out.add_stream("libx264", rate=24)
        thumb.width = thumb.height = 32
        main = out.add_stream("libx264", rate=24)
        main.height, main.width = pictures[0].shape[:2]
        for stream in (thumb, main):
            stream.pix_fmt = "yuv420p"
        still = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 128, np.uint8), format="rgb24")
        still.pts = 0
        for packet in [*thumb.encode(still), *thumb.encode()]:
            out.mux(packet)
        for i, rgb in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in main.encode(frame):
                out.mux(packet)
        for packet in main.encode():
            out.mux(packet)
    return path


def test_a_thumbnail_track_before_the_picture_is_passed_over(tmp_path):
    pictures = davis("dog", 24)
    clip = with_thumbnail_first(tmp_path / "two.mkv", pictures)
    with av.open(str(clip)) as opened:
        assert [(s.width, s.height) for s in opened.streams.video] == [(32, 32), (214, 120)]
    info = probe(clip, VideoLimits())
    assert (info.width, info.height, info.total_frames) == (214, 120, 24)
    assert len(frame_pts(info, VideoLimits())) == 24
    out = tmp_path / "out.mov"
    with rmbg.remove_video(clip, Threshold(), smooth=False, output=out) as result:
        assert (result.frames, result.size, result.duration) == (24, (214, 120), pytest.approx(1.0, abs=0.002))
    written, _ = decoded(out, alpha=True)
    assert len(written) == 24 and written[0].shape == (120, 214, 4)


def test_a_clip_changed_or_gone_since_it_was_cut_is_not_saved(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", davis("dog", 12))
    with rmbg.remove_video(clip, Threshold(), smooth=False) as result:
        assert result.save(tmp_path / "before.webm").exists()  # unchanged: saved
        for change in ("fewer frames", "same count, other frames", "deleted"):
            if change == "fewer frames":
                write_clip(clip, davis("dog", 8))
            elif change == "same count, other frames":
                write_clip(clip, davis("libby", 12))
            else:
                clip.unlink()
            out = tmp_path / "after.webm"
            with pytest.raises(InvalidVideoError, match="no longer the clip this result was cut from.*Cut it again"):
                result.save(out)
            assert not out.exists(), change
