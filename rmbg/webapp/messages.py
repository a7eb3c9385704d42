"""What a visitor reads of an error at every door of the web app (the page, the named API and MCP, REST):
its message in that door's words, with the visitor's and the server's keys blanked."""

from __future__ import annotations

import logging

from ..wording import SETTING_NAME, Door, words
from .catalog import Keys

log = logging.getLogger("rmbg.app")


def safe_message(exc: BaseException, keys: Keys, door: Door = "page") -> str:
    """An error's message in the words of `door` (rmbg.wording), with every part of this visitor's
    keys and the server's configured keys blanked (rmbg.providers.hosted.payload.scrub: each side
    of "id:secret", any run of 8 of its characters); the library never puts keys in messages."""
    from ..providers.hosted.payload import known_secrets, scrub

    secrets = (*keys.secrets(), *known_secrets())
    # our sentences name headers ("the X-Fal-Key header"): only the keys' own characters go
    text = scrub(words(exc, door), secrets, header_values=False).replace("***", "•••")
    if SETTING_NAME.search(operators := scrub(str(exc), secrets, header_values=False)):  # the setting, for them
        log.info("a visitor was told: %s | for the operator: %s", text, operators)
    return text
