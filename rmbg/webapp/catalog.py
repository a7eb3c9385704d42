"""Which providers the page offers, in what state, and with whose key.

A hosted provider is built with the visitor's own key when they pasted one.
Without one it may fall back to the server's key (FAL_KEY, ...) only when
the deployment allows it (AppConfig.allow_server_keys); otherwise it is
"needs a key". Keys are passed in per call and never stored here.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from ..defaults import default_provider
from ..errors import MissingCredentialsError, Remedy, RmbgError
from ..providers.base import Provider, ProviderStatus, Replacer
from ..registry import declarations, get_provider, get_replacer, info, list_providers
from ..vendors import BY_ENV, VENDORS
from ..wording import without_server_paths, without_setting_names
from .config import AppConfig
from .downloads import check_declared, check_hub_repo, would_download

# The app's key slots, by the environment variable a provider declares (rmbg.registry):
# a new provider on an existing service needs no edit here, a new service one Vendor (rmbg.vendors).
ENV_SLOT = {env: vendor.slot for env, vendor in BY_ENV.items()}
SLOT_ENV = {vendor.slot: vendor.key_env for vendor in VENDORS}
SLOT_NAME = {vendor.slot: vendor.label for vendor in VENDORS}
SLOTS = tuple(vendor.slot for vendor in VENDORS)  # Keys' slots, in the order Keys.of takes them and the page shows them


def key_slot(provider_id: str) -> str:
    """The key field ("fal", "runware", ...: rmbg.vendors) a hosted provider uses; "" for none."""
    try:
        declared = info(provider_id)
    except RmbgError:
        return ""
    return ENV_SLOT.get(declared.key_env, "") if declared.kind != "local" else ""  # hosted removal, replace or video


STATE_TEXT = {
    "ready": "ready",
    "needs_key": "needs a key",
    "needs_token": "needs a Hugging Face token",
    "unavailable": "unavailable",
}
CLI_STATE_TEXT = {"needs_token": "needs HF_TOKEN"}  # how `rmbg providers` says it (rmbg.providers.local.hub)


class Keys:
    """API keys a visitor pasted into this page (empty = none), one per
    vendor (rmbg.vendors.VENDORS), read as attributes by slot: keys.fal.
    Immutable; never logged, never shown (repr says set or empty)."""

    __slots__ = ("_values",)
    _values: tuple[str, ...]

    def __init__(self, **keys: str) -> None:
        unknown = sorted(set(keys) - set(SLOTS))
        if unknown:
            raise TypeError(f"Keys has no slot {', '.join(unknown)}; its slots are {', '.join(SLOTS)}")
        object.__setattr__(self, "_values", tuple(keys.get(slot, "") for slot in SLOTS))

    def __getattr__(self, slot: str) -> str:
        if slot in SLOTS:
            return self._values[SLOTS.index(slot)]
        raise AttributeError(f"Keys has no slot {slot!r}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Keys is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Keys) and other._values == self._values

    def __hash__(self) -> int:
        return hash(self._values)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_keys, (self._values,))

    def __repr__(self) -> str:  # never show a key, even in a debugger
        return "Keys(" + ", ".join(f"{slot}={'set' if v else 'empty'}" for slot, v in zip(SLOTS, self._values)) + ")"

    @classmethod
    def of(cls, *values: str | None) -> Keys:
        """From values in SLOTS order (the page's key boxes), each stripped; None = empty."""
        if len(values) > len(SLOTS):
            raise TypeError(f"Keys.of takes at most {len(SLOTS)} keys ({', '.join(SLOTS)}), got {len(values)}")
        return cls(**{slot: (value or "").strip() for slot, value in zip(SLOTS, values)})

    def for_provider(self, provider_id: str) -> str:
        slot = key_slot(provider_id)
        return str(getattr(self, slot)) if slot else ""

    def secrets(self) -> tuple[str, ...]:
        return tuple(key for key in self._values if key)


def _keys(values: tuple[str, ...]) -> Keys:
    """Keys from its values in SLOTS order (pickle and copy rebuild it so)."""
    return Keys(**dict(zip(SLOTS, values)))


class SessionKeyMissing(MissingCredentialsError):
    """A hosted provider without a visitor key where server keys are not shared."""

    def __init__(self, provider_id: str):
        slot = key_slot(provider_id)
        env = SLOT_ENV.get(slot, "its API key variable")
        RmbgError.__init__(
            self,
            f"{provider_id} needs an API key: paste your {SLOT_NAME.get(slot, provider_id)} key in the "
            "API keys box (it stays in this browser session). This server does not share its own keys "
            "with visitors.",
        )
        self.provider_id = provider_id
        self.env_var = env
        self.remedy = Remedy(
            "key", f"{provider_id} needs an API key (this server does not share its own keys with visitors).", env
        )


def build_provider(provider_id: str, keys: Keys, config: AppConfig) -> Provider:
    """The provider for one call, with the visitor's key or, if allowed, the server's.

    Raises UnknownProviderError for an id that is not registered,
    SessionKeyMissing for a hosted provider this visitor may not use, and
    DownloadRefused for a model download the operator does not allow
    (rmbg.webapp.downloads).
    """
    return cast(Provider, _build(provider_id, keys, config, get_provider))


def build_video_provider(provider_id: str, keys: Keys, config: AppConfig) -> Any:
    """A hosted video service for one clip, under the same key rule (rmbg.video.providers)."""
    from ..video.providers import get_video_provider

    return _build(provider_id, keys, config, get_video_provider)


def build_replacer(provider_id: str, keys: Keys, config: AppConfig) -> Replacer:
    """The background replacer for one call, under the same key rule."""
    return cast(Replacer, _build(provider_id, keys, config, get_replacer))


def _build(provider_id: str, keys: Keys, config: AppConfig, factory: Callable[..., Any]) -> Any:
    check_hub_repo(provider_id, config.hf_repos)  # before anything is built, let alone fetched
    cfg = config.config_for(provider_id)
    key = keys.for_provider(provider_id)
    if key:
        cfg["api_key"] = key
    built = factory(provider_id, **cfg)
    if factory is get_provider and built.kind == "local":
        remember_recipe(built, Recipe(provider_id, dict(cfg)))
    if built.kind != "local" and not key and not config.allow_server_keys:
        close(built)
        raise SessionKeyMissing(provider_id)
    if config.public and would_download(built):
        try:
            check_declared(built, config.public, config.visitor_downloads, default_choice()[0])
        except RmbgError:
            close(built)
            raise
    return built


@dataclass(frozen=True)
class Recipe:
    """How the app built a local provider (its id and the operator's config for it): the
    same provider is built again from it in another process (rmbg.webapp.guard, ZeroGPU's
    worker), where the provider object itself, holding its loaded model, cannot be sent."""

    provider_id: str
    config: dict[str, Any]

    def build(self) -> Provider:
        return get_provider(self.provider_id, **self.config)


_RECIPES: weakref.WeakKeyDictionary[Provider, Recipe] = weakref.WeakKeyDictionary()


def remember_recipe(provider: Provider, made: Recipe) -> None:
    """Keep `made` as the provider's recipe while the provider lives. A provider class that
    cannot be a weak dictionary key (a registered dataclass with eq: unhashable; __slots__ without
    __weakref__) keeps none and is sent as it is (what a provider with no recipe always is)."""
    if _weak_key(provider):
        _RECIPES[provider] = made


def recipe(provider: Provider) -> Recipe | Provider:
    """The Recipe of a local provider built by build_provider; any other provider as it is."""
    return _RECIPES.get(provider, provider) if _weak_key(provider) else provider


def _weak_key(provider: object) -> bool:
    try:
        weakref.ref(provider)
        hash(provider)
    except TypeError:  # the answer, not a failure: such an object is simply never a key
        return False
    return True


def close(provider: object) -> None:
    """Release a hosted provider's HTTP client, if it has one."""
    closer = getattr(provider, "close", None)
    if callable(closer):
        closer()


def provider_status(provider_id: str, keys: Keys, config: AppConfig) -> ProviderStatus:
    """The state shown next to a provider's name; never makes a network call."""
    from ..video.providers import is_hosted_video

    try:
        builder = build_video_provider if is_hosted_video(provider_id) else build_provider
        provider = builder(provider_id, keys, config)
    except SessionKeyMissing:
        name = SLOT_NAME.get(key_slot(provider_id), "its")
        return ProviderStatus("needs_key", f"paste a {name} key")
    except RmbgError as exc:
        return ProviderStatus("unavailable", str(exc))
    try:
        return provider.status()
    finally:
        close(provider)


def label_of(provider_id: str, config: AppConfig) -> str:
    """The declared label (rmbg.registry), or the id of an undeclared provider."""
    try:
        return info(provider_id).label
    except RmbgError:
        return provider_id


def status_text(status: ProviderStatus) -> str:
    """'ready', 'needs a key', 'needs a Hugging Face token', with ' · no GPU (slow)' when slow."""
    text = STATE_TEXT.get(status.state, status.state)
    return text + (" · no GPU (slow)" if status.slow else "")


def choices(keys: Keys, config: AppConfig) -> list[tuple[str, str]]:
    """(label shown, provider id) for every registered provider this server offers, in registry
    order: its state here and its licence's short name ("MIT", "non-commercial"). Under
    RMBG_COMMERCIAL_ONLY=1 the ones not licensed for commercial use are not offered (list_providers)."""
    out = []
    for pid in list_providers():
        status = provider_status(pid, keys, config)
        out.append((f"{label_of(pid, config)} — {status_text(status)} · {info(pid).licence.short}", pid))
    return out


def default_selection(default_id: str, keys: Keys, config: AppConfig, at_least: int = 3) -> list[str]:
    """Providers ticked when the page opens, so the first click compares something:
    every local model that is ready and free here and answers in seconds (not
    "slow"), then the fastest slow ones until there are `at_least`; the default first."""
    quick: list[str] = []
    slow: list[str] = []
    for declared in declarations():
        if declared.kind != "local" or not declared.compare_by_default:
            continue
        status = provider_status(declared.id, keys, config)
        if status.ready:
            (slow if status.slow else quick).append(declared.id)
    chosen = quick + slow[: max(0, at_least - len(quick))]
    return sorted(chosen, key=lambda pid: pid != default_id)


def default_choice() -> tuple[str, str]:
    """(provider id, reason): the best model at hand that answers within 3 s here
    (rmbg.defaults.default_provider), else the ungated U2-Net-p."""
    return default_provider()


def default_note() -> str:
    """The default model under the provider menu, in one line; why no better model runs here is
    folded away (it was a 13-line paragraph that pushed the Remove button below the fold)."""
    import html

    from ..defaults import explained_default

    _, summary, passed_over = explained_default()
    text = f"Default: {summary}"
    if passed_over:
        why = html.escape(without_setting_names(without_server_paths("; ".join(passed_over))))
        text += (
            f"\n\n<details><summary>Why not a better model</summary>{why}. Pick another from the Provider "
            "list; this server's operator can add weights or a Hugging Face token.</details>"
        )
    return text


HELP = {"needs_token": "accept the licence and make a token", "needs_key": "get a key"}


def note(provider_id: str, keys: Keys, config: AppConfig) -> str:
    """One line under the provider menu: its state, what to do about it, and where."""
    status = provider_status(provider_id, keys, config)
    detail = status.message or ""
    for said in (STATE_TEXT.get(status.state, status.state), CLI_STATE_TEXT.get(status.state)):
        if said and detail.lower().startswith(said.lower()):  # "needs HF_TOKEN (x is gated)": the state once
            detail = detail[len(said) :].lstrip(" :;-—")
            if detail.startswith("(") and ")" in detail:
                inner, rest = detail[1:].split(")", 1)
                detail = inner + rest
            break
    detail = without_setting_names(without_server_paths(detail))  # the page's words: no setting's name
    text = f"**{status_text(status)}**" + (f" — {detail}" if detail else "")
    try:
        page = info(provider_id).key_page
    except RmbgError:
        page = ""
    if page and status.state in HELP:
        text += f" · [{HELP[status.state]}]({page})"
    return text
