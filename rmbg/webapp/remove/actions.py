"""The app's actions, end to end, without any UI: remove, re-render, compare.

Each takes the session (from gr.State) and returns the new session with what
to show. Only a cache miss reaches a provider; re-rendering never does.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from ...api import remove_background
from ...errors import InvalidImageError
from ...image.formats import URL as URL_RE
from ...image.formats import url_name
from ...image.framing import frame_source
from ...image.io import load_image
from ...providers.base import Provider
from ...result import Result
from ..catalog import Keys, build_provider, close
from ..context import App, warm_key
from ..costs import cost_markdown, record
from ..downloads import check_refiners, refiner_models
from ..file_limits import fetch_within_limit, image_file, image_max_bytes, shown_mb
from ..guard import Guarded, payer
from ..inputs import require_image
from ..look import Look, download, preview_of, shown, shrink, stem_of
from ..memory import give_back
from ..spending import Session
from ..zerogpu import on_cpu_config
from .escalate import Escalation

Report = Callable[[str], None]


@dataclass(frozen=True)
class Shown:
    """What the Remove tab shows: before/after preview images (same size),
    the download file (full size, chosen format) and the cost line (Markdown)."""

    before: Image.Image
    after: Image.Image
    file: Path
    cost_line: str


def waiting_text(provider: Provider, warm: set[str] | frozenset[str] = frozenset()) -> str:
    """The progress text while a provider works; "loads the model" only on
    the first run of a local model in this process."""
    if provider.kind == "hosted":
        return f"Waiting for {provider.label}…"
    if warm_key(provider) in warm:
        return f"Running {provider.label}…"
    return f"Running {provider.label}: the first run loads the model…"


DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,", re.I)


def image_from_reference(text: str, fetch: Callable[[str], bytes] | None = fetch_within_limit) -> bytes:
    """An image named in text: a data: URI (base64) or an http(s) URL, fetched by
    `fetch` (rmbg.image.fetch: behind the SSRF guard; None refuses URLs);
    anything else is a readable error."""
    text = (text or "").strip()
    match = DATA_URI.match(text)
    if match:
        # read as a browser reads one (WHATWG's forgiving base64): its ASCII whitespace skipped (the lines
        # of 76 that `base64` and MIME write), its padding optional
        payload = re.sub(r"[\t\n\f\r ]+", "", text[match.end() :])
        if len(payload) > (limit := image_max_bytes()) * 4 // 3 + 4:  # as an uploaded image (file_limits)
            raise InvalidImageError(f"The data: URI is over {shown_mb(limit)} MB.")
        try:
            return base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidImageError("The data: URI is not valid base64.") from None
    if URL_RE.match(text):
        if fetch is None:
            raise InvalidImageError("This server does not fetch image URLs; send the image itself.")
        return fetch(text)
    raise InvalidImageError("Give the image as an http(s) URL or a data: URI (data:image/png;base64,...).")


def image_from_url(url: str, app: App) -> Path:
    """The page's URL box: the image fetched behind the guard and kept as a
    file the image component shows (content-addressed, pruned like downloads)."""
    url = (url or "").strip()
    if not URL_RE.match(url):
        raise InvalidImageError("Paste an http(s) URL of an image, such as https://example.com/photo.jpg.")
    data = fetch_within_limit(url)
    load_image(data)  # decodable, within the pixel limit: said now, not at Remove
    with Image.open(io.BytesIO(data)) as sniffed:  # the name's ending from the content, for the browser
        kind = (sniffed.format or "png").lower().replace("jpeg", "jpg")
    stem = url_name(url).rsplit(".", 1)[0] or "image"
    return app.store.write(f"{stem}.{kind}", data)


def check_upload(image) -> str | None:
    """What is wrong with an uploaded file, said at upload; None when it is a
    readable image within the limits (its size first, then decoded once, as a run would)."""
    if image is None or (isinstance(image, str) and not image):
        return None
    try:
        load_image(image_file(image))
    except InvalidImageError as exc:
        return str(exc)
    return None


def run(
    image,
    provider_id: str,
    look: Look,
    keys: Keys,
    app: App,
    *,
    report: Report | None = None,
    session_id: str = "local",
    refine: str | None = None,
    points: Sequence[Sequence[float]] | None = None,
    box: Sequence[float] | None = None,
    on_cpu: bool = False,
    escalate: Escalation | None = None,
) -> tuple[Result, Provider]:
    """One provider on one image (a path, bytes or PIL image), rendered with `look`, under the spending
    caps: what the page, the REST endpoint and the MCP tool share, in a slot (rmbg.webapp.slots). Every
    option is checked before the provider is called. Raises an RmbgError (bad image, missing key, spending
    cap, provider failure, a ZeroGPU refusal: zerogpu.GpuRefused) with a message for a person. session_id:
    whose hosted spending the app's ledger keeps (gradio's session hash; "rest:<client>" for REST).
    refine ("vitmatte"), points and box: as remove_background's. on_cpu: a local model on this CPU.
    escalate: a better provider where this one is unsure (rmbg.webapp.remove.escalate); the provider
    returned is the one that made the result."""
    require_image(image)
    options = look.options()  # a bad colour or background image fails here, before any paid call
    picks = bool(points) or box is not None
    if refine or picks:  # refined edges / SAM 2 picking: never a Hub download a visitor starts unless allowed
        check_refiners(refiner_models(refine, picks), app.config.public, app.config.visitor_downloads)
    provider, stamp = app.built.get(provider_id, on_cpu)  # a local model that ran is kept built (context.Built)
    kept = provider is not None
    if provider is None:
        provider = build_provider(provider_id, keys, on_cpu_config(app.config, provider_id) if on_cpu else app.config)
    on_start = (lambda p: report(waiting_text(p, app.warm))) if report else None
    better = None
    try:
        guarded = Guarded(provider, payer(app, session_id, keys, provider), on_start, on_cpu=on_cpu)
        better = escalate.guarded(provider_id, keys, app, session_id, on_start, on_cpu) if escalate else None
        asked = escalate.keywords(better) if escalate is not None and better is not None else {}
        with app.slots.taken():  # the page's, its API's and MCP's; REST's when it took one of its own
            result = remove_background(
                image, guarded, options=options, cache=app.cache, refine=refine or None, points=points or None,
                box=box, **asked,
            )  # fmt: skip
        made = better.inner if better is not None and result.provider == better.id else provider
        app.warm.update(warm_key(used) for used in (provider, made) if used.kind == "local")
        kept = kept or app.built.keep(provider_id, on_cpu, provider, stamp)
    finally:
        if not kept:
            close(provider)
        if better is not None:
            close(better.inner)
    return (escalate.said(result, provider_id, keys) if escalate else result), made


def remove(
    session: Session,
    image,
    provider_id: str,
    look: Look,
    keys: Keys,
    app: App,
    volume: int,
    *,
    report: Report | None = None,
    session_id: str = "local",
    refine: str | None = None,
    points: Sequence[Sequence[float]] | None = None,
    box: Sequence[float] | None = None,
    started: float | None = None,
    on_cpu: bool = False,
    escalate: Escalation | None = None,
) -> tuple[Session, Shown]:
    """run(), then keep the result for re-rendering and show it, rendered once.
    `started`: time.perf_counter() when the click reached the server, for the
    line's total seconds."""
    picks: dict[str, Any] = {"refine": refine, "points": points, "box": box, "on_cpu": on_cpu, "escalate": escalate}
    result, provider = run(image, provider_id, look, keys, app, report=report, session_id=session_id, **picks)
    session = record(session, result, provider.kind, app.ledger.session_spent(session_id), app.book)
    token = app.recent.put(replace(result, image=result.alpha))  # pixels kept once, shared, bounded
    session = replace(session, last=token, last_name=stem_of(image), last_label=provider.label)
    return session, show(session, look, app, volume, rendered=result, started=started)


EXPIRED = "This result is no longer kept on the server (it keeps the most recent ones); run it again."


def last_result(session: Session, app: App) -> Result | None:
    """The session's last result from the shared store; None before any run.
    Raises InvalidImageError when the store has since let it go."""
    if session.last is None:
        return None
    result: Result | None = app.recent.get(session.last)
    if result is None:
        raise InvalidImageError(EXPIRED)
    return result


BEFORE_FILL = (236, 236, 236)  # the canvas around a framed photo in the before half: a light grey


def show(
    session: Session, look: Look, app: App, volume: int, rendered: Result | None = None, started: float | None = None
) -> Shown:
    """The session's last result with `look` (no provider call); `rendered`
    when it was already rendered with this look; `started` as remove()'s."""
    result = rendered or last_result(session, app)
    if result is None:
        raise InvalidImageError("Remove a background first.")
    rendered = rendered or shown(result, look)
    side = app.config.max_preview_side
    source = result.source
    if look.framing is not None:  # the photo cropped and placed as the cut-out is, so the halves line up
        source = frame_source(result.source, result.alpha, look.framing, BEFORE_FILL)
    before, after = shrink(source, side), preview_of(rendered, look, side)
    file = download(rendered, look, session.last_name, app.store)
    total = None if started is None else time.perf_counter() - started
    out = Shown(
        before=before,
        after=after,
        file=file,
        cost_line=cost_markdown(result, session.last_label, session, app.config.cap_usd, volume, total, app.book),
    )
    del rendered, result  # the full-size images go now, and their pages back to the system
    give_back()
    return out


def rerender(session: Session, look: Look, app: App, volume: int) -> Shown | None:
    """The last result with a new look; None when nothing has been run yet."""
    if session.last is None:
        return None
    return show(session, look, app, volume)  # an expired result says so


def cost_line(session: Session, app: App, volume: int) -> str | None:
    """Only the cost line (the projection volume changed); None before a run."""
    result = app.recent.get(session.last)
    if result is None:
        return None
    return cost_markdown(result, session.last_label, session, app.config.cap_usd, volume, book=app.book)
