"""Every door pays through one wrapper (rmbg.money.payer.Payer over Policy.pay; issue #59), seen from outside:
a fake vendor that reads the paid request and then drops the connection (its fate unknown) gets it once
through each door, and each door leaves the same record in the ledger: the call's estimate, settled as
"may have been billed". And from inside: no module outside the money rooms closes a hold itself.

The doors: the page's Remove, REST's /api/remove, Compare, AI backgrounds, a CLI batch (its scheduler
reserves first, the split form), the Ray engine's budget actor fed by the same per-image work (without
Ray itself: tests/test_ray.py runs it), `evaluate`, and a hosted clip (the library and `rmbg video`).
MCP, Benchmark and progressive results go through the page's Guarded, as Remove and Compare do.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

import rmbg
from rmbg import registry
from rmbg.money.ledger import Account, Hold, open_ledger
from rmbg.money.payer import Payer
from rmbg.money.paying import MAY_HAVE_BEEN_BILLED, Policy
from rmbg.providers.hosted.fal import FalBria, fal_bria
from rmbg.providers.hosted.retry import RetryPolicy
from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.fakes.fal import FalFake
from tests.support import source
from tests.test_hosted_video import _vendor, clip  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "cat.jpg"
FAST = RetryPolicy.immediate(max_attempts=3)
FAL_BRIA = Decimal("0.018")  # the price table's estimate of one fal-bria image


def records() -> list[tuple[str, str, Decimal | None, str]]:
    """Every hold in this test's ledger (RMBG_LEDGER, tests/conftest.py): provider, state, amount, note."""
    return [(row.provider, row.state, row.final, row.note) for row in open_ledger().holds(state=None)]


def paid_posts(fake: FalFake) -> int:
    """The jobs submitted to fal (its POSTs: an image, a replacement)."""
    return sum(call.method == "POST" for call in fake.calls)


def web_app(url: str, tmp_path: Path):
    from rmbg.webapp import AppConfig
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore

    providers = {"fal-bria": {"base_url": url, "retry": FAST}, "fal-bria-replace": {"base_url": url, "retry": FAST}}
    return App.create(AppConfig(provider_config=providers), store=OutputStore(tmp_path / "store"), cache=None)


def page(url: str, tmp_path: Path) -> None:
    from rmbg.webapp import Keys, Look, Session
    from rmbg.webapp.remove import actions

    with pytest.raises(rmbg.RmbgError, match="may have reached the provider and been billed"):
        actions.remove(Session(), str(EXAMPLE), "fal-bria", Look(), Keys(fal=FAL_KEY), web_app(url, tmp_path), 100)


def rest(url: str, tmp_path: Path) -> None:
    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from rmbg.webapp.rest import routes as rest

    web = FastAPI(routes=rest.routes(web_app(url, tmp_path), lambda: "u2netp", fetch=None))
    with TestClient(web) as client:
        answer = client.post(
            "/api/remove",
            files={"image": ("cat.jpg", EXAMPLE.read_bytes(), "image/jpeg")},
            data={"provider": "fal-bria"},
            headers={"X-Fal-Key": FAL_KEY},
        )
    assert answer.status_code >= 500 and "may have reached the provider and been billed" in answer.text


def compare(url: str, tmp_path: Path) -> None:
    from rmbg.webapp import Keys, Session
    from rmbg.webapp.compare import comparing

    session, _ = comparing.run(Session(), str(EXAMPLE), ["fal-bria"], Keys(fal=FAL_KEY), web_app(url, tmp_path))
    assert session.comparison is not None


def ai_background(url: str, tmp_path: Path) -> None:
    from rmbg.webapp import Keys
    from rmbg.webapp.replace import replacing

    with pytest.raises(rmbg.RmbgError, match="may have reached the provider and been billed"):
        replacing.replace(str(EXAMPLE), "a beach", None, "", None, 1, Keys(fal=FAL_KEY), web_app(url, tmp_path))


def cli_batch(url: str, tmp_path: Path) -> None:
    from rmbg.cli.main import main

    declared = registry.info("fal-bria")
    registry.register("fal-bria", lambda **kw: fal_bria(base_url=url, retry=FAST, **kw), declared)
    try:
        Image.new("RGB", (16, 12), (200, 30, 30)).save(tmp_path / "one.png")
        code = main(
            ["remove", str(tmp_path / "one.png"), "-o", str(tmp_path / "out"), "-p", "fal-bria", "--max-cost", "1"]
        )
    finally:
        registry.register("fal-bria", declared.factory, declared)
    assert code == 1
    assert MAY_HAVE_BEEN_BILLED in (tmp_path / "out" / "manifest.csv").read_text(encoding="utf-8")


def ray_budget_actor(url: str, tmp_path: Path) -> None:
    """What each Ray worker does for an image (rmbg.cli.ray_engine.Remover), on the actor's class itself."""
    from rmbg.cli import batch
    from rmbg.cli.budget import SharedBudget, kept_hold

    provider = FalBria(api_key=FAL_KEY, base_url=url, retry=FAST)
    image = tmp_path / "one.png"
    Image.new("RGB", (16, 12), (200, 30, 30)).save(image)
    item = batch.Item(image, "one.png", "one.png", tmp_path / "out" / "one.png")

    async def worker() -> batch.Outcome:
        budget = SharedBudget(Decimal(1), provider.id)
        held, _ = await budget.reserve(0, provider.estimate().usd)
        outcome = kept_hold(batch.process(item, provider, batch.Settings(), None), held or Decimal(0))
        await budget.settle(0, outcome)
        return outcome

    outcome = asyncio.run(worker())
    assert (outcome.status, outcome.may_be_billed) == ("failed", True)


def evaluate(url: str, tmp_path: Path) -> None:
    from rmbg.eval.run import evaluate

    for folder in ("images", "masks"):
        (tmp_path / "set" / folder).mkdir(parents=True)
    Image.new("RGB", (16, 12), (200, 30, 30)).save(tmp_path / "set" / "images" / "a.png")
    Image.new("L", (16, 12), 255).save(tmp_path / "set" / "masks" / "a.png")
    result = evaluate(tmp_path / "set", [FalBria(api_key=FAL_KEY, base_url=url, retry=FAST)], bootstrap=10)
    assert [(r.status, r.cost_source) for r in result.rows] == [("failed", MAY_HAVE_BEEN_BILLED)]


DOORS = [page, rest, compare, ai_background, cli_batch, ray_budget_actor, evaluate]
USES = {rest: pytest.mark.uses("starlette")}  # what the tiers cannot read through a parameter (tests/support/tiers.py)


@pytest.mark.parametrize("door", [pytest.param(door, id=door.__name__, marks=USES.get(door, ())) for door in DOORS])
def test_a_dropped_paid_request_costs_its_estimate_at_every_door_and_is_sent_once(door, tmp_path, monkeypatch):
    monkeypatch.setenv("FAL_KEY", FAL_KEY)  # the command line's key (the web doors use the visitor's)
    replaced = door is ai_background
    with FalFake() as fake:
        fake.inject("drop", op="submit")
        door(fake.url, tmp_path)
        assert paid_posts(fake) == 1
    provider, estimate = ("fal-bria-replace", rmbg.replace_estimate(1).usd) if replaced else ("fal-bria", FAL_BRIA)
    assert records() == [(provider, "settled", estimate, MAY_HAVE_BEEN_BILLED)]


def test_a_dropped_clip_costs_its_estimate_and_is_sent_once(clip):  # noqa: F811  (the fixture)
    """The same through the video door, on the operator's own accounts (the library's and `rmbg video`'s
    default payer): one billed second of fal's, $0.042."""
    vendor = _vendor("fal")
    with vendor.fake:
        vendor.fake.inject("drop", op=vendor.paid_op)
        with pytest.raises(rmbg.RmbgError, match="may have reached the provider and been billed"):
            rmbg.remove_video(clip, vendor.remover())
        assert len(vendor.paid_calls()) == 1
    assert records() == [("fal-bria-video", "settled", Decimal("0.042"), MAY_HAVE_BEEN_BILLED)]


# --- the two forms share one settle by fate ------------------------------------------------


def split_and_whole(fate: dict) -> tuple[list, list]:
    """The same call's ending through the split form (try_reserve now, settle_by_fate later) and the
    one-call form (Policy.pay with a call that ends that way): the ledger's records of each."""
    from rmbg.money.charging import current

    split = Payer(Policy(open_ledger()), (Account("batch:split", Decimal(1)),))
    hold = split.try_reserve(split.payment("fal-bria", FAL_BRIA))
    assert isinstance(hold, Hold)
    split.settle_by_fate(hold, FAL_BRIA, **fate)
    first = records()

    whole = Payer(split.policy, (Account("batch:whole", Decimal(1)),))

    def call():
        if fate.get("cost") is None:
            if fate["billable"]:
                current().dropped()
            raise rmbg.RmbgError("the vendor's answer")
        return fate["cost"]

    try:
        whole.pay(whole.payment("fal-bria", FAL_BRIA), call, lambda usd: usd)
    except rmbg.RmbgError:
        pass
    return first, records()[len(first) :]


@pytest.mark.parametrize(
    "fate, record",
    [
        ({"billable": False}, ("released", Decimal(0), "")),
        ({"billable": True}, ("settled", FAL_BRIA, MAY_HAVE_BEEN_BILLED)),
        ({"billable": True, "cost": Decimal("0.02")}, ("settled", Decimal("0.02"), "")),
    ],
    ids=["not-sent", "fate-unknown", "accepted"],
)
def test_the_split_form_and_the_one_call_form_record_the_same(fate, record):
    split, whole = split_and_whole(fate)
    assert [r[1:] for r in split] == [r[1:] for r in whole] == [record]


# --- the day a call counts against ----------------------------------------------------------


def test_a_run_across_midnight_counts_each_call_against_the_day_its_hold_was_taken():
    """docs/money.md: a batch started at 23:59:59 UTC whose next call is held at 00:00:01 counts the first
    call against the old day and the second against the new one (Payer.operator names the day per call)."""
    now = [1_700_006_399.0]  # 2023-11-14 23:59:59 UTC
    payer = Payer.operator("batch", Decimal(1), Policy(open_ledger(), clock=lambda: now[0]))
    for _ in range(2):
        hold = payer.try_reserve(payer.payment("fal-bria", FAL_BRIA))
        assert isinstance(hold, Hold)
        now[0] += 2  # the call takes two seconds
        payer.settle_by_fate(hold, FAL_BRIA, billable=True, cost=FAL_BRIA)
    policy = payer.policy
    assert (policy.spent("day:2023-11-14"), policy.spent("day:2023-11-15")) == (FAL_BRIA, FAL_BRIA)
    assert payer.spent() == 2 * FAL_BRIA  # the batch's own account: both


# --- from inside: one wrapper -----------------------------------------------------------------

MONEY = ("rmbg/money/paying.py", "rmbg/money/payer.py", "rmbg/money/price_watch.py", "rmbg/money/ledger/")
BY_HAND = {"rmbg/cli/ledger_cmd.py"}  # `rmbg ledger settle`: the operator closes a hold by hand
CLOSES = {"settle", "release", "reserve", "try_reserve", "pay", "settle_by_fate", "close_failed"}


def offenders(name: str, nodes: Iterable[ast.AST]) -> list[str]:
    """The calls in module `name` (its tree's `nodes`) that reserve or close a hold on a policy or a ledger itself."""
    if name.startswith(MONEY) or name in BY_HAND:
        return []
    found = []
    for node in nodes:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in CLOSES:
            receiver = ast.unparse(node.func.value).lower()
            if "policy" in receiver or "ledger" in receiver:
                found.append(f"{name}:{node.lineno} {ast.unparse(node.func)}")
    return found


def test_no_module_outside_money_reserves_or_closes_a_hold_on_the_policy_or_the_ledger_itself():
    """Outside the money rooms, holds are taken and closed only through a Payer (rmbg.money.paying): no call
    of policy.settle / ledger.release / ... elsewhere, and one class named Payer."""
    found, payers = [], []
    for path in source.python_files(ROOT / "rmbg"):
        name, nodes = path.relative_to(ROOT).as_posix(), source.walk(source.parse(path))
        found += offenders(name, nodes)
        payers += [name for node in nodes if isinstance(node, ast.ClassDef) and node.name == "Payer"]
    assert found == [] and payers == ["rmbg/money/payer.py"]


def test_the_check_sees_a_hold_closed_outside_money():
    """The check above catches what it looks for: the CLI's old Budget.settle, a guard paying on its ledger."""
    text = (
        "def settle(self, hold, outcome, estimate):\n"
        "    self.policy.settle(hold, outcome.cost.usd, priced=True)\n"
        "    payer.ledger.pay(session_id, provider, usd, call, cost_of, server_key=True)\n"
        "    payer.settle_by_fate(hold, estimate, billable=True)\n"
    )
    nodes = list(ast.walk(ast.parse(text)))
    assert offenders("rmbg/cli/budget.py", nodes) == [
        "rmbg/cli/budget.py:2 self.policy.settle",
        "rmbg/cli/budget.py:3 payer.ledger.pay",
    ]
    assert offenders("rmbg/money/paying.py", nodes) == []
