"""Our own networks (PyTorch) and the specs of each model, as data.

Only specs.py is imported eagerly; the network modules import torch.
"""

from .specs import BIREFNET_VARIANTS, RMBG_14, RMBG_20, SPECS, U2NETP, BiRefNetVariant, dynamic_input_size

__all__ = ["BIREFNET_VARIANTS", "RMBG_14", "RMBG_20", "SPECS", "U2NETP", "BiRefNetVariant", "dynamic_input_size"]
