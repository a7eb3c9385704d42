"""Matte refiners: run after any provider, local or hosted, on (image, matte).

A refiner is one small object (the Refiner protocol below): an id, the
options that change its output (part of the matte cache key), and
`refine(image, alpha) -> alpha`. Built by name with `get_refiner`, or
constructed directly and passed as an object.

Importing this package loads neither torch nor transformers; models load on
the first refine.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..declarations import SAM2_APACHE, UNDECLARED, VITMATTE_APACHE, Licence
from ..errors import RmbgError
from ..licences import check, commercial_only, hub_licence

if TYPE_CHECKING:
    from PIL import Image

    from ..types import Matte


@runtime_checkable
class Refiner(Protocol):
    id: str

    def options(self) -> Mapping[str, object]:
        """What changes the refined matte (cache key, provenance). No secrets."""
        ...

    def refine(self, image: Image.Image, alpha: Image.Image) -> Image.Image:
        """A mode-L matte of the image's size from an RGB image and its mode-L matte."""
        ...


# name -> "module:factory" (a refiner class or a function), called with keyword config only.
_REFINERS: dict[str, str | Callable[..., Refiner]] = {
    "vitmatte": "rmbg.refine.vitmatte:VitMatteRefiner",
    "sam2-pick": "rmbg.refine.sam2:SubjectPick",
}
# name -> the licence of its default weights (and of the others its module lists in MODELS);
# weights named otherwise (model=) are judged by their model card (rmbg.licences.hub_licence).
_LICENCES: dict[str, Licence] = {"vitmatte": VITMATTE_APACHE, "sam2-pick": SAM2_APACHE}


class Chain:
    """Refiners applied in order, as one refiner: e.g. SAM 2 picking the
    subject, then ViTMatte refining its edges. Its options (the cache key)
    are each step's, in order."""

    def __init__(self, *steps: Refiner):
        self.steps = tuple(steps)
        self.id = "+".join(step.id for step in self.steps)

    def __repr__(self) -> str:
        return f"Chain{self.steps!r}"

    def options(self) -> Mapping[str, object]:
        return {"steps": [{"id": step.id, **dict(step.options())} for step in self.steps]}

    def refine(self, image: Image.Image, alpha: Image.Image) -> Image.Image:
        for step in self.steps:
            alpha = step.refine(image, alpha)
        return alpha


def chain(*steps: Refiner | None) -> Refiner | None:
    """The non-None steps as one refiner (None when there are none, the step itself when one)."""
    kept = [step for step in steps if step is not None]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else Chain(*kept)


class UnknownRefinerError(RmbgError, KeyError):
    """A refiner name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:
        return str(self.args[0])


def list_refiners() -> list[str]:
    """Refiner names, those licensed for commercial use only under RMBG_COMMERCIAL_ONLY=1."""
    every = not commercial_only()
    return [name for name in _REFINERS if every or _LICENCES.get(name, UNDECLARED).commercial]


def register_refiner(name: str, target: str | Callable[..., Refiner], licence: Licence = UNDECLARED) -> None:
    _REFINERS[name] = target
    _LICENCES[name] = licence


def refiner_licence(name: str, model: object = None, revision: str | None = None) -> Licence:
    """The licence of a refiner's weights: declared for its own models, else `model`'s model card."""
    declared = _LICENCES.get(name, UNDECLARED)
    target = _REFINERS.get(name)
    if model is None or not isinstance(target, str):
        return declared
    known = getattr(importlib.import_module(target.partition(":")[0]), "MODELS", ())
    return declared if str(model) in known else hub_licence(str(model), revision)


def check_refiner(name: str, **config: object) -> None:
    """LicenceError under RMBG_COMMERCIAL_ONLY=1 when this refiner's weights are not licensed for
    commercial use (or not known to be); before anything is built or downloaded."""
    if commercial_only():
        revision = config.get("revision")
        licence = refiner_licence(name, config.get("model"), revision if isinstance(revision, str) else None)
        check(name, f"The {name} refiner", licence)


def get_refiner(name: str = "vitmatte", **config) -> Refiner:
    """Build a refiner by name, e.g. get_refiner("vitmatte", model="path/or/repo", revision="...")."""
    try:
        target = _REFINERS[name]
    except KeyError:
        raise UnknownRefinerError(f"Unknown refiner {name!r}. Valid refiners: {', '.join(_REFINERS)}.") from None
    check_refiner(name, **config)
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    return target(**config)


def resolve_refiner(refine: str | Refiner | None) -> Refiner | None:
    """What `refine=` accepts: None / "" / False (no refinement), a name, or a Refiner object."""
    if not refine:
        return None
    if isinstance(refine, str):
        return get_refiner(refine)
    if isinstance(refine, Refiner):
        return refine
    raise TypeError(f"refine must be a refiner name ({', '.join(_REFINERS)}), a Refiner, or None; got {refine!r}")


def cache_options(provider_options: Mapping[str, object], refiner: Refiner | None) -> dict[str, object]:
    """Provider options extended with the refiner's, for the matte cache key:
    a refined matte gets its own entry, the unrefined one stays reusable."""
    options = dict(provider_options)
    if refiner is not None:
        options["refine"] = {"id": refiner.id, **dict(refiner.options())}
    return options


def refine_matte(refiner: Refiner, image: Image.Image, matte: Matte) -> Matte:
    """The provider's Matte with its alpha refined: seconds include the refinement,
    meta gains refine / refine_model / refine_revision / refine_seconds; cost unchanged."""
    start = time.perf_counter()
    alpha = refiner.refine(image, matte.alpha)
    spent = time.perf_counter() - start
    opts = refiner.options()
    meta = dict(matte.meta)
    meta["refine"] = refiner.id
    for key in ("model", "revision"):
        if key in opts:
            meta[f"refine_{key}"] = str(opts[key])
    meta["refine_seconds"] = f"{spent:.3f}"
    return replace(matte, alpha=alpha, seconds=matte.seconds + spent, meta=meta)


__all__ = [
    "Chain",
    "Refiner",
    "UnknownRefinerError",
    "cache_options",
    "chain",
    "get_refiner",
    "list_refiners",
    "refine_matte",
    "register_refiner",
    "resolve_refiner",
]
