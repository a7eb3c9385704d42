"""Which track is the clip, which file its result's save() reads, and which sound an MP4 carries.

- A file whose first video track is a one-frame thumbnail (a cover or preview track before the
  picture, as some editors and cameras write them) was taken for that thumbnail and refused as
  "cut off": the picture is FFmpeg's pick among the video tracks, everywhere a clip is read
  (the header, the packets, the frames, Ray's chunks).
- `result.save()` decodes the clip again to pair its frames with the stored mattes: a clip changed
  or deleted since was a bare ValueError (a different frame count) or, with the same count, the old
  mattes on new frames. It is now refused in words, nothing written.
- Which sound an MP4 carries: a MOV's Apple Lossless (ALAC) was copied into the MP4 and its matte,
  which Chromium played without sound; they now carry it as AAC.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

import rmbg
from rmbg.video.decode import probe
from rmbg.video.limits import InvalidVideoError, VideoLimits
from rmbg.video.packets import frame_pts
from tests.support.browser import ARGS, CHROMIUM, evaluated
from tests.video_clips import Threshold, davis, decoded, write_clip

AUTOPLAY = "--autoplay-policy=no-user-gesture-required"  # a page's play() with sound, without a click


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


PLAYS_SOUND = """async (src) => {
    const v = document.createElement('video'); v.src = src; document.body.appendChild(v);
    await new Promise((ok, no) => { v.onloadedmetadata = ok; v.onerror = () => no(String(v.error?.message)); });
    await v.play();
    await new Promise((ok) => { v.onended = ok; });
    return {ended: v.currentTime, sound: v.webkitAudioDecodedByteCount}; }"""


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")
@pytest.mark.parametrize(("name", "codec", "in_mov"), [("apple.mov", "alac", "alac"), ("web.mkv", "libopus", "aac")])
def test_an_mp4_cut_from_a_clip_with_apple_lossless_sound_plays_its_sound_in_chromium(tmp_path, name, codec, in_mov):
    """A MOV whose sound is Apple Lossless (ALAC, as Apple's editors and recorders write it): its MP4
    and its matte copied the ALAC, and headless Chromium played their picture for the clip's second
    without a byte of sound (webkitAudioDecodedByteCount 0; an AAC MP4's is thousands). MP4 is the
    output that plays everywhere, so its sound is AAC, encoded again from the ALAC; the MOV, for
    editors and QuickTime, keeps the ALAC as it is. Opus (a WebM's or a Matroska's sound) was copied
    into the MP4 too, which players before Safari 17 do not play: AAC as well."""

    clip = write_clip(tmp_path / name, davis("dog", 24), tone_hz=440, audio_codec=codec)
    paths = [tmp_path / "out.mp4", tmp_path / "out.mov"]
    with rmbg.remove_video(clip, Threshold(), smooth=False, output=paths) as result:
        paths.append(result.save(tmp_path / "matte.mp4", "matte"))
    played = evaluated(tmp_path, PLAYS_SOUND, {name: name for name in ("out.mp4", "matte.mp4")}, args=[*ARGS, AUTOPLAY])
    for name, got in played.items():
        assert got["ended"] == pytest.approx(1.0, abs=0.01), name
        assert got["sound"] > 1000, name  # it was 0: the picture played without its sound
    sounds = {}
    for path in paths:
        with av.open(str(path)) as opened:
            sounds[path.name] = opened.streams.audio[0].codec_context.name
    assert sounds == {"out.mp4": "aac", "out.mov": in_mov, "matte.mp4": "aac"}
