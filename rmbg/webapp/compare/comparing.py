"""The Compare tab: one image, several providers, shown side by side.

rmbg.compare runs the providers (hosted calls in parallel, local models one
at a time); this module builds them for the visitor (keys, spending cap),
keeps the outcome in the session, and turns it into what the tab shows:
a gallery on one background, a table of seconds and cost, the agreement
between every pair of mattes, and a before/after pair. Re-showing with
another background never calls a provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

from PIL import Image

from ...compare import PairAgreement, compare
from ...confidence import DEFAULT_BELOW, META_KEY
from ...errors import RmbgError
from ...result import Result
from ...types import format_usd
from ..catalog import Keys, build_provider, close
from ..context import App
from ..costs import record
from ..downloads import check_refiners, refiner_models
from ..guard import Guarded, payer
from ..inputs import require_image
from ..look import Look, preview_of, shown
from ..memory import give_back
from ..messages import safe_message
from ..spending import Session
from ..zerogpu import on_cpu_config

# a new column goes last: the named API's clients read the table by index
TABLE_HEADERS = ["provider", "seconds", "cost of this image", "status", "confidence"]
AGREEMENT_HEADERS = ["provider A", "provider B", "IoU", "mean |Δα|"]
GALLERY_SIDE = 720  # px, long side of a gallery preview
ALONE = "ok: the only provider ticked; tick another, or paste a key for a hosted one, to compare with it"


@dataclass(frozen=True)
class Compared:
    """A comparison kept in the session. results and failures are keyed by
    provider id in the order asked; failures hold a readable message, counted what a failed paid call
    was counted at against the caps (its error's counted_usd: it may have been billed)."""

    source: Image.Image | None
    results: Mapping[str, Result]
    failures: Mapping[str, str]
    labels: Mapping[str, str]
    agreement: tuple[PairAgreement, ...]
    counted: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class CompareView:
    """gallery: (preview, caption) per result; table/agreement: rows for
    TABLE_HEADERS (with each matte's confidence: where a model is unsure) / AGREEMENT_HEADERS;
    ids: providers that returned a matte."""

    gallery: list[tuple[Image.Image, str]]
    table: list[list[str]]
    agreement: list[list[object]]
    ids: list[str]


def caption(result: Result) -> str:
    """Short enough to read under a thumbnail, with up to 8 in the gallery:
    'fal-bria · 0.44 s · $0.0180'; the table beside it has the full labels and cost sources."""
    timing = "cached" if result.cached else f"{result.seconds.model:.2f} s"
    cost = "free" if result.cost.source == "free" else f"${format_usd(result.cost.usd)}"
    return f"{result.provider} · {timing} · {cost}" + (
        " · watermarked (sandbox key)" if result.cost.watermarked else ""
    )


def confidence_cell(result: Result) -> str:
    """How sure the matte looks (rmbg.confidence: an estimate of its IoU, from the matte alone), marked
    "unsure" under the level at which `remove_background(escalate=...)` would send it to a better provider."""
    text = result.meta.get(META_KEY)
    if text is None:
        return ""
    return f"{text} · unsure (under {DEFAULT_BELOW})" if float(text) < DEFAULT_BELOW else text


def view(compared: Compared, look: Look, max_side: int = GALLERY_SIDE, *, rendered: bool = False) -> CompareView:
    """What the tab shows for `look` (background/mask); no provider call.
    rendered: the results' images already have this look (just compared with it)."""
    gallery, table = [], []
    for pid, result in compared.results.items():
        image = result if rendered else shown(result, look)
        gallery.append((preview_of(image, look, max_side), caption(result)))
        cost = "free (cached)" if result.cost.source == "free" and not result.cost.watermarked else result.cost.label()
        seconds = "cached" if result.cached else f"{result.seconds.model:.2f}"
        table.append([pid, seconds, cost, "ok", confidence_cell(result)])
    for pid, message in compared.failures.items():
        counted = compared.counted.get(pid)
        table.append([pid, "", f"${format_usd(counted)} counted (failed call)" if counted else "", message, ""])
    if len(compared.results) == 1 and not compared.failures:  # one model runs here (a CPU server without keys)
        table[0][-1] = ALONE
    rows = [[g.a, g.b, round(g.iou, 4), round(g.mad, 4)] for g in compared.agreement]
    return CompareView(gallery, table, rows, list(compared.results))


def pair(compared: Compared, a: str, b: str, look: Look, max_side: int) -> tuple[Image.Image, Image.Image] | None:
    """Results a and b as a before/after pair; None unless both exist."""
    if a not in compared.results or b not in compared.results:
        return None
    first, second = (preview_of(shown(compared.results[p], look), look, max_side) for p in (a, b))
    return first, second


Report = Callable[[str], None]


def run(
    session: Session,
    image,
    provider_ids,
    keys: Keys,
    app: App,
    look: Look = Look(),  # noqa: B008  (a frozen dataclass: one shared default cannot be changed)
    *,
    report: Report | None = None,
    session_id: str = "local",
    refine: str | None = None,
    on_cpu: bool = False,
) -> tuple[Session, CompareView]:
    """Compare providers on one image (a path or PIL image); with `refine`
    ("vitmatte") each also with refined edges, beside it ("<id>+vitmatte");
    `on_cpu`: the local models on this process's CPU (on ZeroGPU: no GPU time).

    A provider that cannot be built for this visitor (no key, unknown) or
    fails is listed with its reason; the others still run. The spending cap
    covers the whole comparison.
    """
    require_image(image)
    ids = list(dict.fromkeys(provider_ids or []))
    if not ids:
        raise RmbgError("Tick at least one provider (two or more to compare them).")
    options = look.options()  # checked before any provider runs
    check_refiners(refiner_models(refine, False), app.config.public, app.config.visitor_downloads)
    built, failures, labels = [], {}, {}
    for pid in ids:
        try:
            provider = build_provider(pid, keys, on_cpu_config(app.config, pid) if on_cpu else app.config)
        except RmbgError as exc:
            failures[pid], labels[pid] = safe_message(exc, keys), pid
            continue
        labels[pid] = provider.label
        built.append(provider)
    if report:
        report(f"Running {len(built)} providers…")
    try:
        guarded = [Guarded(p, payer(app, session_id, keys, p), on_cpu=on_cpu) for p in built]
        with app.compare_slots.taken():  # a paid call that must wait steps out of it (rmbg.webapp.slots)
            comparison = compare(image, guarded, cache=app.cache, options=options, refine=refine or None)
    finally:
        for provider in built:
            close(provider)
    results = dict(comparison.results)
    failures.update({pid: safe_message(err, keys) for pid, err in comparison.errors.items()})
    kinds = {p.id: p.kind for p in built}
    for key in list(results) + list(comparison.errors):
        base, _, refined = key.partition("+")
        if refined:
            labels[key] = f"{labels[base]} + {refined}"
    spent = app.ledger.session_spent(session_id)  # after every call: a failed paid one may have been counted
    for key, result in results.items():
        session = record(session, result, kinds[key.partition("+")[0]], spent, app.book)
    session = replace(session, hosted_usd=spent)
    shown = [key for pid in ids for key in (pid, *(k for k in results if k.startswith(pid + "+")))]
    ordered = {key: results[key] for key in shown if key in results}
    source = next(iter(ordered.values())).source if ordered else None
    failed = {key: failures[key] for key in [*ids, *comparison.errors] if key in failures}
    counted = {key: err.counted_usd for key, err in comparison.errors.items() if err.counted_usd}
    compared = Compared(source, ordered, failed, labels, comparison.agreement, counted)
    kept = replace(compared, results={pid: replace(r, image=r.alpha) for pid, r in ordered.items()})
    session = replace(session, comparison=app.recent.put(kept))
    shown_now = view(compared, look, rendered=True)
    del compared, comparison, results, ordered
    give_back()  # the full-size renders are gone: their pages go back to the system
    return session, shown_now


def comparison_of(session: Session, app: App) -> Compared | None:
    """The session's last comparison from the shared store (None: none, or no longer kept)."""
    compared: Compared | None = app.recent.get(session.comparison)
    return compared
