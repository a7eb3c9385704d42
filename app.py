"""rmbg web app: remove image backgrounds with local models or hosted APIs.

Run `python app.py`, then open the printed address; GRADIO_SERVER_NAME and
GRADIO_SERVER_PORT are honoured, as usual. The page is built by
rmbg.webapp.page (the tabs put together) on top of rmbg.webapp (every decision).
"""

from __future__ import annotations

import logging

from rmbg.money.ledger.spec import LedgerSettingError
from rmbg.webapp.config import AppConfig

# The deployment's settings are read before Gradio and the page are imported: one that names no ledger
# is refused at once, not after seconds of imports.
try:
    config = AppConfig.from_env()
except LedgerSettingError as exc:  # RMBG_LEDGER names no ledger: one sentence, nothing started, nothing created
    raise SystemExit(f"rmbg: error: {exc}") from None

from rmbg.providers.hosted.payload import SecretFilter  # noqa: E402
from rmbg.webapp import catalog  # noqa: E402
from rmbg.webapp.launch import StartError, serve  # noqa: E402
from rmbg.webapp.logs import configure_logging  # noqa: E402
from rmbg.webapp.memory import serving_allocator  # noqa: E402
from rmbg.webapp.page import api_slots, build_demo, launch_kwargs, warm_up  # noqa: E402

__all__ = ["api_slots", "build_demo", "demo", "launch_kwargs", "warm_up"]

demo = build_demo(config)

if __name__ == "__main__":
    configure_logging()  # one root handler; Hub lines once, not twice
    for handler in logging.getLogger().handlers:  # no log line carries a configured key, nor a piece of one
        handler.addFilter(SecretFilter())
    serving_allocator()  # a long-lived process: big blocks go back to the system when freed
    default_id, default_reason = catalog.default_choice()
    print(f"rmbg: default provider {default_id}: {default_reason}")
    warm_up(demo)  # the default model loads while the page starts, not on its first visitor's click
    try:
        serve(demo, **launch_kwargs(demo))  # ready when its page answers, however busy the machine (rmbg.webapp.launch)
    except StartError as exc:
        raise SystemExit(f"rmbg: {exc}") from None
