"""Every RMBG_* environment variable, read through one settings object.

`SETTINGS` (rmbg.settings_declared) is the declaration (name, type, default,
meaning, who reads it); the configuration page of the docs is generated from
it, so the table and the code cannot drift apart. `current()` returns a `Settings` snapshot of the
process environment: the variables are read together, once, and the same
object is returned until one of them changes (tests and long-running
processes that set a variable see the new value without a restart).

Values are checked when they are used (a typo in RMBG_CPU_ALLOCATOR must not
stop a user who only prices a call), with an error that names the variable.
Standard library only: `import rmbg` stays light.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

from .errors import ConfigurationError
from .settings_declared import SETTINGS, Setting, markdown_table

__all__ = [
    "FALSE",
    "NAMES",
    "SETTINGS",
    "TRUE",
    "Setting",
    "Settings",
    "current",
    "declared_number",
    "markdown_table",
    "of",
]

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


NAMES = frozenset(s.name for s in SETTINGS)


@dataclass(frozen=True)
class Settings:
    """The RMBG_* variables of one environment, read together.

    `raw(name)` is the stripped value ("" when unset); the typed accessors
    below parse it and raise ConfigurationError (a ValueError) naming the variable when it is wrong.
    """

    values: Mapping[str, str]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls({name: env.get(name, "").strip() for name in NAMES})

    def raw(self, name: str) -> str:
        if name not in NAMES:
            raise KeyError(f"{name} is not declared in rmbg.settings.SETTINGS")
        return self.values[name]

    def flag(self, name: str) -> bool | None:
        """True, False, or None when unset."""
        value = self.raw(name).lower()
        if not value:
            return None
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise ConfigurationError(f"{name} must be 1 or 0, got {value!r}")

    def path(self, name: str) -> Path | None:
        value = self.raw(name)
        return Path(value).expanduser() if value else None

    def decimal(self, name: str, default: Decimal | None = None, *, least: int = 0) -> Decimal:
        """The number set, of `least` or more; unset: `default`, else the one SETTINGS declares (`declared_number`)."""
        value = self.raw(name)
        if not value:
            return declared_number(name) if default is None else default
        _in_ascii_digits(name, value)
        try:
            return _of_zero_or_more(name, value, Decimal(value), least)
        except InvalidOperation:
            raise ConfigurationError(f"{name} must be a number, got {value!r}") from None

    def integer(self, name: str, default: int) -> int:
        value = self.raw(name)
        if not value:
            return default
        _in_ascii_digits(name, value)
        try:
            number = int(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be a whole number, got {value!r}") from None
        return _of_zero_or_more(name, value, number)

    def number(self, name: str, default: float) -> float:
        value = self.raw(name)
        if not value:
            return default
        _in_ascii_digits(name, value)
        try:
            number = float(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be a number, got {value!r}") from None
        return _of_zero_or_more(name, value, number)

    def listed(self, name: str) -> tuple[str, ...]:
        """A comma-separated setting as its non-empty, stripped entries."""
        return tuple(entry.strip() for entry in self.raw(name).split(",") if entry.strip())

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.raw(name).lower() or default
        if value not in allowed:
            raise ConfigurationError(f"{name}={value!r}: expected {', '.join(allowed[:-1])} or {allowed[-1]}")
        return value


def _in_ascii_digits(name: str, value: str) -> None:
    """Nothing when `value` is ASCII: int(), float() and Decimal() read "２" and "٢" as 2, where an operator who
    typed them may have meant something else; the setting is refused instead, as the visitors' doors refuse
    them (rmbg.wording.number_text)."""
    if not value.isascii():
        raise ConfigurationError(f"{name} must be written in ASCII digits 0-9, got {value!r}")


_Number = TypeVar("_Number", int, float, Decimal)


def _of_zero_or_more(name: str, value: str, number: _Number, least: int = 0) -> _Number:
    """`number`, a count, size, time or price: finite and of `least` (0) or more, else a ValueError naming the
    setting ("nan", "inf" and "-1" would otherwise reach the code as a bound that holds nothing back)."""
    if number != number or number in (float("inf"), float("-inf")) or number < least:
        raise ConfigurationError(f"{name} must be a number of {least} or more, got {value!r}")
    return number


def declared_number(name: str) -> Decimal:
    """The default SETTINGS declares for `name`, as a number: where a default is read from, so that it is
    written once (the caps, the bound: docs/money.md). ValueError when the declaration is words."""
    default = next(s.default for s in SETTINGS if s.name == name)
    try:
        return Decimal(default)
    except InvalidOperation:
        raise ConfigurationError(f"{name} declares no number as its default: {default!r}") from None


_lock = threading.Lock()
os.register_at_fork(after_in_child=_lock._at_fork_reinit)  # type: ignore[attr-defined]  # a forked child is never stuck behind it
_current: Settings | None = None


def current() -> Settings:
    """The settings of this process's environment; the same object until an
    RMBG_* variable changes."""
    global _current
    fresh = {name: os.environ.get(name, "").strip() for name in NAMES}
    with _lock:
        if _current is None or _current.values != fresh:
            _current = Settings(fresh)
        return _current


def of(environ: Mapping[str, str] | None) -> Settings:
    """The settings of `environ` (a mapping given by a caller or a test), or current() for
    None or the process environment itself."""
    if environ is None or environ is os.environ:
        return current()
    return Settings.from_env(environ)
