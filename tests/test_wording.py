"""Each front door says an error in its own words (rmbg.wording), and the
page's time and cost line (rmbg.webapp.costs, rmbg.webapp.spending)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from PIL import Image

import rmbg
from rmbg.errors import InvalidImageError, MissingCredentialsError, ModelUnavailableError
from rmbg.image.framing import framing_of
from rmbg.result import Result
from rmbg.types import Cost, Seconds
from rmbg.webapp.context import RUNS_KEPT, PriceBook
from rmbg.webapp.costs import BENCHMARK_CPU_SECONDS, projection_text, result_line
from rmbg.wording import clip_length, words


def test_a_missing_key_is_said_in_each_doors_words(monkeypatch):
    monkeypatch.delenv("FAL_KEY", raising=False)
    with pytest.raises(MissingCredentialsError) as caught:
        rmbg.remove_background(Image.new("RGB", (8, 8)), "fal-bria", cache=None)
    exc = caught.value
    assert "pass api_key=... or set the environment variable FAL_KEY" in words(exc, "python") == str(exc)
    assert words(exc, "page") == (
        "fal-bria needs an API key. Paste your fal.ai key in the *API keys for hosted "
        "providers* box at the top of the page, or pick a local model from the Provider "
        "list (free)."
    )
    assert (
        words(exc, "rest")
        == "fal-bria needs an API key. Send your key in the X-Fal-Key header, or choose a local provider."
    )
    assert words(exc, "mcp") == "fal-bria needs an API key. Pass your key as fal_key, or choose a local provider."
    assert words(exc, "cli") == (
        "fal-bria needs an API key. Set the environment variable FAL_KEY "
        "(`export FAL_KEY=...`), or choose a local --provider."
    )


@pytest.mark.uses("torch")
def test_a_model_that_cannot_be_downloaded_names_the_provider_list_on_the_page(hf_cache, monkeypatch):
    from rmbg.providers.local.hf_segmentation import hf_provider
    from tests.tiny_transformers import REV

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as caught:
        hf_provider("hf:nobody/nothing", revision=REV).matte(Image.new("RGB", (8, 8)))
    exc = caught.value
    assert "pass model='path/to/folder'" in words(exc, "python")
    situation = "nobody/nothing is not in the Hugging Face cache and downloads are switched off here"
    for door in ("page", "rest", "mcp", "cli"):
        said = words(exc, door)
        assert said.startswith(situation + (" (HF_HUB_OFFLINE is set). " if door == "cli" else ". "))
        assert "model=" not in said and "weights=" not in said, door
    assert words(exc, "page").endswith(
        "Pick another model from the Provider list; this server cannot download this one now."
    )
    assert "--provider" in words(exc, "cli")


def test_a_margin_without_crop_names_each_doors_controls():
    with pytest.raises(InvalidImageError) as caught:
        framing_of(margin="10%")
    exc = caught.value
    assert str(exc) == "A margin or alignment needs crop=True or a canvas (canvas=...)."
    assert words(exc, "cli").endswith("Add --crop or --canvas, or leave out --margin and --align.")
    assert words(exc, "page").endswith("tick *Crop to subject* or choose a *Canvas*, or reset the *Margin* field.")
    assert words(exc, "rest").endswith("Send crop=true or a canvas, or leave out margin.")
    with pytest.raises(InvalidImageError) as aligned:
        framing_of(align="bottom")
    assert words(aligned.value, "page").endswith("reset the *Subject position* field.")


def test_an_error_without_a_remedy_reads_the_same_everywhere():
    exc = InvalidImageError("Upload an image first.")
    assert {words(exc, door) for door in ("python", "cli", "page", "rest", "mcp")} == {"Upload an image first."}


def local_result(seconds: float, cached: bool = False) -> Result:
    img = Image.new("RGB", (4, 4))
    cost = Cost(Decimal(0), "free") if cached else Cost(Decimal("0.00001"), "compute")
    return Result(img, img.convert("L"), img, "u2netp", Seconds(seconds, seconds + 0.1), cost, cached=cached)


def test_the_projection_is_the_servers_median_the_same_in_every_session():
    """Every visitor sees one monthly figure per model on one server (it used to differ per session)."""
    book = PriceBook()
    for seconds in (1.0, 9.0, 2.0):  # one slow image does not move the figure
        book.observe(local_result(seconds), "local")
    book.observe(local_result(50.0, cached=True), "local")  # a cached matte timed nothing
    figure = "**u2netp $2.78 (compute estimate, median of 3 runs on this server)**"  # 2 s at $0.05/h x 100,000
    assert figure in projection_text(book, 100_000, local_result(9.0))
    assert figure in projection_text(book, 100_000, local_result(0.5))  # not this image alone
    for seconds in range(RUNS_KEPT + 5):
        book.observe(local_result(float(seconds)), "local")
    assert book.timings()["u2netp"][2] == RUNS_KEPT


def test_a_cached_local_result_keeps_its_row_with_the_benchmark_figure():
    """Another session's cache answered: nothing was timed here, yet the model's row stays."""
    text = projection_text(PriceBook(), 100_000, local_result(0.0, cached=True))
    assert BENCHMARK_CPU_SECONDS["u2netp"] == 0.17
    assert "**u2netp $0.24 (compute estimate, benchmark CPU figure)**" in text  # 0.17 s at $0.05/h x 100,000


def hosted_result(provider: str, usd: str) -> Result:
    img = Image.new("RGB", (4, 4))
    return Result(img, img.convert("L"), img, provider, Seconds(0.5, 0.6), Cost(Decimal(usd), "reported"))


def test_a_hosted_provider_is_projected_at_its_reported_price_for_every_session():
    """Runware BiRefNet has no published price: the caps reserve $0.002, its vendor reports less.
    Once one call reported its price here, every session's line uses that price, not the reservation."""
    book = PriceBook()
    before = projection_text(book, 100_000, None)
    assert "runware-birefnet $200.00 (assumed price)" in before
    book.observe(hosted_result("runware-birefnet", "0.0006"), "hosted")
    after = projection_text(book, 100_000, None)
    assert "runware-birefnet $60.00 (reported here)" in after and "runware-birefnet $200.00" not in after


def test_one_figure_per_service_remove_bg_is_not_shown_twice():
    """remove.bg was on the line twice, at its assumed credit price and at a blog's figure 4.6x lower."""
    text = projection_text(PriceBook(), 100_000, None)
    assert text.count("remove") == 1 and "remove-bg $23,000.00 (assumed price)" in text
    assert "RMBG-2.0 self-hosted A100 (benchmark blog) $40.00" in text


def test_the_result_line_shows_the_models_seconds_and_the_total():
    assert result_line(local_result(0.75), "U2-Net-p", total_s=4.3).startswith(
        "**U2-Net-p** · model 0.75 s · total 4.30 s · this image: $"
    )
    assert result_line(local_result(0.0, cached=True), "U2-Net-p", total_s=0.4).startswith(
        "**U2-Net-p** · cached matte · total 0.40 s · this image: free (cached matte, no new charge)"
    )


@pytest.mark.parametrize(
    "text, shown",
    [
        ("u2netp.onnx is not in /tmp/tmp.q6/cache and X", "u2netp.onnx is not in cache and X"),
        ("download https://github.com/a/b/u2netp.onnx to /root/.cache/rmbg/u2netp.onnx.", None),
        ("(/srv/app/weights/model.safetensors)", "(model.safetensors)"),
        ("within 1/255, and/or 2/3 of it", "within 1/255, and/or 2/3 of it"),
    ],
)
def test_the_web_doors_never_show_a_path_on_the_server(text, shown):
    said = words(ModelUnavailableError(text), "page")
    if shown is not None:
        assert said == shown
    assert "/tmp" not in said and "/root" not in said and "/srv" not in said
    assert words(ModelUnavailableError(text), "rest") == said == words(ModelUnavailableError(text), "mcp")
    assert words(ModelUnavailableError(text), "cli") == text  # the operator's own machine: the whole path


@pytest.mark.parametrize(
    "text, shown",
    [
        (
            "The clip is 80 MB, over this server's limit of 25 MB (RMBG_VIDEO_MAX_MB). Trim or compress it first.",
            "The clip is 80 MB, over this server's limit of 25 MB. Trim or compress it first.",
        ),
        (
            "vitmatte is not on this server, and visitors may not cause that download. Run without it "
            "(the operator can allow it with RMBG_VISITOR_DOWNLOADS=vitmatte).",
            "vitmatte is not on this server, and visitors may not cause that download. Run without it.",
        ),
        ("Set HF_TOKEN=hf_x to read it; see RMBG_LEDGER.", "Set a server setting to read it; see a server setting."),
        ("FAL_KEY is not set", "the fal.ai key is not set"),
        ("needs PHOTOROOM_API_KEY (a Photoroom API key)", "needs a Photoroom API key"),
        ("Set FAL_KEY=abc first", "Set a server setting first"),
        ("A run over 5 MB_PER_S is fine (RMBG is a name)", "A run over 5 MB_PER_S is fine (RMBG is a name)"),
    ],
)
def test_the_web_doors_never_name_a_setting(text, shown):
    """Settings are the operator's (docs, logs, the CLI): a visitor reads the sentence without them."""
    for door in ("page", "rest", "mcp"):
        assert words(ModelUnavailableError(text), door) == shown
    assert words(ModelUnavailableError(text), "cli") == text


def test_what_a_visitor_was_told_without_a_setting_is_logged_with_it_for_the_operator(caplog):
    from rmbg.webapp.catalog import Keys
    from rmbg.webapp.messages import safe_message

    exc = ModelUnavailableError("Too long (RMBG_VIDEO_MAX_SECONDS). Trim it.")
    with caplog.at_level("INFO", logger="rmbg.app"):
        assert safe_message(exc, Keys(), "page") == "Too long. Trim it."
    assert "for the operator: Too long (RMBG_VIDEO_MAX_SECONDS). Trim it." in caplog.text


@pytest.mark.uses("onnxruntime")  # building the ONNX providers imports it, though nothing runs
def test_compares_reasons_are_in_the_pages_words(tmp_path):
    """Models that cannot be had here (offline, empty caches): Compare's status column tells a visitor
    what to do on the page, never to pass weights=, set a variable or look in a server folder."""
    from rmbg.webapp import AppConfig, Keys, Session
    from rmbg.webapp.compare import comparing
    from rmbg.webapp.context import App
    from rmbg.webapp.look import OutputStore
    from tests.support.app import EXAMPLE

    app = App.create(AppConfig(), store=OutputStore(tmp_path), cache=None)
    ids = ["isnet-general", "birefnet", "rmbg-2.0", "rmbg-1.4"]
    _, view = comparing.run(Session(), str(EXAMPLE), ids, Keys(), app)
    reasons = {row[0]: row[3] for row in view.table}  # the status column
    assert set(reasons) == set(ids)
    for pid, reason in reasons.items():
        assert reason.endswith("Pick another model from the Provider list; this server cannot download this one now.")
        for said in ("weights=", "RMBG_", "HF_HUB_OFFLINE", "/tmp", "pip ", "export "):
            assert said not in reason, (pid, reason)
    assert "gated: the server needs a Hugging Face token" in reasons["rmbg-2.0"]


@pytest.mark.uses("torch")  # what it reaches runs `import torch` (a local torch model's state or build)
def test_the_default_models_note_is_one_line_with_the_why_folded():
    """The note under the provider menu was a 13-line paragraph (Hub errors, provider= / --provider)
    that pushed *Remove background* below the fold: one sentence now, the rest in a <details>."""
    from rmbg.webapp.catalog import default_note

    note = default_note()  # offline, empty caches here: no better model can run
    head, _, folded = note.partition("\n\n")
    assert head.startswith("Default: U2-Net-p (ungated, runs offline): no better model answers within")
    assert len(head) < 120
    assert folded.startswith("<details><summary>Why not a better model</summary>") and folded.endswith("</details>")
    assert "provider=" not in note and "--provider" not in note and "/tmp" not in note


@pytest.mark.parametrize(
    "frames, seconds, said",
    [
        (1, 1 / 24, "1 frame, 0.042 s of video"),  # was "1 frames, 0.0 s of video"
        (1, 1 / 60, "1 frame, 0.017 s of video"),
        (2, 2 / 24, "2 frames, 0.083 s of video"),
        (3, 0.1, "3 frames, 0.1 s of video"),
        (3, 3 / 24, "3 frames, 0.12 s of video"),
        (23, 23 / 24, "23 frames, 0.96 s of video"),
        (24, 0.999, "24 frames, 1.0 s of video"),  # two digits that round to 1 read in tenths, as 1 s and up
        (60, 2.4, "60 frames, 2.4 s of video"),
        (0, 0.0, "0 frames, 0 s of video"),
        (1, 1e-5, "1 frame, 0.00001 s of video"),
    ],
)
def test_a_clip_length_under_a_tenth_of_a_second_never_reads_as_zero(frames, seconds, said):
    assert clip_length(frames, seconds) == said
