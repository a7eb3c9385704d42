"""The hosted services whose keys rmbg takes, as every door reads them: one Vendor each,
declared once in the one declaration table (rmbg.declarations, beside its providers).

A vendor is where a key is paid to, not a model: one key may serve several
providers (image, replace and video alike). Everything that names a key is
derived from VENDORS, in this order: the library's environment variables and
the words of its errors (rmbg.wording), the app's key slots (rmbg.webapp.catalog
Keys), the page's key boxes and the forms' key fields (rmbg.webapp.ui), the
REST headers (rmbg.webapp.rest), the MCP tool's arguments, the tests'
environment; and the RMBG_* settings each vendor declares (rmbg.settings_declared).
Adding a vendor is its rows in the table plus its provider module
(docs/contributing.md says how); this module names none.

This module imports only the table (which imports nothing else from rmbg), so anything may import it.
"""

from __future__ import annotations

from .declaration_types import HOST_READER, SettingRow, Vendor
from .declarations import VENDORS

__all__ = ["BY_ENV", "BY_SLOT", "HOST_READER", "KEY_VARS", "VENDORS", "Vendor", "markdown_table", "vendor"]

BY_SLOT = {vendor.slot: vendor for vendor in VENDORS}
BY_ENV = {env: vendor for vendor in VENDORS for env in vendor.env}
KEY_VARS = tuple(BY_ENV)  # every variable a key may be read from (log lines are scrubbed of their values)


def vendor(slot: str) -> Vendor:
    """The declaration of the vendor whose key slot is `slot` (Keys.<slot>); KeyError for an undeclared one."""
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


def vendor_settings() -> list[SettingRow]:
    """(name, type, default, meaning, reader) of each RMBG_* variable a vendor declares (Vendor.settings
    and its host, Vendor.setting_rows), in VENDORS order: rows of rmbg.settings_declared's table."""
    return [row for v in VENDORS for row in v.setting_rows()]
