"""The out-of-the-box model: what runs for a user who names no provider
(`rmbg.default_provider()`, the app, the CLI), with the reason in words.

Above the registry (it builds providers to ask their status) and beside the
local backends (on a CPU it reads their measured speed,
rmbg.providers.local.calibration, imported only when needed so `import rmbg`
stays light).
"""

from __future__ import annotations

from .licences import SETTING, commercial_only
from .registry import get_provider, info, list_providers

# The out-of-the-box choice (docs/cpu.md, "The default model"). On a GPU the
# best open models answer in well under a second: RMBG-2.0 when its gated
# weights are at hand, else BiRefNet (MIT, ungated). On a CPU: the best model
# by published quality (CPU_ORDER, best first) whose weights are cached or can
# be fetched and that answers a 1 MP photo within calibration.BUDGET_S on this
# CPU, as measured here once and cached on disk (not guessed from flags); the
# ungated U2-Net-p (0.3 s) only when none of them can. Under RMBG_COMMERCIAL_ONLY=1 the models
# whose licence does not allow commercial use (RMBG-1.4, RMBG-2.0) are left out, and the reason says so.
CPU_ORDER = ("birefnet-lite", "rmbg-1.4", "isnet-general")
FALLBACK_DEFAULT = "u2netp"
GPU_DEFAULTS = ("rmbg-2.0", "birefnet")
# One network: RMBG-1.4 is timed by IS-Net general's measurement while both run on the same engine
# (ONNX Runtime fp32); where IS-Net general runs OpenVINO bf16, RMBG-1.4 is measured on its own.
SAME_TIMING = {"rmbg-1.4": "isnet-general"}


def on_gpu() -> bool:
    from .providers.local.device import no_accelerator_here

    if no_accelerator_here():  # no GPU to find: torch is not imported to be told so
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _cpu_seconds(provider_id: str) -> float:
    from .providers.local import calibration

    twin = SAME_TIMING.get(provider_id)
    if twin is not None and calibration.config_of(twin) == calibration.config_of(provider_id):
        return calibration.seconds_for(twin)
    return calibration.seconds_for(provider_id)


def default_provider() -> tuple[str, str]:
    """(provider id, one-line reason) for a user who chose nothing; no network.

    On a CPU the first call may measure the candidates that can run (seconds,
    once per machine and version; rmbg.providers.local.calibration)."""
    from .providers.local.calibration import BUDGET_S

    provider_id, summary, passed_over = explained_default()
    switch = commercial_only()
    if not passed_over:
        return provider_id, summary + (f" [{SETTING}=1]" if switch and licensing() else "")
    hint = (
        f" ({SETTING}=1 leaves out the models not licensed for commercial use)"
        if switch
        else ", or set HF_TOKEN (with the terms accepted at https://huggingface.co/briaai/RMBG-1.4) to use RMBG-1.4"
    )
    return provider_id, (
        f"Using U2-Net-p (ungated, runs offline) because no better model answers within {BUDGET_S:g} s here: "
        + "; ".join(passed_over)
        + f". Pick one with provider= / --provider{hint}."
    )


def left_out(provider_id: str) -> str:
    """Why the licence switch leaves this model out of the default ("" when it does not), in words
    that name no setting (the page shows them)."""
    declared = info(provider_id)
    if declared.licence.commercial or not commercial_only():
        return ""
    return f"{declared.label}: left out, its licence ({declared.licence.name}) does not allow commercial use"


def licensing() -> str:
    """Each better model the licence switch leaves out of the default, and why; "" for none."""
    candidates = dict.fromkeys(GPU_DEFAULTS + CPU_ORDER)
    return "; ".join(filter(None, (left_out(pid) for pid in candidates if pid in list_providers(refused=True))))


def explained_default() -> tuple[str, str, list[str]]:
    """(provider id, the reason in one sentence, each better model passed over and why): what
    default_provider says, in parts, for a page that shows the sentence and folds the rest."""
    from .providers.local.calibration import BUDGET_S

    also = f" ({licensing()})" if licensing() else ""
    if on_gpu():
        for provider_id in GPU_DEFAULTS:
            if provider_id not in list_providers():
                continue
            status = get_provider(provider_id).status()
            if status.ready:
                summary = f"{info(provider_id).label} on the GPU: the best open model here ({status.message}){also}"
                return provider_id, summary, []

    passed_over = []
    for provider_id in CPU_ORDER:
        if provider_id not in list_providers(refused=True):
            continue
        if left_out(provider_id):
            passed_over.append(left_out(provider_id))
            continue
        label = info(provider_id).label
        status = get_provider(provider_id).status()
        if not status.ready:
            passed_over.append(f"{label}: {status.message or status.state}")
            continue
        seconds = _cpu_seconds(provider_id)
        if seconds <= BUDGET_S:
            weights = status.message.split("; no GPU")[0]  # measured fast enough: the generic slow note does not apply
            summary = (
                f"{label}: the best model by published quality that answers a 1 MP photo within {BUDGET_S:g} s "
                f"on this CPU ({seconds:.1f} s measured here; {weights}){also}"
            )
            return provider_id, summary, []
        passed_over.append(f"{label}: {seconds:.1f} s for a 1 MP photo on this CPU, over {BUDGET_S:g} s")
    summary = f"U2-Net-p (ungated, runs offline): no better model answers within {BUDGET_S:g} s here."
    return FALLBACK_DEFAULT, summary, passed_over
