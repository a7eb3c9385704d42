"""Which committed files the Hugging Face Hub would refuse: a binary file (a NUL byte in its first
8 KB, as git's own test) that no `filter=lfs` rule of .gitattributes covers. The Hub takes binaries
only through LFS (or Xet), so a Space push of such a file fails.

    python .ci/lfs_check.py          # lists them; exit status 1 when there is one

Standard library and git only: the ZeroGPU rehearsal (.ci/zerogpu_rehearsal.py) and
tests/test_lfs_rules.py both call untracked_binaries().
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def committed(root: Path = ROOT) -> list[str]:
    """Every file git tracks, relative to `root`."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name]


def is_binary(path: Path) -> bool:
    with open(path, "rb") as file:
        return b"\0" in file.read(8192)


def lfs_tracked(names: list[str], root: Path = ROOT) -> set[str]:
    """The names a .gitattributes rule gives filter=lfs (git check-attr: git's own reading of the rules)."""
    if not names:
        return set()
    answer = subprocess.run(
        ["git", "check-attr", "-z", "--stdin", "filter"],
        cwd=root,
        input="\0".join(names).encode() + b"\0",
        capture_output=True,
        check=True,
    ).stdout.decode()
    fields = answer.split("\0")
    return {fields[i] for i in range(0, len(fields) - 2, 3) if fields[i + 2] == "lfs"}


def untracked_binaries(root: Path = ROOT) -> list[str]:
    """The committed binary files no LFS rule covers (empty when a Space push would take them all)."""
    binaries = [name for name in committed(root) if (root / name).is_file() and is_binary(root / name)]
    return sorted(set(binaries) - lfs_tracked(binaries, root))


def main() -> int:
    left = untracked_binaries()
    for name in left:
        print(f"binary, not tracked with LFS: {name}")
    print(f"{len(left)} binary file(s) outside .gitattributes' LFS rules")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
