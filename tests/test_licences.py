"""The licence switch (RMBG_COMMERCIAL_ONLY=1, rmbg.licences): every provider declares its
licence; with the switch on, the ones not licensed for commercial use (RMBG-1.4, RMBG-2.0,
an undeclared or unknown one) are left out of every list and refused, with the reason, by
the Python API, the CLI, the page's menus, video and the refiners, before anything is
built, run or paid; with it off, nothing changes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

import rmbg
from rmbg import refine, registry
from rmbg.cli.main import main
from rmbg.declarations import UNDECLARED, Licence, ProviderInfo
from rmbg.errors import ConfigurationError, LicenceError
from rmbg.licences import tag_licence
from rmbg.wording import words
from tests.support.providers import CountingProvider

BRIA = {"rmbg-1.4", "rmbg-2.0"}
NC = Licence("non-commercial", "test-nc", "https://example.org/nc")
RMBG14_REFUSED = (
    "rmbg-1.4 is refused: its licence, bria-rmbg-1.4 (non-commercial), does not allow commercial use, and "
    "RMBG_COMMERCIAL_ONLY=1 allows only models licensed for commercial use (licence: "
    "https://bria.ai/bria-huggingface-model-license-agreement/). Choose another provider (rmbg.list_providers() "
    "lists the allowed ones), or unset RMBG_COMMERCIAL_ONLY if your use is not commercial."
)
SITUATION = (
    "BRIA RMBG-1.4 (IS-Net, local) is not available here: its licence, bria-rmbg-1.4 (non-commercial), does not "
    "allow commercial use, and only models licensed for commercial use are offered here."
)


@pytest.fixture
def switch(monkeypatch):
    monkeypatch.setenv("RMBG_COMMERCIAL_ONLY", "1")


@pytest.fixture
def counted():
    """A removal provider declared non-commercial, whose factory counts the times it is built."""
    built: list[CountingProvider] = []

    def factory(**_):
        built.append(CountingProvider("nc-test"))
        return built[-1]

    registry.register("nc-test", factory, ProviderInfo("nc-test", "NC test model", "hosted", factory, licence=NC))
    yield built
    registry.unregister("nc-test")


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 10, 10)).save(buf, "PNG")
    return buf.getvalue()


# --- the declarations ---------------------------------------------------------------


def test_every_registered_provider_declares_its_licence():
    for declared in registry.declarations():
        licence = declared.licence
        assert licence is not UNDECLARED and licence.name and licence.link.startswith("https://"), declared.id
        assert licence.kind == ("non-commercial" if declared.id in BRIA else "commercial"), declared.id
        if declared.kind != "local":  # paid APIs: the vendor's terms, with a link to them
            assert licence.name.endswith(" terms") and "allow commercial use of results" in str(licence)
    assert registry.info("rmbg-2.0").licence.name == "CC BY-NC 4.0"
    assert (
        registry.info("birefnet-lite").licence.short == "MIT" and registry.info("u2netp").licence.short == "Apache-2.0"
    )
    assert registry.info("rmbg-1.4").licence.short == "non-commercial" and UNDECLARED.short == "licence unknown"
    from rmbg.video.providers import HOSTED_VIDEO, hosted_video_info

    assert all(hosted_video_info(pid).licence.commercial for pid in HOSTED_VIDEO)
    assert all(refine.refiner_licence(name).commercial for name in refine.list_refiners())


def test_the_docs_licence_table_is_the_declarations():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "docs" / "hooks" / "results.py"
    spec = importlib.util.spec_from_file_location("_docs_hook_licences", path)
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    rows = hook.on_page_markdown("<!-- licences -->").splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [d.id for d in registry.declarations()]
    assert rows[0] == (
        "| `rmbg-1.4` | non-commercial | bria-rmbg-1.4, non-commercial (BRIA model licence); commercial use needs an "
        "agreement with BRIA | <https://bria.ai/bria-huggingface-model-license-agreement/> |"
    )


def test_a_model_card_tag_gives_the_licence_class():
    assert tag_licence("MIT", "l").kind == "commercial" and tag_licence("apache-2.0", "l").kind == "commercial"
    assert tag_licence("cc-by-nc-4.0", "l").kind == "non-commercial"
    assert tag_licence("other", "l") == Licence("unknown", "other", "l", "the model card's license tag is 'other'")


# --- the setting --------------------------------------------------------------------


def test_a_bad_value_is_named_at_every_door(monkeypatch, capsys):
    monkeypatch.setenv("RMBG_COMMERCIAL_ONLY", "maybe")
    message = (
        "RMBG_COMMERCIAL_ONLY must be 1 (serve only models whose licence allows commercial use) or 0, got 'maybe'."
    )
    with pytest.raises(ConfigurationError) as raised:
        rmbg.list_providers()
    assert str(raised.value) == message
    from rmbg.webapp.config import AppConfig

    with pytest.raises(ConfigurationError, match="RMBG_COMMERCIAL_ONLY must be 1"):  # the app does not launch
        AppConfig.from_env({"RMBG_COMMERCIAL_ONLY": "maybe"})
    assert main(["providers"]) == 1
    assert capsys.readouterr().err == f"rmbg: error: {message}\n"


@pytest.mark.uses("torch")  # what it reaches runs `import torch` (a local torch model's state or build)
def test_off_by_default_everything_is_listed_and_built(monkeypatch, counted):
    monkeypatch.delenv("RMBG_COMMERCIAL_ONLY", raising=False)
    assert BRIA <= set(rmbg.list_providers()) and "nc-test" in rmbg.list_providers()
    assert rmbg.get_provider("rmbg-1.4").id == "rmbg-1.4"  # built; nothing loads before the first matte
    result = rmbg.remove_background(png(), "nc-test", cache=None)
    assert result.provider == "nc-test" and len(counted) == 1 and counted[0].calls == 1


# --- the Python API -----------------------------------------------------------------


def test_refused_providers_are_hidden_and_refused_with_the_setting_named(switch, counted):
    everything = rmbg.list_providers(refused=True)
    assert rmbg.list_providers() == [pid for pid in everything if pid not in BRIA | {"nc-test"}]
    with pytest.raises(LicenceError) as raised:
        rmbg.get_provider("rmbg-1.4")
    assert str(raised.value) == RMBG14_REFUSED
    with pytest.raises(LicenceError, match="^nc-test is refused: its licence, test-nc \\(non-commercial\\)"):
        rmbg.remove_background(png(), "nc-test", cache=None)
    assert counted == []  # never built, so never run nor paid
    assert registry.info("rmbg-1.4").id == "rmbg-1.4"  # still declared: `rmbg providers` shows why it is refused


def test_a_non_commercial_background_replacer_is_hidden_and_refused(switch):
    built = []
    declared = ProviderInfo("nc-replace", "NC replacer", "replace", lambda **_: built.append(1), licence=NC)
    registry.register("nc-replace", declared.factory, declared)
    try:
        assert registry.list_replacers() == ["fal-bria-replace"]  # commercial terms: still offered
        with pytest.raises(LicenceError, match="^nc-replace is refused: its licence, test-nc \\(non-commercial\\)"):
            registry.get_replacer("nc-replace")
        assert built == []
    finally:
        registry.unregister("nc-replace")


def test_each_door_says_the_refusal_in_its_own_words(switch):
    with pytest.raises(LicenceError) as raised:
        rmbg.get_provider("rmbg-1.4")
    exc = raised.value
    assert words(exc, "python") == RMBG14_REFUSED
    assert words(exc, "cli") == (
        f"{SITUATION} RMBG_COMMERCIAL_ONLY=1 is set: choose another --provider (`rmbg providers` shows each "
        "model's licence)."
    )
    assert (
        words(exc, "page")
        == f"{SITUATION} Pick another model from the Provider list: it shows only the models this server offers."
    )
    assert words(exc, "rest") == f'{SITUATION} Send another "provider"; leave it out for this server\'s default.'
    assert words(exc, "mcp") == f"{SITUATION} Pass another provider, or leave it empty for this server's default."
    assert all("RMBG_COMMERCIAL_ONLY" not in words(exc, door) for door in ("page", "rest", "mcp"))


def test_a_provider_registered_without_a_licence_is_unknown_and_refused(switch):
    built = []
    rmbg.register("undeclared", lambda **_: built.append(1) or CountingProvider("undeclared"))
    try:
        assert "undeclared" not in rmbg.list_providers()
        with pytest.raises(LicenceError) as raised:
            rmbg.get_provider("undeclared")
        assert str(raised.value).startswith(
            "undeclared is refused: its licence is not known to allow commercial use (no licence declared with "
            "this provider), and RMBG_COMMERCIAL_ONLY=1 allows only models licensed for commercial use. Choose"
        )
        assert built == []
    finally:
        registry.unregister("undeclared")


def test_hub_models_are_judged_by_their_model_card(switch, hf_cache):
    commit = "0123456789abcdef0123456789abcdef01234567"
    hf_cache.add("acme/seg-mit", commit, "README.md", b"---\nlicense: mit\ntags: [image-segmentation]\n---\n# card\n")
    hf_cache.add("acme/seg-nc", commit, "README.md", b"---\nlicense: cc-by-nc-4.0\n---\n# card\n")
    assert registry.licence_of("hf:acme/seg-mit").kind == "commercial"
    assert rmbg.get_provider("hf:acme/seg-mit").id == "hf:acme/seg-mit"  # built: its card says MIT
    with pytest.raises(
        LicenceError, match="^hf:acme/seg-nc is refused: its licence, cc-by-nc-4.0 \\(non-commercial\\)"
    ):
        rmbg.get_provider("hf:acme/seg-nc")
    with pytest.raises(LicenceError) as raised:  # no card here, and the suite is offline: unknown
        rmbg.get_provider("hf:acme/no-card")
    assert str(raised.value).startswith(
        "hf:acme/no-card is refused: its licence is not known to allow commercial use (its model card could "
        "not be read here: "
    )


def test_weights_of_ones_own_are_not_covered_by_the_declaration(switch, tmp_path):
    own = tmp_path / "model.safetensors"  # could be RMBG-2.0's weights: BiRefNet's network loads them
    own.write_bytes(b"x")
    with pytest.raises(LicenceError) as raised:
        rmbg.get_provider("birefnet", weights=own)
    assert str(raised.value).startswith(
        "birefnet is refused: its licence is not known to allow commercial use (weights given as a file "
        "(weights=): no licence is declared for them)"
    )
    with pytest.raises(LicenceError, match="^sam2 is refused: its licence is not known to allow commercial use"):
        rmbg.get_provider("sam2", model="someone/sam-finetune")  # no model card here
    assert rmbg.get_provider("sam2", model="facebook/sam2.1-hiera-small").id == "sam2"  # listed in its MODELS


@pytest.mark.uses("torch")  # the candidates' status
def test_the_default_leaves_out_bria_and_says_why(switch, monkeypatch, tmp_path):
    monkeypatch.setenv("RMBG_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(rmbg.defaults, "on_gpu", lambda: False)
    chosen, reason = rmbg.default_provider()
    assert chosen == "u2netp"
    assert (
        "; BRIA RMBG-1.4 (IS-Net, local): left out, its licence (bria-rmbg-1.4) does not allow commercial use; "
        in reason
    )
    assert reason.endswith(
        ". Pick one with provider= / --provider (RMBG_COMMERCIAL_ONLY=1 leaves out the models not licensed for "
        "commercial use)."
    )
    assert "HF_TOKEN (with the terms" not in reason  # a token would not make RMBG-1.4 usable here


@pytest.mark.uses("torch")  # the GPU defaults' status
def test_on_a_gpu_the_default_is_birefnet_not_rmbg20(monkeypatch, hf_cache):
    from rmbg.models.specs import RMBG_20

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    hf_cache.add(RMBG_20.repo_id, RMBG_20.revision, RMBG_20.filename, b"stand-in")  # status reads no bytes
    hf_cache.add("ZhengPeng7/BiRefNet", "0123456789abcdef0123456789abcdef01234567", "model.safetensors", b"x")
    monkeypatch.setattr(rmbg.defaults, "on_gpu", lambda: True)
    assert rmbg.default_provider()[0] == "rmbg-2.0"  # the switch off: the best open model
    monkeypatch.setenv("RMBG_COMMERCIAL_ONLY", "1")
    chosen, reason = rmbg.default_provider()
    assert chosen == "birefnet"
    assert reason.startswith("BiRefNet Swin-L (MIT, local) on the GPU: the best open model here (")
    assert reason.endswith(
        "(BRIA RMBG-2.0 (BiRefNet Swin-L, local): left out, its licence (CC BY-NC 4.0) does not allow commercial "
        "use; BRIA RMBG-1.4 (IS-Net, local): left out, its licence (bria-rmbg-1.4) does not allow commercial use) "
        "[RMBG_COMMERCIAL_ONLY=1]"
    )


# --- video and refiners --------------------------------------------------------------


def test_video_lists_and_refuses_the_same_models(switch):
    from rmbg.video.api import video_provider
    from rmbg.video.providers import list_video_providers

    ids = [p.id for p in list_video_providers()]
    assert not BRIA & set(ids) and {"u2netp", "fal-bria-video", "runware-bria-video"} <= set(ids)
    with pytest.raises(LicenceError, match="^rmbg-2.0 is refused: its licence, CC BY-NC 4.0"):
        video_provider("rmbg-2.0")  # what rmbg.remove_video resolves before it opens the clip


def test_refiners_and_subject_picking_are_refused_by_their_weights_licence(switch, monkeypatch):
    built = []
    refine.register_refiner("nc-refiner", lambda **_: built.append(1), NC)
    try:
        assert "nc-refiner" not in refine.list_refiners() and "vitmatte" in refine.list_refiners()
        with pytest.raises(LicenceError, match="^nc-refiner is refused: its licence, test-nc"):
            refine.get_refiner("nc-refiner")
        assert built == []
    finally:
        refine._REFINERS.pop("nc-refiner")
        refine._LICENCES.pop("nc-refiner")
    assert refine.get_refiner("vitmatte").id == "vitmatte"  # Apache-2.0 weights: allowed
    with pytest.raises(LicenceError, match="^vitmatte is refused: its licence is not known to allow commercial use"):
        refine.get_refiner("vitmatte", model="someone/other-matting")  # no model card here
    monkeypatch.setitem(refine._LICENCES, "sam2-pick", NC)  # were SAM 2's weights non-commercial
    provider = CountingProvider("counted")
    with pytest.raises(LicenceError, match="^sam2-pick is refused: its licence, test-nc"):
        rmbg.remove_background(png(), provider, points=[(1, 1, True)], cache=None)
    assert provider.calls == 0  # refused before the (paid) provider was called


# --- the command line and the page's menus -------------------------------------------


@pytest.mark.uses("torch")  # every provider's status, and the default's
def test_rmbg_providers_shows_each_licence_and_the_refused(switch, capsys):
    assert main(["providers"]) == 0
    text = capsys.readouterr().out
    table, rest = text.split("\n\n")
    lines = table.splitlines()
    assert lines[0].split() == ["provider", "kind", "state", "price", "download", "licence", "note"]
    at = lines[0].index("licence")
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert by_id["rmbg-1.4"].split()[1:4] == ["local", "refused", "-"]
    assert by_id["rmbg-1.4"][at:].split("  ")[0] == "non-commercial" and SITUATION in by_id["rmbg-1.4"]
    assert by_id["u2netp"][at:].startswith("Apache-2.0 ") and by_id["fal-bria"][at:].startswith("fal.ai terms ")
    assert (
        "licence: paid API: fal.ai's terms allow commercial use of results (https://fal.ai/terms)" in by_id["fal-bria"]
    )
    assert rest.splitlines()[-1] == (
        "RMBG_COMMERCIAL_ONLY=1: the providers whose licence does not allow commercial use are refused."
    )
    assert rest.startswith("default: u2netp (")


def test_rmbg_remove_refuses_with_the_setting_named_and_writes_nothing(switch, tmp_path, capsys):
    photo = tmp_path / "in.png"
    photo.write_bytes(png())
    assert main(["remove", str(photo), "-o", str(tmp_path / "out"), "--provider", "rmbg-1.4"]) == 2
    assert capsys.readouterr().err == (
        f"rmbg: error: {SITUATION} RMBG_COMMERCIAL_ONLY=1 is set: choose another --provider (`rmbg providers` "
        "shows each model's licence).\n"
    )
    assert not any(Path(tmp_path / "out").rglob("*.png"))


def test_rmbg_evaluate_and_rmbg_video_refuse_before_reading_anything(switch, tmp_path, capsys):
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "eval"
    assert main(["evaluate", str(repo / "data" / "davis2016-sample"), "--provider", "rmbg-1.4", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"rmbg: error: {SITUATION} RMBG_COMMERCIAL_ONLY=1 is set")
    env = {**os.environ, "PYTHONPATH": str(repo), "RMBG_COMMERCIAL_ONLY": "1"}
    clip = repo / "data" / "davis2016-clips" / "blackswan"
    command = [
        sys.executable,
        "-m",
        "rmbg",
        "video",
        str(clip),
        "-o",
        str(tmp_path / "clips"),
        "--provider",
        "rmbg-2.0",
    ]
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith(
        "rmbg: error: BRIA RMBG-2.0 (BiRefNet Swin-L, local) is not available here: its licence, CC BY-NC 4.0 "
        "(non-commercial), does not allow commercial use"
    )
    assert not out.exists() and not (tmp_path / "clips").exists()


@pytest.mark.uses("torch")  # every provider's status
def test_the_page_menus_offer_only_what_the_switch_allows_with_each_licence(switch):
    from rmbg.webapp import AppConfig, catalog
    from rmbg.webapp.video import videos

    offered = catalog.choices(catalog.Keys(), AppConfig())
    assert [pid for _, pid in offered] == rmbg.list_providers()
    labels = dict((pid, label) for label, pid in offered)
    assert labels["u2netp"].endswith(" · Apache-2.0") and labels["fal-bria"].endswith(" · fal.ai terms")
    clips = dict((pid, label) for label, pid in videos.choices(catalog.Keys(), AppConfig()))
    assert not BRIA & set(clips) and clips["fal-bria-video"].endswith("/s of video · fal.ai terms")
