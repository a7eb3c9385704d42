"""IS-Net general use (DIS, Apache-2.0): an ungated model, fetched once with a pinned checksum.

The network is RMBG-1.4's (IS-Net) with DIS's general-use weights, run through
the ONNX backend with the publisher's recipe (rmbg.models.specs.ISNET_GENERAL).
The publisher (xuebinqin/DIS) hands out `isnet-general-use.pth` on Google
Drive and Baidu Pan only: no stable download address and no checksum. Its
ONNX export, `isnet-general-use.onnx` (178,648,008 bytes), is a release asset
of the rembg project on GitHub, with a stable address and a widely recorded
SHA-256; that file is what we fetch, with pooch, and pooch refuses any bytes
whose SHA-256 is not the pinned one.

Lookup order: an explicit `weights` path (taken as given), then the cache file
<cache dir>/isnet-general-use.onnx when its SHA-256 is the pinned one, else a
download into the cache (unless RMBG_OFFLINE is set). The cache dir is the
one U2-Net-p uses (RMBG_CACHE_DIR, else $XDG_CACHE_HOME/rmbg, else ~/.cache/rmbg).

Environment:
- RMBG_ISNET_GENERAL_URL: download from this address instead (a mirror of the
  same file: the pinned SHA-256 still applies).
- RMBG_ISNET_GENERAL_SHA256: the SHA-256 of the file at that address, for a
  mirror that serves a re-export; used only together with RMBG_ISNET_GENERAL_URL.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from ...errors import ModelUnavailableError
from ...models.specs import ISNET_GENERAL
from .onnx_backend import OnnxProvider, WeightsSource
from .u2netp_file import ENV_OFFLINE, cache_dir, offline

FILE = "isnet-general-use.onnx"
URL = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/isnet-general-use.onnx"
SHA256 = "60920e99c45464f2ba57bee2ad08c919a52bbf852739e96947fbb4358c0d964a"
SIZE_MB = 179
ENV_URL = "RMBG_ISNET_GENERAL_URL"
ENV_SHA256 = "RMBG_ISNET_GENERAL_SHA256"
TIMEOUT_S = 60.0  # per read, not for the whole file

_VERIFIED: dict[tuple[str, int, int, str], bool] = {}  # (path, size, mtime_ns, sha256) -> matches
_FETCH_LOCK = threading.Lock()


def source() -> tuple[str, str]:
    """(url, sha256) the weights come from: the pinned release, or a mirror set in the environment."""
    url = os.environ.get(ENV_URL, "").strip()
    if not url:
        return URL, SHA256
    return url, os.environ.get(ENV_SHA256, "").strip().lower() or SHA256


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _matches(path: Path, sha256: str) -> bool:
    """Whether `path` is a file with this SHA-256 (memoised per size and mtime)."""
    try:
        st = path.stat()
    except OSError:
        return False
    key = (str(path), st.st_size, st.st_mtime_ns, sha256)
    if key not in _VERIFIED:
        _VERIFIED[key] = path.is_file() and sha256_of(path) == sha256
    return _VERIFIED[key]


def find(weights: str | os.PathLike | None = None) -> Path | None:
    """The weights file to use without downloading, or None when there is none yet."""
    if weights is not None:
        given = Path(weights).expanduser()
        if not given.is_file():
            raise ModelUnavailableError(f"isnet-general weights: file not found: {given}")
        return given
    cached = cache_dir() / FILE
    return cached if _matches(cached, source()[1]) else None


def fetch() -> Path:
    """Download the weights into the cache (checked against the pinned SHA-256) and return the path."""
    import pooch
    import requests

    url, sha256 = source()
    folder = cache_dir()
    with _FETCH_LOCK:
        found = find()
        if found is not None:
            return found
        why = _unreachable()
        if why:
            raise ModelUnavailableError(
                f"Could not download {FILE} from {url}: its host cannot be reached ({why}). Download it by hand "
                f"into {folder} (SHA-256 {sha256}), or set {ENV_URL} to a mirror of it."
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
            got = pooch.retrieve(
                url,
                known_hash=f"sha256:{sha256}",
                fname=FILE,
                path=folder,
                progressbar=False,
                downloader=pooch.HTTPDownloader(timeout=TIMEOUT_S, progressbar=False),
            )
        except ValueError as exc:  # pooch: the hash does not match (it has removed the file)
            raise ModelUnavailableError(
                f"The file at {url} is not the expected {FILE} (SHA-256 differs: {str(exc).splitlines()[0][:160]}); "
                "not used."
            ) from None
        except (requests.RequestException, OSError) as exc:
            raise ModelUnavailableError(
                f"Could not download {FILE} from {url} ({type(exc).__name__}). Download it by hand into {folder} "
                f"(SHA-256 {sha256}), or set {ENV_URL} to a mirror of it."
            ) from None
    return Path(got)


def ensure(weights: str | os.PathLike | None = None) -> Path:
    """find(), else fetch() unless RMBG_OFFLINE is set."""
    found = find(weights)
    if found is not None:
        return found
    if offline():
        raise ModelUnavailableError(
            f"{FILE} is not in {cache_dir()} and {ENV_OFFLINE} forbids downloading it ({source()[0]}, "
            f"SHA-256 {source()[1]})."
        )
    return fetch()


def status(weights: str | os.PathLike | None = None) -> tuple[str, str]:
    """("ready" | "unavailable", message). No download; when the file is not
    here, one shared, cached probe of its download host (about a second at most)."""
    try:
        found = find(weights)
    except ModelUnavailableError as exc:
        return "unavailable", str(exc)
    if found is not None:
        return "ready", f"local weights {found.name}"
    if offline():
        return "unavailable", f"{FILE} not cached and {ENV_OFFLINE} is set"
    why = _unreachable()
    if why:
        return "unavailable", f"{FILE} not cached and its download host cannot be reached now ({why})"
    return "ready", f"downloads {FILE} ({SIZE_MB} MB, SHA-256 pinned) on first use"


def _unreachable() -> str | None:
    """Why the download host cannot be reached now, or None: the shared, cached
    answer per host (rmbg.providers.local.hub), so "ready" means fetchable now
    and a download that cannot happen fails in about a second, not at pooch's
    read timeout."""
    from urllib.parse import urlsplit

    from .hub import unreachable_reason

    parts = urlsplit(source()[0])
    return unreachable_reason(f"{parts.scheme}://{parts.netloc}")


def isnet_general(
    *, weights: str | os.PathLike | None = None, device: str = "auto", threads: int | None = None
) -> OnnxProvider:
    """IS-Net general use (Apache-2.0, ungated) through ONNX Runtime; see the module doc."""
    label = str(weights) if weights is not None else f"{FILE} sha256 {SHA256[:12]}"
    weights_source = WeightsSource(path=lambda: ensure(weights), status=lambda: status(weights), label=label)
    return OnnxProvider(ISNET_GENERAL, weights_source, precision="fp32", device=device, threads=threads)
