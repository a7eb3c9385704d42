"""Real ledgers for the money tests: an SQLite file, and a PostgreSQL server
started from the distribution's binaries (Debian's `postgresql` package) in a
temporary folder, on a free port of 127.0.0.1, stopped when the run ends.

The server runs as the `postgres` user when the tests run as root (PostgreSQL
refuses root). Where no server binaries are installed the PostgreSQL cases
skip with that reason; CI installs the package, so they run there.

A test reaching PostgresServer is in the `db` tier (tests/support/tiers.py), which
`python -m pytest -m fast` leaves out: the whole suite runs it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.support.tiers import started, uses

# pg_ctl's -w waits for the server to accept connections (its readiness, read from postmaster.pid): a
# deadline generous enough for a machine at load 15, where initdb alone takes a minute.
START_S = 300


def pg_bin() -> Path | None:
    """The folder of initdb/pg_ctl/postgres, on PATH or where Debian puts them."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@uses("postgresql")  # the tests and fixtures reaching this class: the `db` tier
class PostgresServer:
    """One throwaway PostgreSQL cluster; `url` names its database."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="rmbg-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o700)
        user = "postgres" if self.as_user else os.environ.get("USER", "postgres")
        self.url = f"postgresql://{user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.as_user, *args], capture_output=True, timeout=START_S + 60)
        if done.returncode:
            log = self.root / "log"
            said = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.decode()}{said}")

    def start(self) -> PostgresServer:
        started("postgresql")  # a fast-only run fails the test that gets here (tiers.after_call)
        user = "postgres" if self.as_user else os.environ.get("USER", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", user, "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} -c fsync=off"
        )
        log = str(self.root / "log")
        pg_ctl = str(self.bin / "pg_ctl")
        try:
            self._run(pg_ctl, "-D", str(self.data), "-o", options, "-w", "-t", str(START_S), "-l", log, "start")
        except BaseException:  # not ready in time: the server may still be coming up, so it is stopped
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
