"""Deterministic weights (from rmbg.models.deterministic) and a hand-built Hugging Face cache, for offline tests.

The files are laid out exactly as huggingface_hub lays out a download
(blobs/<sha256>, snapshots/<revision>/<file> -> ../../blobs/<sha256>,
refs/main), so the real hf_hub_download finds them with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from rmbg.models.deterministic import deterministic_state, read_keys  # noqa: F401  (re-exported for the tests)


class HFCache:
    """Writes files into a Hugging Face hub cache directory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def add(self, repo_id: str, revision: str, filename: str, data: bytes) -> Path:
        digest = hashlib.sha256(data).hexdigest()
        blob = self._repo_dir(repo_id) / "blobs" / digest
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        return self._link(repo_id, revision, filename, blob)

    def add_file(self, repo_id: str, revision: str, filename: str, source: Path) -> Path:
        """Like add(), for a large file already on disk: hard-linked as the blob, not copied."""
        blob = self._repo_dir(repo_id) / "blobs" / f"link-{Path(source).name}"
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            os.link(source, blob)
        return self._link(repo_id, revision, filename, blob)

    def _repo_dir(self, repo_id: str) -> Path:
        return self.root / ("models--" + repo_id.replace("/", "--"))

    def _link(self, repo_id: str, revision: str, filename: str, blob: Path) -> Path:
        repo_dir = self._repo_dir(repo_id)
        link = repo_dir / "snapshots" / revision / filename
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        os.symlink(os.path.relpath(blob, link.parent), link)
        refs = repo_dir / "refs"
        refs.mkdir(parents=True, exist_ok=True)
        (refs / "main").write_text(revision)
        return link

    def add_state(self, repo_id: str, revision: str, filename: str, state: dict) -> Path:
        from safetensors.torch import save

        return self.add(repo_id, revision, filename, save(state, metadata={"format": "pt"}))
