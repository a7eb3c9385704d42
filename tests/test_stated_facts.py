"""What the README and docs state about the package agrees with the code that decides it."""

from __future__ import annotations

from pathlib import Path

from rmbg.providers.local.isnet_general import PINNED
from rmbg.registry import info

ROOT = Path(__file__).resolve().parents[1]


def test_isnet_generals_download_is_the_pinned_files_size_wherever_it_is_stated():
    stated = info("isnet-general").download
    assert stated == f"{PINNED.size_mb} MB"  # 178,648,008 bytes: 179 MB, not 176
    [row] = [
        line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if "`isnet-general`" in line
    ]
    assert f"nothing ({stated}, fetched once, SHA-256 checked)" in row


def test_the_docs_name_the_pages_clean_edges_box_as_the_page_does():
    from rmbg.options import BY_NAME

    assert BY_NAME["clean_edges"].label == "Clean edges"  # the Remove tab's checkbox (rmbg.options)
    for doc in (ROOT / "docs").glob("*.md"):
        assert "*Clean edge colours*" not in doc.read_text(encoding="utf-8"), doc.name
    assert "in the app, the *Clean edges*\ncheckbox" in (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
