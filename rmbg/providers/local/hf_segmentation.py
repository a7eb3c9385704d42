"""Any Hugging Face Hub segmentation model as a provider: `hf:OWNER/REPO`.

Loaded with `AutoModelForImageSegmentation.from_pretrained` (through the HF
cache). Preprocessing: the repo's `AutoImageProcessor` when it has a
preprocessor_config.json; otherwise our recipe: resize (aspect not kept) to
`input_size` (default 1024 x 1024) with PIL bilinear, / 255, ImageNet mean/std.

Output -> matte: the mask tensor is taken from the output (`output_path`
indexes into nested tuples/lists, e.g. (0, 0) for RMBG-1.4-style outputs;
by default: `.logits` of a ModelOutput, else the *last* element of a
sequence, the finest prediction of BiRefNet / RMBG-2.0); then
  one channel: sigmoid when values fall outside [0, 1] (logits), else as is;
  several channels: softmax, matte = 1 - P(background), background being the
  class labelled "background" in config.id2label, else class 0;
then resized bilinearly to the image and rounded to uint8.

Remote code (a repo whose config has an `auto_map`) runs only with an explicit
`trust_remote_code=True` AND a pinned 40-hex commit `revision`, so the code
that runs is the code that was reviewed; each load warns (RemoteCodeWarning)
that it runs the repository's code.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import RmbgError
from ...types import Cost, Matte
from ..base import ProviderStatus
from .torch_thread import torch_call

log = logging.getLogger(__name__)
COMMIT = re.compile(r"^[0-9a-f]{40}$")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class RemoteCodeRefusedError(RmbgError):
    """A repo needs its own Python code and the conditions to run it are not met."""


class RemoteCodeWarning(UserWarning):
    """Loading runs Python code from a model repository."""


def check_remote_code(repo_id: str, config: Mapping[str, Any], trust_remote_code: bool, revision: str | None) -> bool:
    """True when the repo needs remote code and may run it; raise RemoteCodeRefusedError
    with the reason when it needs it and may not. False for native models."""
    if trust_remote_code and not (revision and COMMIT.match(revision)):
        raise RemoteCodeRefusedError(
            f"hf:{repo_id}: trust_remote_code=True needs a pinned revision (a 40-character commit hash), "
            f"got {revision!r}; a branch or tag could change the code that runs."
        )
    needs = "AutoModelForImageSegmentation" in (config.get("auto_map") or {})
    if needs and not trust_remote_code:
        raise RemoteCodeRefusedError(
            f"hf:{repo_id} runs its own Python code (config.json auto_map). Read it, then pass "
            "trust_remote_code=True with revision='<40-character commit hash>' to run it."
        )
    return needs


class HfSegmentationProvider:
    """A Hub image-segmentation model behind the Provider protocol."""

    kind = "local"

    def __init__(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        trust_remote_code: bool = False,
        device: str = "auto",
        precision: str = "fp32",
        token: str | None = None,
        input_size: tuple[int, int] = (1024, 1024),
        output_path: tuple[int, ...] | None = None,
    ):
        self.repo_id = repo_id
        self.id = f"hf:{repo_id}"
        self.label = f"{repo_id} (Hugging Face)"
        self.revision = revision
        self.trust_remote_code = trust_remote_code
        self._device = device
        self._precision = precision
        self._token = token
        self.input_size = tuple(input_size)
        self.output_path = tuple(output_path) if output_path is not None else None
        if trust_remote_code:  # refuse early: no download for an unpinned remote-code request
            check_remote_code(repo_id, {}, True, revision)
        self._processor: Any = None

    def options(self) -> Mapping[str, object]:
        return {
            "revision": self.revision or "main",
            "trust_remote_code": self.trust_remote_code,
            "precision": self._precision,
            "input_size": list(self.input_size),
            "output_path": list(self.output_path) if self.output_path is not None else "auto",
        }

    def status(self) -> ProviderStatus:
        from .hf_transformers import source_status

        state, message = source_status(self.repo_id, self.revision)
        return ProviderStatus(state, message)  # type: ignore[arg-type]

    def estimate(self) -> Cost:
        return Cost.free("local compute; estimate after a run")

    def network(self) -> Any:
        from .device import pick_device, pick_dtype, torch_cpu_threads, tune_cpu_allocator
        from .hf_transformers import load_pretrained, read_config

        config = read_config(self.repo_id, self.revision, self._token)
        remote = check_remote_code(self.repo_id, config, self.trust_remote_code, self.revision)
        if remote:
            msg = (
                f"hf:{self.repo_id} runs Python code from the repository at revision {self.revision}; "
                "only use repositories you trust."
            )
            warnings.warn(msg, RemoteCodeWarning, stacklevel=3)
            log.warning(msg)
        device = pick_device(self._device)
        if device == "cpu":
            tune_cpu_allocator()
            torch_cpu_threads()
        dtype = pick_dtype(self._precision, device)
        return load_pretrained(
            "AutoModelForImageSegmentation",
            self.repo_id,
            revision=self.revision,
            device=device,
            dtype=dtype,
            token=self._token,
            trust_remote_code=remote,
        )

    def processor(self) -> Any:
        """The repo's AutoImageProcessor, or None when it has none (then our recipe)."""
        if self._processor is None:
            from .hf_transformers import is_cached

            self._processor = False
            if is_cached(self.repo_id, self.revision, "preprocessor_config.json"):
                from transformers import AutoImageProcessor

                self._processor = AutoImageProcessor.from_pretrained(
                    self.repo_id,
                    revision=self.revision,
                    local_files_only=True,
                    trust_remote_code=self.trust_remote_code,
                )
        return self._processor or None

    def pixel_values(self, image) -> Any:
        import torch
        from PIL import Image

        proc = self.processor()
        if proc is not None:
            return proc(images=image, return_tensors="pt")["pixel_values"]
        h, w = self.input_size
        arr = np.array(image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
        norm: np.ndarray = (arr - np.asarray(MEAN, dtype=np.float32)) / np.asarray(STD, dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(norm.transpose(2, 0, 1), dtype=np.float32)).unsqueeze(0)

    def matte(self, image) -> Matte:
        import torch

        from ...money.pricing import compute_cost
        from .pool import POOL

        net = self.network()  # loaded before the clock starts: seconds are the model's, not the load's
        param = next(net.parameters())
        start = time.perf_counter()
        x = torch_call(lambda: self.pixel_values(image.convert("RGB")).to(device=param.device, dtype=param.dtype))

        def run() -> np.ndarray:  # on the process's PyTorch thread (torch_thread)
            with torch.inference_mode():
                raw = net(x)
                return to_probability(pick_output(raw, self.output_path), getattr(net.config, "id2label", None))

        asked = time.perf_counter()
        with POOL.forward(torch.get_num_threads() if param.device.type == "cpu" else 0):
            waited = time.perf_counter() - asked  # for another model's forward: not this one's time
            probs = torch_call(run)
        alpha = probability_to_matte(probs, image.size)
        seconds = time.perf_counter() - start - waited
        meta = {"model": self.repo_id, "revision": self.revision or "main", "backend": "transformers"}
        return Matte(alpha, compute_cost(seconds, str(param.device)), seconds, meta)


def pick_output(raw: Any, path: tuple[int, ...] | None) -> Any:
    """The mask tensor inside a model's output (rule in the module docstring)."""
    import torch

    if path is not None:
        for i in path:
            raw = raw[i]
        return raw
    while not isinstance(raw, torch.Tensor):
        if hasattr(raw, "logits") and raw.logits is not None:
            raw = raw.logits
        elif isinstance(raw, (list, tuple)) and raw:
            raw = raw[-1]
        elif hasattr(raw, "to_tuple"):
            raw = raw.to_tuple()[0]
        else:
            raise RmbgError(
                f"cannot find a mask tensor in the model's output ({type(raw).__name__}); pass output_path=(i, j, ...)"
            )
    return raw


def to_probability(t: Any, id2label: Mapping | None = None) -> np.ndarray:
    """[1, C, h, w] / [C, h, w] / [h, w] tensor -> foreground probability (h, w) float32."""
    import torch

    t = t.detach().float()
    while t.dim() > 3:
        t = t[0]
    if t.dim() == 2:
        t = t[None]
    if t.shape[0] == 1:
        t = t[0]
        if float(t.min()) < 0.0 or float(t.max()) > 1.0:
            t = torch.sigmoid(t)
        return t.cpu().numpy()
    background = 0
    for key, name in (id2label or {}).items():
        if str(name).lower() == "background":
            background = int(key)
    return (1.0 - torch.softmax(t, dim=0)[background]).cpu().numpy()


def probability_to_matte(probs: np.ndarray, size: tuple[int, int]):
    """Probability map -> mode-L matte at `size` (bilinear on floats, rounded)."""
    from PIL import Image

    resized = np.asarray(Image.fromarray(probs.astype(np.float32)).resize(size, Image.Resampling.BILINEAR))
    return Image.fromarray(np.clip(np.rint(resized * 255.0), 0, 255).astype(np.uint8))


def hf_provider(provider_id: str, **config) -> HfSegmentationProvider:
    """Build from "hf:OWNER/REPO" (or "OWNER/REPO"); config as HfSegmentationProvider's keywords."""
    repo_id = provider_id[3:] if provider_id.startswith("hf:") else provider_id
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise RmbgError(f"expected hf:OWNER/REPO, got {provider_id!r}")
    return HfSegmentationProvider(repo_id, **config)
