"""mkdocs hook: figures come from files, never from hand-copied tables.

In any page, alone on its line,
  <!-- results: NAME -->   becomes the tables of benchmarks/results/NAME.json,
                           with the command, date, machine and versions that made them;
  <!-- settings -->        becomes the table of every RMBG_* variable, from rmbg/settings_declared.py;
  <!-- vendors -->         becomes the table of the hosted services' keys, from rmbg/vendors.py;
  <!-- keys -->            becomes each key's variable with the providers that use it (rmbg/declarations.py);
  <!-- licences -->        becomes each provider's licence class, name and link (rmbg/declarations.py);
  <!-- video -->           becomes the hosted video services with their price per second (rmbg/declarations.py).
The files in the repository hold that content too (GitHub shows them as they are, without this
hook), between `<!-- KIND: start -->` and `<!-- KIND: end -->` lines: docs/hooks/fill.py writes it
there, tests/test_docs_filled.py fails when it is stale, and this hook renders it afresh for the
site. A marker whose file is missing fails the build, so a page cannot quote a benchmark that was
never run.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PACKAGE = "_rmbg_declared"  # the bare package rmbg/ is loaded as (declared)
# alone on a line
MARKER = re.compile(
    r"^[ \t]*<!--\s*(results:\s*([\w.-]+)|settings|vendors|keys|licences|video)\s*-->[ \t]*$", re.MULTILINE
)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value).replace("|", "\\|")


def results_markdown(name: str) -> str:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise PluginError(f"docs quote benchmarks/results/{name}.json, which does not exist: run the benchmark")
    record = json.loads(path.read_text(encoding="utf-8"))
    parts = []
    for table in record["tables"]:
        lines = [
            f"**{table['title']}**",
            "",
            "| " + " | ".join(map(_cell, table["columns"])) + " |",
            "|" + "---|" * len(table["columns"]),
        ]
        lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in table["rows"]]
        if table.get("notes"):
            lines += ["", table["notes"]]
        if table.get("command"):  # a results file that gathers several runs names each table's
            lines += ["", f"<small>Made by `{table['command']}`.</small>"]
        parts.append("\n".join(lines))
    machine, versions = record["machine"], record["versions"]
    memory = f", {machine['memory_gib']} GiB" if machine.get("memory_gib") else ""
    flags = ", ".join(machine.get("flags") or []) or "none recorded"
    if machine.get("load_1min") is not None:
        flags += f"; load average {machine['load_1min']}"
    parts.append(
        f"<small>Made by `{record['command']}` on {record['date'][:10]}: {machine['cpu']}, "
        f"{machine['cores']} cores{memory} (flags: {flags}); "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f". File: `benchmarks/results/{name}.json`.</small>"
    )
    return "\n\n".join(parts)


def declared(name: str) -> Any:
    """rmbg/<name>.py, loaded from its file: the docs build needs rmbg's declarations, not an installed rmbg
    (settings_declared, vendors, declarations and its parts, declaration_types and local_declarations, import
    nothing from rmbg but each other). They load as
    modules of a bare package over rmbg/ (its __init__ not run), so their relative imports resolve."""
    if PACKAGE not in sys.modules:
        package = types.ModuleType(PACKAGE)
        package.__path__ = [str(ROOT / "rmbg")]
        sys.modules[PACKAGE] = package
    return importlib.import_module(f"{PACKAGE}.{name}")


def settings_markdown() -> str:
    return str(declared("settings_declared").markdown_table())


def vendors_markdown() -> str:
    return str(declared("vendors").markdown_table())


def keys_markdown() -> str:
    """Each hosted service's key variable, with every provider that reads it (declarations.key_env)."""
    vendors, providers = declared("vendors").VENDORS, declared("declarations").DECLARATIONS
    lines = ["| variable | service | providers that use it | get a key |", "|---|---|---|---|"]
    for vendor in vendors:
        ids = [f"`{p.id}`" for p in providers if p.key_env in vendor.env]
        names = ", ".join(f"`{name}`" for name in vendor.env)
        lines.append(f"| {names} | {vendor.label} | {', '.join(ids) or '(none yet)'} | <{vendor.help}> |")
    return "\n".join(lines)


def licences_markdown() -> str:
    """Each declared provider's licence: its class (what RMBG_COMMERCIAL_ONLY=1 filters on), name and link."""
    lines = ["| provider | class | licence | where it is written |", "|---|---|---|---|"]
    for p in declared("declarations").DECLARATIONS:
        lines.append(f"| `{p.id}` | {p.licence.kind} | {p.licence} | <{p.licence.link}> |")
    return "\n".join(lines)


def video_markdown() -> str:
    """The hosted video services (declarations of kind "video"): price per second, longest clip, key."""
    lines = ["| id | service | price | longest clip | key |", "|---|---|---|---|---|"]
    for p in declared("declarations").DECLARATIONS:
        if p.kind == "video":
            price = f"${p.price_usd.normalize():f} per second"
            lines.append(f"| `{p.id}` | {p.label} | {price} | {p.max_seconds:g} s | `{p.key_env}` |")
    return "\n".join(lines)


KIND = r"results:\s*[\w.-]+|settings|vendors|keys|licences|video"
# a filled block: its start line, what was written there, its end line (the same kind)
BLOCK = re.compile(r"^<!-- (" + KIND + r"): start -->\n(?:.*?\n)?<!-- \1: end -->$", re.MULTILINE | re.DOTALL)


def rendered(kind: str) -> str:
    """The markdown a marker of `kind` ("results: NAME", "settings", ...) stands for."""
    if kind.startswith("results:"):
        return results_markdown(kind.split(":", 1)[1].strip())
    return {
        "keys": keys_markdown,
        "licences": licences_markdown,
        "vendors": vendors_markdown,
        "video": video_markdown,
    }.get(kind, settings_markdown)()


def filled(markdown: str) -> str:
    """`markdown` with every marker a filled block holding what it stands for now: a bare marker
    becomes a block, a block's content is written afresh."""

    def block(kind: str) -> str:
        # blank lines around it: a table must not run into the end marker (Python-Markdown would take it as a row)
        return f"<!-- {kind}: start -->\n\n{rendered(kind)}\n\n<!-- {kind}: end -->"

    markdown = BLOCK.sub(lambda m: block(m.group(1)), markdown)
    return MARKER.sub(lambda m: block(f"results: {m.group(2)}" if m.group(2) else m.group(1)), markdown)


def quoted(markdown: str) -> set[str]:
    """The results files a page quotes (NAME of each results marker, bare or filled)."""
    kinds = [m.group(1) for m in BLOCK.finditer(markdown)] + [
        f"results: {m.group(2)}" for m in MARKER.finditer(markdown)
    ]
    return {kind.split(":", 1)[1].strip() for kind in kinds if kind.startswith("results:")}


def on_page_markdown(markdown: str, **_: Any) -> str:
    """The site's page: each block, or bare marker, replaced by what it stands for now."""
    markdown = BLOCK.sub(lambda m: rendered(m.group(1)), markdown)
    return MARKER.sub(lambda m: rendered(f"results: {m.group(2)}" if m.group(2) else m.group(1)), markdown)
