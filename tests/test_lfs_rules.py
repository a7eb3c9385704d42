"""A push the Hugging Face Hub accepts: every committed binary file is covered by an LFS rule of
.gitattributes (the Hub refuses a binary pushed as an ordinary blob). .ci/lfs_check.py decides,
through git's own reading of the rules (git check-attr)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lfs_check():
    spec = importlib.util.spec_from_file_location("lfs_check", ROOT / ".ci" / "lfs_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_committed_binary_file_is_tracked_with_lfs():
    check = lfs_check()
    assert len([n for n in check.committed() if n.endswith((".png", ".jpg", ".mp4"))]) > 100  # the tree was read
    assert check.untracked_binaries() == []


def test_a_binary_without_a_rule_is_found_and_a_rule_covers_it(tmp_path):
    check = lfs_check()
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    (tmp_path / "notes.md").write_text("text, no NUL byte\n")
    subprocess.run(["git", "add", "photo.png", "notes.md"], cwd=tmp_path, check=True)
    assert check.untracked_binaries(tmp_path) == ["photo.png"]
    (tmp_path / ".gitattributes").write_text("*.png filter=lfs diff=lfs merge=lfs -text\n")
    assert check.untracked_binaries(tmp_path) == []
