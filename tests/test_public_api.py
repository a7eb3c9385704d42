"""The public surface of `import rmbg`: exactly these names, and nothing heavy behind them."""

from __future__ import annotations

import subprocess
import sys

import rmbg

# Changing the public API is a decision: this list changes with it, on purpose.
PUBLIC = [
    "BudgetError",
    "Comparison",
    "Cost",
    "DEFAULT_PROVIDER",
    "InvalidImageError",
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
    "LicenceError",
    "__version__",
    "cascade",
    "compare",
    "default_cache",
    "default_provider",
    "encode",
    "evaluate",
    "get_provider",
    "list_providers",
    "load_image",
    "parse_colour",
    "register",
    "remove_background",
    "remove_video",
    "VideoResult",
    "render",
    "InvalidRequestError",
    "ReplaceResult",
    "replace_background",
    "replace_estimate",
]


def test_all_is_exactly_the_public_api():
    assert sorted(rmbg.__all__) == sorted(PUBLIC)
    assert len(set(rmbg.__all__)) == len(rmbg.__all__)
    missing = [name for name in rmbg.__all__ if not hasattr(rmbg, name)]
    assert missing == []


def test_version_is_written_once_and_matches_the_installed_metadata():
    from importlib.metadata import version

    assert rmbg.__version__ == version("rmbg")


def test_package_ships_its_type_marker():
    from importlib.resources import files

    assert files("rmbg").joinpath("py.typed").is_file()


def test_importing_rmbg_is_light():
    """`import rmbg` loads no heavy framework and opens no connection."""
    heavy = ("torch", "gradio", "transformers", "ray", "onnxruntime", "httpx", "matplotlib", "scipy")
    code = f"import sys, rmbg; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
