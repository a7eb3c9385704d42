"""What a hosted video service is sent, and checked before it is paid (rmbg.video.packets.picture_alone,
rmbg.video.hosted.check_pictures).

- The picture alone: the vendor answers with an alpha we pair with our own frames and our own sound, so
  a sound track sent with the clip was bytes for nothing and, where it ran past the picture (a phone's
  AAC does, by a few hundredths of a second), a billed second for nothing: a 3.0 s picture with its
  sound was held and charged as 4 s. Now the vendor gets the picture's packets alone, in a file of the
  clip's own kind, and the seconds held and charged are the picture's; the outputs keep our sound.
- Every picture decoded before the call: a clip damaged mid-way keeps whole packets, so its length,
  its hold and the vendor's acceptance all passed and it was found only when our frames were decoded
  to pair with the paid answer: charged, nothing written. Now refused in words, nothing sent.
"""

from __future__ import annotations

from decimal import Decimal

import av
import pytest

import rmbg
from rmbg.video.decode import frames, probe
from rmbg.video.hosted import clip_seconds, job_for
from rmbg.video.limits import InvalidVideoError, VideoLimits
from tests.fakes.cloudflare_video import TEST_KEY as CLOUDFLARE_KEY
from tests.fakes.cloudflare_video import CloudflareVideoFake
from tests.test_hosted_video import Vendor, _vendor, payer_for, settled
from tests.test_hosted_video_cloudflare import PID as CLOUDFLARE_PID
from tests.test_hosted_video_cloudflare import Cloudflare
from tests.test_video_held import remuxed
from tests.video_clips import davis, timeline, write_clip

PHONE_FRAMES = 15  # 3.0 s at 5 a second
PRICES = {"fal": Decimal("0.042"), "runware": Decimal("0.14"), "cloudflare": Decimal("0.0225")}


def vendor_named(name: str) -> Vendor:
    if name == "cloudflare":
        return Cloudflare("cloudflare", CLOUDFLARE_PID, CloudflareVideoFake(), CLOUDFLARE_KEY, "run")
    return _vendor(name)


@pytest.fixture(params=["fal", "runware", "cloudflare"])
def vendor(request):
    v = vendor_named(request.param)
    with v.fake:
        yield v


@pytest.fixture(scope="module")
def phone_clip(tmp_path_factory):
    """A phone's clip: 3.0 s of picture with 3 s of AAC, whose last packet ends past 3.0 s (AAC's 1024-sample
    frames and its priming). What is held and billed is the picture's seconds, not its frames: 15 frames at 5
    a second (60 at 20 a second, a phone's rate, cost each vendor's run four times the encoding and decoding)."""
    path = tmp_path_factory.mktemp("clips") / "phone.mp4"
    return write_clip(path, davis("dog", PHONE_FRAMES), rate=5, tone_hz=440, tone_seconds=3.0)


def test_a_clip_with_sound_is_sent_as_its_picture_and_billed_for_it(vendor, phone_clip, tmp_path):
    limits = VideoLimits()
    info = probe(phone_clip, limits)
    with av.open(str(phone_clip)) as given:  # the clip itself runs past 3 s: its sound does
        assert [s.type for s in given.streams] == ["video", "audio"]
    assert clip_seconds(info) == pytest.approx(3.0, abs=0.001)  # the estimate the CLI and the page show
    payer = payer_for(vendor)
    out = tmp_path / "out.webm"
    with rmbg.remove_video(phone_clip, vendor.remover(), output=out, payer=payer) as result:
        assert result.frames == PHONE_FRAMES
    (sent,) = vendor.fake.received
    assert sent is not None and sent.tracks == ("video",) and len(sent.frames) == PHONE_FRAMES
    (reserved,) = payer.policy.reserved
    assert reserved[0].estimate == 3 * PRICES[vendor.name]  # held at 3 s, not 4
    assert settled(payer.policy) == [("settled", 3 * PRICES[vendor.name])]
    assert vendor.fake.billed == [3]
    times, duration, sound = timeline(out)
    assert len(times) == PHONE_FRAMES and duration == pytest.approx(3.0, abs=0.03)
    assert sound is not None and sound[1] == pytest.approx(3.0, abs=0.03)  # our own sound, ended with the picture


@pytest.mark.parametrize("suffix, codec, kind", [("mov", "aac", "mov"), ("mkv", "libopus", "matroska")])
def test_the_picture_goes_in_a_file_of_the_clips_own_kind(tmp_path, suffix, codec, kind):
    clip = write_clip(tmp_path / f"voiced.{suffix}", davis("dog", 24), tone_hz=440, tone_seconds=1.5, audio_codec=codec)
    limits = VideoLimits()
    info = probe(clip, limits)
    folder = tmp_path / "work"
    folder.mkdir()
    job = job_for(info, "webm", folder)
    assert job.path.parent == folder and job.content_type == job_for(info, "webm").content_type
    with av.open(str(job.path)) as sent:
        assert kind in sent.format.name and [s.type for s in sent.streams] == ["video"]
    assert (job.seconds, job.billed_seconds) == (pytest.approx(1.0, abs=0.002), 1)  # the sound's 1.5 s: not billed
    ours = [(f.pts, f.rgb.tobytes()) for f in frames(info, limits)]
    assert [(f.pts, f.rgb.tobytes()) for f in frames(probe(job.path, limits), limits)] == ours


def test_a_clip_that_is_its_picture_alone_is_sent_as_it_is(tmp_path):
    clip = write_clip(tmp_path / "silent.mp4", davis("dog", 12))
    folder = tmp_path / "work"
    folder.mkdir()
    job = job_for(probe(clip, VideoLimits()), "webm", folder)
    assert job.path == clip and list(folder.iterdir()) == []


def test_a_trimmed_clip_keeps_the_frames_its_edit_list_hides(tmp_path):
    """The vendor's decoder needs the packets before the cut (from the key frame the first shown frame is
    made from); the hold counts them, as a vendor reading the file may bill them."""
    voiced = write_clip(tmp_path / "voiced.mp4", davis("dog", 48), tone_hz=440, gop=12)
    clip = remuxed(voiced, tmp_path / "trimmed.mp4", cut=0.75)  # 0.75 s hidden: 6 frames after a key frame

    def packets(path):
        with av.open(str(path)) as file:
            found = [p.is_discard for p in file.demux(file.streams.video[0]) if p.size]
            return [s.type for s in file.streams], len(found), sum(found)

    limits = VideoLimits()
    info = probe(clip, limits)
    folder = tmp_path / "work"
    folder.mkdir()
    job = job_for(info, "webm", folder)
    assert packets(clip) == (["video", "audio"], 36, 6)  # from the key frame at 0.5 s; 6 hidden
    assert packets(job.path) == (["video"], 36, 6)  # the same, hidden again behind the copy's edit list
    assert job.seconds == pytest.approx(1.5, abs=0.001)  # every frame the file holds
    ours = [f.rgb.tobytes() for f in frames(info, limits)]
    assert len(ours) == 30 and [f.rgb.tobytes() for f in frames(probe(job.path, limits), limits)] == ours


def damaged(folder, name="damaged.mp4"):
    """60 frames whose packets are whole (the MP4's index at its end still lists them all) but whose
    picture data past the first third is zeroed: the decoder gives up part-way."""
    clip = write_clip(folder / "whole.mp4", davis("dog", 60), gop=12)
    data = bytearray(clip.read_bytes())
    with av.open(str(clip)) as given:
        offsets = [p.pos for p in given.demux(given.streams.video[0]) if p.size]
    start, end = offsets[20], offsets[-1]
    data[start:end] = bytes(end - start)
    path = folder / name
    path.write_bytes(bytes(data))
    return path


def test_a_clip_damaged_mid_way_is_refused_before_it_is_paid(vendor, tmp_path):
    clip = damaged(tmp_path)
    limits = VideoLimits()
    info = probe(clip, limits)  # its packets are whole: the header and the packets pass
    assert info.total_frames == 60
    payer = payer_for(vendor)
    out = tmp_path / "out.webm"
    with pytest.raises(InvalidVideoError) as refused:
        rmbg.remove_video(clip, vendor.remover(), output=out, payer=payer)
    assert str(refused.value).startswith("damaged.mp4 ")
    assert str(refused.value).endswith("Nothing was sent to the service and nothing was charged.")
    assert vendor.fake.calls == [] and payer.policy.reserved == [] and settled(payer.policy) == []
    assert not out.exists()


def test_a_short_picture_with_a_long_sound_is_taken_and_billed_by_its_picture(tmp_path):
    """One second of picture with 70 s of sound (over the 60 s limit): it was refused as "70 s" for a
    hosted service although only its picture is worked on; locally it is cut in a fraction of a second."""
    vendor = vendor_named("fal")
    clip = write_clip(tmp_path / "talk.mkv", davis("dog", 24), tone_hz=440, tone_seconds=70, audio_codec="libopus")
    with vendor.fake:
        payer = payer_for(vendor)
        out = tmp_path / "out.webm"
        with rmbg.remove_video(clip, vendor.remover(), output=out, payer=payer) as result:
            assert result.frames == 24
        assert vendor.fake.billed == [1] and settled(payer.policy) == [("settled", PRICES["fal"])]
    times, duration, sound = timeline(out)
    assert len(times) == 24 and duration == pytest.approx(1.0, abs=0.03)
    assert sound is not None and sound[1] == pytest.approx(1.0, abs=0.03)


def test_a_kept_answer_copies_and_decodes_nothing(phone_clip, tmp_path):
    """The picture is copied (and every picture decoded) for a call that is paid, not for a clip written from
    its kept answer: the second folder holds the answer alone."""
    from rmbg.video.answers import VideoAnswers
    from rmbg.video.hosted import run_hosted

    vendor = vendor_named("fal")
    answers, limits = VideoAnswers(max_bytes=2**30), VideoLimits()
    info = probe(phone_clip, limits)

    def run(folder):
        folder.mkdir()
        return run_hosted(
            info, vendor.remover(), folder=folder, limits=limits, output="webm", smooth=None, payer=payer,
            write=lambda frames: max(f.time for f in frames), answers=answers,
        )  # fmt: skip

    with vendor.fake:
        payer = payer_for(vendor)
        paid, kept = run(tmp_path / "paid"), run(tmp_path / "kept")
        assert len(vendor.paid_calls()) == 1 and (paid.frames, kept.frames) == (PHONE_FRAMES, PHONE_FRAMES)
    assert [p.name for p in (tmp_path / "paid").iterdir() if p.name.startswith("picture")] == ["picture.mp4"]
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["kept-answer.webm"]  # the answer, taken out
    assert kept.cost.usd == 0


def test_a_quicktime_upload_is_said_and_copied_as_quicktime(tmp_path):
    """A MOV given as bytes (REST, the page) is spooled as input.video: it was sent as video/mp4, and its
    ProRes picture, which the MP4 muxer refuses, went whole with its sound: 2 billed seconds for 0.5 s of
    picture, against an estimate of 1."""
    from rmbg.video.decode import open_clip

    clip = write_clip(
        tmp_path / "pro.mov", davis("dog", 12), codec="prores_ks", pix_fmt="yuv422p10le", tone_hz=440, tone_seconds=1.4
    )
    folder = tmp_path / "work"
    folder.mkdir()
    info = open_clip(clip.read_bytes(), folder, VideoLimits())
    assert info.path.name == "input.video"
    job = job_for(info, "webm", folder)
    with av.open(str(job.path)) as sent:
        assert [s.type for s in sent.streams] == ["video"] and sent.streams.video[0].codec_context.name == "prores"
    assert (job.content_type, job.path.name, job.billed_seconds) == ("video/quicktime", "picture.mov", 1)
    assert job.seconds == pytest.approx(clip_seconds(info)) == pytest.approx(0.5, abs=0.001)
