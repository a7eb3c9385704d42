"""The web page (gradio): the page put together (page.py) and what every tab shares; each tab lives
beside its feature's decisions (rmbg.webapp.remove.tab, .compare.tab, ...). Imported by app.py, never
by `import rmbg` (it imports gradio).

Each form's values are one dataclass (forms.py, the Video tab's in rmbg.webapp.video.forms) whose
fields name the endpoint's parameters; the tabs build their inputs from those fields.
"""

from __future__ import annotations

from .page import api_slots, build_demo, launch_kwargs, warm_up

__all__ = ["api_slots", "build_demo", "launch_kwargs", "warm_up"]
