"""ZeroGPU (Hugging Face's shared GPUs for Spaces): how long each GPU call
asks for, and what a visitor reads when ZeroGPU refuses one.

Before a `spaces.GPU` call runs, ZeroGPU compares the duration it asks for
with what the visitor has left of their daily quota (2 minutes unsigned, 5
with a free account, 40 with PRO) and refuses the call when the ask is
larger, however short the work. So every GPU function of the app asks for a
duration computed from its own arguments (`spaces.GPU(duration=callable)`,
evaluated with the call's arguments): the photos times the model's GPU
seconds a photo, plus the model's load when the GPU worker does not hold it
yet, plus a margin, clamped to MAX_S.

The figures are asks, not timings: each is at least four times what the
model took for a 12 MP photo end to end (decode, resize, forward, matte) on a
whole H200, one photo at a time in fp16, run eagerly as ZeroGPU runs it (no
CUDA graph there): benchmarks/results/cuda.json, held by
tests/test_zerogpu_times.py. ZeroGPU lends a slice of such a GPU and does the
photo's decode and resize on its own host, neither measured here, hence the
room. A load is the weights from the Space's disk to the GPU (BiRefNet's
885 MB file the largest). A call that outruns its ask is warned about by
ZeroGPU, not cut short at once; an ask that is too large costs the visitor
photos at the end of their quota.

A refusal arrives as gradio's `gr.Error` with a title of ZeroGPU's own
("ZeroGPU quota exceeded", "ZeroGPU illegal duration", "ZeroGPU queue
timeout", "ZeroGPU client error"); `refusal_of` turns one into
`GpuRefused`, an RmbgError whose message says in a visitor's words what
happened, how much is left and when it refills where ZeroGPU said so, that
signing in gives more, and that the same photo can run on this server's CPU
(CPU_PROVIDERS: the fastest local model here, in the app's own process, no
GPU time) or with their own key for a hosted provider.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..errors import RmbgError

if TYPE_CHECKING:
    from .config import AppConfig

MAX_S = 120  # the longest ask: an unsigned visitor's whole day; a clip's frames go in groups well under it
MARGIN_S = 3.0  # the worker's start, the photo's trip both ways, a slow moment


@dataclass(frozen=True)
class GpuTime:
    """A model's GPU time: `photo_s` a photo (pre-processing, forward and matte), `load_s` to bring
    its weights to the GPU in a worker that does not hold them yet."""

    photo_s: float
    load_s: float


GPU_TIME = {
    "birefnet": GpuTime(1.0, 8.0),  # Swin-L at 1024², fp16; 885 MB of weights
    "rmbg-2.0": GpuTime(1.0, 8.0),  # the same network
    "birefnet-portrait": GpuTime(1.0, 8.0),
    "birefnet-matting": GpuTime(1.0, 8.0),
    "birefnet-dynamic": GpuTime(2.0, 8.0),  # each photo at its own size, up to 2048²
    "birefnet-hr": GpuTime(3.0, 8.0),  # 2048²: four times the pixels
    "birefnet-lite": GpuTime(0.5, 4.0),  # Swin-T at 1024²; 177 MB
    "rmbg-1.4": GpuTime(0.6, 3.0),  # IS-Net at 1024²; 176 MB (12 MP eagerly on an H200: 0.11-0.13 s)
    "isnet-general": GpuTime(0.6, 3.0),
    "u2netp": GpuTime(0.3, 1.0),  # 320², 4.6 MB
    "sam2": GpuTime(1.0, 6.0),
}
UNKNOWN = GpuTime(2.0, 15.0)  # a model named hf:OWNER/REPO: any size
REFINE_TIME = {"vitmatte": GpuTime(1.0, 4.0), "sam2-pick": GpuTime(1.0, 6.0)}

_held: set[str] = set()  # models the GPU worker holds: loaded before it forked, or by one of its calls
_held_lock = threading.Lock()


def held(model: str) -> bool:
    with _held_lock:
        return model in _held


def mark_held(model: str) -> None:
    """`model` is in the GPU worker now: loaded in this process before the worker forks (the
    preload at import), or by a GPU call that returned."""
    with _held_lock:
        _held.add(model)


def forget_held() -> None:
    """No model counted as held (tests)."""
    with _held_lock:
        _held.clear()


def seconds(time: GpuTime, photos: int, loaded: bool) -> int:
    """The ask for `photos` on a model of `time`: whole seconds, at least 1, at most MAX_S."""
    asked = photos * time.photo_s + (0.0 if loaded else time.load_s) + MARGIN_S
    return max(1, min(MAX_S, math.ceil(asked)))


def model_of(provider: object) -> str:
    """A provider's id, or a Recipe's (rmbg.webapp.catalog)."""
    return str(getattr(provider, "provider_id", None) or getattr(provider, "id", ""))


def mattes_seconds(provider: object, images: list) -> int:
    """The ask of guard._local_mattes(provider, images): its duration callable."""
    model = model_of(provider)
    return seconds(GPU_TIME.get(model, UNKNOWN), len(images), held(model))


def refine_seconds(refiner: object, image: object, matte: object) -> int:
    """The ask of guard._local_refine(refiner, image, matte): each step of the chain
    ("sam2-pick+vitmatte") once, with its model's load when the worker lacks it."""
    steps = str(getattr(refiner, "id", "")).split("+")
    total = sum(
        t.photo_s + (0.0 if held(step) else t.load_s) for step in steps for t in [REFINE_TIME.get(step, UNKNOWN)]
    )
    return max(1, min(MAX_S, math.ceil(total + MARGIN_S)))


# --- refusals -----------------------------------------------------------------------------------

REFUSALS: tuple[str, ...] = ("ZeroGPU quota exceeded", "ZeroGPU illegal duration", "ZeroGPU queue timeout")
REFUSALS += ("ZeroGPU client error", "ZeroGPU pending credits exceeded")
CPU_PROVIDERS = ("isnet-general", "u2netp")  # the fastest local models on a CPU, best first (docs/cpu.md)
CPU_BUTTON = "Run on the CPU instead"  # the Remove tab's button
CPU_BOX = "Run local models on the CPU (slower, no GPU time)"  # the Compare tab's checkbox
SIGN_IN = "Signing in with Hugging Face (at the top of the page) raises it from 2 to 5 minutes a day (40 with PRO)."
_ASKED = re.compile(r"\((\d+)s requested vs\. (\d+)s left\)")
_WAIT = re.compile(r"Try again in ([0-9:, a-z]+?)\.")


class GpuRefused(RmbgError):
    """ZeroGPU refused a GPU call: `title` and `said` are ZeroGPU's own; `asked`, `left` (seconds)
    and `wait` ("H:MM:SS" until it refills) where it said them; `cpu_provider`: the local model the
    same image can run on this server's CPU with."""

    def __init__(self, title: str, said: str, cpu_provider: str):
        self.title, self.said, self.cpu_provider = title, said, cpu_provider
        asked = _ASKED.search(said)
        self.asked: int | None = int(asked[1]) if asked else None
        self.left: int | None = int(asked[2]) if asked else None
        wait = _WAIT.search(said)
        self.wait = wait[1].strip() if wait else None
        self.wait_seconds = _seconds_of(self.wait)
        super().__init__(self.words())

    def words(self) -> str:
        """What the visitor reads (every door: the page, REST, MCP)."""
        if self.title == "ZeroGPU illegal duration":
            what = "This job asks the shared GPU for longer than one go may last."
        elif self.title in ("ZeroGPU queue timeout", "ZeroGPU client error"):
            what = "No shared GPU was free for this Space just now (Hugging Face's ZeroGPU)."
        elif self.left is not None:
            what = (
                f"Your free GPU time on this Space is used up for now: this photo needs {self.asked} s "
                f"and {self.left} s are left of your daily ZeroGPU quota."
            )
        else:
            what = "The free GPU time (Hugging Face's ZeroGPU daily quota) is used up for now."
        when = f" It refills in {self.wait} (hours:minutes:seconds)." if self.wait else " It refills within a day."
        if self.title != "ZeroGPU quota exceeded":
            when = " Trying again in a minute may work."
        return (
            f"{what}{when} {SIGN_IN} Meanwhile the same image can run on this server's CPU with the "
            f"{self.cpu_provider} model (slower, free, no GPU time): the “{CPU_BUTTON}” button (in Compare, "
            f"tick “{CPU_BOX}”), or provider {self.cpu_provider} with cpu true; or paste your own key for "
            "a hosted provider."
        )


def _seconds_of(wait: str | None) -> int | None:
    """ "23:41:10" (or "1 day, 0:00:00") as seconds; None when not said that way."""
    if not wait:
        return None
    days, _, clock = wait.rpartition(", ")
    parts = clock.split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    hours, minutes, secs = map(int, parts)
    day = int(days.split()[0]) if days and days.split()[0].isdigit() else 0
    return ((day * 24 + hours) * 60 + minutes) * 60 + secs


def refusal_of(exc: BaseException) -> GpuRefused | None:
    """ZeroGPU's refusal (a gr.Error with one of REFUSALS as its title) as GpuRefused; None for
    anything else (an error inside the GPU call stays what it was)."""
    title = getattr(exc, "title", None)
    if title not in REFUSALS:
        return None
    return GpuRefused(str(title), str(getattr(exc, "message", exc)), cpu_provider())


def cpu_provider() -> str:
    """The fastest local model for this server's CPU: CPU_PROVIDERS' first one with its weights on
    disk (a visitor may not start a download: rmbg.webapp.downloads; warmup.preload_cpu fetches it at
    import on ZeroGPU), else the first one ready."""
    from ..registry import get_provider, list_providers
    from .downloads import would_download

    offered = [pid for pid in CPU_PROVIDERS if pid in list_providers()]
    built = {pid: get_provider(pid) for pid in offered}
    ready = [pid for pid in offered if built[pid].status().ready]
    on_disk = [pid for pid in ready if not would_download(built[pid])]
    return (on_disk or ready or [CPU_PROVIDERS[-1]])[0]


def on_cpu_config(config: AppConfig, provider_id: str) -> AppConfig:
    """`config` with a local model set to run on the CPU (device="cpu": on ZeroGPU the app's own
    process is told a GPU is there); any other provider as it was."""
    from ..registry import info

    try:
        local = info(provider_id).kind == "local"
    except RmbgError:
        local = False
    if not local:
        return config
    cpu = {**config.config_for(provider_id), "device": "cpu"}
    return replace(config, provider_config={**config.provider_config, provider_id: cpu})


# --- the page's quota line ----------------------------------------------------------------------

QUOTA_MINUTES = {"anonymous": 2, "free": 5, "pro": 40}  # a visitor's ZeroGPU time a day, by account
LOGIN_URL = "https://huggingface.co/login"


def quota_line(username: str | None, photo_s: int) -> str:
    """Which ZeroGPU quota this visitor's photos spend, in one line: unsigned (2 minutes a day) or
    their account's (5, 40 with PRO); `photo_s`: what one photo of the default model asks for."""
    if username:
        return (
            f"**GPU time**: signed in as **{username}**: your account's daily ZeroGPU quota "
            f"({QUOTA_MINUTES['free']} minutes, {QUOTA_MINUTES['pro']} with PRO; a photo asks for about {photo_s} s)."
        )
    photos = QUOTA_MINUTES["anonymous"] * 60 // max(1, photo_s)
    return (
        f"**GPU time**: not signed in: the anonymous daily ZeroGPU quota, {QUOTA_MINUTES['anonymous']} minutes "
        f"(about {photos} photos). [Sign in with Hugging Face]({LOGIN_URL}) for {QUOTA_MINUTES['free']} minutes "
        f"({QUOTA_MINUTES['pro']} with PRO). When it is spent, “{CPU_BUTTON}” cuts out the same photo here, slower."
    )


def photo_seconds(model: str) -> int:
    """What one photo of `model` asks for with the model held (the usual case once it has run)."""
    return seconds(GPU_TIME.get(model, UNKNOWN), 1, True)
