"""The web app's decisions, kept out of the UI so they can be tested alone.

`app.py` only wires Gradio components to the functions here:
- config: what the deployment allows (server keys, spending cap), from env;
- catalog: the provider list with each one's state, the default, and the
  rule that a visitor never spends the owner's keys unless allowed;
- session: per-browser values (money spent, the last result) and the cap;
- guard: runs a provider under the cap, one local model at a time (inside
  `spaces.GPU` on ZeroGPU hardware);
- look: background / mask / format choices -> preview image and download;
- costs: the cost line and monthly projections;
- actions: remove, re-render and compare, end to end;
- comparing: the compare tab's captions, tables and pair slider;
- videos, video_compare, video_clips, video_shelf: the Video tab (a clip
  through one provider or two side by side, what is kept, Stop);
- rest: POST /api/remove and POST /api/video for programs (same keys, caps and rendering);
- rawcalls: raw gradio API calls of the wrong shape answered readably.

Nothing here imports gradio; `rmbg/__init__.py` does not import this package.
"""

from ..threads import calm_openmp

calm_openmp()  # a server: PyTorch's threads must not spin against the other requests' (rmbg.threads)

from .catalog import Keys, choices, default_choice, provider_status  # noqa: E402
from .config import AppConfig  # noqa: E402
from .look import Look  # noqa: E402
from .remove.actions import remove, rerender  # noqa: E402
from .session import Session  # noqa: E402

__all__ = [
    "AppConfig",
    "Keys",
    "Look",
    "Session",
    "choices",
    "default_choice",
    "provider_status",
    "remove",
    "rerender",
]
