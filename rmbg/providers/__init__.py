"""Providers: objects that turn an RGB image into an alpha matte.

One file per family: local.py (our PyTorch networks), onnx.py (ONNX Runtime),
fal.py, runware.py. Each is registered by id in rmbg.registry.
"""

from .base import Provider, ProviderStatus

__all__ = ["Provider", "ProviderStatus"]
