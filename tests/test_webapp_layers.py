"""Inside the web app (rmbg/webapp) every import runs down four layers, never up one nor sideways from
one feature to another (docs/architecture.md, "The web app"):

0. shared: the modules at rmbg/webapp/*.py (context, catalog, guard, look, slots, ...) import no feature
   and nothing of the page kit;
1. the page kit, rmbg/webapp/ui/ (common, controls, forms, quota_bar): the shared modules only;
2. the features, rmbg/webapp/remove/, compare/, replace/, video/, benchmark/: the shared modules, the kit
   and their own folder, never another feature (what two features share moves down to a shared module);
3. the doors that put features together: the page (page.py), its narrow-screen CSS (narrow.py: it names
   the features' tables), REST (rest/) and the package's face (__init__.py: it re-exports the Remove
   feature's remove and rerender): anything below, and each other.

Imports inside functions and under TYPE_CHECKING count as much as those at the top, relative or
absolute (tests.test_layering reads them all); tests/test_layering.py keeps the layers between the
package's rooms, where the web app is one room."""

from __future__ import annotations

import ast

import pytest

from tests.support import source as code
from tests.test_layering import MODULES, imports

WEBAPP = "rmbg.webapp"
FEATURES = ("remove", "compare", "replace", "video", "benchmark")
DOORS = ("rmbg.webapp", "rmbg.webapp.page", "rmbg.webapp.narrow")  # and every module of rest/
WEB_MODULES = sorted(name for name in MODULES if name == WEBAPP or name.startswith(f"{WEBAPP}."))


def place(module: str) -> tuple[int, str]:
    """A web app module's layer and the name its messages give it: (2, "feature remove")."""
    folder = module.split(".")[2] if module.count(".") >= 2 else ""
    if module in DOORS or folder == "rest":
        return 3, "door"
    if folder in FEATURES:
        return 2, f"feature {folder}"
    if folder == "ui":
        return 1, "page kit"
    return 0, "shared"


def wrong_imports(sources: dict[str, ast.Module] | None = None) -> list[str]:
    """Every import of one web app module by another that runs up a layer or sideways between two features,
    as "module:line -> imported module (its place -> the imported one's: how)"; `sources` stands in for
    some modules' files. The tree before this test had 19 (Compare, AI background, Video and the warm-up
    reading remove/actions.py, the App holding the Video feature's shelf, the kit's page and narrow CSS
    reading every feature)."""
    found = []
    for name in WEB_MODULES:
        for source, taken, line in imports(name, (sources or {}).get(name)):
            target = next((m for m in (f"{source}.{taken}", source) if m in MODULES), None)
            if target is None or target not in WEB_MODULES:
                continue
            (low, here), (high, there) = place(name), place(target)
            if high > low or (high == low == 2 and here != there):
                found.append(f"{name}:{line} -> {target} ({here} -> {there}: {'up' if high > low else 'sideways'})")
    return list(dict.fromkeys(found))  # once for each import statement, however many names it takes


def test_the_web_app_was_read_with_every_layer_and_feature():
    assert {place(name) for name in WEB_MODULES} == {
        (0, "shared"),
        (1, "page kit"),
        *((2, f"feature {feature}") for feature in FEATURES),
        (3, "door"),
    }
    assert {*DOORS, "rmbg.webapp.rest.routes", "rmbg.webapp.context", "rmbg.webapp.ui.common"} <= set(WEB_MODULES)


def test_no_web_app_import_runs_up_a_layer_or_sideways_between_features():
    assert wrong_imports() == []


WRONG = [
    (  # a feature's decisions reaching into another's, inside a function
        "rmbg.webapp.compare.comparing",
        "def start_here():\n    from ..remove.actions import remove\n\n    return remove\n",
        "    from ..remove.actions import remove",
        "rmbg.webapp.remove.actions (feature compare -> feature remove: sideways)",
    ),
    (  # the same written absolutely, at the top
        "rmbg.webapp.video.tab",
        "from rmbg.webapp.compare import comparing\n",
        "from rmbg.webapp.compare import comparing",
        "rmbg.webapp.compare.comparing (feature video -> feature compare: sideways)",
    ),
    (  # the App holding a feature's object (as it held the Video feature's shelf)
        "rmbg.webapp.context",
        "from .video.videos import VideoLook\n",
        "from .video.videos import VideoLook",
        "rmbg.webapp.video.videos (shared -> feature video: up)",
    ),
    (  # the kit reading a feature (as ui/common.py read remove/actions.py's safe_message)
        "rmbg.webapp.ui.common",
        "from ..remove import actions\n",
        "from ..remove import actions",
        "rmbg.webapp.remove.actions (page kit -> feature remove: up)",
    ),
    (  # a shared module reading the kit, for a type only
        "rmbg.webapp.look",
        "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from .ui.forms import Call\n",
        "    from .ui.forms import Call",
        "rmbg.webapp.ui.forms (shared -> page kit: up)",
    ),
    (  # a feature reaching up to the page
        "rmbg.webapp.remove.tab",
        "import rmbg.webapp.page\n",
        "import rmbg.webapp.page",
        "rmbg.webapp.page (feature remove -> door: up)",
    ),
    (  # a shared module taking a name from the package's face (which imports the Remove feature)
        "rmbg.webapp.guard",
        "def start_here():\n    from rmbg.webapp import Keys\n\n    return Keys\n",
        "    from rmbg.webapp import Keys",
        "rmbg.webapp (shared -> door: up)",
    ),
]


@pytest.mark.parametrize("module, added, statement, message", WRONG, ids=[case[0] for case in WRONG])
def test_an_import_up_or_sideways_is_named(module, added, statement, message):
    text = code.text(MODULES[module]) + "\n\n" + added
    line = text.splitlines().index(statement) + 1
    assert wrong_imports({module: ast.parse(text)}) == [f"{module}:{line} -> {message}"]


@pytest.mark.parametrize(
    "module, added",
    [
        ("rmbg.webapp.rest.routes", "from ..compare.comparing import TABLE_HEADERS\n"),  # a door: any feature
        ("rmbg.webapp.page", "from .rest import video\n"),  # a door: another door
        ("rmbg.webapp.video.tab", "from .videos import VideoLook\nfrom ..ui.forms import Call\n"),  # own, kit
        ("rmbg.webapp.ui.forms", "from .common import lenient\nfrom ..catalog import Keys\n"),  # kit, shared
    ],
)
def test_an_import_down_or_within_a_folder_is_allowed(module, added):
    text = code.text(MODULES[module]) + "\n\n" + added
    assert wrong_imports({module: ast.parse(text)}) == []
