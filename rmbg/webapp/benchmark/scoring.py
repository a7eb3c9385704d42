"""The Benchmark tab: several providers on a visitor's own images.

With ground truth the images go through rmbg.eval.run.evaluate, the very
function behind `rmbg evaluate`, so the tab and the CLI give the same
numbers for the same files; the tab adds the cost at the visitor's monthly
volume, a gallery sorted worst first and the downloads. Without ground truth
the cut-outs go to blind voting (rmbg.webapp.benchmark.arena).

Money: before any image is sent, the run's price-table estimate must fit
under the visitor's caps now (else nothing runs); then every hosted call is
paid through the one rule (rmbg.money.paying, by the same wrapper as the Remove
tab, rmbg.webapp.guard.Guarded): its own hold, a provider's first call
alone, and what a failure costs by where its request got to.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from PIL import Image

from ...errors import RmbgError
from ...eval.records import ImageRow
from ...eval.report import Evaluation
from ...eval.run import evaluate
from ..catalog import Keys, build_provider, close
from ..context import App
from ..guard import Guarded, payer
from .uploads import Upload

THUMB_SIDE = 320  # px, long side of a gallery cut-out


@dataclass(frozen=True)
class Step:
    """One provider finished on one image: what the progress bars show (an
    overall bar of images, and one for the image being run, of its providers)."""

    image: str
    provider: str
    ok: bool
    images_done: int  # images finished, this one included when it is complete
    n_images: int
    in_image: int  # providers finished on this image
    n_providers: int

    @classmethod
    def of(cls, done: int, total: int, n_providers: int, image: str, provider: str, ok: bool) -> Step:
        """From the run's count (images in order, every provider on one image before the next)."""
        in_image = (done - 1) % n_providers + 1
        return cls(
            image,
            provider,
            ok,
            (done - 1) // n_providers + (in_image == n_providers),
            total // n_providers,
            in_image,
            n_providers,
        )

    def text(self) -> str:
        return f"{self.image}: {self.provider} {'done' if self.ok else 'failed'}"


Report = Callable[[Step], None]


def estimate(provider_ids: Sequence[str], n_images: int, app: App) -> Decimal:
    """Cost of every ticked hosted provider on n images (USD), each priced as the
    operator configured it (a preview at its 0.25 credit, a configured price);
    a visitor's sandbox key is not known here, so it is priced as a paid one."""
    from ...registry import declarations, get_provider

    hosted = {d.id for d in declarations() if d.kind == "hosted"}
    total = Decimal(0)
    for pid in provider_ids:
        if pid in hosted:
            built = get_provider(pid, **app.config.config_for(pid))
            try:
                total += built.estimate().usd * n_images
            finally:
                close(built)
    return total


@contextmanager
def paid_run(
    provider_ids: Sequence[str], n_images: int, keys: Keys, app: App, session_id: str
) -> Iterator[list[Guarded]]:
    """The providers built for this visitor, each call paid through the one
    rule (rmbg.money.paying: its own hold, the first call alone); closed on exit.
    Raises BudgetError before anything runs when the run's price-table
    estimate does not fit under a cap now."""
    built: list[Guarded] = []
    try:
        for pid in provider_ids:
            provider = build_provider(pid, keys, app.config)
            wrapped = Guarded(provider, payer(app, session_id, keys, provider))
            wrapped.keep_last = True
            built.append(wrapped)
            if provider.kind == "hosted":
                usd = provider.estimate().usd * n_images
                app.ledger.check_room(
                    session_id, pid, usd, server_key=not keys.for_provider(pid), unit=f"for {n_images} images"
                )
        yield built
    finally:
        for wrapped in built:
            close(wrapped.inner)


class RunStop(threading.Event):
    """A run's stop flag that is also set, when read, by its deadline and by its caller going away
    (a client that cancelled the request: gradio cancels the task whose worker thread this runs in).
    `reason`: "" while running, else "stop", "deadline" or "gone". Every provider call of a run asks
    it first, so nothing paid is sent after the visitor left or the time ran out."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.seconds, self._clock = seconds, clock
        self._end = clock() + seconds
        self.reason = ""

    def is_set(self) -> bool:
        if super().is_set():
            self.reason = self.reason or "stop"
        elif self._clock() > self._end:
            self.reason = "deadline"
            self.set()
        elif caller_gone():
            self.reason = "gone"
            self.set()
        return super().is_set()


def caller_gone() -> bool:
    """Whether the request this worker thread serves was cancelled; False outside such a thread."""
    from anyio.from_thread import check_cancelled

    try:
        check_cancelled()
    except asyncio.CancelledError:
        return True
    except RuntimeError:  # not a worker thread of an event loop (a test, a script)
        return False
    return False


class Stops:
    """Per-session stop flags: the Stop button sets one, the running benchmark reads it."""

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Condition()

    def start(self, session_id: str, seconds: float = float("inf")) -> RunStop:
        with self._lock:
            flag = self._flags[session_id] = RunStop(seconds)
        return flag

    def stop(self, session_id: str) -> bool:
        """True when a run of this session was asked to stop."""
        with self._lock:
            flag = self._flags.get(session_id)
        if flag is None:
            return False
        flag.set()
        with self._lock:
            self._lock.notify_all()
        return True

    def finish(self, session_id: str, flag: threading.Event) -> None:
        with self._lock:
            if self._flags.get(session_id) is flag:
                del self._flags[session_id]
            self._lock.notify_all()

    def wait_asked(self, timeout: float) -> bool:
        """Wait until a running run has been asked to stop (by its page, its client or an operator)."""
        with self._lock:
            return self._lock.wait_for(lambda: any(flag.is_set() for flag in self._flags.values()), timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is going (e.g. before a shutdown); False if one still runs after `timeout` s."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._flags, timeout)


STOPS = Stops()


@dataclass
class Scored:
    """A finished (or stopped) benchmark with ground truth."""

    evaluation: Evaluation
    volume: int
    stopped: bool
    cutouts: dict[tuple[str, str], Image.Image] = field(default_factory=dict)  # (provider, image) -> RGBA thumb


def thumbnail_cutout(source_path: Path, alpha: Image.Image) -> Image.Image:
    from ...image.io import load_image

    rgb = load_image(source_path).rgb  # EXIF-turned, as the provider saw it
    if alpha.size != rgb.size:
        alpha = alpha.resize(rgb.size, Image.Resampling.BILINEAR)
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    rgba.thumbnail((THUMB_SIDE, THUMB_SIDE))
    return rgba


def run_scored(
    upload: Upload,
    provider_ids: Sequence[str],
    keys: Keys,
    app: App,
    *,
    session_id: str,
    volume: int,
    report: Report | None = None,
    stop: threading.Event | None = None,
    bootstrap: int = 2000,
) -> Scored:
    """Ground-truth benchmark: rmbg.eval.run.evaluate on the uploaded folder, paid up front; with the
    cascades `rmbg evaluate --cascade auto` simulates (each local provider then a hosted or higher-scoring
    one, from the mattes the run made: no further call; rmbg.webapp.benchmark.cascades shows them)."""
    from ...eval.dataset import discover

    dataset = discover(upload.root)
    cutouts: dict[tuple[str, str], Image.Image] = {}
    with paid_run(provider_ids, len(dataset), keys, app, session_id) as providers:
        by_id = {p.id: p for p in providers}
        images = {s.name: s.image for s in dataset.samples}

        def on_row(done: int, total: int, row: ImageRow) -> None:
            made = by_id[row.provider].last
            by_id[row.provider].last = None
            if made is not None and row.status in ("ok", "excluded"):  # excluded: shown, not ranked
                cutouts[(row.provider, row.name)] = thumbnail_cutout(images[row.name], made)
            if report:
                report(Step.of(done, total, len(providers), row.name, row.provider, row.status != "failed"))

        evaluation = evaluate(
            dataset,
            providers,
            progress=on_row,
            bootstrap=bootstrap,
            stop=stop.is_set if stop is not None else None,
            cascades="auto",
        )
    stopped = len(evaluation.rows) < len(dataset) * len(provider_ids)
    return Scored(evaluation, volume, stopped, cutouts)


def check_choice(provider_ids: Sequence[str] | None) -> list[str]:
    ids = list(dict.fromkeys(provider_ids or []))
    if not ids:
        raise RmbgError("Tick at least one provider to benchmark.")
    return ids
