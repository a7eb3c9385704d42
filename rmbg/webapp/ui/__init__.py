"""The web page (gradio): layout and wiring only; every decision lives in
rmbg.webapp. Imported by app.py, never by `import rmbg` (it imports gradio).

Each form's values are one dataclass (forms.py) whose fields name the
endpoint's parameters; the tabs build their inputs from those fields.
"""

from __future__ import annotations

from .page import api_slots, build_demo, launch_kwargs, warm_up

__all__ = ["api_slots", "build_demo", "launch_kwargs", "warm_up"]
