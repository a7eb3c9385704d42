"""The web app's "free model, a better one only when unsure" (issue #61, rmbg.webapp.remove.escalate): the
Remove tab's named API, POST /api/remove and the MCP tool, with U2-Net-p first (the real weights) and the
better provider on the fake Runware server (a real HTTP server counting the requests it is sent).

The threshold decides deterministically: no confidence is under 0, and U2-Net-p's matte of the cat is
under 1 (each test that escalates says its confidence first). An escalation is a visitor's paid call like
any other: reserved in the app's ledger before it is sent, inside the session's cap, settled by where the
request got to (Runware does not document its 5xx as unbilled: one is counted).
"""

from __future__ import annotations

import base64
import os
import re
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from rmbg.cascade import ESCALATION  # noqa: E402
from rmbg.errors import InvalidRequestError, MissingCredentialsError  # noqa: E402
from rmbg.webapp import AppConfig, Keys, Look, Session  # noqa: E402
from rmbg.webapp.catalog import SessionKeyMissing  # noqa: E402
from rmbg.webapp.context import App  # noqa: E402
from rmbg.webapp.look import OutputStore  # noqa: E402
from rmbg.webapp.remove import actions  # noqa: E402
from rmbg.webapp.remove.escalate import NONE, Escalation, choices, expected_text  # noqa: E402
from tests.fakes.runware import TEST_KEY as RUNWARE_KEY  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.support.app import EXAMPLE, TINY_RMBG14, add_tiny_rmbg14  # noqa: E402
from tests.u2netp_fixture import u2netp_path  # noqa: E402,F401

PRICE = Decimal("0.018")  # runware-bria's price; the fake reports the same cost
UNSURE = re.compile(r"escalated from u2netp \(confidence 0\.\d{3}, under 1\) to runware-bria")


@pytest.fixture
def runware():
    with RunwareFake() as fake:
        yield fake


def app_of(runware: RunwareFake, tmp_path, **overrides) -> App:
    providers = {"runware-bria": {"base_url": runware.url}, "rmbg-1.4": TINY_RMBG14}
    config = AppConfig(provider_config=providers, **overrides)
    return App.create(config, store=OutputStore(tmp_path / "out"), cache=None)


def posts(fake: RunwareFake) -> int:
    return sum(1 for call in fake.calls if call.method == "POST")


def remove(app: App, below: float, session_id: str = "s", keys: Keys | None = None):
    """The Remove tab's action with U2-Net-p first and runware-bria for an unsure matte."""
    return actions.remove(
        Session(),
        str(EXAMPLE),
        "u2netp",
        Look(),
        Keys(runware=RUNWARE_KEY) if keys is None else keys,
        app,
        100,
        session_id=session_id,
        escalate=Escalation("runware-bria", below),
    )


# --- the decisions, without any UI -----------------------------------------------------------


def test_a_sure_image_is_not_escalated_and_sends_nothing(runware, tmp_path, u2netp_path):  # noqa: F811
    app = app_of(runware, tmp_path)
    session, shown = remove(app, below=0.0)
    kept = actions.last_result(session, app)
    assert kept.provider == "u2netp" and posts(runware) == 0
    assert re.fullmatch(
        r"not escalated: u2netp's confidence 0\.\d{3} is not under 0; nothing was sent", kept.meta[ESCALATION]
    )
    assert app.ledger.session_spent("s") == 0 and session.hosted_usd == 0
    assert "Not escalated: u2netp's confidence" in shown.cost_line and "$0 hosted" in shown.cost_line


def test_an_unsure_image_is_escalated_once_and_charged(runware, tmp_path, u2netp_path):  # noqa: F811
    app = app_of(runware, tmp_path)
    session, shown = remove(app, below=1.0)
    kept = actions.last_result(session, app)
    assert UNSURE.fullmatch(kept.meta[ESCALATION])
    assert kept.provider == "runware-bria" and session.last_label.startswith("Runware")
    assert posts(runware) == 1
    assert app.ledger.session_spent("s") == session.hosted_usd == PRICE
    assert f"this image: ${PRICE}0 (reported)" in shown.cost_line  # the escalation's own cost, as reported
    assert "Escalated from u2netp (confidence 0." in shown.cost_line
    # a new look re-renders the kept matte: no new call, the same line about the escalation
    again = actions.rerender(session, Look(background="colour", colour="#ffffff"), app, 100)
    assert again is not None and "Escalated from u2netp" in again.cost_line and posts(runware) == 1


def test_a_cap_reached_keeps_the_free_result_and_sends_nothing(runware, tmp_path, u2netp_path):  # noqa: F811
    app = app_of(runware, tmp_path, cap_usd=Decimal("0.01"))  # under one escalation's $0.018
    session, shown = remove(app, below=1.0)
    kept = actions.last_result(session, app)
    assert kept.provider == "u2netp" and posts(runware) == 0
    note = kept.meta[ESCALATION]
    assert note.startswith("not escalated: the budget was reached (") and note.endswith("; u2netp's result kept")
    assert "cap" in note and app.ledger.session_spent("s") == 0
    assert "Not escalated: the budget was reached" in shown.cost_line


def test_a_vendor_5xx_keeps_the_free_result_and_is_counted_by_its_fate(runware, tmp_path, u2netp_path):  # noqa: F811
    runware.inject("server-error", times=9)
    app = app_of(runware, tmp_path)
    session, shown = remove(app, below=1.0)
    kept = actions.last_result(session, app)
    assert kept.provider == "u2netp" and posts(runware) == 1  # not sent again: it may have been billed
    assert kept.meta[ESCALATION].startswith("not escalated: runware-bria failed (")
    assert "may have reached the provider and been billed" in kept.meta[ESCALATION]
    assert app.ledger.session_spent("s") == session.hosted_usd == PRICE  # Runware's 5xx is not documented unbilled


@pytest.mark.slow  # over 10 s on 2 cores
def test_a_local_better_provider_costs_nothing(runware, tmp_path, hf_cache, u2netp_path):  # noqa: F811
    add_tiny_rmbg14(hf_cache)
    app = app_of(runware, tmp_path)
    session, shown = actions.remove(
        Session(), str(EXAMPLE), "u2netp", Look(), Keys(), app, 100, escalate=Escalation("rmbg-1.4", 1.0)
    )
    kept = actions.last_result(session, app)
    assert kept.provider == "rmbg-1.4" and kept.cost.source == "compute"
    assert kept.meta[ESCALATION].startswith("escalated from u2netp (confidence 0.")
    assert app.ledger.session_spent("local") == 0 and posts(runware) == 0


def test_a_choice_that_cannot_run_is_refused_before_anything_runs(runware, tmp_path, u2netp_path):  # noqa: F811
    app = app_of(runware, tmp_path)
    with pytest.raises(SessionKeyMissing, match="runware-bria needs an API key"):  # no key, no server key
        remove(app, below=1.0, keys=Keys())
    with pytest.raises(InvalidRequestError, match=r"another provider than the one that runs first \(u2netp\)"):
        actions.remove(Session(), str(EXAMPLE), "u2netp", Look(), Keys(), app, 100, escalate=Escalation("u2netp"))
    with pytest.raises(InvalidRequestError, match="escalate_below must be a number from 0 to 1, got '1.5'"):
        Escalation.of("runware-bria", "1.5")
    assert posts(runware) == 0 and app.ledger.session_spent("local") == 0


def test_a_better_provider_with_no_key_anywhere_is_refused_before_anything_runs(runware, tmp_path, u2netp_path):  # noqa: F811
    """A server that would share its own key but has none (`python app.py` on a laptop): the escalation
    could never be sent, so it is refused at once, in the door's words as a direct call is, before the
    free model runs; never a failure noted after it, naming a server setting."""
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from rmbg.webapp.rest import routes as rest

    app = app_of(runware, tmp_path, allow_server_keys=True)
    with pytest.raises(MissingCredentialsError, match="runware-bria needs an API key"):
        remove(app, below=1.0, keys=Keys())
    image = {"image": ("cat.jpg", EXAMPLE.read_bytes(), "image/jpeg")}
    with TestClient(FastAPI(routes=rest.routes(app, lambda: "u2netp", fetch=None))) as client:
        answer = client.post("/api/remove", files=image, data={"escalate": "runware-bria", "escalate_below": "1"})
    assert (answer.status_code, answer.json()) == (
        401,
        {
            "error": "runware-bria needs an API key. Send your key in the X-Runware-Key header, or choose a local "
            "provider."
        },
    )
    assert app.book.timings() == {} and posts(runware) == 0  # the free model never ran, nothing was sent


def test_a_failure_noted_after_the_run_is_said_in_a_visitors_words():
    """What an escalation that failed says reaches a visitor (the cost line, X-Rmbg-Escalation, the MCP
    file): never a path on the server nor a setting's name, whatever words the failure came in."""
    from PIL import Image

    from rmbg.result import Result
    from rmbg.types import Cost, Seconds

    grey = Image.new("L", (4, 4), 128)

    def said(failure: str) -> str:
        meta = {ESCALATION: f"not escalated: rmbg-2.0 failed ({failure})"}
        result = Result(grey, grey, grey.convert("RGB"), "u2netp", Seconds(0.1, 0.1), Cost.free(), meta=meta)
        return Escalation("rmbg-2.0", 0.5).said(result, "u2netp", Keys()).meta[ESCALATION]

    damaged = said("/srv/cache/models/rmbg-2.0/model.safetensors is damaged")
    assert damaged == "not escalated: rmbg-2.0 failed (model.safetensors is damaged); u2netp's result kept"
    refused = said("non-commercial weights: set RMBG_ALLOW_NONCOMMERCIAL=1 to run them")
    assert refused == "not escalated: rmbg-2.0 failed; u2netp's result kept"  # an aside naming a setting goes


def test_the_choice_as_doors_send_it():
    assert Escalation.of(None) is None and Escalation.of("") is None and Escalation.of(NONE, "") is None
    assert Escalation.of("fal-bria", None) == Escalation("fal-bria", 0.5)  # rmbg.confidence.DEFAULT_BELOW
    assert Escalation.of(" fal-bria ", "0.5") == Escalation("fal-bria", 0.5)
    for bad in ("nan", "-0.1", [0.5], "half"):
        with pytest.raises(InvalidRequestError, match="escalate_below must be a number from 0 to 1"):
            Escalation.of("fal-bria", bad)


def test_the_page_says_what_an_escalation_may_cost_before_the_run(runware, tmp_path):
    app = app_of(runware, tmp_path)
    menu = dict((pid, label) for label, pid in choices(app))
    assert next(iter(menu)) == NONE and menu["runware-bria"].endswith("(paid per image)")
    assert menu["u2netp"].endswith("(free, on this server)")
    assert expected_text(app, NONE, 0.8) == ""
    head = "Where the first model's confidence is under {}, runware-bria runs too and its result is shown."
    paid = "paid with your key, or this server's where it allows, inside the spending caps"
    davis = "on DAVIS 2016 video frames with u2netp first, docs/cascade.md"
    # U2-Net-p first, a measured threshold: 74 % of its DAVIS report frames under 0.6 (MEASURED_UNDER) x $0.018
    assert expected_text(app, "runware-bria", 0.6, "u2netp") == (
        f"{head.format(0.6)} Expected cost: about 74 % of photos escalate at 0.6 (measured {davis}): "
        f"**expected $0.0133 per photo**, up to $0.0180 ({paid})."
    )
    # between measured thresholds: the nearest above (90 % at 0.7), an upper bound, said so
    assert expected_text(app, "runware-bria", 0.65, "u2netp") == (
        f"{head.format(0.65)} Expected cost: at most about 90 % of photos escalate at 0.65 (measured at 0.7, the "
        f"nearest measured threshold above, {davis}): **expected $0.0162 per photo**, up to $0.0180 ({paid})."
    )
    # another first model: its share is not measured, "up to" only
    assert expected_text(app, "runware-bria", 0.6, "rmbg-1.4") == (
        f"{head.format(0.6)} Expected cost: $0 for a photo it is sure of; **up to $0.0180 per photo if escalated** "
        f"({paid}; how many of rmbg-1.4's photos fall under 0.6 is not measured, docs/cascade.md)."
    )
    # above every measured threshold: "up to" only
    assert expected_text(app, "runware-bria", 0.95, "u2netp") == (
        f"{head.format(0.95)} Expected cost: $0 for a photo it is sure of; **up to $0.0180 per photo if escalated** "
        f"({paid}; the share under a threshold is measured up to 0.9, docs/cascade.md)."
    )
    # the first model not said: the measured figure for u2netp, "up to" for another
    assert expected_text(app, "runware-bria", 0.5) == (
        f"{head.format(0.5)} Expected cost with u2netp first: about 59 % of photos escalate at 0.5 (measured "
        f"{davis}): **expected $0.0106 per photo**, up to $0.0180; with another first model, **up to $0.0180 per "
        f"photo** (not measured; {paid})."
    )
    assert expected_text(app, "rmbg-1.4", None).endswith(": free (a model on this server; it costs only machine time).")
    assert expected_text(app, "runware-bria", 2) == "escalate_below must be a number from 0 to 1, got '2'."


# --- the doors ---------------------------------------------------------------------------------


def endpoint_fn(blocks, api_name: str):
    """The function gradio calls for a named endpoint (its checks and words included)."""
    return next(fn.fn for fn in blocks.fns.values() if fn.api_name == api_name)


@pytest.mark.slow  # over 10 s on 2 cores
def test_the_page_named_api_escalates_with_its_two_new_parameters(runware, tmp_path, u2netp_path):  # noqa: F811
    import gradio as gr

    from rmbg.webapp.ui.forms import KEY_FIELDS

    app = app_of(runware, tmp_path)
    from rmbg.webapp.remove.tab import remove_tab  # after rmbg.webapp.ui, whose page imports the tab

    with gr.Blocks() as page:
        keys = tuple(gr.Textbox(label=name) for name in KEY_FIELDS)
        remove_tab(app, gr.State(Session()), keys, "u2netp", "")
    remove = endpoint_fn(page, "remove")
    state, _, _, line = remove(Session(), str(EXAMPLE), "u2netp", runware_key=RUNWARE_KEY)  # as before: none
    assert posts(runware) == 0 and "scalated" not in line
    state, _, _, line = remove(
        Session(), str(EXAMPLE), "u2netp", runware_key=RUNWARE_KEY, escalate="runware-bria", escalate_below=1
    )
    assert posts(runware) == 1 and "Escalated from u2netp (confidence 0." in line and "to runware-bria." in line
    assert state.last_label.startswith("Runware") and state.hosted_usd == PRICE
    with pytest.raises(gr.Error, match="escalate_below must be a number from 0 to 1"):
        remove(Session(), str(EXAMPLE), "u2netp", escalate="runware-bria", escalate_below=7)
    assert posts(runware) == 1


def test_the_mcp_tool_takes_the_same_arguments(runware, tmp_path, u2netp_path):  # noqa: F811
    import gradio as gr

    from rmbg.webapp.remove.mcp_tool import mcp_tool

    app = app_of(runware, tmp_path)
    with gr.Blocks() as tools:
        mcp_tool(app, "u2netp")
    tool = endpoint_fn(tools, "remove_background")
    image = "data:image/jpeg;base64," + base64.b64encode(EXAMPLE.read_bytes()).decode()
    sure = tool(image, escalate="runware-bria", escalate_below=0, runware_key=RUNWARE_KEY)
    assert Path(sure).name == "image-u2netp-nobg.png" and posts(runware) == 0
    unsure = tool(image, escalate="runware-bria", escalate_below=1, runware_key=RUNWARE_KEY)
    assert Path(unsure).name == "image-runware-bria-nobg.png" and posts(runware) == 1  # who made it
    assert app.ledger.session_spent("anonymous") == PRICE  # a call without a session (rmbg.webapp.identity)
    assert "escalate_below: the confidence (0 to 1) under which it escalates; default 0.5." in tool.__doc__


def test_rest_escalates_and_says_so_in_its_headers(runware, tmp_path, u2netp_path):  # noqa: F811
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from rmbg.webapp.rest import routes as rest

    web = FastAPI(routes=rest.routes(app_of(runware, tmp_path), lambda: "u2netp", fetch=None))
    capped = FastAPI(routes=rest.routes(app_of(runware, tmp_path, cap_usd=Decimal("0.01")), lambda: "u2netp"))
    image = {"image": ("cat.jpg", EXAMPLE.read_bytes(), "image/jpeg")}
    key = {"X-Runware-Key": RUNWARE_KEY}
    with TestClient(web) as client, TestClient(capped) as capped_client:
        plain = client.post("/api/remove", files=image, headers=key)
        sure = client.post(
            "/api/remove", files=image, data={"escalate": "runware-bria", "escalate_below": "0"}, headers=key
        )
        keyless = client.post("/api/remove", files=image, data={"escalate": "runware-bria"})
        assert posts(runware) == 0
        unsure = client.post(
            "/api/remove", files=image, data={"escalate": "runware-bria", "escalate_below": "1"}, headers=key
        )
        assert posts(runware) == 1
        bad = client.post("/api/remove", files=image, data={"escalate": "runware-bria", "escalate_below": "2"})
        refused = capped_client.post(
            "/api/remove", files=image, data={"escalate": "runware-bria", "escalate_below": "1"}, headers=key
        )
    assert plain.status_code == 200 and "X-Rmbg-Escalation" not in plain.headers
    assert re.fullmatch(r"0\.\d{3}", plain.headers["X-Rmbg-Confidence"])
    assert sure.status_code == 200 and sure.headers["X-Rmbg-Provider"] == "u2netp"
    assert sure.headers["X-Rmbg-Escalation"].startswith("not escalated: u2netp's confidence 0.")
    assert keyless.status_code == 401 and "X-Runware-Key" in keyless.json()["error"]  # said before anything runs
    assert unsure.status_code == 200 and unsure.headers["X-Rmbg-Provider"] == "runware-bria"
    assert UNSURE.fullmatch(unsure.headers["X-Rmbg-Escalation"]) and unsure.headers["X-Rmbg-Cost-USD"] == "0.018"
    assert bad.status_code == 400 and "escalate_below must be a number from 0 to 1" in bad.json()["error"]
    assert refused.status_code == 200 and refused.headers["X-Rmbg-Provider"] == "u2netp"
    assert refused.headers["X-Rmbg-Escalation"].startswith("not escalated: the budget was reached (")
    assert posts(runware) == 1
