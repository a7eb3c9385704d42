"""Video colours as people play them: a cut-out clip shows its subject in the colours the input showed.

Players read a clip's colours through its tags (BT.709, BT.601; limited range) and guess where it has
none. Chromium's guesses (test_chromium_plays_the_inputs_and_their_cut_outs_alike plays the untagged
inputs): an untagged H.264 is BT.709 from 720 rows up and BT.601 below, an untagged VP9 or AV1
BT.601 at every size.
rmbg reads an input as Chromium plays it and writes every YUV output (WebM, MOV, MP4, the matte)
converted and tagged BT.709, limited range, so no player has to guess. Before, MP4 and WebM were
written untagged with swscale's BT.601 numbers: an HD MP4's orange played visibly off in Chromium.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest

import rmbg
from tests.support.browser import CHROMIUM, evaluated
from tests.video_clips import Threshold, write_frames

SUBJECT, BACKDROP = (230, 120, 40), (20, 40, 120)  # Threshold(100): the subject's grey is over 100, not the rest
TOLERANCE = 6  # levels: 4:2:0, the encoders' quantisation, the players' rounding; a wrong guess is off by 10-13
MATRIX = {"709": ("ITU709", 1), "601": ("ITU601", 6)}  # swscale's name, the stream's tag (AVCOL_SPC_*)


def clip(path: Path, size: tuple[int, int], codec: str, numbers: str, tagged: bool, frames: int = 2) -> Path:
    """A clip of `frames` frames: the subject in the middle, the backdrop around it, converted to
    YUV with the `numbers` matrix (limited range); tagged as such, or not tagged at all."""
    width, height = size
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:] = BACKDROP
    rgb[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = SUBJECT
    tags = {}
    if tagged:
        tag = MATRIX[numbers][1]
        tags = {"colorspace": tag, "color_primaries": tag, "color_trc": tag, "color_range": 1}

    def frame() -> av.VideoFrame:
        return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format="yuv420p", dst_colorspace=MATRIX[numbers][0], dst_color_range="MPEG"
        )

    return write_frames(path, frame, frames, codec, "yuv420p", **tags)


def tags_and_middle(path: Path) -> tuple[tuple[int, int], tuple[int, ...]]:
    """((colorspace, color_range) of its first frame, the middle pixel as its tags say (RGB, or RGBA
    for VP9 read with libvpx, which keeps the alpha)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.name == "vp9":
            decoder = av.CodecContext.create("libvpx-vp9", "r")
            first = next(f for packet in container.demux(stream) if packet.size for f in decoder.decode(packet))
        else:
            first = next(container.decode(stream))
        tags = (int(first.colorspace), int(first.color_range))
        pixels = first.to_ndarray(format="rgb24")
    h, w = pixels.shape[:2]
    return tags, tuple(int(v) for v in pixels[h // 2, w // 2])


INPUTS = {
    "H.264 1280x720 untagged (played as BT.709)": ((1280, 720), "libx264", "709", False),
    "H.264 320x240 untagged (played as BT.601)": ((320, 240), "libx264", "601", False),
    "H.264 1280x536 untagged (wide, under 720 rows: played as BT.601)": ((1280, 536), "libx264", "601", False),
    "VP9 1280x720 untagged (played as BT.601)": ((1280, 720), "libvpx-vp9", "601", False),
    "AV1 1280x720 untagged (played as BT.601)": ((1280, 720), "libsvtav1", "601", False),
    "H.264 320x240 tagged BT.709": ((320, 240), "libx264", "709", True),
    "H.264 1280x720 tagged BT.709 (as phones tag theirs)": ((1280, 720), "libx264", "709", True),
    "H.264 1280x720 tagged BT.601": ((1280, 720), "libx264", "601", True),
}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Each input, cut out once, saved as MP4 and WebM (what a browser plays); the first also as MOV
    and the matte (their tags are written as the others', whatever the input)."""
    made = {}
    for n, (name, (size, codec, numbers, tagged)) in enumerate(INPUTS.items()):
        folder = tmp_path_factory.mktemp(f"in{n}")
        source = clip(folder / ("in.webm" if codec == "libvpx-vp9" else "in.mp4"), size, codec, numbers, tagged)
        with rmbg.remove_video(source, Threshold(), smooth=False, audio=False) as result:
            formats = ("mp4", "webm", "mov") if n == 0 else ("mp4", "webm")
            made[name] = {fmt: result.save(folder / f"out.{fmt}") for fmt in formats}
            if n == 0:
                made[name]["matte"] = result.save(folder / "matte.mp4", format="matte")
        made[name]["input"] = source
    return made


@pytest.mark.parametrize("name", list(INPUTS))
def test_every_yuv_output_is_tagged_and_shows_the_subject_as_the_input_played(outputs, name):
    for fmt, path in outputs[name].items():
        if fmt == "input":
            continue
        tags, middle = tags_and_middle(path)
        assert tags == (1, 1), (fmt, tags)  # BT.709, limited range: said, not left to a guess
        want = (255, 255, 255) if fmt == "matte" else SUBJECT
        assert max(abs(a - b) for a, b in zip(middle, want)) <= TOLERANCE, (fmt, middle)


# HDR clips as phones record them (10 bits, BT.2020; HLG by default on iPhones, PQ for HDR10), in AV1
# (Chromium plays it): the subject and the backdrop as HLG or PQ signal levels.
HDR = {"HLG": (18, (0.80, 0.62, 0.48), (0.20, 0.26, 0.40)), "PQ": (16, (0.62, 0.52, 0.44), (0.30, 0.33, 0.40))}


def hdr_clip(path: Path, transfer: int, subject, backdrop, frames: int = 2) -> Path:
    width, height = 192, 128
    signal = np.zeros((height, width, 3))
    signal[:] = backdrop
    signal[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = subject
    rgb16 = np.round(signal * 65535).astype(np.uint16)

    def frame() -> av.VideoFrame:
        return av.VideoFrame.from_ndarray(rgb16, format="rgb48le").reformat(
            format="yuv420p10le", dst_colorspace=9, dst_color_range="MPEG"
        )

    tags = {"colorspace": 9, "color_primaries": 9, "color_trc": transfer, "color_range": 1}  # BT.2020, limited
    return write_frames(path, frame, frames, "libsvtav1", "yuv420p10le", options={"crf": "10"}, **tags)


@pytest.fixture(scope="module")
def hdr_outputs(tmp_path_factory):
    made = {}
    for name, (transfer, subject, backdrop) in HDR.items():
        folder = tmp_path_factory.mktemp(name)
        source = hdr_clip(folder / "in.mp4", transfer, subject, backdrop)
        with rmbg.remove_video(source, Threshold(), smooth=False, audio=False) as result:
            made[name] = {"input": source, "mp4": result.save(folder / "o.mp4"), "webm": result.save(folder / "o.webm")}
    return made


def play_in_chromium(files: dict, folder: Path) -> dict:
    """Each file in a <video> of headless Chromium, drawn to a canvas: its middle pixel."""
    served = {}
    folder.mkdir(exist_ok=True)
    for n, (key, path) in enumerate(files.items()):
        target = folder / f"{n}{path.suffix}"
        target.write_bytes(path.read_bytes())
        served[key] = target.name
    # drawn once a frame has been presented (a frame drawn at "loadeddata" was sometimes still black)
    middle = """async (src) => {
        const v = document.createElement('video'); v.muted = true; v.src = src; document.body.appendChild(v);
        await new Promise((ok, no) => { v.onloadeddata = ok; v.onerror = () => no(String(v.error?.message)); });
        await new Promise(ok => { v.requestVideoFrameCallback(() => ok()); v.play(); });
        v.pause();
        const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
        const g = c.getContext('2d'); g.drawImage(v, 0, 0);
        const d = g.getImageData(c.width / 2, c.height / 2, 1, 1).data; return [d[0], d[1], d[2]]; }"""
    return {key: tuple(rgb) for key, rgb in evaluated(folder, middle, served).items()}


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_an_hdr_clip_is_cut_out_in_the_colours_chromium_shows_it_in(hdr_outputs, tmp_path):
    """An HLG or PQ clip's cut-out (SDR, BT.709) shows its subject as Chromium shows the clip on an SDR
    screen. HDR numbers were read as SDR before: this HLG subject came out (204, 157, 122) where Chromium
    shows (231, 125, 96), this PQ one (157, 131, 111) for (245, 124, 82). The tone map was fitted on other
    colours (rmbg.video.colour): these judge it."""
    files = {(name, kind): path for name, made in hdr_outputs.items() for kind, path in made.items()}
    shown = play_in_chromium(files, tmp_path)
    for name in HDR:
        clip = shown[(name, "input")]
        for kind in ("mp4", "webm"):
            assert max(abs(a - b) for a, b in zip(shown[(name, kind)], clip)) <= TOLERANCE, (name, kind, shown)


def test_an_hdr_clips_outputs_are_tagged_sdr(hdr_outputs):
    for made in hdr_outputs.values():
        for kind in ("mp4", "webm"):
            assert tags_and_middle(made[kind])[0] == (1, 1)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_chromium_plays_the_inputs_and_their_cut_outs_alike(outputs, tmp_path):
    """Each input and its MP4 and WebM cut-outs in a <video> of headless Chromium, drawn to a canvas:
    the subject's middle pixel is SUBJECT in all, within TOLERANCE. Before the outputs were tagged,
    three played off: (240, 126, 39) for the MP4s of the HD BT.601 inputs, (217, 113, 44) for the
    WebM of the untagged HD H.264."""
    files = {(name, fmt): outputs[name][fmt] for name in INPUTS for fmt in ("input", "mp4", "webm")}
    shown = play_in_chromium(files, tmp_path)
    off = {key: colour for key, colour in shown.items() if max(abs(a - b) for a, b in zip(colour, SUBJECT)) > TOLERANCE}
    assert off == {}


def test_a_backdrop_photo_behind_a_clip_keeps_its_colours(outputs, tmp_path):
    """A Display P3 photo as an MP4's backdrop: its numbers were taken as sRGB (dull). Now they go
    through its profile into the clip's BT.709, as the photo shows."""
    from PIL import Image, ImageCms

    from tests.support.colour import DISPLAY_P3

    name = next(iter(INPUTS))
    photo = Image.new("RGB", (64, 64), (220, 40, 60))
    photo.info["icc_profile"] = DISPLAY_P3
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    p3 = ImageCms.ImageCmsProfile(io.BytesIO(DISPLAY_P3))
    intent = ImageCms.Intent.RELATIVE_COLORIMETRIC
    want = ImageCms.profileToProfile(photo, p3, srgb, renderingIntent=intent).getpixel((0, 0))
    with rmbg.remove_video(outputs[name]["input"], Threshold(), smooth=False, audio=False) as result:
        out = result.save(tmp_path / "on-photo.mp4", background=photo)
    with av.open(str(out)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    corner = tuple(int(v) for v in first[4, 4])
    assert want != (220, 40, 60) and max(abs(a - b) for a, b in zip(corner, want)) <= TOLERANCE, (corner, want)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_an_untagged_h264_is_read_as_chromium_plays_it_at_every_size(tmp_path):
    """Chromium's guess for an untagged H.264 goes by its rows (BT.709 from 720 up), whatever the width:
    rmbg's decoding agrees with what Chromium shows, size by size (a rule by width read 1280x536 off)."""
    from rmbg.video.decode import frames, probe
    from rmbg.video.limits import VideoLimits

    sizes = [(960, 720), (576, 1024), (1278, 720), (1280, 536), (960, 718), (2048, 700)]
    clips = {size: clip(tmp_path / f"{size[0]}x{size[1]}.mp4", size, "libx264", "601", False) for size in sizes}
    shown = play_in_chromium(clips, tmp_path / "served")
    limits = VideoLimits(max_long=4096, max_short=4096)
    for size, path in clips.items():
        rgb = next(frames(probe(path, limits), limits)).rgb
        ours = tuple(int(v) for v in rgb[rgb.shape[0] // 2, rgb.shape[1] // 2])
        assert max(abs(a - b) for a, b in zip(ours, shown[size])) <= TOLERANCE, (size, ours, shown[size])
