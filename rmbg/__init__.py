"""rmbg: remove image backgrounds with local models or hosted APIs.

Every provider answers one question, "what is the alpha matte of this
image?"; everything else (cut-out, background colour or image, mask, format)
is rendered locally from (image, alpha). Background replacement
(replace_background) is the one exception: a hosted model generates whole new
images, a paid call per image.

Importing rmbg loads neither torch nor gradio and opens no connection.
"""

from ._version import __version__
from .api import DEFAULT_PROVIDER, remove_background
from .cache import MatteCache, default_cache
from .compare import Comparison, compare
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
from .eval.run import evaluate
from .image.compose import encode, parse_colour, render
from .image.io import LoadedImage, load_image
from .providers.base import Provider, ProviderStatus
from .registry import get_provider, list_providers, register
from .replace import ReplaceResult, replace_background, replace_estimate
from .result import Result
from .types import Cost, Matte, ModelSpec, Seconds
from .video import VideoResult, remove_video

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
