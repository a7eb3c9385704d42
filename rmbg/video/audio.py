"""A clip's sound, carried into an output video.

The audio packets are copied as they are (a remux: no loss, no time) when the
output container takes their codec; otherwise they are decoded and encoded
again: Opus for WebM, AAC for MP4 and MOV. They are interleaved with the
video as it is written (`mux_until(seconds)`), keeping their own timestamps
less the output's start (`count_from`: the same seconds the picture's are moved
by), so sound and picture stay in step. GIF and WebP have no sound.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import Any

from .decode import open_input

# What each output takes as it is. MP4 is the output that plays everywhere, so it copies only AAC, the
# one sound every MP4 player decodes: Apple Lossless (ALAC), which its muxer takes too, played in
# Chromium as a silent picture (tests/test_video_tracks.py), and Opus in MP4 is newer than many players
# (Safari before 17, older TVs and editors); the MOV, for editors and QuickTime, keeps ALAC.
COPYABLE = {"webm": {"opus", "vorbis"}, "mp4": {"aac"}, "mov": {"aac", "mp3", "alac"}}
ENCODER = {"webm": ("libopus", 48000), "mp4": ("aac", None), "mov": ("aac", None)}


class AudioFeed:
    """The first audio track of `source` into `container` (an output opened by PyAV). `before`: the
    picture's end (s, on the clip's timestamps): a sound that starts there or later is not carried
    (`empty`, no track added: an empty sound track was written, which players may wait on). `start`:
    where the sound carried starts (s, on the clip's timestamps), what an edit list hides left out."""

    def __init__(self, source: Path, container: Any, fmt: str, before: float | None = None):
        import av

        self._input = open_input(source)
        try:
            stream = self._input.streams.audio[0]
            self._time_base = stream.time_base
            self._shift = 0  # ticks taken off every timestamp written (count_from)
            self._pending: Any = None
            # read up to the first packet shown: the hidden ones before it (a trimmed clip's, with times
            # before 0) are no start of the sound; they are written first, as they come in the clip
            packets: Iterator[Any] = self._input.demux(stream)
            ahead = []
            for packet in packets:
                if packet.size and packet.pts is not None:
                    ahead.append(packet)
                    if not packet.is_discard:
                        break
            self._packets: Iterator[Any] = chain(ahead, packets)
            shown = ahead[-1] if ahead and not ahead[-1].is_discard else None
            self.start: Fraction | None = shown.pts * stream.time_base if shown is not None else None
            self.empty = self.start is None or (before is not None and self.start >= before)
            if self.empty:
                self._input.close()
                return
            self.copy = stream.codec_context.name in COPYABLE[fmt]
            # what an edit list hides (a trimmed clip's first second) stays hidden in MP4 and MOV, whose
            # muxer writes an edit list again, and a decoder drops it; copied into a WebM (no edit lists)
            # it was 1 s of sound before the picture, so there it is left out
            self._drop_hidden = fmt == "webm" and self.copy
            self._container = container
            if self.copy:
                self.stream = container.add_stream_from_template(stream)
                self._resampler = None
            else:
                codec, fixed_rate = ENCODER[fmt]
                rate = fixed_rate or stream.codec_context.sample_rate or 48000
                layout = "mono" if stream.codec_context.channels == 1 else "stereo"
                self.stream = container.add_stream(codec, rate=rate, layout=layout)
                formats: Any = av.codec.Codec(codec, "w").audio_formats
                sample_format = formats[0].name
                self._resampler = av.AudioResampler(format=sample_format, layout=layout, rate=rate)
        except Exception:
            self._input.close()
            raise

    def count_from(self, seconds: Fraction) -> None:
        """Count the output's time from `seconds` of the clip's: every packet written is moved that much
        earlier, and `mux_until` and `close` take times on the output's timestamps from then on."""
        self._shift = round(seconds / self._time_base)

    def mux_until(self, seconds: float | None) -> None:
        """Write the audio that starts before `seconds` (on the output's timestamps; None: all that is left)."""
        while True:
            packet = self._pending
            self._pending = None
            if packet is None:
                packet = next(self._packets, None)
                if packet is None:
                    return
            if packet.size == 0 or packet.pts is None or (packet.is_discard and self._drop_hidden):
                continue  # the demuxer's end-of-stream marker, or hidden
            if seconds is not None and float((packet.pts - self._shift) * self._time_base) > seconds:
                self._pending = packet
                return
            self._write(packet)

    def _write(self, packet: Any) -> None:
        packet.pts -= self._shift  # before decoding too: a sound encoded again keeps its frames' times
        if packet.dts is not None:
            packet.dts -= self._shift
        if self._resampler is None:
            packet.stream = self.stream
            self._container.mux(packet)
            return
        for frame in packet.decode():
            self._encode(frame)

    def _encode(self, frame: Any) -> None:
        assert self._resampler is not None
        for ready in self._resampler.resample(frame):
            for packet in self.stream.encode(ready):
                self._container.mux(packet)

    def close(self, end: float | None = None) -> None:
        """Write the rest that starts before `end` (s, on the output's timestamps; None: all of it), flush
        the encoder, close the input.
        The writers end the sound with the picture: one second of video with twenty minutes of sound was
        a twenty-minute output, never held to the length limit."""
        try:
            self.mux_until(end)
            if self._resampler is not None:
                self._encode(None)
                for packet in self.stream.encode(None):
                    self._container.mux(packet)
        finally:
            self._input.close()

    def abort(self) -> None:
        self._input.close()


def starts_at(picture: Fraction, sound: AudioFeed | None) -> Fraction:
    """Where an output's time 0 falls on the clip's timestamps: where its picture or its sound starts,
    the earlier, so a clip that starts late (a stream's recording, a cut kept with its times) does not
    play a second of nothing first; the feed is told (count_from), so both move by the same seconds and
    keep their offset. A clip that starts at 0 or before (an edit list's) keeps its own times."""
    zero = max(Fraction(0), min(picture, sound.start) if sound is not None and sound.start is not None else picture)
    if sound is not None:
        sound.count_from(zero)
    return zero
