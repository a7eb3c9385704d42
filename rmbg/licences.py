"""The licence switch: RMBG_COMMERCIAL_ONLY=1 refuses every provider whose weights or
terms do not allow commercial use, or are not known to, through every door.

Each provider declares its Licence once, beside it (rmbg.declarations; the
refiners in rmbg.refine, the hosted video services on their clients, LICENCE).
`hf:OWNER/REPO` models have none declared: theirs is read from the model card's
`license` tag (`hub_licence`), and a card that cannot be read counts as unknown.
The registry asks `check` before it builds anything, so a refused provider is
never built, downloaded, run or paid for, and leaves it out of its lists
(`commercial_only`); the error carries a Remedy so each door says it in its own words
(rmbg.wording). Standard library only, until a Hub model's card is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .declarations import Licence
from .errors import ConfigurationError, LicenceError
from .settings import of as settings_of

SETTING = "RMBG_COMMERCIAL_ONLY"

# Hub `license` tags that allow commercial use of the weights without further terms
# (https://huggingface.co/docs/hub/repositories-licenses); any other tag is not known to.
COMMERCIAL_TAGS = frozenset(
    {
        "apache-2.0",
        "mit",
        "bsd",
        "bsd-2-clause",
        "bsd-3-clause",
        "bsd-3-clause-clear",
        "cc0-1.0",
        "cc-by-2.0",
        "cc-by-2.5",
        "cc-by-3.0",
        "cc-by-4.0",
        "cc-by-sa-3.0",
        "cc-by-sa-4.0",
        "unlicense",
        "mpl-2.0",
    }
)


def commercial_only(environ: Mapping[str, str] | None = None) -> bool:
    """Whether RMBG_COMMERCIAL_ONLY is on (unset: off); ConfigurationError naming it for a bad value."""
    try:
        return bool(settings_of(environ).flag(SETTING))
    except ValueError:
        value = settings_of(environ).raw(SETTING)
        raise ConfigurationError(
            f"{SETTING} must be 1 (serve only models whose licence allows commercial use) or 0, got {value!r}."
        ) from None


def refusal(provider_id: str, label: str, licence: Licence) -> LicenceError | None:
    """The error refusing this provider under the switch, or None when it may run. Its message
    (Python's words) names the setting; its Remedy's situation, what the other doors say, does not."""
    if licence.commercial or not commercial_only():
        return None
    if licence.kind == "non-commercial":
        why = f"its licence, {licence.name} (non-commercial), does not allow commercial use"
    else:
        why = f"its licence is not known to allow commercial use ({licence.text})"
    situation = f"{label} is not available here: {why}, and only models licensed for commercial use are offered here."
    see = f" (licence: {licence.link})" if licence.link else ""
    message = (
        f"{provider_id} is refused: {why}, and {SETTING}=1 allows only models licensed for commercial use{see}. "
        f"Choose another provider (rmbg.list_providers() lists the allowed ones), or unset {SETTING} "
        "if your use is not commercial."
    )
    return LicenceError(provider_id, message, situation)


def check(provider_id: str, label: str, licence: Licence) -> None:
    """Raise LicenceError when the switch refuses this provider; nothing otherwise."""
    refused = refusal(provider_id, label, licence)
    if refused is not None:
        raise refused


def tag_licence(tag: str, link: str) -> Licence:
    """The Licence a model card's `license` tag says."""
    name = tag.strip().lower()
    if name in COMMERCIAL_TAGS:
        return Licence("commercial", name, link, f"{name}, from its model card")
    if "-nc" in name or "non-commercial" in name or "noncommercial" in name:
        return Licence("non-commercial", name, link, f"{name}, from its model card")
    return Licence("unknown", name or "none", link, f"the model card's license tag is {name or 'empty'!r}")


def hub_licence(repo_id: str, revision: str | None = None, token: Any = None) -> Licence:
    """The licence of a Hub repository, from its model card's `license` tag: the README.md in
    the Hugging Face cache, else fetched alone (a few kB; never under HF_HUB_OFFLINE=1).
    Unknown, with the reason, when the card cannot be had or has no such tag."""
    link = f"https://huggingface.co/{repo_id}"
    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
        from huggingface_hub.repocard import metadata_load

        cached = try_to_load_from_cache(repo_id, "README.md", revision=revision)
        if not isinstance(cached, str):
            cached = hf_hub_download(repo_id, "README.md", revision=revision, token=token)
        path = cached
        tag = (metadata_load(path) or {}).get("license")
    except Exception as exc:  # any failure to read the card leaves the licence unknown, with why
        reason = type(exc).__name__
        return Licence("unknown", "unknown", link, f"its model card could not be read here: {reason}")
    if not isinstance(tag, str):
        return Licence("unknown", "unknown", link, "its model card has no license tag")
    return tag_licence(tag, link)
