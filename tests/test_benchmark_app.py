"""The Benchmark tab through its API (gradio_client), as a program would use it:
/benchmark, /benchmark_pair and /benchmark_vote, under the app's caps."""

from __future__ import annotations

import os
import zipfile
from decimal import Decimal

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from rmbg.eval.votes import VoteStore  # noqa: E402
from tests.fakes.fal import TEST_KEY as FAL_KEY  # noqa: E402
from tests.support.app import app_config, serve, submits  # noqa: E402
from tests.support.benchmark import DAVIS, FRAMES, png_bytes, votes_db  # noqa: E402,F401
from tests.u2netp_fixture import u2netp_path  # noqa: E402,F401


@pytest.fixture(scope="module")
def served(votes_db, u2netp_path):  # noqa: F811
    from tests.fakes.fal import FalFake
    from tests.fakes.runware import RunwareFake

    with FalFake() as fal, RunwareFake() as runware:
        with serve(app_config(fal, runware, cap_usd=Decimal("0.2"))) as url:
            yield url, fal


def photos(tmp_path, n=2):
    paths = []
    for i in range(n):
        path = tmp_path / f"photo{i}.png"
        path.write_bytes(png_bytes((48, 40), (30 * i, 120, 200)))
        paths.append(path)
    return paths


def test_blind_benchmark_then_votes_from_a_program(served, votes_db, tmp_path):
    from gradio_client import Client, handle_file

    url, fal = served
    fal.reset()
    client = Client(url, verbose=False)
    status, table, _plot, _gallery, _files = client.predict(
        images=[handle_file(str(p)) for p in photos(tmp_path)],
        truth=None,
        providers=["u2netp", "fal-bria"],
        monthly_volume=1000,
        fal_key=FAL_KEY,
        api_name="/benchmark",
    )
    assert status.startswith("**Done**: no ground truth") and "2 pairs" in status
    assert [row[:2] for row in table["data"]] == [
        ["photo0", "u2netp"],
        ["photo0", "fal-bria"],
        ["photo1", "u2netp"],
        ["photo1", "fal-bria"],
    ]
    assert submits(fal) == 2
    left, right, ticket, reveal = client.predict(background="white", colour="#ffffff", api_name="/benchmark_pair")
    assert ticket and reveal == "" and os.path.exists(left) and os.path.exists(right)
    reveal, ranking = client.predict(ticket=ticket, choice="right", api_name="/benchmark_vote")
    assert reveal.startswith("Left was **") and "you preferred" in reveal
    assert sorted(row[1] for row in ranking["data"]) == ["fal-bria", "u2netp"]
    assert len(VoteStore().all()) == 1  # in this test's storage (RMBG_LEDGER)
    with pytest.raises(Exception, match="already voted"):
        client.predict(ticket=ticket, choice="left", api_name="/benchmark_vote")


def test_ground_truth_benchmark_from_a_program(served, tmp_path):
    from gradio_client import Client, handle_file

    archive = tmp_path / "davis.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in FRAMES[:2]:
            zf.write(DAVIS / "images" / f"{name}.jpg", f"images/{name}.jpg")
            zf.write(DAVIS / "masks" / f"{name}.png", f"masks/{name}.png")
    client = Client(served[0], verbose=False)
    status, table, _plot, gallery, files = client.predict(
        images=[handle_file(str(archive))], providers=["u2netp"], monthly_volume=100_000, api_name="/benchmark"
    )
    assert status.startswith("**Done**: 2 image(s), 2 provider runs, 0 failed")
    assert table["headers"][:2] == ["provider", "composite [95 % CI]"] and table["data"][0][0] == "u2netp"
    assert len(gallery) == 2 and sorted(os.path.basename(f) for f in files) == [
        "evaluation.json",
        "per_image.csv",
        "summary.csv",
    ]


def test_the_caps_refuse_a_benchmark_before_any_call(served, tmp_path):
    from gradio_client import Client, handle_file

    url, fal = served
    fal.reset()
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match="Spending cap reached"):
        client.predict(
            images=[handle_file(str(p)) for p in photos(tmp_path, 12)],
            providers=["fal-bria", "u2netp"],
            fal_key=FAL_KEY,
            api_name="/benchmark",
        )
    assert submits(fal) == 0


def test_hostile_uploads_get_a_clear_message(served, tmp_path):
    from gradio_client import Client, handle_file

    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../evil.png", png_bytes())
    client = Client(served[0], verbose=False)
    with pytest.raises(Exception, match="points outside the archive") as caught:
        client.predict(images=[handle_file(str(archive))], providers=["u2netp"], api_name="/benchmark")
    assert "Traceback" not in str(caught.value) and "/tmp" not in str(caught.value)
