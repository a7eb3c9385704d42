"""The commercial references in the web app's decisions (rmbg.webapp), without
the UI: their key fields, Compare running them against the fakes with each
cost as it was reported or estimated, and no key in any message."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from rmbg.errors import ProviderCreditError
from rmbg.providers.base import ProviderStatus
from rmbg.vendors import KEY_VARS
from rmbg.webapp import AppConfig, Keys, Look, Session, catalog
from rmbg.webapp.compare import comparing
from rmbg.webapp.context import App
from rmbg.webapp.look import OutputStore
from rmbg.webapp.messages import safe_message
from rmbg.webapp.remove import actions
from tests.fakes.photoroom import TEST_KEY as PHOTOROOM_KEY
from tests.fakes.photoroom import PhotoroomFake
from tests.fakes.removebg import TEST_KEY as REMOVEBG_KEY
from tests.fakes.removebg import RemoveBgFake
from tests.fakes.runware import TEST_KEY as RUNWARE_KEY
from tests.fakes.runware import RunwareFake

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cat.jpg"  # 451x300


@pytest.fixture
def fakes():
    with RemoveBgFake() as removebg, PhotoroomFake() as photoroom, RunwareFake() as runware:
        yield removebg, photoroom, runware


def app_of(fakes, tmp_path, **overrides) -> App:
    removebg, photoroom, runware = fakes
    providers = {
        "remove-bg": {"base_url": removebg.url},
        "photoroom": {"base_url": photoroom.url},
        "runware-birefnet-massive": {"base_url": runware.url},
    }
    return App.create(AppConfig(provider_config=providers, **overrides), store=OutputStore(tmp_path), cache=None)


@pytest.mark.parametrize(
    "provider_id, slot, name",
    [
        ("remove-bg", "removebg", "remove.bg"),
        ("photoroom", "photoroom", "Photoroom"),
        ("fal-rmbg-3", "fal", "fal.ai"),
        ("runware-birefnet", "runware", "Runware"),
    ],
)
def test_each_new_provider_has_its_key_field(provider_id, slot, name, monkeypatch):
    for env in KEY_VARS:
        monkeypatch.delenv(env, raising=False)
    closed = AppConfig(allow_server_keys=False)
    assert catalog.key_slot(provider_id) == slot
    assert catalog.provider_status(provider_id, Keys(), closed) == ProviderStatus("needs_key", f"paste a {name} key")
    pasted = Keys(**{slot: "visitor-key-1"})
    assert catalog.provider_status(provider_id, pasted, closed).state == "ready"
    assert pasted.for_provider(provider_id) == "visitor-key-1"


def test_keys_take_the_services_in_order_and_never_show():
    keys = Keys.of(" f ", None, "rb-secret\n", "pr-secret", "acct:cf-secret")
    assert (keys.fal, keys.runware, keys.removebg, keys.photoroom) == ("f", "", "rb-secret", "pr-secret")
    assert keys.cloudflare == "acct:cf-secret"
    assert repr(keys) == "Keys(fal=set, runware=empty, removebg=set, photoroom=set, cloudflare=set)"
    assert set(keys.secrets()) == {"f", "rb-secret", "pr-secret", "acct:cf-secret"}
    assert safe_message(ValueError("x rb-secret y pr-secret"), keys) == "x ••• y •••"


def test_compare_runs_the_references_with_their_costs_as_reported(fakes, tmp_path):
    removebg, photoroom, runware = fakes
    app = app_of(fakes, tmp_path)
    keys = Keys(runware=RUNWARE_KEY, removebg=REMOVEBG_KEY, photoroom=PHOTOROOM_KEY)
    session, shown = comparing.run(
        Session(), str(EXAMPLE), ["remove-bg", "photoroom", "runware-birefnet-massive"], keys, app, Look()
    )

    assert (len(removebg.calls), len(photoroom.calls), len(runware.calls)) == (1, 1, 1)
    rows = {row[0]: row for row in shown.table}
    assert [rows[pid][3] for pid in ("remove-bg", "photoroom", "runware-birefnet-massive")] == ["ok"] * 3
    assert rows["remove-bg"][2] == "$0.2300 (estimated)"  # 1 credit reported x $0.23 per credit
    assert rows["photoroom"][2] == "$0.0200 (estimated)"
    assert rows["runware-birefnet-massive"][2] == "$0.0006 (reported)"
    assert session.hosted_usd == Decimal("0.2506")
    assert removebg.credits_charged == 1 and photoroom.images_billed == 1


def test_an_error_message_never_carries_the_visitors_key(fakes, tmp_path):
    removebg, _, _ = fakes
    removebg.inject("insufficient-credits")
    app = app_of(fakes, tmp_path)
    keys = Keys(removebg=REMOVEBG_KEY)
    with pytest.raises(ProviderCreditError) as caught:
        actions.remove(Session(), str(EXAMPLE), "remove-bg", Look(), keys, app, 100)
    message = safe_message(caught.value, keys)
    assert "Insufficient credits" in message and REMOVEBG_KEY not in message
    assert removebg.credits_charged == 0


def test_rest_clients_send_the_new_keys_in_their_own_headers(fakes, tmp_path):
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from rmbg.webapp.rest import routes as rest

    removebg, photoroom, _ = fakes
    web = FastAPI(routes=rest.routes(app_of(fakes, tmp_path), lambda: "u2netp", fetch=None))  # as gradio's app
    image = {"image": ("cat.jpg", EXAMPLE.read_bytes(), "image/jpeg")}
    with TestClient(web) as client:
        cut = client.post(
            "/api/remove", files=image, data={"provider": "remove-bg"}, headers={"X-Removebg-Key": REMOVEBG_KEY}
        )
        keyless = client.post(
            "/api/remove", files=image, data={"provider": "photoroom"}, headers={"X-Removebg-Key": REMOVEBG_KEY}
        )
        wrong = client.post(
            "/api/remove",
            files=image,
            data={"provider": "photoroom"},
            headers={"X-Photoroom-Key": "pr-not-the-key-789"},
        )
    assert cut.status_code == 200 and cut.headers["content-type"] == "image/png"
    assert removebg.credits_charged == 1
    assert keyless.status_code == 401 and "X-Photoroom-Key" in keyless.json()["error"]
    assert wrong.status_code == 401 and "pr-not-the-key-789" not in wrong.text
    assert len(photoroom.calls) == 1 and photoroom.images_billed == 0
