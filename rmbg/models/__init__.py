"""Our own networks (PyTorch) and the specs of each model, as data.

Only specs.py is imported eagerly; the network modules import torch.
"""

from .specs import RMBG_14, RMBG_20, SPECS, U2NETP

__all__ = ["RMBG_14", "RMBG_20", "SPECS", "U2NETP"]
