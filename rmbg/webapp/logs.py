"""The app's log: every line once.

huggingface_hub gives its loggers a stream handler of its own and still
lets their records reach the root logger, so once the app configures the
root logger each Hub line (a download retry, a warning) would be printed
twice, once by each handler. configure_logging sets up the root handler and
takes the library's own stream handler away: its lines then go out once,
through the root handler, in the app's format.
"""

from __future__ import annotations

import logging

# Libraries that add a stream handler to their root logger and also propagate to ours.
SELF_PRINTING = ("huggingface_hub",)


def configure_logging(level: int = logging.INFO, fmt: str = "%(message)s") -> None:
    """Root handler at `level`; the libraries' duplicate handlers removed."""
    import importlib

    logging.basicConfig(level=level, format=fmt)
    for name in SELF_PRINTING:
        try:  # their handler is added when their logging module is imported: import it first
            importlib.import_module(f"{name}.utils.logging")
        except ImportError:
            continue
        logger = logging.getLogger(name)
        if not logger.propagate:
            continue  # it prints only through its own handler: once already
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
