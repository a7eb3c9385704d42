"""The web app: its decisions (rmbg.webapp) and the launched app driven
through gradio_client.

One app is launched for the module (prevent_thread_lock) with real
providers: RMBG-1.4 on deterministic tiny weights in a temporary Hugging Face
cache, the real U2-Net-p, and the hosted providers pointed at the fake fal
and Runware servers. Provider calls are counted at the fake servers.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from rmbg.errors import BudgetError, InvalidImageError, ProviderHTTPError  # noqa: E402
from rmbg.providers.base import ProviderStatus  # noqa: E402
from rmbg.webapp import AppConfig, Keys, Look, Session, catalog
from rmbg.webapp.config import cap_from_env, server_keys_allowed  # noqa: E402
from rmbg.webapp.context import App  # noqa: E402
from rmbg.webapp.costs import volume_of  # noqa: E402
from rmbg.webapp.look import OutputStore, file_name, picker_colour  # noqa: E402
from rmbg.webapp.messages import safe_message  # noqa: E402
from rmbg.webapp.remove import actions, marks
from rmbg.webapp.spending import Ledger  # noqa: E402
from tests.fakes.fal import TEST_KEY as FAL_KEY  # noqa: E402
from tests.fakes.fal import FalFake  # noqa: E402
from tests.fakes.runware import TEST_KEY as RUNWARE_KEY  # noqa: E402
from tests.fakes.runware import RunwareFake  # noqa: E402
from tests.support.app import (  # noqa: E402
    EXAMPLE,
    LOOK_VALUES,
    ROOT,
    add_tiny_rmbg14,
    app_config,
    hub_cache,
    serve,
    submits,
)
from tests.support.ledgers import hold_exactly  # noqa: E402
from tests.u2netp_fixture import u2netp_path  # noqa: E402,F401

# --- the launched app ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fakes():
    with FalFake() as fal, RunwareFake() as runware:
        yield fal, runware


@pytest.fixture(scope="module")
def served(fakes, u2netp_path, tmp_path_factory):  # noqa: F811
    """(url, hf cache): the app built on a 'fresh machine' (empty HF cache, no
    token), then given tiny RMBG-1.4 weights so RMBG-1.4 can be tested too."""
    fal, runware = fakes
    with hub_cache(tmp_path_factory.mktemp("hub")) as cache:
        with serve(app_config(fal, runware)) as url:
            add_tiny_rmbg14(cache)
            yield url


@pytest.fixture
def client(served, fakes):
    from gradio_client import Client

    for fake in fakes:
        fake.reset()
    return Client(served, verbose=False)  # a new client is a new browser session


def remove(client, image=EXAMPLE, **kwargs):
    from gradio_client import handle_file

    return client.predict(image=handle_file(str(image)), api_name="/remove", **kwargs)


def test_api_lists_named_endpoints_and_defaults_to_the_ungated_model_on_a_fresh_machine(client):
    info = client.view_api(print_info=False, return_format="dict")
    named = info["named_endpoints"]
    assert {"/remove", "/rerender"} <= set(named)
    provider = next(p for p in named["/remove"]["parameters"] if p["parameter_name"] == "provider")
    assert provider["parameter_default"] == "u2netp"
    (before, after), file, line = remove(client)  # no provider chosen: the default, on the first call
    assert Image.open(after).size == Image.open(before).size == (451, 300)
    out = Image.open(file)
    assert out.format == "PNG" and out.mode == "RGBA" and out.size == (451, 300)
    assert Path(file).name == "cat-nobg.png"
    assert "U2-Net-p" in line and "compute estimate" in line


def test_remove_with_a_local_model_on_tiny_weights(client):
    (_, after), file, line = remove(client, provider="rmbg-1.4")
    out = Image.open(file)
    assert out.mode == "RGBA" and out.size == (451, 300)
    alpha = out.getchannel("A")
    assert alpha.getextrema() == (0, 255)  # min-max normalised matte
    assert "BRIA RMBG-1.4" in line and "s · this image: $" in line and "(compute estimate)" in line
    assert "At 100,000 images/month: " in line and "**rmbg-1.4 $" in line and "fal-bria $1,800.00" in line


def test_hosted_remove_then_mask_colour_and_format_never_call_again(client, fakes):
    fal, _ = fakes
    (_, after), file, line = remove(client, provider="fal-bria", fal_key=FAL_KEY)
    assert submits(fal) == 1
    assert Image.open(file).mode == "RGBA"
    assert "this image: $0.0180 (estimated)" in line and "session: $0.0180 hosted (cap $1.00)" in line
    calls = len(fal.calls)

    (_, mask), mask_file, _ = client.predict(mask_only=True, api_name="/rerender")
    assert Image.open(mask_file).mode == "L"
    assert Image.open(mask_file).tobytes() == Image.open(file).getchannel("A").tobytes()
    (_, red), red_file, _ = client.predict(background="colour", colour="#ff0000", format="jpeg", api_name="/rerender")
    red_img = Image.open(red_file)
    assert red_img.format == "JPEG" and red_img.mode == "RGB" and Path(red_file).name == "cat-nobg.jpg"
    assert red_img.getpixel((0, 0))[0] > 200 and red_img.getpixel((0, 0))[1] < 60  # corner is background
    assert len(fal.calls) == calls  # no new model run, no new charge

    # The same image again: the cached matte, free, the session total unchanged.
    _, _, again = remove(client, provider="fal-bria", fal_key=FAL_KEY)
    assert len(fal.calls) == calls
    assert "free (cached matte, no new charge)" in again and "session: $0.0180 hosted" in again


def test_crop_and_canvas_from_the_api_reframe_without_a_call(client, fakes):
    from rmbg.image.framing import subject_box

    fal, _ = fakes
    (before, after), file, _ = remove(
        client, provider="fal-bria", fal_key=FAL_KEY, canvas="600x400", margin="10%", align="bottom"
    )
    # the before half is the photo framed as the cut-out is: the two halves of the slider line up
    assert Image.open(before).size == Image.open(after).size == (600, 400)
    calls = len(fal.calls)
    framed = Image.open(file)
    assert framed.size == (600, 400) and framed.mode == "RGBA"
    box = subject_box(framed.getchannel("A"), threshold=1)
    assert box[3] == 360 and (box[1] == 40 or box[0] == 40 or 600 - box[2] == 40)  # inside 40 px margins
    _, cropped, _ = client.predict(crop=True, canvas="none", margin="0", api_name="/rerender")
    alpha = Image.open(cropped).getchannel("A")
    assert subject_box(alpha) == (0, 0, *alpha.size)  # tight on the subject
    with pytest.raises(Exception, match="Canvas 'huge' is neither a size"):
        client.predict(canvas="huge", api_name="/rerender")
    assert len(fal.calls) == calls


def test_the_first_run_of_a_local_model_says_it_loads_and_later_runs_do_not(tmp_path, u2netp_path):  # noqa: F811
    app = App.create(AppConfig(), store=OutputStore(tmp_path), cache=None)
    said: list[str] = []
    for _ in range(2):
        actions.remove(Session(), str(EXAMPLE), "u2netp", Look(), Keys(), app, 100, report=said.append)
    assert said == [
        "Running U2-Net-p (tiny, ungated, Apache-2.0): the first run loads the model…",
        "Running U2-Net-p (tiny, ungated, Apache-2.0)…",
    ]


def test_clean_edge_colours_rerender_from_the_session_without_a_call(client, fakes):
    fal, _ = fakes
    _, plain_file, _ = remove(client, provider="fal-bria", fal_key=FAL_KEY, background="colour", colour="#0000ff")
    calls = len(fal.calls)
    _, clean_file, _ = client.predict(background="colour", colour="#0000ff", refine_edges=True, api_name="/rerender")
    assert len(fal.calls) == calls  # re-rendered from the session's matte
    plain, clean = Image.open(plain_file), Image.open(clean_file)
    assert plain.size == clean.size and plain.tobytes() != clean.tobytes()
    _, again_file, _ = remove(
        client, provider="fal-bria", fal_key=FAL_KEY, background="colour", colour="#0000ff", refine_edges=True
    )
    assert len(fal.calls) == calls  # the cached matte
    assert Image.open(again_file).tobytes() == clean.tobytes()


def test_runware_reports_its_own_cost(client, fakes):
    _, runware = fakes
    _, file, line = remove(client, provider="runware-rembg", runware_key=RUNWARE_KEY)
    assert len(runware.calls) == 1
    assert Image.open(file).size == (451, 300)
    assert "this image: $0.0013 (reported)" in line and "**runware-rembg $130.00 (reported here)**" in line


def test_a_file_that_is_not_an_image_is_a_readable_error(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        remove(client, image=ROOT / "app.py", provider="rmbg-1.4")
    assert str(caught.value) == (
        "app.py is not an image we can read (PNG, JPEG, WebP, GIF, BMP, TIFF and others are supported)."
    )


def huge_png(path: Path, side: int = 12000) -> Path:
    """A small file (about 150 KB) whose header says side x side grey pixels: written
    row by row through zlib, so making it never holds the image in memory."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + one grey byte per pixel
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def huge(tmp_path_factory) -> Path:
    """huge_png's 12000x12000 grey PNG, written once for the tests that send it (0.8 s of CPU each time)."""
    return huge_png(tmp_path_factory.mktemp("huge") / "huge.png")


def test_a_corrupt_or_huge_background_image_is_a_readable_error_before_any_call(client, fakes, tmp_path, huge):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    fal, _ = fakes
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    for background, words in (
        (broken, "broken.png is damaged or truncated"),  # a PNG signature, then nothing of a PNG
        (huge, "12000x12000"),
    ):
        with pytest.raises(AppError, match=words):
            remove(
                client,
                provider="fal-bria",
                fal_key=FAL_KEY,
                background="image",
                background_image=handle_file(str(background)),
            )
    assert submits(fal) == 0  # refused before the paid call


def test_compare_without_providers_says_what_to_do(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=re.escape("Tick at least one provider (two or more to compare them).")):
        client.predict(image=handle_file(str(EXAMPLE)), providers=None, api_name="/compare")  # our words, not gradio's


def test_compare_with_the_one_model_a_server_runs_shows_it_and_says_how_to_compare(client):
    """A CPU server without keys often runs one free model: the first click shows it (the docs promise
    the first click compares), with a caption, instead of refusing."""
    from gradio_client import handle_file

    gallery, table, *_ = client.predict(image=handle_file(str(EXAMPLE)), providers=["rmbg-1.4"], api_name="/compare")
    assert len(gallery) == 1 and gallery[0]["caption"].startswith("rmbg-1.4 · ")
    assert table["data"][0][0] == "rmbg-1.4" and table["data"][0][-1].startswith("ok: the only provider ticked")


def test_the_pixel_limit_is_checked_before_anything_decodes_an_upload(client, huge):
    """144 MP in a small PNG: refused from its header, by gradio (image_mode=None) and rmbg alike."""
    import resource
    import time

    from gradio_client.exceptions import AppError

    assert huge.stat().st_size < 1_000_000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(AppError, match="12000x12000") as caught:
        remove(client, image=huge, provider="u2netp")
    assert "40" in str(caught.value) and time.perf_counter() - start < 20
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    assert grown_mib < 100  # decoding it would take 144 MB at least


def test_a_missing_key_is_a_readable_error_and_nothing_is_sent(client, fakes):
    from gradio_client.exceptions import AppError

    fal, _ = fakes
    with pytest.raises(AppError) as caught:
        remove(client, provider="fal-bria")
    assert (
        "fal-bria needs an API key (this server does not share its own keys with visitors). Pass your key as "
        "fal_key, or choose a local provider."
    ) in str(caught.value)
    assert fal.calls == []


def test_a_wrong_key_is_reported_without_echoing_it(client, fakes):
    from gradio_client.exceptions import AppError

    secret = "wrong-id:sk-very-secret-123"
    with pytest.raises(AppError) as caught:
        remove(client, provider="fal-bria", fal_key=secret)
    message = str(caught.value)
    assert "fal-bria" in message and "sk-very-secret" not in message and "Traceback" not in message
    assert len(fakes[0].calls) == 1  # 401 is never retried


def test_rerender_before_any_run_changes_nothing(client):
    result = client.predict(mask_only=True, api_name="/rerender")
    assert result == ({"__type__": "update"},) * 3  # gr.skip(): every output left as it is


def test_compare_three_providers(client, fakes):
    from gradio_client import handle_file

    fal, runware = fakes
    gallery, table, agreement, left, right, pair = client.predict(
        image=handle_file(str(EXAMPLE)),
        providers=["rmbg-1.4", "fal-bria", "runware-rembg"],
        fal_key=FAL_KEY,
        runware_key=RUNWARE_KEY,
        api_name="/compare",
    )
    assert submits(fal) == 1 and len(runware.calls) == 1
    captions = [item["caption"] for item in gallery]
    import re

    assert re.fullmatch(r"rmbg-1\.4 · \d+\.\d\d s · \$0\.\d+", captions[0]), captions[0]  # compute estimate
    assert re.fullmatch(r"fal-bria · \d+\.\d\d s · \$0\.0180", captions[1]), captions[1]
    assert re.fullmatch(r"runware-rembg · \d+\.\d\d s · \$0\.0013", captions[2]), captions[2]
    assert all(Image.open(item["image"]).size == (451, 300) for item in gallery)
    assert [row[0] for row in table["data"]] == ["rmbg-1.4", "fal-bria", "runware-rembg"]
    assert [row[3] for row in table["data"]] == ["ok", "ok", "ok"]
    pairs = {(row[0], row[1]): (row[2], row[3]) for row in agreement["data"]}
    assert set(pairs) == {("rmbg-1.4", "fal-bria"), ("rmbg-1.4", "runware-rembg"), ("fal-bria", "runware-rembg")}
    assert pairs[("fal-bria", "runware-rembg")] == (1.0, 0.0)  # both fakes cut out with the same rule
    assert all(0.0 <= iou <= 1.0 and 0.0 <= mad <= 1.0 for iou, mad in pairs.values())
    assert (left["value"], right["value"]) == ("rmbg-1.4", "fal-bria")
    assert Image.open(pair[0]).size == Image.open(pair[1]).size


def test_compare_lists_a_provider_it_cannot_use_and_runs_the_rest(client, fakes):
    from gradio_client import handle_file

    gallery, table, agreement, *_ = client.predict(
        image=handle_file(str(EXAMPLE)),
        providers=["rmbg-1.4", "fal-bria", "runware-rembg"],
        runware_key=RUNWARE_KEY,
        api_name="/compare",
    )
    assert len(gallery) == 2 and len(agreement["data"]) == 1
    rows = {row[0]: row[3] for row in table["data"]}
    assert rows["rmbg-1.4"] == rows["runware-rembg"] == "ok"
    assert rows["fal-bria"].startswith("fal-bria needs an API key")
    assert fakes[0].calls == []


# --- decisions (rmbg.webapp), without the UI -----------------------------------------


@pytest.mark.parametrize(
    "env, allowed",
    [
        ({}, True),  # private: a local run on loopback
        ({"GRADIO_SERVER_NAME": "127.0.0.1"}, True),
        ({"GRADIO_SERVER_NAME": "0.0.0.0"}, False),  # listening on the network
        ({"SPACE_ID": "someone/rmbg"}, False),  # a Hugging Face Space
        ({"SPACE_ID": "someone/rmbg", "RMBG_ALLOW_SERVER_KEYS": "1"}, True),  # the owner opted in
        ({"RMBG_ALLOW_SERVER_KEYS": "0"}, False),
    ],
)
def test_server_keys_are_only_spent_where_allowed(env, allowed):
    assert server_keys_allowed(env) is allowed


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="RMBG_ALLOW_SERVER_KEYS"):
        server_keys_allowed({"RMBG_ALLOW_SERVER_KEYS": "maybe"})
    with pytest.raises(ValueError, match="RMBG_SESSION_CAP_USD"):
        cap_from_env({"RMBG_SESSION_CAP_USD": "lots"})
    assert cap_from_env({}) == Decimal("1")
    assert cap_from_env({"RMBG_SESSION_CAP_USD": "0.25"}) == Decimal("0.25")


def test_a_visitor_never_spends_the_server_key_unless_allowed(monkeypatch):
    monkeypatch.setenv("FAL_KEY", "server-id:server-secret")
    closed = AppConfig(allow_server_keys=False)
    opened = AppConfig(allow_server_keys=True)
    assert catalog.provider_status("fal-bria", Keys(), closed) == ProviderStatus("needs_key", "paste a fal.ai key")
    with pytest.raises(catalog.SessionKeyMissing):
        catalog.build_provider("fal-bria", Keys(), closed)
    assert catalog.provider_status("fal-bria", Keys(), opened).state == "ready"
    assert catalog.provider_status("fal-bria", Keys(fal="visitor:key"), closed).state == "ready"


@pytest.mark.uses("torch")  # each local torch model's state asks torch for a GPU ("no GPU (slow)")
def test_choices_list_every_provider_with_its_state(monkeypatch, tmp_path):
    monkeypatch.delenv("FAL_KEY", raising=False)
    with hub_cache(tmp_path):
        labels = dict((pid, label) for label, pid in catalog.choices(Keys(runware="k"), AppConfig()))
    from rmbg.registry import list_providers

    assert list(labels) == list_providers()
    assert labels["rmbg-1.4"].endswith("— needs a Hugging Face token · non-commercial")
    assert labels["fal-bria"] == "fal.ai · Bria RMBG 2.0 — needs a key · fal.ai terms"
    assert labels["runware-rembg"].endswith("— ready · Runware terms")
    assert labels["rmbg-2.0"].endswith("needs a Hugging Face token · no GPU (slow) · non-commercial")
    assert labels["u2netp"].endswith(" · Apache-2.0") and labels["birefnet-lite"].endswith(" · MIT")


def test_provider_notes_say_the_state_once_with_where_to_fix_it(monkeypatch, tmp_path):
    monkeypatch.delenv("FAL_KEY", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with hub_cache(tmp_path):
        gated = catalog.note("rmbg-1.4", Keys(), AppConfig())
        paid = catalog.note("fal-bria", Keys(), AppConfig(allow_server_keys=False))
    assert gated == (
        "**needs a Hugging Face token** — briaai/RMBG-1.4 is gated · "
        "[accept the licence and make a token](https://huggingface.co/briaai/RMBG-1.4)"
    )
    assert paid == "**needs a key** — paste a fal.ai key · [get a key](https://fal.ai/dashboard/keys)"


def test_keys_never_show_in_a_repr():
    assert "secret" not in repr(Keys(fal="id:secret", runware="secret2"))
    assert safe_message(ValueError("bad id:secret here"), Keys(fal="id:secret")) == "bad ••• here"


def test_the_spending_cap_stops_a_call_before_it_is_sent(fakes, tmp_path):
    fal, _ = fakes
    fal.reset()
    app = App.create(app_config(*fakes, cap_usd=Decimal("0.03")), store=OutputStore(tmp_path), cache=None)
    keys = Keys(fal=FAL_KEY)
    session, _ = actions.remove(Session(), str(EXAMPLE), "fal-bria", Look(), keys, app, 100)
    assert session.hosted_usd == Decimal("0.018")
    with pytest.raises(BudgetError, match=r"spent \$0.0180 of its \$0.03 cap"):
        actions.remove(session, str(EXAMPLE), "fal-bria", Look(), keys, app, 100)
    assert submits(fal) == 1


def test_the_ledger_reserves_settles_and_releases():
    clock = [1_700_000_000.0]  # 2023-11-14 UTC
    ledger = Ledger(Decimal("1"), Decimal("0.5"), clock=lambda: clock[0])
    hold = hold_exactly(ledger, "a", "paid", Decimal("0.4"), server_key=True)
    hold_exactly(ledger, "a", "paid", Decimal("0.4"), server_key=False)
    with pytest.raises(BudgetError, match=r"this session has spent \$0.8000 of its \$1.00 cap"):
        hold_exactly(ledger, "a", "paid", Decimal("0.4"), server_key=False)
    with pytest.raises(BudgetError, match=r"daily budget for its own paid key is used up \(\$0.50 per UTC day"):
        hold_exactly(ledger, "b", "paid", Decimal("0.2"), server_key=True)  # another session, the server's key
    ledger.policy.settle(hold, Decimal("0.013"))  # the real, reported cost replaces the estimate
    assert ledger.session_spent("a") == Decimal("0.413") and ledger.day_spent() == Decimal("0.013")
    second = hold_exactly(ledger, "b", "paid", Decimal("0.2"), server_key=True)
    ledger.policy.release(second)  # certainly not charged
    assert ledger.session_spent("b") == 0 and ledger.day_spent() == Decimal("0.013")
    clock[0] += 86_400  # a new UTC day: the server-key budget starts again, sessions keep theirs
    assert ledger.day_spent() == 0 and ledger.session_spent("a") == Decimal("0.413")


def test_concurrent_calls_of_one_session_cannot_pass_its_cap(fakes, tmp_path):
    import threading

    fal, _ = fakes
    fal.reset()
    app = App.create(app_config(*fakes, cap_usd=Decimal("0.10")), store=OutputStore(tmp_path), cache=None)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def visitor() -> None:
        start.wait()
        for _ in range(5):
            try:
                actions.remove(
                    Session(), str(EXAMPLE), "fal-bria", Look(), Keys(fal=FAL_KEY), app, 100, session_id="one-tab"
                )
                outcomes.append("paid")
            except BudgetError:
                outcomes.append("refused")

    threads = [threading.Thread(target=visitor) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert submits(fal) == outcomes.count("paid") == 5  # 5 x $0.018 = $0.09; a 6th would pass $0.10
    assert app.ledger.session_spent("one-tab") == Decimal("0.090")


def test_new_sessions_cannot_pass_the_daily_cap_on_the_server_key(fakes, tmp_path, monkeypatch):
    fal, _ = fakes
    fal.reset()
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    config = app_config(*fakes, allow_server_keys=True, daily_cap_usd=Decimal("0.05"))
    app = App.create(config, store=OutputStore(tmp_path), cache=None)
    paid = 0
    for n in range(10):
        try:
            actions.remove(Session(), str(EXAMPLE), "fal-bria", Look(), Keys(), app, 100, session_id=f"new-{n}")
            paid += 1
        except BudgetError as exc:
            assert "daily budget for its own fal-bria key is used up" in str(exc)
    assert submits(fal) == paid == 2 and app.ledger.day_spent() == Decimal("0.036")
    # a visitor's own key is theirs to spend: the daily cap does not apply to it
    actions.remove(Session(), str(EXAMPLE), "fal-bria", Look(), Keys(fal=FAL_KEY), app, 100, session_id="own")
    assert submits(fal) == 3


@pytest.mark.parametrize("fault, counted", [("invalid", Decimal("0.018")), ("unauthorized", Decimal(0))])
def test_a_failed_paid_call_is_counted_unless_it_certainly_was_not_charged(fakes, tmp_path, fault, counted):
    fal, _ = fakes
    fal.reset()
    fal.inject(fault, op="submit", times=5)
    app = App.create(app_config(*fakes), store=OutputStore(tmp_path), cache=None)
    with pytest.raises(ProviderHTTPError):
        actions.remove(Session(), str(EXAMPLE), "fal-bria", Look(), Keys(fal=FAL_KEY), app, 100, session_id="s")
    assert app.ledger.session_spent("s") == counted  # a 422 may have used (and billed) GPU time


@pytest.mark.parametrize(
    "raw, named, kwargs",
    [
        (("colour", "#00ff00", None, False, "jpg"), {}, {"background": "colour", "fmt": "jpeg"}),
        ((None, None, None, None, None), {}, {"background": "transparent", "fmt": "png", "mask_only": False}),
        ((None, None, None, None, None), {"clean_edges": None}, {"clean_edges": False}),
        (("colour", "#00ff00", None, False, "png"), {"clean_edges": "true"}, {"clean_edges": True, "mask_only": False}),
    ],
)
def test_look_from_ui_values(raw, named, kwargs):
    look = Look.of(*raw, **named)
    read = {"background": look.background, "fmt": look.fmt, "mask_only": look.mask_only, **dict(look.more)}
    for name, value in kwargs.items():
        assert read[name] == value


def test_look_refuses_unknown_values():
    with pytest.raises(InvalidImageError, match="Unknown output format 'gif'"):
        Look.of("transparent", "#fff", None, False, "gif")
    with pytest.raises(InvalidImageError, match="Choose a background image first"):
        Look.of("image", "#fff", None, False, "png").backdrop()


@pytest.mark.parametrize(
    "value, rgb",
    [("#ff8000", (255, 128, 0)), ("rgba(255, 12.6, 0, 1)", (255, 13, 0)), ("rgb(1, 2, 3)", (1, 2, 3))],
)
def test_picker_colours(value, rgb):
    assert picker_colour(value) == rgb


@pytest.mark.parametrize(
    "value, volume", [(100000, 100000), ("2500", 2500), (-5, 0), (None, 0), ("", 0), (10**12, 1_000_000_000)]
)
def test_projection_volume(value, volume):
    assert volume_of(value) == volume


@pytest.mark.parametrize("value", ["x", "abc", [1], float("inf")])
def test_a_volume_that_is_not_a_number_is_a_readable_error(value):
    from rmbg.errors import RmbgError

    with pytest.raises(RmbgError, match="Images per month must be a whole number"):
        volume_of(value)


def test_download_names():
    assert file_name("my photo (1)", Look(fmt="webp")) == "my_photo_1-nobg.webp"
    assert file_name("", Look(mask_only=True, fmt="jpeg")) == "image-mask.jpg"


def test_each_distinct_download_is_written_once(tmp_path):
    import hashlib
    import os

    store = OutputStore(tmp_path)
    first = store.write("a.png", b"x")
    os.utime(first, (1, 1))
    again = store.write("a.png", b"x")
    assert again == first == tmp_path / hashlib.sha256(b"x").hexdigest() / "a.png"
    assert first.stat().st_mtime > 1  # refreshed: gradio's delete_cache ages it from its last use
    other = store.write("a.png", b"y")
    assert other != first and other.read_bytes() == b"y"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.png", "a.png"]


def test_downloads_stay_within_their_byte_budget(tmp_path):
    foreign = tmp_path / "upload" / "photo.jpg"  # gradio's own file in the same folder
    foreign.parent.mkdir()
    foreign.write_bytes(b"u" * 50)
    store = OutputStore(tmp_path, max_bytes=25)
    first = store.write("a.png", b"1" * 10)
    second = store.write("b.png", b"2" * 10)
    store.write("a.png", b"1" * 10)  # used again: now the most recent
    third = store.write("c.png", b"3" * 10)  # 30 > 25: the least recently written (b) goes
    assert first.exists() and third.exists() and not second.exists()
    assert store.nbytes == 20 and foreign.read_bytes() == b"u" * 50


@pytest.mark.parametrize(
    "raw, expected",
    [(None, False), (False, False), (True, True), ("true", True), ("false", False), ("no", False), ("1", True)],
)
def test_checkbox_values_are_read_strictly(raw, expected):
    assert Look.of("transparent", None, None, raw, "png").mask_only is expected


def test_a_checkbox_value_that_is_not_a_boolean_is_refused():
    with pytest.raises(InvalidImageError, match="clean_edges must be true or false, got 'maybe'"):
        Look.of("transparent", None, None, False, "png", clean_edges="maybe")


def test_local_inference_runs_inside_spaces_gpu_only_where_spaces_exists(monkeypatch):
    import sys
    import types

    from rmbg.webapp import guard

    def plain(x):
        return x

    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    monkeypatch.setattr("builtins.__import__", _refusing("spaces", __import__))
    assert guard.on_zerogpu(plain, len) is plain  # not on ZeroGPU: nothing changes

    monkeypatch.undo()
    seen = {}
    fake = types.ModuleType("spaces")

    def gpu(duration):
        def decorate(fn):
            seen["wrapped"] = (fn, duration)
            return lambda *args: ("gpu", fn(*args))

        return decorate

    fake.GPU = gpu
    monkeypatch.setitem(sys.modules, "spaces", fake)
    wrapped = guard.on_zerogpu(plain, len)
    assert seen["wrapped"] == (plain, len) and wrapped(3) == ("gpu", 3)  # the ask: a callable of the call


def _refusing(name, real_import):
    def importer(module, *args, **kwargs):
        if module == name:
            raise ImportError(f"No module named {name!r}")
        return real_import(module, *args, **kwargs)

    return importer


def test_agreement_between_mattes():
    from rmbg.compare import PairAgreement as Agreement
    from rmbg.compare import agreement
    from rmbg.result import Result
    from rmbg.types import Cost, Seconds

    def result(pid, alpha_rows):
        alpha = Image.frombytes("L", (2, 2), bytes(alpha_rows))
        rgb = Image.new("RGB", (2, 2))
        return Result(rgb, alpha, rgb, pid, Seconds(0.0, 0.0), Cost.free())

    same = agreement({"a": result("a", [255, 255, 0, 0]), "b": result("b", [255, 255, 0, 0])})
    assert same == (Agreement("a", "b", 1.0, 0.0),)
    rows = agreement(
        {"a": result("a", [255, 255, 0, 0]), "b": result("b", [255, 0, 0, 0]), "c": result("c", [0, 0, 255, 255])}
    )
    assert [(g.a, g.b) for g in rows] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert rows[0].iou == 0.5 and rows[0].mad == 0.25
    assert rows[1].iou == 0.0 and rows[1].mad == 1.0


def test_the_app_keeps_the_input_alpha_like_the_api(tmp_path, u2netp_path):  # noqa: F811
    """Same input, same options -> same alpha from the app's action and the Python API."""
    import numpy as np

    import rmbg

    rgba = Image.open(EXAMPLE).convert("RGBA")
    rgba.putalpha(0)  # an all-transparent input
    path = tmp_path / "clear.png"
    rgba.save(path)
    app = App.create(AppConfig(), store=OutputStore(tmp_path / "out"), cache=None)
    session, shown = actions.remove(Session(), str(path), "u2netp", Look(), Keys(), app, 100)
    api = rmbg.remove_background(str(path), "u2netp", cache=None)
    kept = actions.last_result(session, app)
    assert np.array_equal(np.asarray(kept.alpha), np.asarray(api.alpha))
    assert np.asarray(kept.alpha).max() == 0
    with Image.open(shown.file) as download:
        assert download.mode == "RGBA" and np.asarray(download).max() == 0  # alpha 0 and RGB 0 everywhere


def test_a_bad_colour_is_refused_before_the_paid_call(fakes, tmp_path):
    fal, _ = fakes
    fal.reset()
    app = App.create(app_config(*fakes), store=OutputStore(tmp_path), cache=None)
    with pytest.raises(InvalidImageError, match="zzz"):
        actions.remove(
            Session(),
            str(EXAMPLE),
            "fal-bria",
            Look.of("colour", "zzz", None, False, "png"),
            Keys(fal=FAL_KEY),
            app,
            100,
        )
    assert submits(fal) == 0


def test_recent_results_are_one_byte_bounded_store_for_every_session():
    from rmbg.webapp.recent import Recent

    store = Recent(10, size=len)
    a, b = store.put("aaaa"), store.put("bbbb")
    assert store.get(a) == "aaaa"  # a is now the most recent
    c = store.put("cccc")  # 12 bytes > 10: the least recently used (b) goes
    assert store.get(b) is None and store.get(a) == "aaaa" and store.get(c) == "cccc"
    assert store.nbytes == 8 and len(store) == 2
    too_big = store.put("x" * 11)
    assert store.get(too_big) is None and store.nbytes == 8


def test_sessions_keep_a_token_and_an_old_result_expires_readably(tmp_path, u2netp_path):  # noqa: F811
    from rmbg.cache import MatteCache

    config = AppConfig(memory_mb=1)  # 1 MiB: about three 451x300 results
    # one model run: the other sessions' results are new results of the cached matte, each kept on its own
    app = App.create(config, store=OutputStore(tmp_path), cache=MatteCache())
    first, _ = actions.remove(Session(), str(EXAMPLE), "u2netp", Look(), Keys(), app, 100)
    assert isinstance(first.last, str)  # the session holds a token, not pixels
    assert actions.rerender(first, Look.of("colour", "#ff0000", None, False, "png"), app, 100) is not None
    for _ in range(4):
        actions.remove(Session(), str(EXAMPLE), "u2netp", Look(), Keys(), app, 100)
    assert app.recent.nbytes <= 1024 * 1024 * 3 // 5
    with pytest.raises(InvalidImageError, match="no longer kept on the server"):
        actions.rerender(first, Look.of("colour", "#ff0000", None, False, "png"), app, 100)


REMOVE_ORDER = (
    "/remove takes 24 values in this order: session state (null), Image, Provider, Background, Colour, "
    "Background image, Mask only, Format, Images per month (cost projection), fal.ai key, Runware key, "
    "remove.bg key, Photoroom key, Cloudflare key, Clean edges, Crop to subject, Canvas (size or aspect), "
    "Margin (% or px), "
    "Subject position, "
    "Refine edges (ViTMatte), Points (x, y, keep|drop; …), Box (x0, y0, x1, y1), Escalate when unsure to, "
    "…when the confidence is under."
)


@pytest.mark.parametrize(
    "body, message",
    [
        ({"data": ["x"]}, "Got 1 values. " + REMOVE_ORDER),
        ({"data": {"image": "cat.jpg"}}, 'The request body must be a JSON object with a "data" list. ' + REMOVE_ORDER),
        ([1, 2], 'The request body must be a JSON object with a "data" list. ' + REMOVE_ORDER),
        (
            {"data": [None, str(EXAMPLE), "fal-bria", *LOOK_VALUES]},
            'Image must be a file object, {"path": ...} for a file uploaded to /gradio_api/upload '
            "(gradio_client's handle_file() makes one) or null; got a plain string.",
        ),
        (
            {"data": [None, 5, "fal-bria", *LOOK_VALUES]},
            'Image must be a file object, {"path": ...} for a file uploaded to /gradio_api/upload '
            "(gradio_client's handle_file() makes one) or null; got a value of type int.",
        ),
        (
            {
                "data": [
                    None,
                    None,
                    "fal-bria",
                    "image",
                    "#ffffff",
                    "bg.png",
                    False,
                    "png",
                    100,
                    None,
                    None,
                    None,
                    None,
                    None,
                    False,
                    False,
                    "none",
                    "5%",
                    "center",
                    False,
                    "",
                    "",
                    "none",
                    0.8,
                ]
            },
            'Background image must be a file object, {"path": ...} for a file uploaded to /gradio_api/upload '
            "(gradio_client's handle_file() makes one) or null; got a plain string.",
        ),
    ],
)
def test_raw_calls_of_the_wrong_shape_are_answered_before_gradio(served, fakes, capfd, body, message):
    import httpx

    for fake in fakes:
        fake.reset()
    answer = httpx.post(f"{served}gradio_api/call/remove", json=body, timeout=30)
    assert answer.status_code == 422
    assert answer.json() == {"error": message}
    assert all(not fake.calls for fake in fakes)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"image=cat.jpg", 'The request body must be JSON: {"data": [...]}. ' + REMOVE_ORDER),
        (
            b'{"data": ["' + b"A" * (2 << 20) + b'"]}',
            "The request body is too large for a call (upload files to /gradio_api/upload first).",
        ),
    ],
)
def test_a_raw_call_body_that_is_not_a_call_gets_a_message(served, content, message):
    import httpx

    answer = httpx.post(f"{served}gradio_api/call/remove", content=content, timeout=30)
    assert answer.status_code == 422
    assert answer.json() == {"error": message}


@pytest.mark.parametrize(
    "endpoint, data, words",
    [
        ("remove", [None, None, "u2netp", *LOOK_VALUES], "Upload an image first (or pick one of the examples)."),
        (
            "rerender",
            [None, "transparent", "#fff", None, False, "png", "abc", False, False, "none", "5%", "center"],
            "Images per month must be a whole number (0 or more), got 'abc'.",
        ),
    ],
)
def test_raw_calls_of_the_right_shape_reach_the_handlers_readable_checks(served, endpoint, data, words):
    import httpx

    base = served.rstrip("/")
    started = httpx.post(f"{base}/gradio_api/call/{endpoint}", json={"data": data}, timeout=30).json()
    stream = httpx.get(f"{base}/gradio_api/call/{endpoint}/{started['event_id']}", timeout=60).text
    assert "event: error" in stream and '"error": null' not in stream and words in stream


def test_vitmatte_and_sam2_picking_from_the_page_pay_the_provider_once(fakes, tmp_path, hf_cache, monkeypatch):
    from rmbg.providers.local.hf_transformers import clear_models
    from tests.tiny_transformers import add_folder, tiny_sam2, tiny_vitmatte

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    add_folder(hf_cache, "hustvl/vitmatte-small-composition-1k", tiny_vitmatte(tmp_path / "vitmatte"))
    add_folder(hf_cache, "facebook/sam2.1-hiera-tiny", tiny_sam2(tmp_path / "sam2"))
    fal, _ = fakes
    fal.reset()
    app = App.create(app_config(*fakes), store=OutputStore(tmp_path / "out"))
    keys = Keys(fal=FAL_KEY)
    try:
        _, plain = actions.remove(Session(), str(EXAMPLE), "fal-bria", Look(), keys, app, 100)
        refined, _ = actions.run(str(EXAMPLE), "fal-bria", Look(), keys, app, refine="vitmatte")
        points, box = marks.prompts_of("200, 150, keep; 20, 20, drop", "")
        picked, _ = actions.run(str(EXAMPLE), "fal-bria", Look(), keys, app, refine="vitmatte", points=points)
    finally:
        clear_models()
    assert submits(fal) == 1  # both re-use the matte fal made
    assert refined.meta["refine"] == "vitmatte" and picked.meta["refine"] == "sam2-pick+vitmatte"
    assert refined.cost.source == picked.cost.source == "free"
    assert Image.open(plain.file).size == (451, 300)


@pytest.mark.parametrize(
    "points, box, want",
    [
        ("120, 80, keep; 10,20,drop\n5, 6", "", ([(120.0, 80.0, True), (10.0, 20.0, False), (5.0, 6.0, True)], None)),
        (None, " 1, 2, 30, 40 ", ([], (1.0, 2.0, 30.0, 40.0))),
        ("", None, ([], None)),
    ],
)
def test_sam_prompts_from_the_page_fields(points, box, want):
    assert marks.prompts_of(points, box) == want
    assert marks.add_point("1, 2, keep", 10.4, 20.6, False) == "1, 2, keep; 10, 21, drop"
    assert marks.add_point("", 3, 4, True) == "3, 4, keep"


def test_two_clicks_make_a_box_and_a_third_starts_over():
    first = marks.add_corner("", 300.4, 40)
    assert first == "300, 40"
    box = marks.add_corner(first, 100, 250.6)
    assert box == "100, 40, 300, 251"  # corners in any order
    assert marks.prompts_of("", box) == ([], (100.0, 40.0, 300.0, 251.0))
    assert marks.add_corner(box, 5, 6) == "5, 6"
    # a click on a field holding anything but one readable corner starts over, never an error
    for held in ("a, b", "nan, 5", "inf, 2", "１, ２", "1e999, 3", ",", "7"):
        assert marks.add_corner(held, 5, 6) == "5, 6", held
    with pytest.raises(InvalidImageError, match="The box has one corner: click its opposite corner too."):
        marks.prompts_of("", first)


@pytest.mark.parametrize(
    "points, box, words",
    [
        ("1, 2, 3, 4", "", "Point '1, 2, 3, 4': write x, y, keep (or drop), e.g. 120, 80, keep."),
        ("a, b", "", "Point 'a, b': write x, y, keep"),
        ("", "1, 2, 3", "Box '1, 2, 3': write x0, y0, x1, y1 in image pixels."),
    ],
)
def test_bad_sam_prompts_are_readable(points, box, words):
    with pytest.raises(InvalidImageError, match=re.escape(words)):
        marks.prompts_of(points, box)


# --- the AI background tab ------------------------------------------------------------


def replace_posts(fal: FalFake) -> list:
    return [c for c in fal.calls if c.method == "POST" and "background/replace" in c.path]


def test_ai_backgrounds_from_the_app_are_estimated_reserved_and_counted(client, fakes):
    from gradio_client import handle_file

    fal, _ = fakes
    gallery, line = client.predict(
        image=handle_file(str(EXAMPLE)),
        prompt="a marble counter",
        num_images=2,
        seed="42",
        fal_key=FAL_KEY,
        api_name="/replace",
    )
    assert len(gallery) == 2 and all(Image.open(item["image"]).size == (451, 300) for item in gallery)
    assert [Path(item["image"]).name for item in gallery] == ["cat-ai-1.png", "cat-ai-2.png"]
    assert "2 images: $0.0800 (estimated)" in line and "seed 42" in line and "session: $0.0800 hosted" in line
    assert len(replace_posts(fal)) == 1
    body = replace_posts(fal)[0].json()
    assert body["prompt"] == "a marble counter" and body["num_images"] == 2 and body["seed"] == 42


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "a beach", "seed": "abc"}, "The seed must be a whole number 0..2147483647, got 'abc'."),
        ({"prompt": "a beach", "seed": "-1"}, "seed"),
        ({"prompt": "a beach", "fal_key": None}, "fal-bria-replace needs an API key"),
    ],
)
def test_ai_background_mistakes_send_nothing(client, fakes, kwargs, words):
    from gradio_client import handle_file

    fal, _ = fakes
    values = {"fal_key": FAL_KEY, **kwargs}
    with pytest.raises(Exception, match=re.escape(words)):
        client.predict(image=handle_file(str(EXAMPLE)), api_name="/replace", **values)
    assert not replace_posts(fal)


def test_ai_backgrounds_stop_at_the_session_cap_before_sending(fakes, tmp_path):
    from rmbg.webapp.replace import replacing

    fal, _ = fakes
    fal.reset()
    app = App.create(app_config(*fakes, cap_usd=Decimal("0.10")), store=OutputStore(tmp_path), cache=None)
    keys = Keys(fal=FAL_KEY)
    first = replacing.replace(str(EXAMPLE), "a beach", None, "", None, 2, keys, app, session_id="s")
    assert len(first.files) == 2 and app.ledger.session_spent("s") == Decimal("0.08")
    with pytest.raises(BudgetError, match=re.escape("costs about $0.0800 for 2 generated images")):
        replacing.replace(str(EXAMPLE), "a beach", None, "", None, 2, keys, app, session_id="s")
    assert len(replace_posts(fal)) == 1 and app.ledger.session_spent("s") == Decimal("0.08")
