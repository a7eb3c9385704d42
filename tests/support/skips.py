"""A test that needs an optional package this machine lacks is skipped, saying which and
how to install it (tiers.INSTALL), wherever the need shows:

- in its code, fixtures or helpers, read before it runs: tiers.classify() marks it;
- in its file's own imports: the file is skipped (OptionalModule), not a collection error;
- only when it runs (a file loaded by path, a provider id in a string): a test that fails
  on that very import is reported as skipped (missing_as_skip).

A package that is installed, or not one of tiers.INSTALL, never turns a failure into a skip.
"""

from __future__ import annotations

import pytest

from tests.support.tiers import INSTALL, installed


def _missing(exc: BaseException | None) -> str:
    """The optional package this machine lacks that `exc` is the import error of, else ""."""
    if not isinstance(exc, ModuleNotFoundError):
        return ""
    package = (exc.name or "").split(".")[0]
    return package if package in INSTALL and not installed(package) else ""


def _why(package: str) -> str:
    return f"needs {package} ({INSTALL[package]}): not installed here"


class OptionalModule(pytest.Module):
    """A test file whose own import fails for want of an optional package is skipped."""

    def _getobj(self):
        try:
            return super()._getobj()
        except self.CollectError as exc:
            if not (missing := _missing(exc.__cause__)):
                raise
            raise pytest.skip.Exception(f"{self.path.name} {_why(missing)}") from None


def missing_as_skip(report: pytest.TestReport, call: pytest.CallInfo) -> None:
    """A test that failed on importing an optional package this machine lacks: reported as skipped."""
    if report.failed and call.excinfo is not None and (missing := _missing(call.excinfo.value)):
        report.outcome = "skipped"
        report.longrepr = (str(report.location[0]), (report.location[1] or 0) + 1, f"Skipped: {_why(missing)}")
