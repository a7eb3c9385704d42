"""Which model downloads a visitor may start: the operator's choice.

A visitor who names a model makes the server fetch its weights when they
are not here yet. Two settings decide what is allowed (AppConfig):

- RMBG_HF_REPOS: the Hub repositories visitors may name as `hf:OWNER/REPO`
  (any image-segmentation model) through the page's API, REST and MCP:
  comma-separated OWNER/REPO, or `*` for any. Unset: none (the library and
  the command line are not affected: there the user is the operator).
- RMBG_VISITOR_DOWNLOADS: on a public deployment, the declared local models
  (ids such as `birefnet-lite`) and the refiners (`vitmatte`, `sam2` for
  subject picking) whose first use may download their weights.
  Unset: only the app's default model. A declared model whose weights are
  already here runs whatever this says; elsewhere than a public deployment
  every declared model is downloaded on first pick, as before.

A public deployment is a Hugging Face Space (SPACE_ID) or a server bound to
a non-loopback address, unless RMBG_PUBLIC says otherwise (1 or 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ModelUnavailableError
from ..providers.base import Provider
from ..settings import of as settings_of

HF_PREFIX = "hf:"  # as rmbg.registry.HF_PREFIX (not imported: no registry import needed to read settings)


class DownloadRefused(ModelUnavailableError):
    """A visitor asked for a model this deployment does not let visitors download."""


def repo_list(environ: Mapping[str, str] | None, name: str = "RMBG_HF_REPOS") -> tuple[str, ...]:
    """A comma-separated setting as a tuple of its non-empty entries."""
    return settings_of(environ).listed(name)


def check_hub_repo(provider_id: str, allowed: tuple[str, ...]) -> None:
    """Refuse `hf:OWNER/REPO` unless the operator lists the repository (or `*`)."""
    if not provider_id.startswith(HF_PREFIX):
        return
    repo = provider_id[len(HF_PREFIX) :].split("@", 1)[0].strip().strip("/")
    if "*" in allowed or repo.lower() in {a.lower() for a in allowed}:
        return
    raise DownloadRefused(
        f"{provider_id}: this server does not download Hub models its visitors name. Choose one of its "
        "providers (its operator can allow repositories with RMBG_HF_REPOS)."
    )


def would_download(provider: Provider) -> bool:
    """True when the provider's first run would fetch weights (its status says
    "downloads ... on first use"); never makes a network call."""
    if provider.kind != "local":
        return False
    return provider.status().message.startswith("downloads ")


def refiner_models(refine: str | None, picks: bool) -> list[tuple[str, Any]]:
    """(id, status source) of each model a run with `refine` ("vitmatte") and SAM 2 prompts (`picks`) loads."""
    found: list[tuple[str, Any]] = []
    if picks:
        from ..refine.sam2 import Sam2Provider

        found.append(("sam2", Sam2Provider()))
    if refine:
        from ..refine import get_refiner

        found.append((refine, get_refiner(refine)))
    return found


def check_refiners(models: list[tuple[str, Any]], public: bool, allowed: tuple[str, ...] | None) -> None:
    """Before any provider call (so nothing is paid for a run that cannot finish): each refining model
    (refiner_models) must be able to run here, and on a public deployment its weights must be here
    already unless the operator lets visitors start that download (RMBG_VISITOR_DOWNLOADS lists its id)."""
    permitted = allowed or ()
    for model_id, model in models:
        what = "Subject picking (SAM 2)" if model_id == "sam2" else f"Refining edges ({model_id})"
        status = model.status()
        if status.state != "ready":
            raise ModelUnavailableError(f"{what} cannot run on this server: {status.message}. Run without it.")
        if public and status.message.startswith("downloads ") and not {model_id, "*"} & set(permitted):
            raise DownloadRefused(
                f"{what} is not downloaded on this server, and its operator has not allowed visitors to start "
                f"that download. Run without it (the operator can allow it with RMBG_VISITOR_DOWNLOADS={model_id})."
            )


def check_declared(provider: Provider, public: bool, allowed: tuple[str, ...] | None, default_id: str) -> None:
    """On a public deployment, refuse a declared model whose weights are not
    here unless the operator lets visitors download it (`allowed`; None:
    only `default_id`)."""
    if not public or provider.id.startswith(HF_PREFIX):
        return
    permitted = (default_id,) if allowed is None else allowed
    if provider.id in permitted or "*" in permitted or not would_download(provider):
        return
    raise DownloadRefused(
        f"{provider.id} is not downloaded on this server, and its operator has not allowed visitors to start "
        "that download. Choose another provider (the operator can allow it with RMBG_VISITOR_DOWNLOADS)."
    )
