"""Which model downloads a visitor may start: the operator's choice.

A visitor who names a model makes the server fetch its weights when they
are not here yet. Two settings decide what is allowed (AppConfig):

- RMBG_HF_REPOS: the Hub repositories visitors may name as `hf:OWNER/REPO`
  (any image-segmentation model) through the page's API, REST and MCP:
  comma-separated OWNER/REPO, or `*` for any. Unset: none (the library and
  the command line are not affected: there the user is the operator).
- RMBG_VISITOR_DOWNLOADS: on a public deployment, the declared local models
  (ids such as `birefnet-lite`) whose first use may download their weights.
  Unset: only the app's default model. A declared model whose weights are
  already here runs whatever this says; elsewhere than a public deployment
  every declared model is downloaded on first pick, as before.

A public deployment is a Hugging Face Space (SPACE_ID) or a server bound to
a non-loopback address, unless RMBG_PUBLIC says otherwise (1 or 0).
"""

from __future__ import annotations

from collections.abc import Mapping

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
