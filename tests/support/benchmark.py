"""The Benchmark tab's test data: a few DAVIS frames, small PNGs, and no old
votes file for a module's launched app (the votes live in each test's
storage, RMBG_LEDGER; an older version's file is copied in when found)."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from tests.support.app import ROOT

DAVIS = ROOT / "data" / "davis2016-sample"
FRAMES = ["blackswan_00000", "blackswan_00049", "dog_00000", "dog_00059"]


def png_bytes(size=(32, 24), colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def votes_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("votes") / "no-old-votes.sqlite3"
    previous = os.environ.get("RMBG_VOTES_DB")
    os.environ["RMBG_VOTES_DB"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("RMBG_VOTES_DB")
    else:
        os.environ["RMBG_VOTES_DB"] = previous
