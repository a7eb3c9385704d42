"""The version of rmbg, written once: pyproject.toml reads it from here
(`[tool.setuptools.dynamic]`) and rmbg.__version__ re-exports it. A module of
its own, importing nothing, so code anywhere in the package can name the
version without importing the package's root."""

__version__ = "0.1.0"
