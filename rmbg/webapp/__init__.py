"""The web app's decisions, kept out of the UI so they can be tested alone.

`app.py` only wires Gradio components to the functions here. Each feature has its folder, its
decisions beside its tab: remove/, compare/, replace/ (AI backgrounds), video/, benchmark/; ui/ is the
kit every tab shares; the doors put the features together: page.py (the whole page), narrow.py (its CSS
for a phone), rest/ and this module. A feature imports no other feature, and the shared modules here
import none (tests/test_webapp_layers.py). What every feature shares stays here:
- config: what the deployment allows (server keys, spending cap), from env;
- catalog: the provider list with each one's state, the default, and the
  rule that a visitor never spends the owner's keys unless allowed;
- session: per-browser values (money spent, the last result) and the cap;
- guard: runs a provider under the cap, one local model at a time (inside
  `spaces.GPU` on ZeroGPU hardware);
- look: background / mask / format choices -> preview image and download;
- costs: the cost line and monthly projections;
- rawcalls: raw gradio API calls of the wrong shape answered readably.

The features: remove.actions (remove, re-render, end to end), compare.comparing (the Compare tab's
captions, tables and pair slider), video (a clip through one provider or two side by side, what is kept,
Stop); the door rest (POST /api/remove and POST /api/video for programs: same keys, caps and rendering).

The shared modules, the features' decisions and rest/ import no gradio (the kit, the tabs and page.py
do); `rmbg/__init__.py` does not import this package.
"""

from ..threads import calm_openmp

calm_openmp()  # a server: PyTorch's threads must not spin against the other requests' (rmbg.threads)

from .catalog import Keys, choices, default_choice, provider_status  # noqa: E402
from .config import AppConfig  # noqa: E402
from .look import Look  # noqa: E402
from .remove.actions import remove, rerender  # noqa: E402
from .spending import Session  # noqa: E402

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
