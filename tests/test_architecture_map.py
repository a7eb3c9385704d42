"""docs/architecture.md's "Every module" names each module under rmbg/ once, under its folder, and
names nothing that is not there: a new module, or one moved or deleted, fails here until the map
says so."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAP = REPO / "docs" / "architecture.md"


def mapped() -> dict[str, list[str]]:
    """folder ("rmbg/video/") -> the modules its list names, in order, from the "Every module" section."""
    text = MAP.read_text(encoding="utf-8").split("\n## Every module\n", 1)[1]
    folders: dict[str, list[str]] = {}
    folder = None
    for line in text.splitlines():
        heading = re.fullmatch(r"### `(rmbg/(?:[\w/]+/)?)`", line)
        if heading:
            folder = heading.group(1)
            folders[folder] = []
        elif line.startswith("- `") and folder is not None:
            folders[folder].append(line[3:].split("`", 1)[0])
    return folders


def test_every_module_is_on_the_map_and_nothing_else():
    on_disk: dict[str, list[str]] = {}
    for path in sorted(REPO.joinpath("rmbg").rglob("*.py")):
        on_disk.setdefault(f"{path.parent.relative_to(REPO).as_posix()}/", []).append(path.stem)
    assert len(on_disk) > 10  # the package was found
    assert {folder: sorted(names) for folder, names in mapped().items()} == on_disk


def test_the_map_draws_the_layers_the_layering_test_holds():
    from tests.test_layering import LAYERS

    text = MAP.read_text(encoding="utf-8").split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "`" in line]
    drawn = [
        (
            row[0].strip("| "),
            {
                f"rmbg.{name.strip('/')}" if name != "rmbg" else name
                for name in re.findall(r"`([\w/]+)`", row[1])
                if name != "__init__"
            },
        )
        for row in rows
    ]
    assert drawn == [(name, set(rooms)) for name, rooms in reversed(LAYERS)]
