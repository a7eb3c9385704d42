"""`engine="ray"` for video (`rmbg video --engine ray`): a clip's frames cut into chunks,
run by Ray workers, joined into the same output as a local run, frame for frame.

- The driver reads every frame's timestamp from the container's packets (nothing is
  decoded), cuts them into chunks of consecutive frames, each with the overlap the
  smoothing needs (rmbg.video.chunks), and puts the clip's file into Ray's object store
  once, so workers on other machines need no shared disk.
- `workers` actors (1 CPU and `gpus_per_worker` GPUs each) each build the provider once, by
  its registered id, on the GPU Ray gave it if any (rmbg.ray_cluster, as `rmbg remove
  --engine ray` does), and run chunks: decode from the keyframe before the chunk (a
  seek), the model, the filter. A chunk sends back its frames' mattes (uint8), never
  frames. A run that ends well gives its actors back (rmbg.ray_cluster.IDLE): the next
  clip with the same provider and settings takes them, models loaded, instead of making
  new ones (a folder of clips loads the model once per worker).
- The driver decodes the clip once, in order, pairs each frame with its matte as the
  chunks come back in order, and yields them to the same writers as a local run
  (encoders, sound, the mattes' store: rmbg.video.api). At most `in_flight` chunks are
  handed out and not yet written (two per worker by default): memory is bounded by
  chunks, not by the clip's length.
- Before any actor is made, the cluster's resources are compared with what the workers ask:
  none fits, refused (an actor asking for more than the cluster has would wait forever);
  fewer than asked, the run goes on with those, said once (rmbg.ray_cluster).
- Progress counts the frames of the chunks the workers have finished, in whatever order.
- A stop (`stop`, Ctrl-C) or an error ends the run: its workers are killed (not given
  back), and the writers leave nothing behind (as a local run).

A hosted video service is refused (rmbg.video.api): it takes the whole clip in one paid
call, so there is nothing to split, and a paid clip is never split into several calls.
Ray is imported only when the engine is used (rmbg.ray_cluster.start).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RmbgError
from ..providers.base import Provider
from ..ray_cluster import CPUS_PER_WORKER, IDLE, gpu_ask, gpus_problem, start, worker_provider, workers_that_fit
from .chunks import Chunk, ChunkMattes, chunk_length, chunk_mattes, plan_chunks
from .decode import ClipInfo, Frame, frames
from .limits import VideoLimits, VideoStopped
from .packets import frame_pts
from .pipeline import ProgressFn, StopFlag, StreamStats, VideoFrame
from .smooth import SmoothParams

WAIT_S = 0.2  # how often the driver looks at the stop flag while the workers run


@dataclass(frozen=True)
class RayVideo:
    """How a clip is spread over Ray: address (None: a local Ray started here, or the one
    already running; 'auto' or ray://host:10001 for a cluster), workers (actors, one model
    each), chunk_seconds (2 by default) or chunk_frames, in_flight (chunks handed out and not
    yet written; default two per worker), provider_config (what each worker's
    get_provider(id, ...) is given), gpus_per_worker (GPUs each worker asks Ray for: 0.25 puts
    four on a GPU; past 1, whole GPUs)."""

    address: str | None = None
    workers: int = 2
    chunk_seconds: float | None = None
    chunk_frames: int | None = None
    in_flight: int | None = None
    provider_config: Mapping[str, object] = field(default_factory=dict)
    gpus_per_worker: float = 0.0

    def __post_init__(self) -> None:
        if self.workers < 1 or (self.in_flight is not None and self.in_flight < 1):
            raise RmbgError("A Ray video run needs at least 1 worker and 1 chunk in flight.")
        problem = gpus_problem(self.gpus_per_worker)
        if problem:
            raise RmbgError(f"gpus_per_worker {problem}: {str(self.gpus_per_worker)!r}.")
        chunk_length(24.0, self.chunk_seconds, self.chunk_frames)  # a bad size is refused before anything starts


class ChunkWorker:
    """One Ray actor: one provider (its model loaded once), for any number of runs and clips; each
    clip spooled once, many chunks."""

    def __init__(self, provider_id: str, config: Mapping[str, object]):
        import ray

        self.provider: Provider = worker_provider(provider_id, config, ray.get_gpu_ids())
        self.folder = tempfile.TemporaryDirectory(prefix="rmbg-ray-video-")
        self.clip: tuple[str, Path] | None = None

    def run(
        self, key: str, data: list[Any], info: ClipInfo, chunk: Chunk, smooth: SmoothParams | None, limits: VideoLimits
    ) -> ChunkMattes:
        import ray

        if self.clip is None or self.clip[0] != key:  # the clip's bytes, from the object store, once per clip
            self.forget()
            path = Path(self.folder.name) / f"{key}{info.path.suffix}"
            np.asarray(ray.get(data[0])).tofile(path)
            self.clip = (key, path)
        return chunk_mattes(replace(info, path=self.clip[1]), self.provider, chunk, smooth, limits)

    def forget(self) -> None:
        """The spooled clip deleted (a run's end: an idle worker keeps no clip on disk)."""
        if self.clip is not None:
            self.clip[1].unlink(missing_ok=True)
            self.clip = None


def ray_mattes(
    info: ClipInfo,
    provider: Provider,
    engine: RayVideo,
    *,
    limits: VideoLimits,
    smooth: SmoothParams | None,
    progress: ProgressFn | None = None,
    stop: StopFlag | None = None,
    stats: StreamStats | None = None,
    source: Generator[Frame, None, None] | None = None,
) -> Iterator[VideoFrame]:
    """Each frame of the clip with its matte, in order, as stream_mattes gives them (module doc).
    source: the clip's frames, decoded as they are paired (rmbg.video.decode.frames, the default)."""
    ray = start(engine.address)
    stats = stats if stats is not None else StreamStats()
    pts = frame_pts(info, limits)
    chunks = plan_chunks(pts, chunk_length(info.fps, engine.chunk_seconds, engine.chunk_frames), smooth)
    count = workers_that_fit(ray, min(engine.workers, len(chunks)), engine.gpus_per_worker)  # none pending forever
    data = [ray.put(np.fromfile(info.path, np.uint8))]
    key = uuid.uuid4().hex
    worker = ray.remote(ChunkWorker).options(num_cpus=CPUS_PER_WORKER, **gpu_ask(engine.gpus_per_worker))
    kind = (provider.id, repr(sorted(engine.provider_config.items())), engine.gpus_per_worker)
    actors = IDLE.take(ray, kind, count)
    actors += [worker.remote(provider.id, engine.provider_config) for _ in range(count - len(actors))]
    limit = engine.in_flight or 2 * len(actors)
    idle, running, done = list(actors), {}, {}
    submitted, finished = 0, 0
    decoded = frames(info, limits) if source is None else source
    try:
        for k in range(len(chunks)):
            while k not in done:
                while idle and submitted < len(chunks) and submitted - k < limit:
                    actor = idle.pop()
                    running[actor.run.remote(key, data, info, chunks[submitted], smooth, limits)] = (submitted, actor)
                    submitted += 1
                if stop is not None and stop.is_set():
                    raise VideoStopped(stats.frames)
                ready, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
                for ref in ready:
                    index, actor = running.pop(ref)
                    idle.append(actor)
                    done[index] = ref
                    finished += chunks[index].frames
                    if progress is not None:
                        progress(finished, len(pts))
            part: ChunkMattes = ray.get(done.pop(k))
            stats.model_seconds += part.model_seconds
            stats.meta = stats.meta or dict(part.meta)
            for offset, alpha in enumerate(part.alphas):
                if stop is not None and stop.is_set():
                    raise VideoStopped(stats.frames)
                frame = next(decoded, None)
                if frame is None or (frame.index, frame.pts) != (part.start + offset, part.pts[offset]):
                    raise _mismatch(info)
                stats.frames += 1
                yield VideoFrame.of(frame, alpha)
        if next(decoded, None) is not None:
            raise _mismatch(info)
        for actor in actors:
            actor.forget.remote()  # in order after its last chunk; nobody waits for it
        IDLE.give_back(ray, kind, actors)
        actors = []  # given back: not killed below
    except ray.exceptions.RayError as exc:  # a worker that could not start (provider, weights) or failed
        cause = getattr(exc, "cause", None) or exc
        if isinstance(cause, RmbgError):
            raise cause from None
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[-1]
        raise RmbgError(f"A Ray worker failed: {first[:400].rstrip('.')}.") from None
    finally:
        decoded.close()
        for actor in actors:
            ray.kill(actor)


def _mismatch(info: ClipInfo) -> RmbgError:
    return RmbgError(
        f"{info.path.name}: its frames do not decode in the order of their packets' timestamps, so it cannot be "
        "cut into chunks frame-exactly: run it with the local engine."
    )
