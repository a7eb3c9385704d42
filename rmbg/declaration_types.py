"""The three kinds of row the one declaration table holds (rmbg.declarations): a Licence, a
Vendor (a hosted service whose key rmbg takes) and a ProviderInfo (one provider, pointing at its
vendor when it is hosted).

Data and their checks only: this module imports nothing from rmbg, so the table built from it,
and everything that reads the table (the settings, the vendors' views, the docs hooks), stay
free of provider code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Kind = Literal["local", "hosted", "replace", "video"]
LicenceClass = Literal["commercial", "non-commercial", "unknown"]
# (name, type, default, meaning, reader): one RMBG_* variable, as rmbg.settings_declared.Setting takes it.
SettingRow = tuple[str, str, str, str, str]
HOST_READER = "rmbg.providers.hosted.base"  # HostedClient reads its URL_ENV (a Vendor's declared host)


@dataclass(frozen=True)
class Licence:
    """What the weights' licence, or a paid API's terms, allow: the class an operator
    filters on (RMBG_COMMERCIAL_ONLY, rmbg.licences), its short name, where to read it,
    and the sentence `rmbg providers` prints."""

    kind: LicenceClass
    name: str  # short: "MIT", "Apache-2.0", "CC BY-NC 4.0", "Acme terms"
    link: str
    text: str = ""  # the longer sentence; the name when empty

    @property
    def commercial(self) -> bool:
        return self.kind == "commercial"

    @property
    def short(self) -> str:
        """What a menu shows: the licence's name when it allows commercial use, else its class."""
        return {"commercial": self.name, "non-commercial": "non-commercial"}.get(self.kind, "licence unknown")

    def __str__(self) -> str:
        return self.text or self.name


# A provider registered without a declared licence (rmbg.registry.register without one).
UNDECLARED = Licence("unknown", "not declared", "", "no licence declared with this provider")


@dataclass(frozen=True)
class Vendor:
    """One hosted service's key: where a key is paid to, not a model (one key may serve several
    providers). The examples below are for a vendor "Acme", declared with slot "acme".

    slot: the app's name for the key (Keys.<slot>); lower-case letters only.
    env: the environment variable(s) its providers read the key from; the
        first is the one a provider declares (ProviderInfo.key_env) and
        messages name.
    label: its name on the page ("Acme": the box is "Acme key").
    header: the REST request header that carries a visitor's key.
    help: where to get a key.
    placeholder: the hint in the page's key box ("" = "<label> API key").
    host: (variable, default) of its API host, for a vendor whose provider modules do not declare
        their own host setting (it becomes a row of the RMBG_* table, read by HOST_READER); () for the others.
    terms: where its terms are written; its providers' licence (`licence`) follows from it.
    settings: the other RMBG_* variables its provider modules read, as rows of the RMBG_* table
        (rmbg.settings_declared adds them: a new vendor needs no edit there).
    """

    slot: str
    env: tuple[str, ...]
    label: str
    header: str
    help: str
    placeholder: str = ""
    host: tuple[str, str] | tuple[()] = ()
    terms: str = ""
    settings: tuple[SettingRow, ...] = ()

    def __post_init__(self) -> None:
        if not (self.slot.isascii() and self.slot.isalpha() and self.slot.islower()):
            raise ValueError(f"a vendor's slot is lower-case letters, not {self.slot!r}")
        if not self.env:
            raise ValueError(f"vendor {self.slot} names no environment variable")
        if not self.header.lower().startswith("x-"):
            raise ValueError(f"vendor {self.slot}'s REST header should start with X-, not {self.header!r}")

    @property
    def argument(self) -> str:
        """Its key's parameter in the named API, the MCP tool and the forms: "acme_key"."""
        return f"{self.slot}_key"

    @property
    def key_env(self) -> str:
        """The environment variable messages name (env's first)."""
        return self.env[0]

    @property
    def what(self) -> str:
        """Its key in a sentence: "a <label> API key"."""
        return f"a {self.label} API key"

    @property
    def box_label(self) -> str:
        """The page's key box: "Acme key"."""
        return f"{self.label} key"

    @property
    def hint(self) -> str:
        """The placeholder in the page's key box."""
        return self.placeholder or f"{self.label} API key"

    @property
    def licence(self) -> Licence:
        """Its providers' licence: a paid API's terms let its paying customers use the results
        commercially (the vendor's own licence of the models it serves, Bria's included, covers
        its customers); UNDECLARED when no terms are given."""
        if not self.terms:
            return UNDECLARED
        sentence = f"paid API: {self.label}'s terms allow commercial use of results"
        return Licence("commercial", f"{self.label} terms", self.terms, sentence)

    def setting_rows(self) -> tuple[SettingRow, ...]:
        """Its rows of the RMBG_* table: its modules' own settings, then its declared host."""
        if not self.host:
            return self.settings
        name, default = self.host
        return (
            *self.settings,
            (name, "URL", default, f"{self.label}'s API host (the tests point it at its fake).", HOST_READER),
        )


@dataclass(frozen=True)
class ProviderInfo:
    """One provider, as a person choosing it needs to know it.

    kind: "local" or "hosted" (removal providers), "replace" (a background replacer),
        "video" (a hosted service that takes a whole clip: rmbg.video.providers).
    price_usd: USD per image from the vendor's price table (hosted only; a
        local run is costed from measured seconds, rmbg.money.pricing.compute_cost);
        for a replacer, per generated image; for a video service, per second of video.
    price_note: where the price comes from.
    preview_units: what a `size="preview"` call costs in units of price_usd,
        where the vendor prices previews apart (0.25 credit at two of them),
        for projections; None: no cheaper preview.
    key_env: the environment variable holding the key it needs: the API key
        of a hosted service, or HF_TOKEN for gated Hub weights; "" for none.
    key_page: where to get that key or accept the terms.
    licence: what the weights' licence or the API's terms allow (Licence: class, name,
        link); rmbg.licences refuses the non-commercial and unknown ones under
        RMBG_COMMERCIAL_ONLY=1.
    download: what a first local run downloads (e.g. "176 MB").
    hardware: where it runs well.
    factory: "module:function" (or a callable) building the provider from
        keyword config; `args` are passed first (one function, several models).
    max_seconds: a video service's longest clip (None for the others).
    vendor: the hosted service its key is paid to; key_env, key_page and licence follow
        from it where they are not given (a key_env given must be one of its variables).
    known_as: the names another tool gives the same weights (rembg's sessions), offered
        in place of an unknown id that is one of them.
    """

    id: str
    label: str
    kind: Kind
    factory: str | Callable[..., Any]  # rmbg.registry.Factory: this data module imports no provider code
    price_usd: Decimal | None = None
    price_note: str = ""
    key_env: str = ""
    key_page: str = ""
    licence: Licence = UNDECLARED
    download: str = ""
    hardware: str = ""
    args: tuple[Any, ...] = field(default=())
    compare_by_default: bool = True  # ticked in the app's Compare tab when ready and free
    preview_units: Decimal | None = None
    max_seconds: float | None = None
    vendor: Vendor | None = None
    known_as: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        paid_to = self.vendor
        if paid_to is None:
            return
        if self.key_env and self.key_env not in paid_to.env:
            raise ValueError(f"{self.id} reads {self.key_env}, not one of {paid_to.slot}'s {paid_to.env}")
        # A frozen row completed once, as it is made: what it owes its vendor is not written twice.
        object.__setattr__(self, "key_env", self.key_env or paid_to.key_env)
        object.__setattr__(self, "key_page", self.key_page or paid_to.help)
        if self.licence == UNDECLARED:
            object.__setattr__(self, "licence", paid_to.licence)
