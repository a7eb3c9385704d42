"""What the setting RMBG_LEDGER means, decided once, before anything is opened.

It means one of two things, or it is refused with a sentence:

- unset: the default SQLite file (rmbg.money.ledger.default_path());
- an absolute file path (`~` is expanded): an SQLite ledger there. A
  relative path is refused: it would name another file in each folder a
  process starts from (two batches started from two folders would each
  count their own day);
- a `postgresql://` (or `postgres://`) URL: a PostgreSQL database.

Anything else is refused, never read as a file name: another scheme
(`sqlite:///x`, `mysql://user:pw@host/db`, `file:x?mode=ro`), a value that is
not a path (`::garbage::`). A refusal names the setting and what was wrong,
never the rest of an address (a password stays out of messages and logs).

`check(spec)` then looks at a path without creating anything: a folder, a
device, a file that is not SQLite, an SQLite database without the ledger's
tables, a folder that does not exist are refused (LedgerSettingError: a
program refuses to start); a missing file is "new" (the first write makes
it: rmbg.money.ledger.sqlite). A ledger that is there but damaged (emptied,
truncated, corrupt) is a LedgerError of another kind: a program starts,
says it, and refuses paid calls, while free local work goes on.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from . import LedgerError

SQLITE_MAGIC = b"SQLite format 3\x00"
LEDGER_TABLES = ("rmbg_accounts", "rmbg_holds")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
SETTING = "RMBG_LEDGER"


class LedgerSettingError(LedgerError):
    """RMBG_LEDGER names nothing rmbg can use as a ledger (see the module docstring)."""


class LedgerMissing(LedgerError):
    """A command that only reads found no ledger where RMBG_LEDGER points (nothing was created)."""


@dataclass(frozen=True)
class Spec:
    """A ledger setting that means one thing: `kind` "sqlite" (`value` an
    absolute path) or "postgresql" (`value` the URL); `where` names it in
    messages (a URL without its password); `default`: the default file (RMBG_LEDGER unset, or naming it)."""

    kind: str
    value: str
    where: str
    default: bool = False

    @property
    def path(self) -> Path:
        return Path(self.value)


def redacted(url: str) -> str:
    """A URL without its password (for messages and logs)."""
    scheme, _, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    user = creds.partition(":")[0]
    return f"{scheme}://{user + '@' if at else ''}{host}"


def _shown(raw: str) -> str:
    """A refused value as a message may quote it: what comes before its last "@" left out, where an address
    keeps a user's password (a value that is no URL may still hold one: "://u:pw@host", "my db:pw@host")."""
    return raw if "@" not in raw else "...@" + raw.rpartition("@")[2]


def _refuse(why: str) -> LedgerSettingError:
    return LedgerSettingError(
        f"{SETTING} {why} It must be an absolute file path (an SQLite ledger, such as /srv/rmbg/ledger.sqlite3) "
        "or a postgresql:// URL; nothing was created."
    )


def parse(value: str | os.PathLike[str] | None, default: Path | None = None) -> Spec:
    """The Spec of a RMBG_LEDGER value (None or "": `default`, else the default path);
    LedgerSettingError when it is neither a path nor a PostgreSQL URL."""
    from . import default_path

    raw = "" if value is None else os.fspath(value).strip()
    if not raw:
        path = default or default_path()
        return Spec("sqlite", str(path), str(path), default=True)
    if "\x00" in raw:
        return _raise(_refuse("holds a NUL character."))
    if raw.lower().startswith(("postgresql://", "postgres://")):
        return _postgres(raw)
    scheme = _SCHEME.match(raw)
    if scheme and not re.match(r"^[A-Za-z]:[\\/]", raw):  # "C:\..." is a Windows path, not a scheme
        return _raise(_refuse(f"starts with {scheme.group(1)!r}:, an address rmbg does not read."))
    if "://" in raw:  # "/postgresql://u:pw@db": a mistyped address, which a file name would keep, password and all
        return _raise(_refuse(f"holds '://' ({_shown(raw)!r}): an address rmbg does not read, not a file path."))
    expanded = os.path.expanduser(raw)
    if not os.path.isabs(expanded):
        return _raise(
            _refuse(
                f"is the relative path {_shown(raw)!r}: each process would read it from the folder it started in, "
                "so two processes could keep two ledgers."
            )
        )
    normal = os.path.normpath(expanded)
    # the default file named in full (as rmbg.money.ledger.configured() names it to every opener) is the
    # default still: its folder is made on first write, as on a machine where ~/.local/state is not there yet
    return Spec("sqlite", normal, normal, default=normal == os.path.normpath(default_path()))


def _raise(exc: LedgerSettingError) -> Spec:
    raise exc


def _postgres(url: str) -> Spec:
    shown = redacted(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number in range)
    except ValueError:
        return _raise(_refuse(f"is {shown}, which is not a well-formed URL."))
    if parts.fragment:
        return _raise(_refuse(f"is {shown}, whose '#' part PostgreSQL does not read."))
    return Spec("postgresql", url, shown)


def check(spec: Spec) -> bool:
    """Whether the SQLite ledger `spec` names exists (False: it is new; its folder
    exists, or is the default's, made on first write); LedgerSettingError when the
    path is there but is no ledger. Creates nothing. PostgreSQL: True."""
    if spec.kind != "sqlite":
        return True
    path = spec.path
    try:
        found = os.stat(path)
    except FileNotFoundError:
        folder = path.parent
        if not spec.default and not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise _refuse(f"names {path}, but {folder} {what}: make it, or correct the setting.") from None
        return False
    except OSError as exc:
        raise _refuse(f"names {path}, which cannot be read: {exc.strerror}.") from None
    if stat.S_ISDIR(found.st_mode):
        raise _refuse(f"names {path}, which is a folder: name the ledger file inside it.")
    if not stat.S_ISREG(found.st_mode):
        raise _refuse(f"names {path}, which is not a regular file (a device, a pipe or a socket).")
    _check_file(path, found.st_size)
    return True


def _check_file(path: Path, size: int) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise _refuse(f"names {path}, which cannot be read: {exc.strerror}.") from None
    if size == 0:  # never a ledger rmbg made (they appear whole): a ledger truncated, or a file made by hand
        raise LedgerError(words_of_file(path))
    if head != SQLITE_MAGIC:
        raise _refuse(f"names {path}, which is not an SQLite file: not a ledger.")
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=1.0)
        try:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise LedgerError(words_of_file(path, exc)) from None
    missing = [t for t in LEDGER_TABLES if t not in names]
    if missing:
        raise _refuse(f"names {path}, an SQLite database without the ledger's tables ({', '.join(missing)}).")


def words_of_file(path: Path, exc: sqlite3.Error | None = None) -> str:
    """What is wrong with the ledger file at `path`, read from the file itself:
    gone, empty, shorter than its header says (truncated), else `exc` in words."""
    where = f"The spending ledger {path} (setting {SETTING})"
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as f:
            head = f.read(100)
    except FileNotFoundError:
        return f"{where} was deleted. Paid calls are refused: restore it, or restart to begin a new ledger."
    except OSError as exc2:
        return f"{where} cannot be read: {exc2.strerror}. Paid calls are refused until it can."
    if size == 0 or head[:16] != SQLITE_MAGIC:
        kind = "is empty (0 bytes)" if size == 0 else "is no longer an SQLite file"
        return f"{where} {kind}: it was truncated or overwritten. Paid calls are refused; restore it from a copy."
    if len(head) == 100 and head[24:28] == head[92:96]:  # the header's page count is valid (SQLite's file format)
        page = int.from_bytes(head[16:18], "big")
        page = 65536 if page == 1 else page
        pages = int.from_bytes(head[28:32], "big")
        if pages and size < pages * page:
            return (
                f"{where} is truncated: {size} bytes where its header says {pages * page}. Paid calls are "
                "refused; restore it from a copy."
            )
    return "" if exc is None else f"{where} cannot be read: {exc}."
