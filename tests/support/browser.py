"""The page in headless Debian Chromium through Playwright: where the browser is,
how it is started, and the steps several browser tests share."""

from __future__ import annotations

from tests.fakes.fal import TEST_KEY as FAL_KEY
from tests.support.app import ROOT

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 30_000


def enter_fal_key(page) -> None:
    field = page.get_by_label("fal.ai key")
    if not field.is_visible():
        page.get_by_text("API keys for hosted providers").click()
    field.fill(FAL_KEY)
    field.blur()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
