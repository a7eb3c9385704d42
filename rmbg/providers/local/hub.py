"""Model weights from the Hugging Face Hub, through the standard HF cache.

Downloads are pinned to the spec's revision, so HF_HUB_OFFLINE=1 with a
filled cache works and a second run downloads nothing. Every failure becomes
a ModelUnavailableError that says what to do; tokens are never echoed.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from ...errors import ModelUnavailableError, with_remedy
from ...threads import release_in_children
from ...types import ModelSpec

TOKEN_PAGE = "https://huggingface.co/settings/tokens"
# One quick look at the Hub before a download: huggingface_hub retries a
# refused or unresolvable connection five times with backoff (about 23 s),
# so an unreachable Hub would look like a hang before the same message.
PROBE_TIMEOUT_S = 1.5
# How long one answer about the Hub is reused, per endpoint: every model,
# refiner and status line of the process shares it, so a page listing ten
# models asks once, and a Hub that comes back is seen within this time.
REACHABILITY_TTL_S = 30.0

_answers: dict[str, tuple[float, str | None]] = {}
_probe_lock = threading.Lock()
release_in_children(_probe_lock)  # a child forked during a probe is not stuck behind it


def hub_unreachable_reason(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the Hub cannot be reached right now, or None (see unreachable_reason)."""
    from huggingface_hub import constants

    return unreachable_reason(constants.ENDPOINT, timeout)


def unreachable_reason(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why `endpoint` (a scheme://host[:port] origin; the Hub, or another
    publisher's download host) cannot be reached right now, or None: the
    process's shared answer for that endpoint, asked again (one request, no
    retries) when older than REACHABILITY_TTL_S. Concurrent callers wait for
    one probe instead of each making their own; it never takes much longer
    than `timeout`, name resolution included."""
    with _probe_lock:
        known = _answers.get(endpoint)
        if known is not None and time.monotonic() - known[0] < REACHABILITY_TTL_S:
            return known[1]
        reason = _probe(endpoint, timeout)
        _answers[endpoint] = (time.monotonic(), reason)
        return reason


def forget_hub_reachability() -> None:
    """Drop the shared answers (tests; after the network changed)."""
    with _probe_lock:
        _answers.clear()


def _probe(endpoint: str, timeout: float) -> str | None:
    """One HEAD request to the endpoint in a daemon thread, waited for at most
    `timeout` (+0.2 s): httpx's timeout does not cover name resolution, which a
    machine without DNS can spend many seconds on. Any HTTP answer is reachable."""
    import httpx

    outcome: list[str | None] = []

    def ask() -> None:
        try:
            httpx.head(endpoint, timeout=timeout, follow_redirects=False)
        except httpx.TimeoutException:
            outcome.append(f"it did not answer within {timeout:g} s")
        except httpx.HTTPError as exc:
            outcome.append(f"the connection failed ({type(exc).__name__})")
        except Exception as exc:  # noqa: BLE001 - a malformed endpoint is unreachable too
            outcome.append(f"the request could not be made ({type(exc).__name__})")
        else:
            outcome.append(None)

    worker = threading.Thread(target=ask, name="rmbg-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout + 0.2)
    return outcome[0] if outcome else f"it did not answer within {timeout:g} s"


def hub_status(repo_id: str) -> tuple[str, str]:
    """("ready" | "unavailable", one line) for weights that are not on this
    machine: ready only when they can be fetched now (online, Hub reachable)."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return (
            "unavailable",
            f"{repo_id} is not on this machine and downloads are switched off here (HF_HUB_OFFLINE is set)",
        )
    why = hub_unreachable_reason()
    if why is not None:
        return "unavailable", f"{repo_id} is not on this machine and the Hugging Face Hub cannot be reached ({why})"
    return "ready", f"downloads {repo_id} on first use"


def require_hub(repo_id: str, what: str | None = None, fix: str = "pass a local path to the weights") -> None:
    """Before a download: raise ModelUnavailableError at once (within about
    PROBE_TIMEOUT_S) when the Hub cannot be reached, instead of after
    huggingface_hub's retries. Offline mode is left to the caller's own message."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return
    why = hub_unreachable_reason()
    if why is not None:
        situation = (
            f"{what or repo_id} is not in the Hugging Face cache and the Hub at {constants.ENDPOINT} "
            f"could not be reached: {why}."
        )
        raise with_remedy(ModelUnavailableError(f"{situation} Check the connection, or {fix}."), "weights", situation)


def _have_token(token: str | None) -> bool:
    if token:
        return True
    try:
        from huggingface_hub import get_token
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return bool(os.environ.get("HF_TOKEN"))
    return bool(get_token())


def cached_path(spec: ModelSpec, filename: str | None = None) -> Path | None:
    """The cached file for the pinned revision, or None. Never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(spec.repo_id, filename or spec.filename, revision=spec.revision)
    return Path(found) if isinstance(found, str) else None


def access_hint(spec: ModelSpec) -> str:
    return (
        f"{spec.repo_id} is gated on the Hugging Face Hub: open {spec.model_page}, accept its terms "
        f"(logged in), create a read token at {TOKEN_PAGE} and set it as HF_TOKEN"
    )


def weights_status(
    spec: ModelSpec, weights: str | os.PathLike | None = None, token: str | None = None
) -> tuple[str, str]:
    """("ready" | "needs_token" | "unavailable", message). No network call
    when the weights are here; otherwise the shared Hub answer (hub_status)."""
    if weights is not None:
        if Path(weights).is_file():
            return "ready", f"local weights {Path(weights).name}"
        return "needs_token", f"weights file not found: {weights}"
    if cached_path(spec) is not None:
        return "ready", "weights cached"
    if spec.gated and not _have_token(token):
        return "needs_token", f"needs HF_TOKEN ({spec.repo_id} is gated)"
    return hub_status(spec.repo_id)


def resolve_weights(
    spec: ModelSpec,
    weights: str | os.PathLike | None = None,
    *,
    token: str | None = None,
    filename: str | None = None,
) -> Path:
    """Path of the weight file: `weights` if given, else the pinned Hub file.

    Raises ModelUnavailableError (with what to do) when it cannot be had.
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(f"Weights file not found: {path}")
        return path
    name = filename or spec.filename
    has_token = _have_token(token)
    if cached_path(spec, name) is None:
        _fail_fast(spec, name, has_token)
    return _download(spec, name, token, has_token)


def _download(spec: ModelSpec, name: str, token: str | None, has_token: bool) -> Path:
    """hf_hub_download of one pinned file; every failure -> ModelUnavailableError saying what to do."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(hf_hub_download(spec.repo_id, name, revision=spec.revision, token=token or None))
    except GatedRepoError:
        if has_token:
            msg = (
                f"Your HF_TOKEN has no access to {spec.repo_id} yet: open {spec.model_page} with the same "
                "account and accept its terms, then try again."
            )
        else:
            msg = access_hint(spec) + "."
        raise ModelUnavailableError(msg) from None
    except LocalEntryNotFoundError:
        from huggingface_hub import constants

        offline = constants.is_offline_mode()
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face Hub could not be reached"
        msg = f"{spec.repo_id} ({name}) is not in the Hugging Face cache and {why}."
        switched_off = "downloads are switched off here" if offline else "the Hugging Face Hub could not be reached"
        situation = f"{spec.repo_id} ({name}) is not on this machine and {switched_off}."
        if spec.gated and not has_token:
            msg += f" To download it: {access_hint(spec)}."
            situation += " It is gated: the server needs a Hugging Face token (HF_TOKEN) with access to it."
        raise with_remedy(
            ModelUnavailableError(msg + " Or pass weights='path/to/model.safetensors'."), "weights", situation
        ) from None
    except RepositoryNotFoundError:
        hint = access_hint(spec) if not has_token else f"check that your HF_TOKEN is valid ({TOKEN_PAGE})"
        raise ModelUnavailableError(f"{spec.repo_id} could not be opened: {hint}.") from None
    except (RevisionNotFoundError, EntryNotFoundError):
        raise ModelUnavailableError(
            f"{spec.repo_id} has no {name} at revision {spec.revision[:12]}; the pinned revision may have been removed."
        ) from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        situation = f"Downloading {spec.repo_id} failed (HTTP {status})."
        raise with_remedy(
            ModelUnavailableError(f"{situation} Try again later, or pass weights='path'."), "weights", situation
        ) from None
    except OSError as exc:
        raise ModelUnavailableError(
            f"Downloading {spec.repo_id} failed: {type(exc).__name__}. Try again later."
        ) from None


def _fail_fast(spec: ModelSpec, name: str, has_token: bool) -> None:
    """Before a download, raise at once what the Hub would only tell after
    retries: a gated repository without a token, or a Hub that cannot be reached."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return  # hf_hub_download answers from the cache at once, with the offline message
    if spec.gated and not has_token:
        raise ModelUnavailableError(access_hint(spec) + ".")
    require_hub(spec.repo_id, f"{spec.repo_id} ({name})", fix="pass weights='path/to/model.safetensors'")
