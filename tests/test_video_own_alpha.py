"""A clip with its own alpha keeps it, as an image does (rmbg.video.planes, VideoFrame.of).

A transparent WebM (VP8/VP9 with an alpha layer), a ProRes 4444 MOV with alpha or a GIF with a
transparent colour: what was transparent in the clip stays transparent in its cut-out, whatever colours
lie under it (an editor's export keeps the scene there) and whatever a model makes of them. Before, the
clip's alpha was dropped as it was decoded (FFmpeg's own VP9 decoder does not read the layer) and the
model's matte alone was written: with a model that keeps everything, the cut-out was opaque everywhere.
Here the "model" keeps everything (alpha 255), so the cut-out's alpha must be the clip's own."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

import rmbg
from rmbg.video.decode import probe
from rmbg.video.limits import VideoLimits
from tests.video_clips import Threshold, davis, davis_masks, decoded, write_clip, write_frames

COUNT = 8
SIZE = (214, 120)


def scene_and_masks() -> tuple[tuple[np.ndarray, ...], list[np.ndarray]]:
    """DAVIS frames and their human masks, the masks' edges softened (an alpha, not a cut)."""
    masks = [np.asarray(Image.fromarray(m).resize(SIZE, Image.Resampling.BILINEAR)) for m in davis_masks("dog", COUNT)]
    return davis("dog", COUNT, SIZE), masks


def with_alpha(path: Path, codec: str, pix_fmt: str, options: dict[str, str]) -> tuple[Path, list[np.ndarray]]:
    """The scene with its masks as alpha, in `codec`: the colours under the transparent parts kept."""
    rgbs, masks = scene_and_masks()
    made = iter(zip(rgbs, masks, strict=True))

    def frame() -> av.VideoFrame:
        rgb, mask = next(made)
        return av.VideoFrame.from_ndarray(np.dstack([rgb, mask]), format="rgba")

    return write_frames(path, frame, COUNT, codec, pix_fmt, options=options), masks


CLIPS = {
    "webm-vp9": ("clip.webm", "libvpx-vp9", "yuva420p", {"lossless": "1"}),
    "webm-vp8": ("clip.webm", "libvpx", "yuva420p", {"auto-alt-ref": "0", "b": "4M"}),  # alpha needs no alt-ref
    "mov-prores4444": ("clip.mov", "prores_ks", "yuva444p10le", {"profile": "4"}),
}


@pytest.mark.parametrize("kind", list(CLIPS))
def test_a_clips_own_alpha_is_kept_in_its_cut_out(kind, tmp_path):
    name, codec, pix_fmt, options = CLIPS[kind]
    clip, masks = with_alpha(tmp_path / name, codec, pix_fmt, options)
    assert probe(clip, VideoLimits()).alpha
    out = tmp_path / "out.webm"
    result = rmbg.remove_video(clip, Threshold(-1), output=out)  # the model keeps everything; smoothing on
    tolerance = 1 if kind != "webm-vp8" else 12  # VP8 codes its alpha lossily
    for matte, mask in zip(result.mattes(), masks, strict=True):
        off = np.abs(matte.astype(int) - mask)
        assert off.mean() < tolerance / 4
        assert (off <= 4 * tolerance).mean() > 0.998  # ProRes codes a few pixels otherwise (in the file)
    written, _ = decoded(out, alpha=True)
    assert len(written) == COUNT
    assert np.abs(written[3][..., 3].astype(int) - masks[3]).mean() < tolerance
    result.close()


def test_on_a_colour_the_clips_transparent_parts_show_the_colour(tmp_path):
    clip, masks = with_alpha(tmp_path / "clip.webm", *CLIPS["webm-vp9"][1:])
    out = tmp_path / "out.mp4"
    rmbg.remove_video(clip, Threshold(-1), output=out, background="#00ff00").close()
    frames, _ = decoded(out)
    clear = masks[2] == 0
    assert clear.mean() > 0.5  # most of the frame is the old background
    assert np.abs(frames[2][clear].astype(int) - (0, 255, 0)).mean() < 12


def test_a_gifs_transparent_colour_stays_transparent(tmp_path):
    rgbs, masks = scene_and_masks()
    pictures = []
    for rgb, mask in zip(rgbs, masks, strict=True):
        picture = Image.fromarray(rgb).quantize(255)
        indices = np.asarray(picture).copy()
        indices[mask < 128] = 255  # the transparent colour
        frame = Image.fromarray(indices, "P")
        frame.putpalette(picture.getpalette()[: 255 * 3] + [0, 0, 0])
        pictures.append(frame)
    gif = tmp_path / "sticker.gif"
    pictures[0].save(gif, save_all=True, append_images=pictures[1:], duration=42, loop=0, transparency=255, disposal=2)
    result = rmbg.remove_video(gif, Threshold(-1), output=tmp_path / "out.webm", smooth=False)
    for matte, mask in zip(result.mattes(), masks, strict=True):
        assert np.array_equal(matte, np.where(mask < 128, 0, 255).astype(np.uint8))
    result.close()


def test_a_clip_without_alpha_is_left_to_the_model(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", davis("dog", COUNT, SIZE))
    assert not probe(clip, VideoLimits()).alpha
    result = rmbg.remove_video(clip, Threshold(-1), output=tmp_path / "out.webm", smooth=False)
    assert all((matte == 255).all() for matte in result.mattes())
    result.close()
