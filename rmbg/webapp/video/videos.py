"""The Video tab's decisions, without any UI: a clip through one provider (or
two, side by side), its preview and download, the cost line, and another
background or format from the kept mattes (no model run, no new charge).

What every door shares (the page, the named API, REST): `cut` runs one
provider on one clip under the same rules as an image. A local model runs
frame by frame through the app's guard (one forward at a time on the device);
a hosted video provider is priced per second of video, and the clip's
duration x that price is reserved against the visitor's caps before anything
is sent, then settled by where the request got to (rmbg.money.paying): stopping a
hosted call already sent is charged as the charge rules say. Files are written
beside the output under a hidden name and renamed at the end (rmbg.video), so
a stopped or failed run offers nothing half-written, and its folder goes.

Which clips are taken, and how: rmbg.webapp.video.clips; what is kept
between clicks: rmbg.webapp.shelf.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import InvalidImageError, InvalidRequestError
from ...video import VideoLimits, VideoResult, remove_video
from ...video.decode import ClipInfo, probe
from ...video.encode import SUFFIX
from ...video.providers import VideoProvider, video_provider, video_providers
from ...wording import clip_length, seconds_text
from ..catalog import Keys, provider_status, status_text
from ..config import AppConfig
from ..context import App, warm_key
from ..guard import Guarded, payer
from ..look import BACKGROUNDS, BackgroundKind, background_picture, picker_colour, safe_stem
from ..shelf import Kept
from ..spending import hosted_text
from .clips import Clip, app_limits, stem_of, take_clip
from .room import ROOM, need_bytes
from .sides import Side, ready

FORMATS = ("webm", "mov", "mp4", "matte", "gif", "webp")
ON_A_BACKGROUND = ("mp4", "matte")  # mp4 is drawn on the background; the matte ignores it
PLAYS_HERE = ("webm", "mp4", "matte")  # formats the page's player shows as they are
Report = Callable[[float | None, str], None]  # (fraction done or None, text)


@dataclass(frozen=True)
class VideoLook:
    """background: "transparent", "colour" or "image"; colour: the picker's
    value; image: the background picture (path or bytes); fmt: one of FORMATS
    (webm by default, mp4 on a colour or image; mp4 on a transparent
    background is on white)."""

    background: BackgroundKind = "transparent"
    colour: str = "#ffffff"
    image: str | bytes | None = None
    fmt: str = "webm"

    @classmethod
    def of(
        cls, background: object = None, colour: object = None, image: object = None, fmt: object = None
    ) -> VideoLook:
        """From raw values, checked: unknown values and a background the format cannot carry are errors."""
        kind = str(background or "transparent").strip().lower()
        if kind not in BACKGROUNDS:
            raise InvalidRequestError(f"Unknown background {kind!r}: use one of {', '.join(BACKGROUNDS)}.")
        fmt = str(fmt or ("webm" if kind == "transparent" else "mp4")).strip().lower().lstrip(".")
        if fmt not in FORMATS:
            raise InvalidRequestError(f"Unknown video format {fmt!r}: use one of {', '.join(FORMATS)}.")
        if kind != "transparent" and fmt not in ON_A_BACKGROUND:
            raise InvalidRequestError(
                f"A {kind} background is drawn into an mp4; {fmt} keeps the transparency. "
                "Choose mp4, or the transparent background."
            )
        if kind == "image" and not image:
            raise InvalidImageError("Choose a background image first (or pick transparent or a colour).")
        return cls(kind, str(colour or "#ffffff"), image if isinstance(image, (str, bytes)) else None, fmt)

    def backdrop(self) -> object:
        """What the encoder draws behind the subject (mp4 only; None elsewhere):
        a '#rrggbb' colour, a PIL image, or None (white). Loading it checks it."""
        if self.fmt != "mp4" or self.background == "transparent":
            return None
        if self.background == "colour":
            r, g, b = picker_colour(self.colour)
            return f"#{r:02x}{g:02x}{b:02x}"
        return background_picture(self.image)  # type: ignore[arg-type]  # of() refuses an image background without one

    def files(self, stem: str) -> list[tuple[str, str]]:
        """(format, file name) of each file a run writes: the preview first (a
        WebM plays over the page's checkerboard in Chrome, Firefox and Edge; an
        MP4 everywhere), then the download when it is another file."""
        name = f"{safe_stem(stem)}-{'matte' if self.fmt == 'matte' else 'nobg'}{SUFFIX[self.fmt]}"
        if self.fmt in PLAYS_HERE:
            return [(self.fmt, name)]
        return [("webm", f"{safe_stem(stem)}-preview.webm"), (self.fmt, name)]


@dataclass(frozen=True)
class Shown:
    """What the tab shows: the preview (plays in the browser), the download
    (the chosen format), the cost line (Markdown); and the result it comes from."""

    preview: Path
    file: Path
    cost_line: str
    result: VideoResult  # frames, duration, seconds and cost (its mattes may be gone: REST keeps nothing)


def choices(keys: Keys, config: AppConfig) -> list[tuple[str, str]]:
    """(label shown, provider id) of every video provider offered here: its state, its price per
    second and its licence's short name (RMBG_COMMERCIAL_ONLY=1 leaves out the others)."""
    shown = []
    for p in video_providers():
        status = provider_status(p.id, keys, config)
        price = p.price_text if status.ready or p.usd_per_second is not None else "free (local)"  # it does not run here
        shown.append((f"{p.label} — {status_text(status)} · {price}{licence_note(p)}", p.id))
    return shown


def licence_note(provider: VideoProvider) -> str:
    return f" · {provider.licence.short}" if provider.licence else ""


def pair_of(default_id: str, ready: Sequence[str]) -> tuple[str | None, str | None]:
    """The Compare view's providers when the page opens: the default and the next ready one."""
    ids = [p.id for p in video_providers()]
    first = default_id if default_id in ids else (ready[0] if ready else None)
    others = [pid for pid in ready if pid != first and pid in ids]
    return first, (others[0] if others else None)


def progress_report(report: Report | None, offset: int = 0, runs: int = 1) -> Callable[[int, int | None], None]:
    """rmbg.video's progress(done, total) as `report(fraction, "12 / 48 frames · about 8 s left")`;
    `offset` and `runs`: this is run offset+1 of `runs` on the same clip (a comparison)."""
    started = time.monotonic()

    def on_frame(done: int, total: int | None) -> None:
        if report is None:
            return
        if not total:
            report(None, f"{done} frames")
            return
        left = (time.monotonic() - started) / max(done, 1) * (total * (runs - offset) - done)
        fraction = min(1.0, (offset * total + done) / (total * runs))
        said = f"{done} / {total} frames" + (f" ({offset + 1} of {runs})" if runs > 1 else "")
        report(fraction, f"{said} · about {left:.0f} s left")

    return on_frame


def cut(
    app: App,
    source: Path,
    side: Side,
    keys: Keys,
    outputs: Sequence[tuple[str, Path]],
    look: VideoLook,
    *,
    info: ClipInfo,
    session_id: str,
    limits: VideoLimits,
    progress: Callable[[int, int | None], None] | None = None,
    stop: object = None,
    audio: bool = True,
) -> VideoResult:
    """One provider on one clip (its header `info`), writing `outputs` ((format, path), ...) under
    the visitor's key rules and caps (module docstring) and the video doors' memory budget
    (rmbg.webapp.video.room: the clip waits for room before its first frame is decoded);
    `audio`: keep the clip's sound. Closes the side's provider."""
    provider = side.provider
    try:
        fmt = "matte" if look.fmt == "matte" else None  # else each file's format from its extension
        background = look.backdrop()  # a bad colour or picture is said before anything runs

        def engine(chosen: Any, **paying: Any) -> VideoResult:
            paths = [path for _, path in outputs]
            with ROOM.hold(need_bytes(info.width, info.height, info.coded_size), stop):
                return remove_video(
                    source, chosen, output=paths, format=fmt, background=background, audio=audio,
                    progress=progress, stop=stop, limits=limits, **paying,  # type: ignore[arg-type]  # is_set()
                )  # fmt: skip

        if side.payer is None:
            result = engine(Guarded(provider, payer(app, session_id, keys, provider), on_cpu=side.on_cpu))
            app.warm.add(warm_key(provider))
            return result
        # a hosted clip pays itself through the one rule (rmbg.money.paying): billed seconds x price held
        # against this visitor's session (and the day's total on the server's key) before it is sent
        return engine(provider, payer=side.payer)
    finally:
        side.close()


def remove(
    app: App,
    clip: Clip,
    provider_id: str,
    look: VideoLook,
    keys: Keys,
    *,
    session_id: str,
    run_key: str | None = None,
    report: Report | None = None,
    keep: bool = True,
    on_cpu: bool = False,
) -> Shown:
    """One clip through one provider; kept as the session's "one" for re-rendering. on_cpu: a local
    model on this server's CPU, outside ZeroGPU (what a visitor whose GPU time is spent is offered).
    run_key: whose Stop stops it (the session by default). keep False (REST):
    only the download is written, and nothing is kept."""
    entry = video_provider(provider_id)
    limits = app_limits()
    started = time.perf_counter()
    # one of the door's slots (POST /api/video's own when it took one); a paid call that must wait
    # steps out of it (rmbg.webapp.slots)
    with app.video_slots.taken(), app.runs.running(run_key or session_id) as stop:
        if keep:
            app.videos.drop(session_id, "one")  # a new run replaces the last; a stopped one leaves nothing
        folder = Path(tempfile.mkdtemp(prefix="rmbg-app-video-"))
        try:
            source = take_clip(clip, folder, limits)
            stem = stem_of(clip)
            out = folder / "out"
            outputs = [(fmt, out / name) for fmt, name in look.files(stem)[0 if keep else -1 :]]
            info = probe(source, limits, stem)
            (side,) = ready(app, info, [entry], keys, session_id=session_id, on_cpu=on_cpu)
            if report:
                report(0.0, "Starting…")
            result = cut(
                app, source, side, keys, outputs, look, info=info, session_id=session_id, limits=limits,
                progress=progress_report(report), stop=stop,
            )  # fmt: skip
            files = [app.store.adopt(path, path.name) for _, path in outputs]
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    line = cost_line(result, entry, app, session_id, time.perf_counter() - started)
    if keep:
        shutil.rmtree(out, ignore_errors=True)
        app.videos.put(session_id, "one", Kept((result,), (entry.label,), stem, folder))
    else:
        Kept((result,), (entry.label,), stem, folder).close()
    return Shown(files[0], files[-1], line, result)


def rerender(app: App, session_id: str, look: VideoLook) -> Shown | None:
    """The session's last clip with another background or format, from its
    mattes (no model run); None before any run."""
    kept = app.videos.get(session_id, "one")
    if kept is None:
        return None
    background = look.backdrop()
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="rmbg-app-video-"))
    info = kept.results[0].info  # decoded and encoded again, in one of the door's slots
    try:
        files = []
        with app.video_slots.taken(), ROOM.hold(need_bytes(info.width, info.height, info.coded_size)):
            for fmt, name in look.files(kept.stem):
                path = kept.results[0].save(folder / name, fmt, background=background if fmt == "mp4" else None)
                files.append(app.store.adopt(path, name))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = kept.results[0]
    entry = video_provider(result.provider)
    line = cost_line(result, entry, app, session_id, time.perf_counter() - started, again=True)
    return Shown(files[0], files[-1], line, result)


def money_of(result: VideoResult, entry: VideoProvider) -> str:
    """'free (local; machine time $0.000040 (compute estimate))', or for a hosted
    provider '$0.60 (reported) at $0.0500 per second of video'."""
    if entry.usd_per_second is None:
        machine = f"; machine time {result.cost.label()}" if result.cost.source == "compute" else ""
        return f"free (local{machine})"
    if result.cost.source == "free":  # its answer kept from an earlier call (rmbg.video.answers)
        return f"free ({result.cost.note})"
    return f"{result.cost.label()} at {entry.price_text}"


def cost_line(
    result: VideoResult, entry: VideoProvider, app: App, session_id: str, total_s: float, *, again: bool = False
) -> str:
    """'**U2-Net-p** · 48 frames, 2.0 s of video · model 3.1 s · total 4.2 s · this clip: free (...) ·
    session: $0 hosted (cap $1.00)'; `again`: re-encoded from the kept mattes (no model run, no charge)."""
    spent = app.ledger.session_spent(session_id)
    timing = f"re-encoded in {seconds_text(total_s)} s, no model run, no new charge" if again else (
        f"model {seconds_text(result.seconds.model)} s · total {seconds_text(total_s)} s"
    )  # fmt: skip
    line = (
        f"**{entry.label}** · {clip_length(result.frames, result.duration)} · {timing} · "
        f"this clip: {money_of(result, entry)} · {hosted_text(spent, app.config.cap_usd)}"
    )
    return line + (f"  \n{result.note}" if result.note else "")
