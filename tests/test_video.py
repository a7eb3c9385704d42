"""rmbg.remove_video: formats and their alpha, timing, rotation, audio, stop (a cheap threshold 'model')."""

from __future__ import annotations

import threading
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.video import VideoStopped
from rmbg.video.decode import frames, probe
from rmbg.video.limits import VideoLimits
from tests.video_clips import Threshold, davis, decoded, write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "dog.mp4", davis("dog", 12))


@pytest.fixture(scope="module")
def result(clip):
    out = rmbg.remove_video(clip, Threshold(), smooth=False)
    yield out
    out.close()


def test_result_knows_its_frames_duration_time_and_cost(result):
    assert result.frames == 12 and result.size == (214, 120)
    assert result.duration == pytest.approx(0.5)  # 12 frames at 24 fps
    assert result.seconds.total >= result.seconds.model > 0
    assert result.cost.source == "free" and result.provider == "threshold"
    assert len(list(result.mattes())) == 12


def test_mattes_are_the_providers_frame_by_frame(result, clip):
    info = probe(clip, VideoLimits())
    for frame, alpha in zip(frames(info, VideoLimits()), result.mattes(), strict=True):
        expected = np.asarray(Threshold().matte(Image.fromarray(frame.rgb)).alpha)
        assert np.array_equal(alpha, expected)


@pytest.mark.parametrize("fmt, tolerance", [("webm", 12.0), ("mov", 1.0)])
def test_transparent_video_keeps_alpha_and_timing(result, tmp_path, fmt, tolerance):
    path = result.save(tmp_path / f"out.{fmt}")
    out, times = decoded(path, alpha=True)
    mattes = list(result.mattes())
    assert len(out) == 12
    assert times == pytest.approx([i / 24 for i in range(12)], abs=1e-3)
    for rgba, alpha in zip(out, mattes, strict=True):
        assert rgba.shape == (120, 214, 4)
        assert np.abs(rgba[..., 3].astype(int) - alpha).mean() < tolerance
        assert (rgba[..., 3][alpha == 255] > 200).mean() > 0.97 and (rgba[..., 3][alpha == 0] < 55).mean() > 0.97


def test_prores_keeps_the_alpha_exactly_at_full_size(tmp_path):
    """ProRes 4444's alpha is lossless: a full-size clip's alpha comes back exactly, frame for frame
    (with the encoder's default threads it came back up to 128 levels off in blocks, differently
    on every run)."""
    clip = write_clip(tmp_path / "dog.mp4", davis("dog", 4, size=None))
    with rmbg.remove_video(clip, Threshold(), smooth=False) as result:
        out, _ = decoded(result.save(tmp_path / "out.mov"), alpha=True)
        mattes = list(result.mattes())
    assert len(out) == len(mattes) == 4
    for rgba, alpha in zip(out, mattes, strict=True):
        assert rgba.shape == (480, 854, 4) and 0 < alpha.mean() < 255
        assert np.array_equal(rgba[..., 3], alpha)


def test_webp_gives_every_visible_pixel_back_at_full_size(tmp_path):
    """The animated WebP is lossless at the effort it is written with (2: rmbg.video.encode.WEBP_OPTIONS):
    a full-size clip's alpha comes back exactly and so does the colour wherever alpha > 0, frame for frame
    (under alpha 0 libwebp may store any colour)."""
    frames = davis("dog", 4, size=None)
    clip = write_clip(tmp_path / "dog.mp4", frames, codec="ffv1", pix_fmt="bgr0")  # no loss on the way in
    with rmbg.remove_video(clip, Threshold(), smooth=False) as result:
        with Image.open(result.save(tmp_path / "out.webp")) as image:
            mattes = list(result.mattes())
            assert image.n_frames == len(mattes) == 4
            for i, (rgb, alpha) in enumerate(zip(frames, mattes, strict=True)):
                image.seek(i)
                got = np.asarray(image.convert("RGBA"))
                shown = alpha > 0
                assert got.shape == (480, 854, 4) and 0 < shown.mean() < 1
                assert np.array_equal(got[..., 3], alpha), i
                assert np.array_equal(got[shown][:, :3], rgb[shown]), i


def test_gif_and_webp_keep_alpha_and_frame_count(result, tmp_path):
    mattes = list(result.mattes())
    for fmt in ("gif", "webp"):
        with Image.open(result.save(tmp_path / f"out.{fmt}")) as image:
            assert image.n_frames == 12 and image.info["loop"] == 0  # both loop for ever (WebP played once)
            for i, alpha in enumerate(mattes):
                image.seek(i)
                got = np.asarray(image.convert("RGBA"))[..., 3]
                want = np.where(alpha >= 128, 255, 0) if fmt == "gif" else alpha
                assert np.array_equal(got, want), (fmt, i)
                assert image.info["duration"] == pytest.approx(1000 / 24, abs=10 if fmt == "gif" else 1)


def test_mp4_on_a_colour_plays_everywhere_and_matte_is_the_alpha(result, tmp_path):
    mp4 = result.save(tmp_path / "out.mp4", background="#00ff00")
    with av.open(str(mp4)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.codec_context.pix_fmt, s.width, s.height) == ("h264", "yuv420p", 214, 120)
    rgb, _ = decoded(mp4)
    alpha = next(result.mattes())
    source = davis("dog", 1)[0].astype(int)
    a = alpha[..., None].astype(int)
    intended = (source * a + np.array([0, 255, 0]) * (255 - a)) / 255
    # H.264 4:2:0 halves the colour resolution, and this threshold matte is speckled: a loose bound
    assert len(rgb) == 12 and np.abs(rgb[0].astype(int) - intended).mean() < 12
    ground = rgb[0][alpha == 0].astype(int)
    assert (ground[:, 1] - ground[:, 0]).mean() > 120  # the background is green
    matte, times = decoded(result.save(tmp_path / "m.mp4", "matte"))
    assert len(matte) == 12 and np.abs(matte[0][..., 0].astype(int) - alpha).mean() < 6


def test_mp4s_have_their_index_first_so_a_page_plays_them_as_they_arrive(result, tmp_path):
    """The MP4 muxer writes its index (the moov box) after the frames unless asked to move it: a browser or a
    phone given such a file over HTTP fetches its end before playing, or, without range requests, all of it.
    Both MP4 outputs (on a colour, the matte) have the moov box before the frames (mdat)."""

    def top_level_boxes(path) -> list[str]:
        data, boxes, at = path.read_bytes(), [], 0
        while at + 8 <= len(data):
            size = int.from_bytes(data[at : at + 4], "big")
            boxes.append(data[at + 4 : at + 8].decode("latin-1"))
            at += size if size >= 8 else len(data)
        return boxes

    for path in (
        result.save(tmp_path / "out.mp4", background="white"),
        result.save(tmp_path / "m.mp4", format="matte"),
    ):
        boxes = top_level_boxes(path)
        assert boxes.index("moov") < boxes.index("mdat"), boxes


def test_odd_size_mp4_is_padded_to_even(tmp_path):
    clip = write_clip(tmp_path / "odd.webm", [f[:119, :213] for f in davis("dog", 4)], codec="libvpx-vp9")
    with rmbg.remove_video(clip, Threshold(), output=tmp_path / "odd.mp4", format="mp4") as out:
        assert out.size == (213, 119)
    rgb, _ = decoded(tmp_path / "odd.mp4")
    assert rgb[0].shape == (120, 214, 3) and len(rgb) == 4


def test_variable_frame_rate_keeps_each_timestamp(tmp_path):
    tb = Fraction(1, 1000)
    pts = [0, 40, 120, 130, 300, 340, 500, 620]
    clip = write_clip(tmp_path / "vfr.mkv", davis("dog", 8), pts=pts, time_base=tb)
    with rmbg.remove_video(clip, Threshold(), output=[tmp_path / "vfr.webm", tmp_path / "vfr.mp4"]) as out:
        assert out.frames == 8
    for name in ("vfr.webm", "vfr.mp4"):
        _, times = decoded(tmp_path / name)
        assert times == pytest.approx([p / 1000 for p in pts], abs=1e-3), name


def test_rotated_clip_comes_out_upright(tmp_path):
    frames_ = [np.zeros((48, 96, 3), np.uint8) for _ in range(3)]
    for f in frames_:
        f[:, :16] = 255  # a white band on the left of the stored picture
    clip = write_clip(tmp_path / "rot.mp4", frames_, rotation=90)
    with rmbg.remove_video(clip, Threshold(), output=tmp_path / "rot.webm") as out:
        assert out.size == (48, 96)  # shown portrait
        alpha = next(out.mattes())
    # 90 degrees counter-clockwise: the left band is at the bottom
    assert alpha[-14:].min() == 255 and alpha[:-18].max() == 0


def test_audio_is_kept_or_dropped(tmp_path):
    clip = write_clip(tmp_path / "tone.mp4", davis("dog", 12), tone_hz=440)
    with rmbg.remove_video(clip, Threshold(), output=[tmp_path / "a.webm", tmp_path / "a.mp4"]) as out:
        out.save(tmp_path / "silent.mp4", audio=False)
    for name, codec in (("a.webm", "opus"), ("a.mp4", "aac")):
        with av.open(str(tmp_path / name)) as c:
            (audio,) = c.streams.audio
            assert audio.codec_context.name == codec
            samples = sum(f.samples for f in c.decode(audio))
            assert samples / audio.codec_context.sample_rate == pytest.approx(0.5, abs=0.05)
    with av.open(str(tmp_path / "silent.mp4")) as c:
        assert not c.streams.audio and len(c.streams.video) == 1


def test_stop_leaves_nothing_at_the_output(clip, tmp_path):
    stop = threading.Event()
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done == 3:
            stop.set()

    with pytest.raises(VideoStopped, match="Stopped after 3 frame"):
        rmbg.remove_video(clip, Threshold(), output=tmp_path / "out.webm", progress=progress, stop=stop)
    assert seen == [(1, 12), (2, 12), (3, 12)]
    assert list(tmp_path.iterdir()) == []


def test_hosted_providers_are_refused_before_anything_is_sent(clip):
    hosted = Threshold()
    hosted.kind = "hosted"
    hosted.id = "paid"
    with pytest.raises(rmbg.InvalidRequestError, match="paid is a hosted image provider: on video"):
        rmbg.remove_video(clip, hosted)
    assert hosted.calls == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_cutout_frame_is_its_colours_where_seen_and_zero_where_not(seed):
    """cutout_rgba (what WebM, ProRes and WebP encode): RGB kept where alpha > 0, zeroed where it
    is 0, alpha as the fourth channel; from a view of a larger frame too (decoders hand those)."""
    from rmbg.video.encode import cutout_rgba
    from rmbg.video.pipeline import VideoFrame

    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, (61, 90, 3), dtype=np.uint8)
    rgb = big[:, 3:80]  # not contiguous
    alpha = np.where(rng.random((61, 77)) < 0.4, 0, rng.integers(1, 256, (61, 77))).astype(np.uint8)
    rgba = cutout_rgba(VideoFrame(0, 0, 0.0, rgb, alpha))
    assert rgba.shape == (61, 77, 4) and rgba.dtype == np.uint8
    assert np.array_equal(rgba[..., 3], alpha)
    assert np.array_equal(rgba[..., :3][alpha > 0], rgb[alpha > 0])
    assert not rgba[..., :3][alpha == 0].any() and (alpha == 0).sum() > 0


def test_decoded_frames_are_contiguous_whatever_the_width_or_rotation(clip, tmp_path):
    """PyAV pads each row of a decoded frame (214 px: 642 bytes of colour in a longer row); a
    strided frame cost every later step a copy (PIL's fromarray at 854x480: 3.5 ms instead of
    0.27), so frames come out C-contiguous, with the same pixels."""
    rotated = write_clip(tmp_path / "rot.mp4", [np.full((48, 94, 3), 90, np.uint8)] * 2, rotation=90)
    for path, size in ((clip, (120, 214)), (rotated, (94, 48))):
        info = probe(path, VideoLimits())
        for frame in frames(info, VideoLimits()):
            assert frame.rgb.shape[:2] == size and frame.rgb.flags.c_contiguous


class Grouped(Threshold):
    """Asks for frames in groups (as the app's local models do on ZeroGPU: one GPU allocation a group)."""

    frames_per_call = 5

    def __init__(self):
        super().__init__()
        self.groups = []

    def matte(self, image):
        self.groups.append(1)
        return super().matte(image)

    def mattes(self, images):
        self.groups.append(len(images))
        return [Threshold.matte(self, image) for image in images]


def test_frames_in_groups_give_the_frame_by_frame_output(clip):
    grouped, seen = Grouped(), []
    out = rmbg.remove_video(clip, grouped, progress=lambda done, total: seen.append(done))
    alone = rmbg.remove_video(clip, Threshold())
    try:
        assert grouped.groups == [5, 5, 2]  # the last group is what the clip had left
        assert seen == list(range(1, 13))  # progress still counts frames
        assert all(np.array_equal(a, b) for a, b in zip(out.mattes(), alone.mattes(), strict=True))
    finally:
        out.close()
        alone.close()


def test_save_never_writes_over_the_clip_it_came_from(tmp_path):
    """remove_video refused output=clip, but result.save(clip) replaced the clip with its own cut-out."""
    clip = write_clip(tmp_path / "dog.webm", davis("dog", 4), codec="libvpx-vp9")
    before = clip.read_bytes()
    with rmbg.remove_video(clip, Threshold()) as result:
        with pytest.raises(rmbg.InvalidRequestError, match=r"output names the clip itself \(dog.webm\)"):
            result.save(tmp_path / "." / "dog.webm")
    assert clip.read_bytes() == before


@pytest.mark.parametrize("size", [(5, 300), (300, 5), (4, 40)])
def test_a_frame_under_8_pixels_on_a_side_is_smoothed_without_flow(tmp_path, size):
    """OpenCV's DIS flow refuses a frame whose shorter side is under 8: a 5x300 clip was a cv2.error."""
    width, height = size
    frames = [np.full((height, width, 3), 40 * i, np.uint8) for i in range(4)]
    clip = write_clip(tmp_path / "thin.mkv", frames, pix_fmt="yuv444p")
    with rmbg.remove_video(clip, Threshold(), smooth=True) as result:
        assert result.frames == 4
