"""How long each written frame lasts: what a muxer cannot guess.

A muxer lasts each frame until the next one starts, and the last one as long as the one before it:
a GIF that holds its last frame for two seconds, or a clip whose last frame is long (a variable
frame rate's), came out ending where that frame begins (1.2 s for a 3.1 s GIF). `Lengths` keeps
each frame's own length (its packet's in the clip: rmbg.video.decode.Frame.shown) until the encoder
gives that frame's packet, and gives it to the packet. MP4 and MOV take a track's end from the last
packet in decoding order, which with B-frames is not the last frame shown, and a GIF's muxer its
last frame's length from its packet: there the latest packet is held back until the next comes, and
the last is made to last until the picture's end. An animated WebP's last frame is given its length
in the file once written (`webp_ends_at`).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

HELD = 256  # frames whose length is kept until their packet comes (an encoder's lag is under 50)


def shown_for(frame: Any, time_base: Fraction) -> float:
    """How long a decoded frame is shown (s), as its packet said; 0 where it did not."""
    return float(frame.duration * time_base) if frame.duration and frame.duration > 0 else 0.0


class Lengths:
    """The packets of one output stream into `container`, each lasting as long as its frame is shown.

    nominal: a frame's length (s) where its clip does not say; hold_last: the container ends the stream
    with its last packet in decoding order (MP4, MOV, GIF); fixed: the ticks every other packet lasts
    (a GIF's muxer reads them); shortest: the fewest ticks the last packet lasts."""

    def __init__(self, container: Any, nominal: float, *, hold_last: bool, fixed: int | None = None, shortest: int = 1):
        self._container = container
        self._nominal = nominal
        self._hold_last = hold_last
        self._fixed, self._shortest = fixed, shortest
        self._shown: dict[float, float] = {}
        self._held: Any = None
        self._first: tuple[int, int] | None = None  # the first packet's (pts, dts)
        self.end = 0.0  # where the picture ends (s, on the output's timestamps): the sound ends there too

    def frame(self, at: float, shown: float, *, written: bool = True) -> None:
        """A frame at `at` (s, on the output's timestamps), shown `shown` s (0: not said), given to the
        encoder (written) or left out (a GIF's frame too close to the last: the picture's end still counts it)."""
        if shown > 0 and written:
            self._shown[at] = shown
            if len(self._shown) > HELD:  # an encoder that gave no packet for some: the oldest forgotten
                self._shown.pop(next(iter(self._shown)))
        self.end = max(self.end, at + (shown or self._nominal))

    def mux(self, packet: Any) -> None:
        """The packet, with its frame's length, muxed (or held back until the next comes: hold_last)."""
        shown = None
        if self._shown and packet.pts is not None and packet.time_base:
            at = float(packet.pts * packet.time_base)
            shown = self._shown.pop(min(self._shown, key=lambda key: abs(key - at)))
            packet.duration = max(1, round(shown / packet.time_base))
        elif self._fixed is not None:
            packet.duration = self._fixed
        if not self._hold_last:
            self._container.mux(packet)
            return
        if self._first is None and packet.pts is not None and packet.dts is not None:
            self._first = (packet.pts, packet.dts)
        if self._held is not None:
            self._container.mux(self._held)
        self._held = packet

    def close(self) -> None:
        """The packet held back muxed, lasting until the picture's end: the muxer ends the track at its
        decoding time plus its duration, shown later by the first packet's delay (pts - dts)."""
        packet, self._held = self._held, None
        if packet is None:
            return
        if self._first is not None and packet.dts is not None and packet.time_base:
            delay = self._first[0] - self._first[1]
            end = round(self.end / packet.time_base)
            packet.duration = max(self._shortest, end - delay - packet.dts)
        self._container.mux(packet)


def webp_ends_at(path: Path, end: float, shortest: float) -> None:
    """The animated WebP at `path` made to end at `end` s by its last frame's length (at least `shortest` s).
    FFmpeg's encoder (libwebp_anim) takes no frame's length: it lasts its last frame the clip's average
    frame, so a GIF holding its last frame 2 s ended 1.9 s early. The file's ANMF chunks each say their
    frame's length in milliseconds (24 bits at byte 12 of the chunk's data, WebP's container spec)."""
    data = bytearray(path.read_bytes())
    frames, at = [], 12  # after "RIFF", its size and "WEBP"
    while at + 8 <= len(data):
        size = int.from_bytes(data[at + 4 : at + 8], "little")
        if data[at : at + 4] == b"ANMF" and size >= 16:
            frames.append(at + 8 + 12)
        at += 8 + size + (size & 1)
    if not frames:
        return
    before = sum(int.from_bytes(data[i : i + 3], "little") for i in frames[:-1])
    last = min(max(round(end * 1000) - before, round(shortest * 1000)), 0xFFFFFF)
    data[frames[-1] : frames[-1] + 3] = last.to_bytes(3, "little")
    path.write_bytes(bytes(data))
