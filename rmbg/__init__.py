"""rmbg: remove image backgrounds with local models or hosted APIs.

Every provider answers one question, "what is the alpha matte of this
image?"; everything else (cut-out, background colour or image, mask, format)
is rendered locally from (image, alpha). Background replacement
(replace_background) is the one exception: a hosted model generates whole new
images, a paid call per image.

Importing rmbg loads neither torch nor gradio and opens no connection.
"""

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .api import (
    DEFAULT_PROVIDER,
    cascade,  # eager: the submodule rmbg.cascade's name is the function's
    remove_background,
)
from .cache import MatteCache, default_cache
from .compare import Comparison, compare  # eager: the submodule's name is the function's
from .defaults import default_provider
from .errors import (
    BudgetError,
    InvalidImageError,
    InvalidRequestError,
    LicenceError,
    MissingCredentialsError,
    ModelUnavailableError,
    ProviderError,
    ProviderHTTPError,
    RmbgError,
    UnknownProviderError,
)
from .image.compose import encode, parse_colour, render
from .image.io import LoadedImage, load_image
from .providers.base import Provider, ProviderStatus
from .registry import get_provider, list_providers, register
from .replace import ReplaceResult, replace_background, replace_estimate
from .result import Result
from .types import Cost, Matte, ModelSpec, Seconds

if TYPE_CHECKING:
    from .eval.run import evaluate
    from .video import VideoResult, remove_video

# Imported on first use (PEP 562): `rmbg remove photo.jpg` needs none of them, and they
# were about a quarter of `import rmbg` (python -X importtime; video: its decoders, the URL fetcher, asyncio).
_LAZY = {
    "evaluate": "eval.run",
    "VideoResult": "video",
    "remove_video": "video",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rmbg' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_PROVIDER",
    "BudgetError",
    "Comparison",
    "Cost",
    "InvalidImageError",
    "InvalidRequestError",
    "LicenceError",
    "LoadedImage",
    "Matte",
    "MatteCache",
    "MissingCredentialsError",
    "ModelSpec",
    "ModelUnavailableError",
    "Provider",
    "ProviderError",
    "ProviderHTTPError",
    "ProviderStatus",
    "Result",
    "RmbgError",
    "Seconds",
    "UnknownProviderError",
    "VideoResult",
    "__version__",
    "cascade",
    "compare",
    "default_cache",
    "default_provider",
    "encode",
    "evaluate",
    "get_provider",
    "list_providers",
    "parse_colour",
    "load_image",
    "register",
    "remove_background",
    "remove_video",
    "render",
    "ReplaceResult",
    "replace_background",
    "replace_estimate",
]
