"""Clips whose frames do not all last one frame's time, and clips an edit list trims, as phones and
GIF makers write them.

- A GIF that holds its last frame 2 s, or a variable-rate clip whose last frame is long, was refused as
  "cut off or damaged" after the model had run on every frame (for a hosted provider, after the call
  was paid): the end check took the clip's end (the last frame's start plus its whole length) for
  where the last frame starts.
- A trimmed MP4 keeps the frames before its cut behind an edit list; they were counted (frame limit,
  progress) and the clip refused the same way. A hosted call still holds money for them (a vendor's
  reader may not honour the edit list).
- Outputs ended where the last frame begins (a 3.1 s GIF came out 1.2 s long): every format now
  lasts as its clip does.
- A sound track far longer than the picture was written whole (1 s of video, minutes of sound): the
  sound now ends with the picture.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image

import rmbg
from rmbg.video.decode import frames, probe
from rmbg.video.limits import InvalidVideoError, VideoLimits
from rmbg.video.packets import frame_pts, packet_seconds
from tests.support.browser import CHROMIUM, evaluated
from tests.test_hosted_video import _vendor, payer_for, settled
from tests.video_clips import Threshold, davis, timeline, write_clip

FORMATS = ("webm", "mov", "mp4", "gif", "webp")


def held_gif(folder: Path, hold_ms: int = 2000) -> Path:
    """12 DAVIS frames, 100 ms each, the last held `hold_ms`: 1.1 s + the hold."""
    images = [Image.fromarray(f) for f in davis("dog", 12)]
    path = folder / "held.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=[100] * 11 + [hold_ms], loop=0)
    return path


def remuxed(
    source: Path, path: Path, *, last_ms: int | None = None, cut: float | None = None, moved=("video", "audio")
) -> Path:
    """`source`'s packets into `path` as they are: the last frame shown `last_ms` (its packet's duration),
    or the timestamps of the `moved` tracks moved `cut` s earlier, so the MP4 muxer hides what falls
    before 0 behind an edit list, as `ffmpeg -ss 1 -c copy` trims a clip (sound too)."""
    with av.open(str(source)) as given, av.open(str(path), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in given.streams if s.type in ("video", "audio")}
        video = given.streams.video[0]
        packets = [p for p in given.demux() if p.size and p.stream.index in streams]
        top = max(p.pts for p in packets if p.stream is video)
        for packet in packets:
            if last_ms is not None and packet.stream is video and packet.pts == top:
                packet.duration = round(Fraction(last_ms, 1000) / video.time_base)
            if cut is not None and packet.stream.type in moved:
                shift = round(Fraction(cut).limit_denominator(1000) / packet.stream.time_base)
                packet.pts -= shift
                packet.dts -= shift
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return path


def outputs(clip: Path, folder: Path) -> dict[str, Path]:
    paths = {fmt: folder / f"out.{fmt}" for fmt in FORMATS}
    with rmbg.remove_video(clip, Threshold(), smooth=False, output=list(paths.values())) as result:
        paths["matte"] = result.save(folder / "matte.mp4", "matte")
        assert result.frames == 12
    return paths


def test_a_gif_holding_its_last_frame_is_cut_and_every_output_holds_it(tmp_path):
    clip = held_gif(tmp_path)
    info = probe(clip, VideoLimits())
    assert (info.span, info.last_frame, info.total_frames) == (pytest.approx(3.1), pytest.approx(1.1), 12)
    model = Threshold()
    with rmbg.remove_video(clip, model, smooth=False) as result:
        assert (result.frames, model.calls, result.duration) == (12, 12, pytest.approx(3.1))
    for fmt, path in outputs(clip, tmp_path).items():
        times, duration, _ = timeline(path)
        assert len(times) == 12 and times[-1] == pytest.approx(1.1, abs=0.005), fmt
        assert duration == pytest.approx(3.1, abs=0.01), fmt  # the hold kept: it ended at 1.2 s


def test_a_long_last_frame_of_a_variable_rate_clip_is_kept(tmp_path):
    steady = write_clip(
        tmp_path / "steady.mkv", davis("dog", 12), time_base=Fraction(1, 1000), pts=[i * 40 for i in range(12)]
    )
    clip = remuxed(steady, tmp_path / "long-last.mkv", last_ms=1500)
    for fmt, path in outputs(clip, tmp_path).items():
        times, duration, _ = timeline(path)
        assert times[-1] == pytest.approx(0.44, abs=0.005) and duration == pytest.approx(1.94, abs=0.01), fmt


@pytest.mark.parametrize("sound", [False, True])
def test_a_trimmed_mp4_is_what_its_edit_list_shows(tmp_path, sound):
    """48 frames (2 s), the first second hidden by an edit list: 24 frames, 1 s, counted as such before
    anything runs (progress, the frame limit, Ray's chunks) and written as such."""
    whole = write_clip(tmp_path / "whole.mp4", davis("dog", 48), gop=48, tone_hz=440 if sound else None)
    clip = remuxed(whole, tmp_path / "trimmed.mp4", cut=1.0)
    with av.open(str(clip)) as opened:
        assert sum(1 for p in opened.demux(video=0) if p.size) == 48  # the hidden frames are in the file
    info = probe(clip, VideoLimits())
    assert (info.total_frames, info.span) == (24, pytest.approx(1.0))
    # a vendor's reader may not honour the edit list: a hosted call's hold covers every frame the file holds
    assert packet_seconds(clip) == pytest.approx(2.0, abs=0.03)
    assert len(frame_pts(info, VideoLimits())) == 24
    probe(clip, VideoLimits(max_frames=24))  # 24 frames are within a 24-frame limit
    told: list[tuple[int, int | None]] = []
    out = tmp_path / "out.webm"
    with rmbg.remove_video(clip, Threshold(), smooth=False, output=out, progress=lambda i, n: told.append((i, n))) as r:
        assert (r.frames, r.duration) == (24, pytest.approx(1.0))
    assert told[-1] == (24, 24)
    times, duration, got_sound = timeline(out)
    assert len(times) == 24 and times[0] == pytest.approx(0.0) and duration == pytest.approx(1.0, abs=0.03)
    if sound:
        assert got_sound is not None and got_sound[0] >= -0.03 and got_sound[1] == pytest.approx(1.0, abs=0.05)


def test_a_clip_cut_off_mid_way_is_still_refused(tmp_path):
    """The end check still catches a decoder that gives up early: the packets say 60 frames, the
    decodable data stops after a few (the frames' bytes zeroed past a third of the file)."""
    clip = write_clip(tmp_path / "whole.mkv", davis("dog", 60), gop=12)
    data = bytearray(clip.read_bytes())
    start = len(data) // 3
    data[start:-2000] = bytes(len(data) - 2000 - start)
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(bytes(data))
    with pytest.raises(InvalidVideoError, match="damaged|cut off"):
        info = probe(broken, VideoLimits())
        for _ in frames(info, VideoLimits()):
            pass


def test_a_sound_far_longer_than_the_picture_ends_with_it(tmp_path):
    """Half a second of picture, 20 s of sound: the outputs last half a second, sound included."""
    clip = write_clip(tmp_path / "voiced.mkv", davis("dog", 12), tone_hz=440, tone_seconds=20, audio_codec="libopus")
    for fmt in ("webm", "mp4", "mov"):
        out = tmp_path / f"out.{fmt}"
        with rmbg.remove_video(clip, Threshold(), smooth=False, output=out):
            pass
        times, duration, got_sound = timeline(out)
        assert got_sound is not None and got_sound[1] <= 0.5 + 0.03, fmt
        assert duration == pytest.approx(0.5, abs=0.03), fmt


@pytest.mark.parametrize("name", ["fal", "runware"])
def test_a_held_gif_through_a_hosted_vendor_is_paid_once_and_written(tmp_path, name):
    """Refused after the vendor was paid, before: now the answer is written, one call, settled."""
    vendor = _vendor(name)
    clip = held_gif(tmp_path)  # 3.1 s: 4 billed seconds
    with vendor.fake:
        payer = payer_for(vendor)
        out = tmp_path / "out.webm"
        with rmbg.remove_video(clip, vendor.remover(), output=out, payer=payer) as result:
            assert result.frames == 12
        assert len(vendor.paid_calls()) == 1
        assert [state for state, _ in settled(payer.policy)] == ["settled"]
    times, duration, _ = timeline(out)
    assert len(times) == 12 and duration == pytest.approx(3.1, abs=0.01)


@pytest.mark.parametrize("suffix", ["mkv", "mp4"])
def test_a_clip_whose_timestamps_start_late_is_whole(tmp_path, suffix):
    """Timestamps from 1 s (a stream's recording, a cut kept with its times): a Matroska header's length
    is its last timestamp (1.5 s), which was held against the 0.5 s the packets span and the clip
    refused as cut off. Its 12 frames are written (their times: the test below); cut short, it is
    still refused."""
    base = write_clip(tmp_path / "base.mp4", davis("dog", 12), tone_hz=440)
    clip = remuxed(base, tmp_path / f"late.{suffix}", cut=-1.0)
    out = tmp_path / "out.webm"
    with rmbg.remove_video(clip, Threshold(), smooth=False, output=out) as result:
        assert (result.frames, result.duration) == (12, pytest.approx(0.5, abs=0.002))
    assert len(timeline(out)[0]) == 12
    if suffix == "mkv":
        data = clip.read_bytes()
        cut = tmp_path / "late-cut.mkv"
        cut.write_bytes(data[: len(data) * 2 // 5])
        with pytest.raises(InvalidVideoError, match="cut off|damaged"):
            with rmbg.remove_video(cut, Threshold(), smooth=False):
                pass


def spans(path: Path) -> dict[str, tuple[float, float]]:
    """Each track's (first packet's start, last packet's end) in seconds, from every packet of the file."""
    found: dict[str, tuple[Fraction, Fraction]] = {}
    with av.open(str(path)) as opened:
        for packet in opened.demux():
            if packet.size and packet.pts is not None:
                start = packet.pts * packet.stream.time_base
                end = start + (packet.duration or 0) * packet.stream.time_base
                low, high = found.get(packet.stream.type, (start, end))
                found[packet.stream.type] = (min(low, start), max(high, end))
    return {kind: (float(low), float(high)) for kind, (low, high) in found.items()}


@pytest.mark.parametrize("sound_after", [0.0, 0.2])
@pytest.mark.parametrize("suffix", ["mkv", "mp4"])
def test_the_outputs_of_a_clip_that_starts_late_start_at_0(tmp_path, suffix, sound_after):
    """Half a second of picture from 1 s on, its sound (AAC) from 0.021 s before it (the encoder's priming
    left shown) or from 0.18 s after it. Each output kept the clip's times: a WebM said 1.5 s and showed
    nothing for a second, an MP4 or a MOV began a second late. Now every output starts at 0, from the
    earlier of the picture and the sound, both moved by the same seconds: the sound keeps its offset to
    the picture (to the millisecond where it is copied, as into MP4 and MOV; within a frame where it is
    encoded again, Opus for the WebM, whose encoders prime and skip a few milliseconds) and still ends
    with the picture."""
    frame = 1 / 24
    base = write_clip(tmp_path / "base.mp4", davis("dog", 12), tone_hz=440)
    clip = remuxed(base, tmp_path / f"late.{suffix}", cut=-1.0)
    if sound_after:
        clip = remuxed(clip, tmp_path / f"later.{suffix}", cut=-sound_after, moved=("audio",))
    given = spans(clip)
    assert given["video"][0] == pytest.approx(1.0) and given["video"][1] == pytest.approx(1.5, abs=0.002)
    zero = min(given["video"][0], given["audio"][0])  # where the outputs' time 0 falls
    lead = given["audio"][0] - given["video"][0]  # -0.021 s, or 0.179 s
    paths = [tmp_path / f"out.{fmt}" for fmt in ("webm", "mp4", "mov")]
    with rmbg.remove_video(clip, Threshold(), smooth=False, output=paths) as result:
        paths.append(result.save(tmp_path / "matte.mp4", "matte"))
    for path in paths:
        got = spans(path)
        close = frame if path.suffix == ".webm" else 0.001  # the sound encoded again, or copied
        first = min(start for start, _ in got.values())
        assert first == pytest.approx(0.0, abs=close), path.name  # it was 0.97-1.0 s
        assert got["video"][0] == pytest.approx(given["video"][0] - zero, abs=0.001), path.name
        length = got["video"][1] - got["video"][0]
        assert length == pytest.approx(given["video"][1] - given["video"][0], abs=0.002), path.name
        assert got["audio"][0] - got["video"][0] == pytest.approx(lead, abs=close), path.name
        assert got["audio"][1] <= got["video"][1] + frame, path.name  # the sound ends with the picture
        with av.open(str(path)) as opened:
            seconds = opened.duration / 1_000_000
        assert seconds == pytest.approx(given["video"][1] - zero, abs=frame), path.name  # a WebM's was 1.51 s


PLAYED = """async (src) => {
    if (src.endsWith('.gif') || src.endsWith('.webp')) {  // as a page shows an animation: its frames' delays
        const answer = await fetch(src);
        const decoder = new ImageDecoder({data: answer.body, type: answer.headers.get('content-type')});
        await decoder.completed;
        let total = 0;
        for (let i = 0; i < decoder.tracks.selectedTrack.frameCount; i++) {
            const {image} = await decoder.decode({frameIndex: i}); total += image.duration; image.close();
        }
        return total / 1e6;
    }
    const v = document.createElement('video'); v.muted = true; v.preload = 'auto'; v.src = src;
    await new Promise((ok, no) => { v.onloadedmetadata = ok; v.onerror = () => no(String(v.error?.message)); });
    return v.duration; }"""


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_chromium_plays_each_output_of_a_held_gif_for_as_long_as_the_gif(tmp_path):
    """The GIF itself and its WebM, MP4, matte, GIF and WebP cut-outs in headless Chromium: each lasts
    3.1 s, as the GIF does (MOV is left out: Chromium does not play ProRes). And a clip whose timestamps
    start at 1 s (half a second of picture, its sound 0.021 s before it): its WebM played 1.5 s, the first
    second of it nothing; now half a second and the sound's lead, as its MP4."""

    clip = held_gif(tmp_path)
    files = {fmt: path for fmt, path in outputs(clip, tmp_path).items() if fmt != "mov"} | {"input": clip}
    late = remuxed(write_clip(tmp_path / "base.mp4", davis("dog", 12), tone_hz=440), tmp_path / "late.mkv", cut=-1.0)
    late_out = [tmp_path / "late-out.webm", tmp_path / "late-out.mp4"]
    with rmbg.remove_video(late, Threshold(), smooth=False, output=late_out):
        pass
    expected = {fmt: pytest.approx(3.1, abs=0.01) for fmt in files} | {
        path.name: pytest.approx(0.521, abs=0.03) for path in late_out
    }
    files |= {path.name: path for path in late_out}
    played = evaluated(tmp_path, PLAYED, {fmt: path.name for fmt, path in files.items()})
    assert played == expected


def test_a_sound_that_starts_after_the_picture_ends_is_left_out(tmp_path):
    """Half a second of picture, its sound from 1 s on: since the sound ends with the picture, a WebM
    kept an empty sound track (no packet in it), which a player may wait on; now no track."""
    voiced = write_clip(tmp_path / "voiced.mkv", davis("dog", 12), tone_hz=440, tone_seconds=1, audio_codec="libopus")
    clip = remuxed(voiced, tmp_path / "sound-late.mkv", cut=-1.0, moved=("audio",))
    for fmt in ("webm", "mp4", "mov"):
        path = tmp_path / f"out.{fmt}"
        with rmbg.remove_video(clip, Threshold(), smooth=False, output=path):
            pass
        with av.open(str(path)) as written:
            assert [s.type for s in written.streams] == ["video"], fmt


def test_sound_an_edit_list_hides_is_not_copied_into_a_webm(tmp_path):
    """A trimmed MP4 with Opus sound: its hidden first second of sound was copied into the WebM (which has
    no edit list) as a second of sound before the picture; MP4 keeps it hidden behind an edit list."""
    whole = write_clip(tmp_path / "whole.mp4", davis("dog", 48), gop=48, tone_hz=440, audio_codec="libopus")
    clip = remuxed(whole, tmp_path / "trimmed.mp4", cut=1.0)
    webm, mp4 = tmp_path / "out.webm", tmp_path / "out.mp4"
    with rmbg.remove_video(clip, Threshold(), smooth=False, output=[webm, mp4]):
        pass
    with av.open(str(webm)) as written:
        sound = written.streams.audio[0]
        starts = [float(p.pts * sound.time_base) for p in written.demux(sound) if p.size]
    assert sound.codec_context.name == "opus" and min(starts) > -0.05 and max(starts) < 1.0
    with av.open(str(mp4)) as written:
        shown = [float(f.time) for f in written.decode(audio=0)]
    # the MP4's sound is AAC (encoded again from the Opus: rmbg.video.audio), in frames of 1024 samples: its last
    # starts within one frame of the picture's end, where the hidden second shown would run to 2 s
    assert shown[0] == pytest.approx(0.0, abs=0.03) and shown[-1] < 1.0 + 1024 / 48000
