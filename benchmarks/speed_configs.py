"""Configurations timed by benchmarks/speed.py, and its worker processes' side.

A configuration turns an image file into stage timings and an alpha matte:
`ours(provider)` is the library path; `model_card(net)` is the RMBG-1.4 model
card's recipe written out (see speed.py). `build(name, files)` makes one by
name, in whichever process runs it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import speed_setup  # noqa: F401

STAGES = ("load", "preprocess", "network", "postprocess", "compose")
Run = Callable[[Path], tuple[dict, object]]


def ours(provider) -> Run:
    """Our library path, stage by stage."""
    from rmbg.image.compose import render
    from rmbg.image.io import load_image

    def run(path: Path):
        times, t0 = {}, time.perf_counter()
        loaded = load_image(path)
        t1 = time.perf_counter()
        x = provider.preprocess(loaded.rgb)
        t2 = time.perf_counter()
        pred = provider.forward(x)
        t3 = time.perf_counter()
        alpha = provider.postprocess(pred, loaded.rgb.size)
        t4 = time.perf_counter()
        render(loaded.rgb, alpha)
        t5 = time.perf_counter()
        times.update(zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)))
        return times, alpha

    return run


def with_input_noise(provider, grey_levels: float = 1.0):
    """The provider with its network input moved by uniform noise of at most
    `grey_levels` of 255 per pixel and channel (the same noise for every image of
    a size): what the matte does when the input changes invisibly, the floor
    under any precision's agreement with exact fp32."""
    preprocess = provider.preprocess
    std = np.asarray(provider.spec.std, np.float32).reshape(1, 3, 1, 1)

    def noisy(image):
        x = preprocess(image)
        noise = np.random.default_rng(0).uniform(-grey_levels, grey_levels, x.shape).astype(np.float32)
        return x + noise / 255 / std

    provider.preprocess = noisy
    return provider


def compiled(provider):
    """The provider with its network under torch.compile (inductor, static
    shapes), compiled on the first forward into a fresh cache directory: the
    first call's time is what a cold start pays."""
    import atexit
    import functools
    import shutil
    import tempfile

    import torch

    cache = tempfile.mkdtemp(prefix="rmbg-inductor-")
    atexit.register(shutil.rmtree, cache, True)  # the worker's compiled kernels go with it
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    network = provider.network
    provider.network = functools.cache(lambda: torch.compile(network(), dynamic=False))
    return provider


def model_card(net, *, no_grad: bool = False, device: str = "cpu", half: bool = False) -> Run:
    """The model card's recipe (see module doc)."""
    import contextlib

    import torch
    import torch.nn.functional as F
    from PIL import Image

    def run(path: Path):
        t0 = time.perf_counter()
        im = np.array(Image.open(path))
        t1 = time.perf_counter()
        tensor = torch.tensor(im, dtype=torch.float32).permute(2, 0, 1)
        tensor = F.interpolate(torch.unsqueeze(tensor, 0), size=[1024, 1024], mode="bilinear")
        image = (torch.divide(tensor, 255.0) - 0.5) / 1.0
        image = image.to(device, torch.float16 if half else torch.float32)
        t2 = time.perf_counter()
        with torch.no_grad() if no_grad else contextlib.nullcontext():
            result = net(image)
        if device != "cpu":
            torch.cuda.synchronize()
        t3 = time.perf_counter()
        res = torch.squeeze(F.interpolate(result[0][0].float(), size=im.shape[:2], mode="bilinear"), 0)
        res = (res - res.min()) / (res.max() - res.min())
        mask = np.squeeze((res * 255).permute(1, 2, 0).cpu().data.numpy().astype(np.uint8))
        t4 = time.perf_counter()
        out = Image.open(path).copy()
        out.putalpha(Image.fromarray(mask))
        t5 = time.perf_counter()
        return dict(zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4))), Image.fromarray(mask)

    return run


def official_network(model: str, code: str):
    """BiRefNet's official network class from a checkout of its code
    (github.com/ZhengPeng7/BiRefNet, MIT; not part of this repository), with
    the backbone and image-patch order of `model`. Needs torchvision, timm,
    einops and kornia. With the same weights its fp32 logits equal ours within
    4e-5 (checked at 256² for both backbones)."""
    sys.path.insert(0, code)
    import config as official_config  # type: ignore[import-not-found]

    if model == "birefnet-lite":  # the code's Config picks Swin-L; BiRefNet_lite is its Swin-T setting
        base_init = official_config.Config.__init__

        def swin_t_init(self) -> None:
            base_init(self)
            self.bb = "swin_v1_t"
            lateral = [768, 384, 192, 96]
            self.lateral_channels_in_collection = [2 * c for c in lateral] if self.mul_scl_ipt == "cat" else lateral
            self.cxt = self.lateral_channels_in_collection[1:][::-1][-self.cxt_num :] if self.cxt_num else []

        official_config.Config.__init__ = swin_t_init
    import models.birefnet as official  # type: ignore[import-not-found]

    if model == "rmbg-2.0":
        # BRIA's RMBG-2.0 code predates BiRefNet's einops patches (2024-11-05): it
        # stacks image patches column by column, each tile's channels together.
        einops_patches = official.image2patches

        def column_major(image, grid_h=2, grid_w=2, patch_ref=None, transformation=None):
            return einops_patches(
                image, grid_h, grid_w, patch_ref, transformation="b c (hg h) (wg w) -> b (wg hg c) h w"
            )

        official.image2patches = column_major
    return official.BiRefNet(bb_pretrained=False)


def our_birefnet(model: str):
    """Our BiRefNet network for `model` ("rmbg-2.0" or a BiRefNet variant), random
    weights: the variant's backbone and image-patch order, RMBG-2.0's otherwise."""
    from rmbg.models.birefnet import build_birefnet
    from rmbg.models.specs import BIREFNET_VARIANTS

    variant = BIREFNET_VARIANTS.get(model)
    return build_birefnet(
        backbone=variant.backbone if variant else "swin_l", patch_order=variant.patch_order if variant else "column"
    )


def birefnet_card(model: str, weights: str, code: str | None = None) -> Run:
    """The RMBG-2.0 model card's recipe around a BiRefNet
    network: ours in fp32, or the official code's when `code` is a checkout of
    it. PIL resize to 1024² (bilinear, antialiased: torchvision's Resize on a
    PIL image), ToTensor + ImageNet Normalize, `model(x)[-1].sigmoid()` under
    no_grad, ToPILImage (x255, truncated), PIL resize back (bicubic for "L"),
    putalpha. Networks built and loaded as the card's code does: a fresh
    module (random init) and a strict load of the file."""
    import torch
    from PIL import Image
    from safetensors.torch import load_file

    net = official_network(model, code) if code else our_birefnet(model)
    net.load_state_dict(load_file(weights), strict=True)
    net.eval()
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)

    def run(path: Path):
        t0 = time.perf_counter()
        image = Image.open(path).convert("RGB")
        t1 = time.perf_counter()
        x = (np.asarray(image.resize((1024, 1024), Image.Resampling.BILINEAR), np.float32) / 255 - mean) / std
        tensor = torch.from_numpy(x.transpose(2, 0, 1).copy()).unsqueeze(0)
        t2 = time.perf_counter()
        with torch.no_grad():
            pred = net(tensor)[-1].sigmoid()[0, 0]
        t3 = time.perf_counter()
        mask = Image.fromarray((pred * 255).to(torch.uint8).numpy(), "L").resize(image.size)
        t4 = time.perf_counter()
        out = image.copy()
        out.putalpha(mask)
        t5 = time.perf_counter()
        return dict(zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4))), mask

    return run


def build(name: str, files: dict, threads: int | None = None) -> Run:
    """A configuration by name (also used inside the child processes)."""
    import rmbg

    if name.startswith("u2netp"):
        return ours(rmbg.get_provider("u2netp", device="cpu", threads=threads))
    if name.startswith("onnx"):
        precision = name.split()[1]
        return ours(
            rmbg.get_provider(
                "rmbg-1.4",
                backend="onnx",
                weights=str(files[precision]),
                precision=precision,
                device="cpu",
                threads=threads,
            )
        )
    if name.startswith(("rmbg-2.0", "birefnet-lite")):
        model, config = name.split(" ", 1)
        weights = str(files["rmbg20" if model == "rmbg-2.0" else "lite"])
        if config == "official code":
            return birefnet_card(model, weights, code=str(files["official_code"]))
        if config == "official recipe":  # the card recipe around our fp32 network
            return birefnet_card(model, weights)
        precision = {"fp32": "fp32", "bf16": "bf16", "auto": "auto"}[config.split()[0]]
        for setting in ("reuse", "system"):  # the allocator setting (process-wide: this worker's own)
            if f"allocator {setting}" in config:
                os.environ["RMBG_CPU_ALLOCATOR"] = setting
        provider = rmbg.get_provider(model, weights=weights, device="cpu", precision=precision)
        if config.endswith("input-noise"):
            return ours(with_input_noise(provider))
        if config.endswith("compile"):
            return ours(compiled(provider))
        return ours(provider)
    import torch

    device = "cuda" if "cuda" in name else "cpu"
    half = "fp16" in name
    if threads:
        torch.set_num_threads(threads)
    if name.startswith("torch"):
        return ours(
            rmbg.get_provider(
                "rmbg-1.4",
                backend="torch",
                weights=str(files["safetensors"]),
                device=device,
                precision="fp16" if half else "fp32",
            )
        )
    from safetensors.torch import load_file

    from rmbg.models.isnet import build_isnet

    net = build_isnet()
    net.load_state_dict(load_file(str(files["safetensors"])), strict=True)
    net = net.to(device, torch.float16 if half else torch.float32).eval()
    return model_card(net, no_grad="no_grad" in name, device=device, half=half)


def peak_rss_mib() -> float:
    """VmHWM of this process (Linux). Not getrusage: its ru_maxrss survives
    exec, so a child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(name: str, files: dict, image: Path, count: int) -> dict:
    """images/s with 2 concurrent requests x 1 compute thread, in a fresh process."""
    one = build(name, files, threads=1)
    one(image)
    barrier, done = threading.Barrier(2), []

    def worker():
        barrier.wait()
        for _ in range(count):
            one(image)
        done.append(time.perf_counter())

    workers = [threading.Thread(target=worker) for _ in range(2)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"images_per_s": 2 * count / (max(done) - start)}


def serve(name: str, files: dict) -> None:
    """Worker side: one JSON job per stdin line, one JSON answer per line."""
    run = build(name, files)
    for line in sys.stdin:
        job = json.loads(line)
        times, alpha = run(Path(job["image"]))
        if job["save"]:
            alpha.save(job["save"])
        print(json.dumps({"times": times, "rss_mib": peak_rss_mib()}), flush=True)
