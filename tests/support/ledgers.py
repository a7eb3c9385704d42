"""The storage under test, on both databases (rmbg.money.ledger: the money ledger,
votes and batch manifests): an SQLite file, and a PostgreSQL server started
from the distribution's binaries (tests.ledger_servers), one per test module,
emptied before each test that uses it. The [postgresql] cases are in the `db` tier
(tests/support/tiers.py), the [sqlite] ones in whatever tier their test is.

    from tests.support.ledgers import postgres, spec  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import pytest

from rmbg.money.ledger.sql import SqlLedger
from tests.ledger_servers import PostgresServer, pg_bin


@pytest.fixture(scope="module")
def postgres():
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries on this machine (Debian: apt-get install postgresql)")
    server = PostgresServer(bin_dir).start()
    yield server
    server.stop()


# The backends `spec` is run on; the PostgreSQL case reaches the server only through getfixturevalue,
# which the tiers cannot read: its mark says so (tests/test_tiers.py holds it to the `db` tier).
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.uses("postgresql"))]


@pytest.fixture(params=BACKENDS)
def spec(request, tmp_path):
    """A fresh storage's RMBG_LEDGER value on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite3")
    server = request.getfixturevalue("postgres")
    ledger = SqlLedger.open(server.url)
    with ledger.backend.transaction() as run:  # a clean slate for each test on the shared server
        tables = run("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND left(tablename, 5) = 'rmbg_'")
        for (table,) in tables.fetchall():
            run(f"DROP TABLE {table}")
    ledger.close()
    return server.url


def hold_exactly(ledger, session_id: str, provider_id: str, usd, *, server_key: bool):
    """A hold of exactly `usd` on a web app session's accounts (rmbg.webapp.spending.Ledger's payer), now or
    BudgetError (no waiting, no first-call rule): a call in flight, for tests of the caps themselves."""
    from rmbg.money.paying import Payment

    accounts = ledger.payer(session_id, server_key=server_key).accounts()
    return ledger.policy.reserve(Payment(provider_id, usd, accounts, hold=usd), first_call_alone=False, exact=True)
