"""A paid call that fails after its request may have reached the vendor says what it was counted at,
at every door: the error's message ends with the amount counted against the spending caps (its
counted_usd beside it), so the page's message under Remove, Compare's row for that provider, the MCP
tool's answer and the CLI's line all tell it, as REST's X-Rmbg-Cost-USD header does.

Before, each said "It may have reached the provider and been billed, so it was not sent again." and no
amount: a visitor whose only ticked provider failed in Compare kept a page total of $0 while the ledger
had counted $0.018 against the session's cap. Measured against the Runware fake, a real HTTP server
counting the requests it is sent; a 429 on every attempt (refused, nothing counted) is the control."""

from __future__ import annotations

import os
from decimal import Decimal

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from rmbg.errors import RmbgError  # noqa: E402
from rmbg.money.paying import said_counted  # noqa: E402
from rmbg.registry import get_provider  # noqa: E402
from rmbg.webapp import Keys, Look, Session  # noqa: E402
from rmbg.webapp.compare import comparing  # noqa: E402
from rmbg.webapp.messages import safe_message  # noqa: E402
from rmbg.webapp.remove import actions  # noqa: E402
from tests.fakes.runware import TEST_KEY as RUNWARE_KEY  # noqa: E402
from tests.support.app import EXAMPLE  # noqa: E402
from tests.test_app_cascade import app_of, posts, runware  # noqa: E402, F401
from tests.u2netp_fixture import u2netp_path  # noqa: E402, F401

COUNTED = "$0.0180 was counted against the spending caps for it."
# (fault, requests at the fake, counted): a 5xx Runware does not document as unbilled and a dropped
# connection may have been billed (each sent once); a 429 on every attempt was refused
CASES = [("server-error", 1, Decimal("0.018")), ("drop", 1, Decimal("0.018")), ("rate-limit", 4, Decimal(0))]


@pytest.mark.parametrize("fault, sent, counted", CASES)
def test_the_library_error_ends_with_what_was_counted(runware, fault, sent, counted):  # noqa: F811
    import rmbg

    runware.inject(fault, times=9)
    provider = get_provider("runware-bria", api_key=RUNWARE_KEY, base_url=runware.url)
    with pytest.raises(RmbgError) as info:
        rmbg.remove_background(EXAMPLE, provider=provider, cache=None)
    assert posts(runware) == sent
    assert info.value.counted_usd == (counted or None)
    assert str(info.value).endswith(COUNTED) == bool(counted), str(info.value)
    assert "was counted" not in str(info.value) or str(info.value).count("was counted") == 1


@pytest.mark.parametrize("fault, sent, counted", CASES)
def test_the_page_says_it_under_remove(runware, tmp_path, fault, sent, counted):  # noqa: F811
    app = app_of(runware, tmp_path)
    runware.inject(fault, times=9)
    with pytest.raises(RmbgError) as info:
        actions.remove(
            Session(), str(EXAMPLE), "runware-bria", Look(), Keys(runware=RUNWARE_KEY), app, 100, session_id="s"
        )
    said = safe_message(info.value, Keys(runware=RUNWARE_KEY), "page")
    assert posts(runware) == sent and app.ledger.session_spent("s") == counted
    assert said.endswith(COUNTED) == bool(counted), said
    assert said.startswith("runware-bria: ")


def test_compare_says_it_in_the_failed_row_and_keeps_the_sessions_total(runware, tmp_path, u2netp_path):  # noqa: F811
    app = app_of(runware, tmp_path)
    runware.inject("drop", times=9)
    keys = Keys(runware=RUNWARE_KEY)
    session, view = comparing.run(Session(), str(EXAMPLE), ["runware-bria"], keys, app, session_id="alone")
    assert [row[0] for row in view.table] == ["runware-bria"] and view.table[0][3].endswith(COUNTED)
    assert view.table[0][2] == "$0.0180 counted (failed call)"  # in the cost column too
    assert session.hosted_usd == app.ledger.session_spent("alone") == Decimal("0.018")  # was $0: no result
    session, view = comparing.run(session, str(EXAMPLE), ["u2netp", "runware-bria"], keys, app, session_id="alone")
    rows = {row[0]: row for row in view.table}
    assert rows["u2netp"][3] == "ok" and rows["runware-bria"][3].endswith(COUNTED)
    assert rows["runware-bria"][2] == "$0.0180 counted (failed call)"
    assert posts(runware) == 2 and session.hosted_usd == app.ledger.session_spent("alone") == Decimal("0.036")


def test_one_sentence_holds_the_total_of_every_call_counted():
    exc = RmbgError("fal-bria: the job failed (status 500)")
    said_counted(exc, Decimal("0.018"))
    said_counted(exc, Decimal("0.036"))  # a second call added to the same error: the total, said once
    assert str(exc) == "fal-bria: the job failed (status 500). $0.0360 was counted against the spending caps for it."
    assert exc.counted_usd == Decimal("0.036")
