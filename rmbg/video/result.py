"""A clip's outputs: its frames written (`write_clip`), its mattes kept, and the VideoResult remove_video returns.

`write_clip` is the last stage of every clip's path (rmbg.video.api): it pulls
the frames with their mattes one at a time from the stage that makes them, and
hands each to every output's writer (rmbg.video.encode) and the matte store on
a thread of its own (`Sink`, behind a queue of a few frames), so decoding, the
model and encoding overlap and memory does not grow with the clip's length.

The mattes are not held in memory: each frame's alpha is compressed (zlib,
lossless) into a file in a private temporary folder (`MatteStore`), a few
kilobytes a frame. `VideoResult.save` decodes the input clip again and pairs
its frames with the stored mattes, so saving another format, or on another
background, never runs the model again and memory stays flat however long the
clip. The folder (and a spooled copy of a URL or bytes input) is deleted by
`close()`, by leaving a `with` block, or when the result is garbage-collected.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidRequestError
from ..types import Cost, Seconds
from .decode import ClipInfo, frames
from .encode import VideoWriter
from .limits import InvalidVideoError, VideoLimits
from .pipeline import AHEAD, VideoFrame


class MatteStore:
    """Mattes (H x W uint8) appended in order into one file, read back in order."""

    def __init__(self, folder: Path, shape: tuple[int, int]):
        self.path = folder / "mattes.zlib"
        self.shape = shape
        self._sizes: list[int] = []
        self._file = self.path.open("wb")

    def append(self, alpha: np.ndarray) -> None:
        if alpha.shape != self.shape:
            raise ValueError(f"matte {alpha.shape} differs from the clip's {self.shape}")
        data = zlib.compress(np.ascontiguousarray(alpha, dtype=np.uint8).tobytes(), 1)
        self._file.write(data)
        self._sizes.append(len(data))

    def finish(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        return len(self._sizes)

    def __iter__(self) -> Iterator[np.ndarray]:
        with self.path.open("rb") as f:
            for size in self._sizes:
                yield np.frombuffer(zlib.decompress(f.read(size)), np.uint8).reshape(self.shape)

    @property
    def nbytes(self) -> int:
        return sum(self._sizes)


@dataclass
class VideoResult:
    """One clip through one provider.

    frames: the frame count; duration: the clip's seconds (first frame to the
    end of the last); seconds: the provider's time (model) and the whole
    call's (total); cost: what the frames cost; saved: the files written
    during the call; note: a message for the person (e.g. the frames were
    scaled down), "" when there is none; meta: the provider's provenance.
    """

    info: ClipInfo
    provider: str
    frames: int
    duration: float
    seconds: Seconds
    cost: Cost
    smooth: bool
    store: MatteStore
    limits: VideoLimits
    saved: list[Path] = field(default_factory=list)
    note: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    _folder: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self._folder is not None:
            weakref.finalize(self, self._folder.cleanup)
        self._stamp = _stamp(self.info.path)  # save() decodes the clip again: it must be the one cut

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames as processed."""
        return self.info.width, self.info.height

    def mattes(self) -> Iterator[np.ndarray]:
        """Each frame's alpha (H x W uint8), in order, read back from the store."""
        return iter(self.store)

    def save(
        self, path: str | os.PathLike[str], format: str | None = None, *, background: Any = None, audio: bool = True
    ) -> Path:
        """Write the cut-out to `path` in a format (webm, mov, mp4, matte, gif, webp; from
        the extension when None), decoding the input again; no model runs. Returns the path."""
        if self._folder is not None and not Path(self._folder.name).exists():
            raise InvalidVideoError("This result was closed; its mattes are gone.")
        if Path(path).resolve() == Path(self.info.path).resolve():  # as remove_video refuses it
            raise InvalidRequestError(f"output names the clip itself ({Path(path).name}): it would be written over.")
        if _stamp(self.info.path) != self._stamp:
            raise self._changed()
        writer = VideoWriter(path, self.info, format, background=background, audio=audio)
        write_clip(self._paired(), self.info, [writer])
        return writer.path

    def _paired(self) -> Iterator[VideoFrame]:
        """The clip's frames decoded again, each with its stored matte."""
        mattes = iter(self.store)
        for frame in frames(self.info, self.limits):
            alpha = next(mattes, None)
            if alpha is None:  # fewer mattes than frames (each frame is scaled to the size they were made at)
                raise self._changed()
            yield VideoFrame(frame.index, frame.pts, frame.time, frame.rgb, alpha, frame.shown)
        if next(mattes, None) is not None:
            raise self._changed()

    def _changed(self) -> InvalidVideoError:
        return InvalidVideoError(
            f"{self.info.path.name} is no longer the clip this result was cut from (changed, moved or deleted): "
            "save() decodes it again to pair its frames with the mattes. Cut it again."
        )

    def close(self) -> None:
        """Delete the stored mattes (and any spooled input)."""
        if self._folder is not None:
            self._folder.cleanup()

    def __enter__(self) -> VideoResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stamp(path: Path) -> tuple[int, int] | None:
    """(size, modification time in ns) of the file at `path`; None where it is gone."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def new_folder() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="rmbg-video-")


def write_clip(
    frames: Iterable[VideoFrame], info: ClipInfo, writers: list[VideoWriter], store: MatteStore | None = None
) -> float:
    """The frames, pulled one at a time, into the writers (and the mattes into the store) on the
    encoding thread (`Sink`), the writers then closed (aborted on any failure, theirs or the frames'
    source's); returns the clip's duration."""
    seen: dict[str, Any] = {"last": None, "step": 1 / max(info.fps, 1.0)}

    def consume(frame: VideoFrame) -> None:
        for writer in writers:
            writer.write(frame)
        if store is not None:
            store.append(frame.alpha)
        if seen["last"] is not None:
            seen["step"] = frame.time - seen["last"]
        seen["last"] = frame.time

    sink = Sink(consume)
    try:
        for frame in frames:
            sink.put(frame)
        sink.close()
        if store is not None:
            store.finish()
        for writer in writers:
            writer.close()
    except BaseException:
        try:
            sink.close()
        except BaseException:  # the first error is the one to report
            pass
        for writer in writers:
            writer.abort()
        if store is not None:
            store.finish()
        raise
    finally:
        # a generator left suspended (the encoder failed between two frames) would keep its decoding
        # thread waiting until the interpreter ends, which then waits for it forever: end it now
        close = getattr(frames, "close", None)
        if close is not None:
            close()
    last = seen["last"] or 0.0
    if info.span is not None and info.span > last:  # the end of the last frame, as its packet says
        return info.span
    return last + (seen["step"] or 0.0)


_END = object()


class Sink:
    """Runs `consume(item)` in a thread behind a small queue (the encoding thread, so decoding,
    the model and encoding overlap): `put` hands an item over (waiting while the queue is full),
    `close` waits for the rest and raises whatever the consumer raised. An error in the consumer
    is raised by the next `put` too, so the producer stops early."""

    def __init__(self, consume: Callable[[Any], None], size: int = AHEAD, name: str = "rmbg-video-encode"):
        self._consume = consume
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._consume(item)
                except BaseException as exc:  # raised in the producer's thread
                    self._error = exc

    def put(self, item: Any) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(_END)
        self._thread.join()
        if self._error is not None:
            raise self._error
