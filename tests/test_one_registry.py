"""One registry (issue 59): a hosted vendor is declared in one table, rmbg/declarations.py (its Vendor
row beside its image, replace and video providers' rows), and written in its provider module(s) under
rmbg/providers/hosted/; no other module of the package names it, and every door follows from the table.

Held two ways: a word search of the package for each declared vendor, and a throwaway vendor added to a
copy of the package with exactly those two edits, which reaches the key slots, the REST header, the
environment, the words of a missing key, its terms, its host setting and the video registry.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from rmbg.vendors import VENDORS, Vendor
from tests.support import source

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "rmbg"
TABLE = "rmbg/declarations.py"

# The vendors declared before the one table, still named where they were used as examples or shared
# helpers were written for them (docstrings, the preview price, the multipart upload): these files and
# no more. A vendor declared from now on has no entry, so it may be named nowhere but in its modules
# and the table (Cloudflare Workers AI, the first one added so, is named nowhere else).
NAMED_BEFORE = {
    "fal": {
        "cascade.py", "cli/cascade.py", "cli/ray_engine.py", "cli/replace.py", "cli/video.py", "errors.py",
        "eval/frontier.py", "money/charging.py", "providers/__init__.py", "providers/base.py",
        "providers/hosted/base.py", "providers/hosted/cloudflare_video.py",
        "providers/hosted/payload.py", "providers/hosted/runware.py", "providers/hosted/runware_video.py",
        "providers/hosted/video_job.py", "replace.py", "types.py", "webapp/catalog.py",
        "webapp/compare/comparing.py", "webapp/config.py", "webapp/costs.py", "webapp/messages.py",
        "webapp/replace/replacing.py", "webapp/replace/tab.py", "webapp/rest/routes.py", "webapp/ui/forms.py",
    },
    "runware": {
        "cli/main.py", "cli/ray_engine.py", "money/charging.py", "money/price_watch.py", "money/pricing.py",
        "providers/__init__.py", "providers/hosted/cloudflare_video.py",
        "providers/hosted/payload.py", "providers/hosted/video_job.py", "types.py", "webapp/catalog.py",
        "webapp/config.py", "webapp/rest/routes.py",
    },
    "removebg": {"money/pricing.py", "providers/hosted/payload.py", "providers/hosted/ratelimit.py",
                 "providers/hosted/upload.py"},
    "photoroom": {
        "cli/paid.py", "cli/progress.py", "eval/run.py", "money/paying.py", "money/pricing.py",
        "providers/hosted/payload.py", "providers/hosted/ratelimit.py", "providers/hosted/removebg.py",
        "providers/hosted/sandbox_quota.py", "providers/hosted/upload.py", "types.py",
        "webapp/benchmark/arena.py", "webapp/benchmark/report.py", "webapp/remove/mcp_tool.py",
        "webapp/rest/types.py",
    },
}  # fmt: skip
# The modules that read the table for every vendor alike: they name none, the old ones included.
WIRING = (
    "vendors.py", "declaration_types.py", "local_declarations.py", "settings_declared.py", "settings.py",
    "registry.py", "provider_table.py", "wording.py", "licences.py", "video/",
)  # fmt: skip


def names(vendor: Vendor) -> re.Pattern[str]:
    """Its slot or its label as a word, in any case ("cloudflare", "Cloudflare", RMBG_CLOUDFLARE_URL)."""
    spelled = "|".join(re.escape(word) for word in (vendor.slot, vendor.label.lower()))
    return re.compile(rf"(?<![a-z0-9])({spelled})(?![a-z0-9])", re.IGNORECASE)


def its_modules(vendor: Vendor, relative: str) -> bool:
    """rmbg/providers/hosted/<slot>.py and <slot>_<anything>.py (fal.py, fal_replace.py, fal_video.py)."""
    return re.fullmatch(rf"providers/hosted/{vendor.slot}(_\w+)?\.py", relative) is not None


def naming(vendor: Vendor, root: Path = PACKAGE) -> set[str]:
    """The modules under `root` (paths relative to it) that name `vendor`, but for its own and the table."""
    if root == PACKAGE:  # the package itself: searched once for each vendor in the test process
        return set(_naming_in_package(vendor))
    return _naming(vendor, root, lambda path: path.read_text(encoding="utf-8"))


@functools.cache
def _naming_in_package(vendor: Vendor) -> frozenset[str]:
    return frozenset(_naming(vendor, PACKAGE, source.text))


def _naming(vendor: Vendor, root: Path, read: Callable[[Path], str]) -> set[str]:
    pattern = names(vendor)
    found = set()
    for path in source.python_files(root):
        relative = path.relative_to(root).as_posix()
        if f"rmbg/{relative}" != TABLE and not its_modules(vendor, relative):
            if pattern.search(read(path)):
                found.add(relative)
    return found


def test_the_words_find_a_vendor_where_it_is_named():
    """The search itself: a slot inside another word is not a name; a variable's part, a label and a module are."""
    (cloudflare,) = [v for v in VENDORS if v.slot == "cloudflare"]
    pattern = names(cloudflare)
    assert [bool(pattern.search(text)) for text in ("RMBG_CLOUDFLARE_URL", "on Cloudflare.", "cloudflared")] == [
        True,
        True,
        False,
    ]
    assert naming(cloudflare) == set()
    assert its_modules(cloudflare, "providers/hosted/cloudflare_video.py")
    assert not its_modules(cloudflare, "providers/hosted/cloudflarevideo.py")


def test_a_vendor_is_named_only_by_its_modules_and_the_table():
    """Cloudflare, and any vendor declared after it, is named by no module but its own and the table;
    an older vendor by no module beyond those that named it before."""
    beyond = {v.slot: sorted(naming(v) - NAMED_BEFORE.get(v.slot, set())) for v in VENDORS}
    assert beyond == {v.slot: [] for v in VENDORS}
    assert naming(next(v for v in VENDORS if v.slot == "cloudflare")) == set()


def test_the_wiring_names_no_vendor():
    """The views of the table (vendors, settings, registry, wording, licences, the video registry) name none."""
    for vendor in VENDORS:
        named = naming(vendor)
        assert sorted(m for m in named if m.startswith(WIRING)) == [], vendor.slot


def test_every_hosted_row_points_at_a_declared_vendor_whose_key_and_terms_it_takes():
    from rmbg.declarations import DECLARATIONS

    hosted = [d for d in DECLARATIONS if d.kind != "local"]
    assert hosted and all(d.vendor in VENDORS for d in hosted)
    for d in hosted:
        assert d.vendor is not None
        assert (d.key_env, d.key_page, d.licence) == (d.vendor.key_env, d.vendor.help, d.vendor.licence)
        assert d.licence.commercial and d.licence.name == f"{d.vendor.label} terms"
    assert {d.vendor.slot for d in hosted if d.kind == "video" and d.vendor} == {"fal", "runware", "cloudflare"}


# --- a throwaway vendor, declared with two edits -------------------------------------------------------

ROWS = """

# Kestrel: a vendor added by tests/test_one_registry.py, as docs/contributing.md says.
KESTREL = Vendor(
    "kestrel",
    ("KESTREL_API_KEY",),
    "Kestrel",
    "X-Kestrel-Key",
    "https://kestrel.example/keys",
    host=("RMBG_KESTREL_URL", "https://api.kestrel.example"),
    terms="https://kestrel.example/terms",
)
VENDORS += (KESTREL,)
DECLARATIONS += (
    ProviderInfo(
        "kestrel-cut", "Kestrel · cut-out", "hosted", "rmbg.providers.hosted.kestrel:kestrel", Decimal("0.01"),
        vendor=KESTREL,
    ),
    _video("kestrel-video", "Kestrel · video", KESTREL, "0.05", 20),
)
"""
MODULE = '''
"""Kestrel's cut-out (a vendor added by tests/test_one_registry.py)."""

from ...vendors import vendor
from .base import Connection, HostedProvider, connected

VENDOR = vendor("kestrel")


class Kestrel(HostedProvider):
    id = "kestrel-cut"
    label = "Kestrel · cut-out"
    VENDOR = VENDOR
    URL_ENV, DEFAULT_URL = VENDOR.host


@connected
def kestrel(connection: Connection) -> Kestrel:
    return Kestrel(connection)
'''
CHECK = """
import json
from rmbg import registry, settings_declared, vendors, wording
from rmbg.video.providers import hosted_video_info, is_hosted_video
from rmbg.webapp.catalog import SLOTS, Keys, key_slot
from rmbg.webapp.rest.types import KeyHeaders

built = registry.get_provider("kestrel-cut")
info = registry.info("kestrel-cut")
(host,) = [s for s in settings_declared.SETTINGS if s.name == "RMBG_KESTREL_URL"]
video = hosted_video_info("kestrel-video")
print(json.dumps({
    "slots": [SLOTS[-1], key_slot("kestrel-cut"), key_slot("kestrel-video")],
    "keys": Keys(kestrel="k-1").kestrel,
    "header": KeyHeaders.model_fields["kestrel"].alias,
    "key_vars": "KESTREL_API_KEY" in vendors.KEY_VARS,
    "words": wording.without_setting_names("needs KESTREL_API_KEY"),
    "terms": [info.licence.name, info.licence.link, info.licence.commercial],
    "key_env": info.key_env,
    "host": [host.default, host.read_by],
    "built": [built.KEY_ENV, built.KEY_WHAT, built.base_url, built.status().state],
    "video": [video.key_env, video.licence.name, str(video.usd_per_second), is_hosted_video("kestrel-video")],
}))
"""


def test_a_vendor_declared_in_the_table_and_its_module_reaches_every_door(tmp_path):
    """A copy of the package, with Kestrel's rows appended to the table and its module written: nothing else
    edited, its key slot, REST header, key variable, words, terms, host setting and video row all follow."""
    copy = tmp_path / "rmbg"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "declarations.py").open("a", encoding="utf-8") as table:
        table.write(ROWS)
    (copy / "providers" / "hosted" / "kestrel.py").write_text(MODULE.lstrip(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RMBG_")}
    env.update(PYTHONPATH=str(tmp_path), RMBG_KESTREL_URL="http://127.0.0.1:9/kestrel", KESTREL_API_KEY="k-2")
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHECK)], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "slots": ["kestrel", "kestrel", "kestrel"],
        "keys": "k-1",
        "header": "X-Kestrel-Key",
        "key_vars": True,
        "words": "needs the Kestrel key",
        "terms": ["Kestrel terms", "https://kestrel.example/terms", True],
        "key_env": "KESTREL_API_KEY",
        "host": ["https://api.kestrel.example", "rmbg.providers.hosted.base"],
        "built": ["KESTREL_API_KEY", "a Kestrel API key", "http://127.0.0.1:9/kestrel", "ready"],
        "video": ["KESTREL_API_KEY", "Kestrel terms", "0.05", True],
    }
    assert naming(Vendor("kestrel", ("KESTREL_API_KEY",), "Kestrel", "X-Kestrel-Key", ""), copy) == set()
