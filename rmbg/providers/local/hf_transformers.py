"""Loading transformers models (from the Hub through the HF cache, or from a
local `save_pretrained` folder), once per process into the model pool
(rmbg.providers.local.pool), with readable errors.

transformers is imported here lazily, inside functions: importing this module
costs nothing. Every failure to get weights becomes a ModelUnavailableError
that says what to do; tokens are never echoed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from ...errors import ModelUnavailableError, with_remedy
from ...threads import calm_openmp
from .pool import POOL, tensor_bytes
from .torch_thread import passing_call

calm_openmp()  # before this module's models load torch (rmbg.threads)


def is_local(source: str | os.PathLike) -> bool:
    """True when `source` is an existing folder (a save_pretrained output)."""
    return Path(source).expanduser().is_dir()


def not_a_source(source: str) -> str:
    """Why `source` can be neither loaded from a folder nor fetched from the Hub ("" when it can be
    one of them): a missing folder reads to huggingface_hub as a repo id it refuses (HFValidationError)."""
    if is_local(source):
        return ""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(str(source))
    except HFValidationError:
        return (
            f"{source} is not a folder on this machine, nor a Hugging Face repo id (namespace/name): "
            "pass the folder saved with save_pretrained(), or a repo id."
        )
    return ""


def is_cached(repo_id: str, revision: str | None, filename: str = "config.json") -> bool:
    """Whether `filename` of the repo at `revision` is in the HF cache. No network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, revision=revision)
    return isinstance(found, str)


def source_status(source: str, revision: str | None) -> tuple[str, str]:
    """("ready" | "unavailable", one line) for a model source: no network when
    it is here; otherwise the process's shared answer about the Hub."""
    if is_local(source):
        if (Path(source).expanduser() / "config.json").is_file():
            return "ready", f"local folder {Path(source).name}"
        return "unavailable", f"{source} has no config.json (not a save_pretrained folder)"
    if not_a_source(source):
        return "unavailable", not_a_source(source)
    if is_cached(source, revision):
        return "ready", "weights cached"
    from .hub import hub_status

    return hub_status(source)  # ready only when the Hub can be reached now


def read_config(source: str, revision: str | None, token: str | None = None) -> dict:
    """The repo's config.json as a dict (local folder, cache, or download)."""
    import json

    if is_local(source):
        path = Path(source).expanduser() / "config.json"
        if not path.is_file():
            raise ModelUnavailableError(f"{source} has no config.json: is it a save_pretrained folder?")
    else:
        path = Path(_download(source, "config.json", revision, token))
    return json.loads(path.read_text(encoding="utf-8"))


def _download(repo_id: str, filename: str, revision: str | None, token: str | None) -> str:
    from huggingface_hub import hf_hub_download

    from .hub import require_hub

    require_hub(repo_id, fix=FOLDER_HINT)  # seconds, not huggingface_hub's retries, when the Hub is out of reach
    try:
        return hf_hub_download(repo_id, filename, revision=revision, token=token or None)
    except Exception as exc:  # every hub failure: not cached, offline, gated, missing
        raise _unavailable(repo_id, exc) from None


FOLDER_HINT = "pass model='path/to/folder' saved with save_pretrained()"
FOLDER_FIX = " Download it once with network, or pass model='path/to/folder' saved with save_pretrained()."


def _unavailable(source: str, exc: BaseException) -> ModelUnavailableError:
    """The error for a model that could not be loaded; when only a download
    would help, its fix is a Remedy (the page words it differently)."""
    message = _explain(source, exc)
    error = ModelUnavailableError(message)
    if message.endswith(FOLDER_FIX):
        with_remedy(error, "model", message[: -len(FOLDER_FIX)])
    return error


def _explain(source: str, exc: BaseException) -> str:
    from huggingface_hub import constants

    if is_local(source):
        return f"{source} could not be loaded as a save_pretrained folder: {type(exc).__name__}: {str(exc)[:200]}"
    name = type(exc).__name__
    if "Gated" in name:
        return f"{source} is gated: accept its terms on https://huggingface.co/{source} and set HF_TOKEN."
    if "RepositoryNotFound" in name:
        return f"{source} was not found on the Hugging Face Hub (or is private: set HF_TOKEN)."
    if "RevisionNotFound" in name:
        return f"{source} has no such revision; check the revision you pinned."
    if constants.is_offline_mode():
        why = "downloads are switched off here (HF_HUB_OFFLINE is set)"
    else:
        why = "the Hugging Face Hub could not be reached"
    return f"{source} is not in the Hugging Face cache and {why}.{FOLDER_FIX}"


def load_pretrained(
    cls_name: str,
    source: str,
    *,
    revision: str | None,
    device: str,
    dtype: Any,
    token: str | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """`transformers.<cls_name>.from_pretrained(source)` in eval mode on `device`,
    loaded once per (class, source, revision, device, dtype) and shared.

    The cache is tried first (local_files_only), so a cached model never
    touches the network; only then, unless HF_HUB_OFFLINE is set, the Hub.
    """
    key = ("transformers", cls_name, str(source), revision, device, str(dtype), trust_remote_code)

    def load() -> Any:
        return _load(cls_name, source, revision, token, trust_remote_code).to(device=device, dtype=dtype).eval()

    # On a thread of its own that ends with the load (torch_thread.passing_call): its OpenMP
    # team goes with it, and a first download from the Hub does not hold up other models.
    return POOL.get(key, functools.partial(passing_call, load), source=str(source), size=tensor_bytes)


def _load(cls_name: str, source: str, revision: str | None, token: str | None, trust_remote_code: bool) -> Any:
    from huggingface_hub import constants

    from .hub import require_hub

    local = is_local(source)
    if not_a_source(source):
        raise ModelUnavailableError(not_a_source(source))
    if not local and not is_cached(source, revision):
        if constants.is_offline_mode():  # nothing to load and nothing to fetch: said before transformers is imported
            raise _unavailable(source, FileNotFoundError(f"{source} is not cached"))
        require_hub(source, fix=FOLDER_HINT)  # seconds, not huggingface_hub's retries; before transformers is imported
    import transformers

    cls = getattr(transformers, cls_name)
    path = str(Path(source).expanduser()) if local else source
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if not local:
        kwargs.update(revision=revision, token=token or None)
    try:
        return cls.from_pretrained(path, local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:
        if local or constants.is_offline_mode():
            raise _unavailable(source, exc) from None
    require_hub(source, fix=FOLDER_HINT)  # the cache had config.json but not the rest: the Hub is asked again
    try:
        return cls.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise _unavailable(source, exc) from None


def clear_models() -> None:
    """Forget every loaded transformers model (tests; frees memory)."""
    POOL.clear("transformers")
