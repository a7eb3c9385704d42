"""A Photoroom sandbox result (free, watermarked) and a preview (0.25 credit)
at every door, from real calls to the fake Photoroom: the page's cost line
and projection, the REST headers, the MCP file name's word, the CLI's
summary, and the quality scores (`evaluate` and the Benchmark tab), which
report a watermarked result but never rank or average it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from PIL import Image, ImageDraw

import rmbg
from rmbg.cli.main import main
from rmbg.eval.run import WATERMARKED, evaluate
from rmbg.money.pricing import hosted_projection
from rmbg.providers.hosted.photoroom import SANDBOX_NOTE
from rmbg.providers.hosted.retry import RetryPolicy
from rmbg.registry import get_provider
from tests.fakes.photoroom import PhotoroomFake

KEY = "pr-test-key"
SANDBOX = "sandbox_" + KEY


@pytest.fixture
def fake():
    with PhotoroomFake() as server:
        yield server


def photoroom(fake, key=KEY, **config):
    return get_provider("photoroom", api_key=key, base_url=fake.url, retry=RetryPolicy.immediate(), **config)


def picture() -> Image.Image:
    img = Image.new("RGB", (40, 30), (30, 160, 40))
    ImageDraw.Draw(img).ellipse((10, 5, 30, 25), fill=(220, 30, 20))
    return img


def test_the_page_shows_a_sandbox_result_as_free_and_watermarked_and_projects_the_paid_price(fake):
    from rmbg.webapp.compare.comparing import caption
    from rmbg.webapp.context import PriceBook
    from rmbg.webapp.costs import projection_text, result_line

    result = rmbg.remove_background(picture(), photoroom(fake, SANDBOX), cache=None)
    line = result_line(result, "Photoroom")
    assert line.endswith(f"this image: free, watermarked ({SANDBOX_NOTE})") and "cached" not in line
    assert caption(result).endswith("free · watermarked (sandbox key)")
    assert "photoroom $2,000.00 (assumed price)" in projection_text(PriceBook(), 100_000, result)
    assert result.meta["watermark"] == SANDBOX_NOTE and fake.images_billed == 0


def test_the_page_prices_and_projects_a_preview_at_its_quarter_credit(fake):
    from rmbg.webapp.context import PriceBook
    from rmbg.webapp.costs import projection_text, result_line

    result = rmbg.remove_background(picture(), photoroom(fake, size="preview"), cache=None)
    assert "this image: $0.0050 (estimated)" in result_line(result, "Photoroom")
    assert "**photoroom $500.00 (as this image was priced)**" in projection_text(PriceBook(), 100_000, result)
    full = rmbg.remove_background(picture(), photoroom(fake), cache=None)
    assert "**photoroom $2,000.00 (assumed price)**" in projection_text(PriceBook(), 100_000, full)


def test_the_monthly_projection_lists_the_previews_vendors_price_apart():
    rows = {row.provider: row for row in hosted_projection(100_000, include_references=False)}
    assert rows["photoroom"].per_month == Decimal("2000.00")
    assert rows["photoroom (preview)"].per_month == Decimal("500.00")
    assert rows["remove-bg (preview)"].per_image == Decimal("0.0575")


def test_rest_headers_say_watermarked(fake):
    from rmbg.webapp.look import Look
    from rmbg.webapp.rest.routes import headers_of

    marked = rmbg.remove_background(picture(), photoroom(fake, SANDBOX), cache=None)
    paid = rmbg.remove_background(picture(), photoroom(fake), cache=None)
    assert headers_of(marked, Look(), "x")["X-Rmbg-Watermarked"] == "true"
    assert headers_of(marked, Look(), "x")["X-Rmbg-Cost-USD"] == "0"
    assert headers_of(paid, Look(), "x")["X-Rmbg-Watermarked"] == "false"


def test_the_cli_says_which_results_are_watermarked_and_asks_no_yes_for_a_free_run(fake, tmp_path, monkeypatch, capsys):
    (tmp_path / "in").mkdir()
    picture().save(tmp_path / "in" / "a.png")
    monkeypatch.setenv("PHOTOROOM_API_KEY", SANDBOX)
    monkeypatch.setenv("RMBG_PHOTOROOM_URL", fake.url)
    assert main(["remove", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--provider", "photoroom"]) == 0
    out, err = capsys.readouterr()
    assert f"1 images x $0 = $0 ({SANDBOX_NOTE})" in err
    assert "Watermarked (1): free results with the vendor's watermark (a Photoroom sandbox key)" in out
    assert (tmp_path / "out" / "a.png").exists() and fake.images_billed == 0 and fake.sandbox_calls == 1


def _dataset(root) -> None:
    for folder in ("images", "masks"):
        (root / folder).mkdir()
    for name in ("a", "b"):
        picture().save(root / "images" / f"{name}.png")
        mask = Image.new("L", (40, 30), 0)
        ImageDraw.Draw(mask).ellipse((10, 5, 30, 25), fill=255)
        mask.save(root / "masks" / f"{name}.png")


def test_evaluate_scores_a_watermarked_result_but_never_averages_or_ranks_it(fake, tmp_path):
    _dataset(tmp_path)
    marked = evaluate(tmp_path, [photoroom(fake, SANDBOX)], bootstrap=10)
    assert [(r.status, r.error) for r in marked.rows] == [("excluded", WATERMARKED)] * 2
    assert all(r.values["iou"] is not None for r in marked.rows)  # scored, and reported per image
    summary = marked.overall("photoroom")
    assert (summary.n_images, summary.n_failed, summary.n_excluded) == (0, 0, 2)
    assert "composite_seg" not in summary.metrics and summary.excluded_reason == WATERMARKED
    assert f"Not ranked: photoroom: 2 result(s) left out of the means ({WATERMARKED})" in marked.to_markdown()
    paid = evaluate(tmp_path, [photoroom(fake)], bootstrap=10)
    assert [r.status for r in paid.rows] == ["ok", "ok"] and "composite_seg" in paid.overall("photoroom").metrics
    assert fake.images_billed == 2 and fake.sandbox_calls == 2


def test_the_benchmark_tab_shows_the_reason_instead_of_a_rank(fake, tmp_path):
    from rmbg.webapp.benchmark import report as R
    from rmbg.webapp.benchmark.scoring import Scored

    _dataset(tmp_path)
    scored = Scored(evaluate(tmp_path, [photoroom(fake, SANDBOX)], bootstrap=10), 1000, False)
    (row,) = R.summary_rows(scored)
    assert row[1] == f"not ranked: {WATERMARKED}" and row[6] == 0  # composite cell; failed
    status = R.status_line(scored, Decimal(0))
    assert "2 provider runs, 0 failed." in status and f"Not ranked: photoroom x2 ({WATERMARKED})." in status


def _app(tmp_path, fake, cap: str, **photoroom):
    from rmbg.webapp import AppConfig
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore

    settings = {"base_url": fake.url, "retry": RetryPolicy.immediate(), **photoroom}
    config = AppConfig(provider_config={"photoroom": settings}, cap_usd=Decimal(cap))
    return App.create(config, store=OutputStore(tmp_path / "out"), cache=None)


def test_through_the_remove_tab_a_sandbox_key_passes_a_zero_cap_and_says_watermarked(fake, tmp_path):
    from rmbg.webapp import Keys, Look, Session
    from rmbg.webapp.remove import actions

    app = _app(tmp_path, fake, "0")
    picture().save(tmp_path / "a.png")
    _, out = actions.remove(
        Session(), str(tmp_path / "a.png"), "photoroom", Look(), Keys(photoroom=SANDBOX), app, 100, session_id="s"
    )
    assert f"this image: free, watermarked ({SANDBOX_NOTE})" in out.cost_line
    assert app.ledger.session_spent("s") == 0 and fake.sandbox_calls == 1 and fake.images_billed == 0


def test_through_the_remove_tab_previews_are_reserved_at_their_quarter_credit(fake, tmp_path):
    from rmbg.errors import BudgetError
    from rmbg.webapp import Keys, Look, Session
    from rmbg.webapp.benchmark.scoring import estimate
    from rmbg.webapp.remove import actions

    app = _app(tmp_path, fake, "0.012", size="preview")
    assert estimate(["photoroom", "u2netp"], 4, app) == Decimal("0.020")  # the Benchmark tab's estimate: 4 x $0.005
    picture().save(tmp_path / "a.png")
    for _ in range(2):
        _, out = actions.remove(
            Session(), str(tmp_path / "a.png"), "photoroom", Look(), Keys(photoroom=KEY), app, 100, session_id="s"
        )
        assert "this image: $0.0050 (estimated)" in out.cost_line
    with pytest.raises(BudgetError):
        actions.remove(
            Session(), str(tmp_path / "a.png"), "photoroom", Look(), Keys(photoroom=KEY), app, 100, session_id="s"
        )
    assert app.ledger.session_spent("s") == Decimal("0.010") and fake.images_billed == Decimal("0.5")
