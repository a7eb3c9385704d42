"""VideoResult: what remove_video returns, and where its mattes are kept.

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
import tempfile
import weakref
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Cost, Seconds
from .decode import ClipInfo, frames
from .encode import VideoWriter
from .limits import InvalidVideoError, VideoLimits
from .pipeline import VideoFrame


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
        writer = VideoWriter(path, self.info, format, background=background, audio=audio)
        try:
            for frame, alpha in zip(frames(self.info, self.limits), self.store, strict=True):
                writer.write(VideoFrame(frame.index, frame.pts, frame.time, frame.rgb, alpha))
        except BaseException:
            writer.abort()
            raise
        return writer.close()

    def close(self) -> None:
        """Delete the stored mattes (and any spooled input)."""
        if self._folder is not None:
            self._folder.cleanup()

    def __enter__(self) -> VideoResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def new_folder() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="rmbg-video-")
