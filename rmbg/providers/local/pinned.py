"""Model files fetched once from their publisher's release, checked against a pinned SHA-256.

One declaration per file (`PinnedFile`): its name in the cache, the release
address, the SHA-256 the bytes must have, and the RMBG_* variables that point
it at a mirror. Every such file shares the same steps, written once here:

- `find()`: the cached file when its SHA-256 is the pinned one (memoised per
  size and mtime, so a status line does not hash 179 MB every time);
- `fetch()`: a download with pooch, which refuses bytes with another SHA-256,
  preceded by the shared, cached reachability probe of the download host
  (rmbg.providers.local.hub), so a machine that cannot reach it fails in about
  a second instead of at the read timeout;
- `status()`: "ready" when the file is here or fetchable now, with the reason.

The cache folder is RMBG_CACHE_DIR, else $XDG_CACHE_HOME/rmbg, else ~/.cache/rmbg;
RMBG_OFFLINE forbids downloads.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from ...errors import ModelUnavailableError, with_remedy, without_credentials
from ...settings import TRUE, current
from ...threads import release_in_children

ENV_CACHE = "RMBG_CACHE_DIR"
ENV_OFFLINE = "RMBG_OFFLINE"
TIMEOUT_S = 60.0  # per read, not for the whole file

_VERIFIED: dict[tuple[str, int, int, str], bool] = {}  # (path, size, mtime_ns, sha256) -> matches
_FETCH_LOCK = threading.Lock()
release_in_children(_FETCH_LOCK)  # a child forked during a download is not stuck behind it


def cache_dir() -> Path:
    """Folder for downloaded model files (not created here)."""
    configured = current().path(ENV_CACHE)
    if configured is not None:
        return configured
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rmbg"


def offline() -> bool:
    return current().raw(ENV_OFFLINE).lower() in TRUE


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def matches(path: Path, sha256: str) -> bool:
    """Whether `path` is a file with this SHA-256 (memoised per size and mtime)."""
    try:
        st = path.stat()
    except OSError:
        return False
    key = (str(path), st.st_size, st.st_mtime_ns, sha256)
    if key not in _VERIFIED:
        _VERIFIED[key] = path.is_file() and sha256_of(path) == sha256
    return _VERIFIED[key]


@dataclass(frozen=True)
class PinnedFile:
    """A model file published at `url` with SHA-256 `sha256` (see the module doc).

    env_url names a mirror of the same bytes; env_sha256 (optional) the
    checksum of a mirror that serves a re-export, used only with env_url."""

    file: str
    url: str
    sha256: str
    size_mb: float
    env_url: str
    env_sha256: str | None = None

    def source(self) -> tuple[str, str]:
        """(url, sha256) the file comes from: the publisher's release, or the configured mirror."""
        settings = current()
        url = settings.raw(self.env_url)
        if not url:
            return self.url, self.sha256
        mirror_sha = settings.raw(self.env_sha256).lower() if self.env_sha256 else ""
        return url, mirror_sha or self.sha256

    def find(self, folder: Path | None = None) -> Path | None:
        """The cached file when its SHA-256 is the expected one, else None. No network."""
        cached = (folder or cache_dir()) / self.file
        return cached if matches(cached, self.source()[1]) else None

    def unreachable(self) -> str | None:
        """Why the download host cannot be reached now, or None (shared, cached probe)."""
        from urllib.parse import urlsplit

        from .hub import unreachable_reason

        parts = urlsplit(self.shown())
        return unreachable_reason(f"{parts.scheme}://{parts.netloc}")

    def shown(self) -> str:
        """The download's URL as messages, statuses and logs show it (a private mirror's token left out)."""
        return without_credentials(self.source()[0])

    def by_hand(self, folder: Path) -> str:
        sha256 = self.source()[1]
        return (
            f"Download it by hand from {self.shown()} into {folder} (SHA-256 {sha256}), or set {self.env_url} "
            "to a mirror."
        )

    def fetch(self, folder: Path | None = None) -> Path:
        """Download into `folder` (default: the cache), checked against the SHA-256; the path.
        Idempotent: a good cached file is returned without a request."""
        import pooch
        import requests

        url, sha256 = self.source()
        folder = folder or cache_dir()
        with _FETCH_LOCK:
            found = self.find(folder)
            if found is not None:
                return found
            why = self.unreachable()
            if why:
                raise with_remedy(
                    ModelUnavailableError(
                        f"Could not download {self.file} from {self.shown()}: its host cannot be reached ({why}). "
                        + self.by_hand(folder)
                    ),
                    "weights",
                    f"{self.file} is not on this machine and its download host cannot be reached.",
                )
            try:
                folder.mkdir(parents=True, exist_ok=True)
                got = pooch.retrieve(
                    url,
                    known_hash=f"sha256:{sha256}",
                    fname=self.file,
                    path=folder,
                    progressbar=False,
                    downloader=pooch.HTTPDownloader(timeout=TIMEOUT_S, progressbar=False),
                )
            except ValueError as exc:  # pooch: the hash does not match (it has removed the file)
                raise with_remedy(
                    ModelUnavailableError(
                        f"The file at {self.shown()} is not the expected {self.file} "
                        f"(SHA-256 differs: {str(exc).splitlines()[0][:160]}); not used."
                    ),
                    "weights",
                    f"The download of {self.file} did not match its checksum, so it was not used.",
                ) from None
            except (requests.RequestException, OSError) as exc:
                raise with_remedy(
                    ModelUnavailableError(
                        f"Could not download {self.file} from {self.shown()} ({type(exc).__name__}). "
                        + self.by_hand(folder)
                    ),
                    "weights",
                    f"Downloading {self.file} failed ({type(exc).__name__}).",
                ) from None
        return Path(got)

    def status(self, *, probe: bool = True) -> tuple[str, str]:
        """("ready" | "unavailable", message). No download; when the file is not here and
        `probe`, one shared, cached look at its download host (about a second at most)."""
        if self.find() is not None:
            return "ready", f"local weights {self.file}"
        if offline():
            return "unavailable", f"{self.file} not cached and {ENV_OFFLINE} is set"
        why = self.unreachable() if probe else None
        if why:
            return "unavailable", f"{self.file} not cached and its download host cannot be reached now ({why})"
        return "ready", f"downloads {self.file} ({self.size_mb:g} MB, SHA-256 pinned) on first use"
