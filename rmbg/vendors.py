"""The hosted services whose keys rmbg takes: one Vendor each, declared once.

A vendor is where a key is paid to, not a model: fal.ai serves fal-bria,
fal-rmbg-3 and fal-bria-replace on one key. Everything that names a key is
derived from VENDORS, in this order: the library's environment variables and
the words of its errors (rmbg.wording), the app's key slots (rmbg.webapp.catalog
Keys), the page's key boxes and the forms' key fields (rmbg.webapp.ui), the
REST headers (rmbg.webapp.rest), the MCP tool's arguments, the tests'
environment. Adding a vendor is one Vendor here plus its provider module
(docs/contributing.md says how).

This module imports nothing from rmbg, so anything may import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Vendor:
    """One hosted service's key.

    slot: the app's name for the key (Keys.<slot>); lower-case letters only.
    env: the environment variable(s) its providers read the key from; the
        first is the one a provider declares (ProviderInfo.key_env) and
        messages name.
    label: its name on the page ("fal.ai": the box is "fal.ai key").
    header: the REST request header that carries a visitor's key.
    help: where to get a key.
    placeholder: the hint in the page's key box ("" = "<label> API key").
    host: (variable, default) of its API host, for a vendor whose provider modules do not declare
        their own host setting (rmbg.settings_declared adds it to the RMBG_* table: a new vendor
        needs no edit there); () for the others.
    """

    slot: str
    env: tuple[str, ...]
    label: str
    header: str
    help: str
    placeholder: str = ""
    host: tuple[str, str] | tuple[()] = ()

    def __post_init__(self) -> None:
        if not (self.slot.isascii() and self.slot.isalpha() and self.slot.islower()):
            raise ValueError(f"a vendor's slot is lower-case letters, not {self.slot!r}")
        if not self.env:
            raise ValueError(f"vendor {self.slot} names no environment variable")
        if not self.header.lower().startswith("x-"):
            raise ValueError(f"vendor {self.slot}'s REST header should start with X-, not {self.header!r}")

    @property
    def argument(self) -> str:
        """Its key's parameter in the named API, the MCP tool and the forms: "fal_key"."""
        return f"{self.slot}_key"

    @property
    def key_env(self) -> str:
        """The environment variable messages name (env's first)."""
        return self.env[0]

    @property
    def what(self) -> str:
        """Its key in a sentence: "a fal.ai API key"."""
        return f"a {self.label} API key"

    @property
    def box_label(self) -> str:
        """The page's key box: "fal.ai key"."""
        return f"{self.label} key"

    @property
    def hint(self) -> str:
        """The placeholder in the page's key box."""
        return self.placeholder or f"{self.label} API key"


VENDORS: tuple[Vendor, ...] = (
    Vendor("fal", ("FAL_KEY",), "fal.ai", "X-Fal-Key", "https://fal.ai/dashboard/keys", "key_id:key_secret"),
    Vendor("runware", ("RUNWARE_API_KEY",), "Runware", "X-Runware-Key", "https://my.runware.ai/signup"),
    Vendor("removebg", ("REMOVEBG_API_KEY",), "remove.bg", "X-Removebg-Key", "https://www.remove.bg/dashboard#api-key"),
    Vendor(
        "photoroom", ("PHOTOROOM_API_KEY",), "Photoroom", "X-Photoroom-Key", "https://app.photoroom.com/api-dashboard"
    ),
    # A Workers AI call names the account too: CLOUDFLARE_ACCOUNT_ID, or a key "ACCOUNT_ID:API_TOKEN" (one box).
    Vendor(
        "cloudflare",
        ("CLOUDFLARE_API_TOKEN",),
        "Cloudflare",
        "X-Cloudflare-Key",
        "https://dash.cloudflare.com/profile/api-tokens",
        "account_id:api_token",
        ("RMBG_CLOUDFLARE_URL", "https://api.cloudflare.com/client/v4"),
    ),
)
BY_SLOT = {vendor.slot: vendor for vendor in VENDORS}
BY_ENV = {env: vendor for vendor in VENDORS for env in vendor.env}
HOST_READER = "rmbg.providers.hosted.base"  # HostedClient reads its URL_ENV
KEY_VARS = tuple(BY_ENV)  # every variable a key may be read from (log lines are scrubbed of their values)


def vendor(slot: str) -> Vendor:
    """The declaration of `slot` ("fal", ...); KeyError for an undeclared one."""
    return BY_SLOT[slot]


def markdown_table() -> str:
    """The vendors as a Markdown table: where each key goes in every door.
    docs/providers.md shows it through the docs hook (<!-- vendors -->);
    README.md holds a copy, rewritten by `python docs/hooks/readme_vendors.py`."""
    lines = [
        "| service | environment variable | page box | REST header | MCP / API argument | get a key |",
        "|---|---|---|---|---|---|",
    ]
    for v in VENDORS:
        env = " or ".join(f"`{name}`" for name in v.env)
        lines.append(f"| {v.label} | {env} | *{v.box_label}* | `{v.header}` | `{v.argument}` | <{v.help}> |")
    return "\n".join(lines)


def host_settings() -> list[tuple[str, str, str, str, str]]:
    """(name, type, default, meaning, reader) of each API host a vendor declares (Vendor.host):
    rows of the RMBG_* table (rmbg.settings_declared), read by the vendor's client's base."""
    return [
        (v.host[0], "URL", v.host[1], f"{v.label}'s API host (the tests point it at its fake).", HOST_READER)
        for v in VENDORS
        if v.host
    ]
