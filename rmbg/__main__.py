"""`python -m rmbg ...`: the same command line as the `rmbg` script."""

from .cli.main import entry

entry()
