"""The ZeroGPU rehearsal: the app started the way a ZeroGPU Space starts it, a visitor who spends their
daily GPU quota, and what they are offered after.

    python .ci/zerogpu_rehearsal.py                  # about a minute; exit status 0 when everything worked
    python .ci/zerogpu_rehearsal.py --results FILE   # also writes what it measured (JSON)

It runs on what requirements.txt installs (no pytest, no network, no model download): `python app.py`
with a Space's environment (SPACE_ID, SYSTEM=spaces, SPACES_ZERO_GPU=true) and the tests' stand-in for
Hugging Face's `spaces` package first on PYTHONPATH (tests/support/zerogpu: it evaluates each call's
duration with the call's arguments, keeps each visitor's daily quota, 2 minutes unsigned, and refuses
with ZeroGPU's own titles and messages), the stand-in weights of the install smoke (.ci/smoke_app.py)
offline. Every call is charged all it asked for (FAKE_ZEROGPU_CHARGE=asked: the worst case; ZeroGPU
charges what a call used). The checks:

- no committed binary file is outside .gitattributes' LFS rules (.ci/lfs_check.py: the Hub refuses it);
- the page shows the quota line and the "Run on the CPU instead" button;
- one anonymous visitor's photos through POST /api/remove succeed until their 120 s are spent: at least
  8 (the issue's floor, for the default GPU model's ask), then a 429 whose words say the GPU time is
  used up and whose retry_on_cpu runs the same photo on the CPU, outside ZeroGPU;
- a page visitor (the gradio API, an X-IP-Token naming them) whose quota is spent is refused in words
  that say how much is left and when it refills, and the MCP tool's cpu=true serves them.

The CPU models' speed is recorded as slow before the start instead of timed for minutes
(rmbg.providers.local.calibration): on a Space the GPU, not this CPU, decides the default.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from lfs_check import untracked_binaries
from smoke_app import app_running, environment

from smoke_checks import ROOT, Smoke, alpha_range, expect

PHOTO = ROOT / "examples" / "cat.jpg"
MODEL = "u2netp"  # the stand-in weights the smoke writes; the asks are the app's for this model
FLOOR = 8  # photos an unsigned visitor's 120 s must hold (the issue's)
MOST = 60  # photos sent at most before the refusal must have come
SEED = (
    "from rmbg.providers.local import calibration as c\n"
    "for m in ('birefnet-lite', 'rmbg-1.4', 'isnet-general'):\n"
    "    c.store(m, c.config_of(m), 60.0)\n"
)


def space_environment(work: Path, log: Path) -> dict[str, str]:
    """The smoke's offline environment as a ZeroGPU Space has it, the stand-in `spaces` on the path."""
    env = environment(work)
    stand_in = str(ROOT / "tests" / "support" / "zerogpu")
    env.update(
        SPACE_ID="rehearsal/rmbg",
        SYSTEM="spaces",
        SPACES_ZERO_GPU="true",
        PYTHONPATH=os.pathsep.join([stand_in, str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        FAKE_ZEROGPU_LOG=str(log),
        FAKE_ZEROGPU_CHARGE="asked",
        FAKE_ZEROGPU_SPENT="anonymous:page=118",  # the page visitor below arrives with 2 s left
    )
    subprocess.run([sys.executable, "-c", SEED], env=env, cwd=ROOT, check=True)
    return env


def photo(n: int) -> bytes:
    """The example photo with its corner pixel set from `n`: a new photo to the app's matte cache each
    time (a photo cut out before comes from the cache and asks ZeroGPU for nothing)."""
    import io

    from PIL import Image

    with Image.open(PHOTO) as image:
        image = image.convert("RGB")
    image.putpixel((0, 0), (n % 256, n // 256 % 256, 7))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def asks(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def rest_steps(url: str, work: Path, log: Path, measured: dict) -> list:
    import httpx

    sent = [0]

    def post(again: bool = False, **fields: str) -> httpx.Response:
        sent[0] += 0 if again else 1
        files = {"image": (f"photo-{sent[0]}.png", photo(sent[0]), "image/png")}
        return httpx.post(url + "api/remove", files=files, data=fields, timeout=120)

    refused: list[httpx.Response] = []

    def lfs() -> None:
        left = untracked_binaries()
        expect(left == [], "every committed binary file tracked with LFS (.gitattributes)", left[:5])

    def page() -> None:
        config = httpx.get(url + "config").json()
        shown = {c["props"].get("elem_id"): c["props"] for c in config["components"]}
        expect(shown.get("run-cpu", {}).get("visible") is True, "the CPU button, shown", shown.get("run-cpu"))
        line = str(shown.get("zerogpu-quota", {}).get("value"))
        expect("not signed in" in line and "Sign in" in line, "the quota line: unsigned, and the sign-in", line)

    def quota() -> None:
        photos = 0
        while photos < MOST:
            started = time.perf_counter()
            answer = post(provider=MODEL)
            if photos == 0:
                measured["first_photo_s"] = round(time.perf_counter() - started, 3)
            if answer.status_code != 200:
                refused.append(answer)
                break
            photos += 1
        made = [a for a in asks(log) if "worker" in a]
        measured.update(photos=photos, asks_s=sorted({a["duration"] for a in made}))
        expect(photos >= FLOOR, f"at least {FLOOR} photos within an unsigned visitor's 120 s", photos)
        expect(refused and refused[0].status_code == 429, "then a 429", [(r.status_code, r.text) for r in refused])
        body = refused[0].json()
        measured["refusal"] = body
        expect(body.get("zerogpu") == "ZeroGPU quota exceeded", "ZeroGPU's title", body)
        expect("used up" in body.get("error", "") and "Sign" in body["error"], "the visitor's words", body)
        expect(body.get("retry_on_cpu", {}).get("cpu") is True, "the CPU alternative's fields", body)

    def cpu_offer() -> None:
        retry = refused[0].json()["retry_on_cpu"]
        before = len(asks(log))
        answer = post(again=True, provider=retry["provider"], cpu="true")  # the refused photo
        expect(answer.status_code == 200, "the same photo on the CPU: 200", (answer.status_code, answer.text[:300]))
        out = work / "cpu.png"
        out.write_bytes(answer.content)
        low, high = alpha_range(out)
        expect(low < 30 and high > 225, "a cut-out with an alpha", (low, high))
        expect(len(asks(log)) == before, "no ZeroGPU call for it", asks(log)[before:])

    def page_visitor() -> None:
        from gradio_client import Client, handle_file

        client = Client(url, verbose=False, headers={"X-IP-Token": "anonymous:page"})
        mine = work / "page-visitor.png"
        mine.write_bytes(photo(9999))
        try:
            client.predict(image=handle_file(str(mine)), provider=MODEL, api_name="/remove")
        except Exception as exc:  # the app's words, not a traceback
            said = str(exc)
            expect("s are left" in said and "refills in" in said, "how much is left and when it refills", said)
        else:
            raise AssertionError("a visitor with 2 s left was not refused")
        data = "data:image/png;base64," + base64.b64encode(mine.read_bytes()).decode()
        path = client.predict(image=data, provider=MODEL, cpu=True, api_name="/remove_background")
        low, high = alpha_range(Path(path))
        expect(low < 30 and high > 225, "the MCP tool's cut-out on the CPU", (low, high))

    return [
        ("LFS: no binary file outside .gitattributes' rules", lfs),
        ("page: the quota line and the CPU button", page),
        ("REST: photos until the anonymous quota is spent, then a worded 429", quota),
        ("REST: the CPU alternative serves the same photo", cpu_offer),
        ("page visitor: refused in words, served on the CPU by the MCP tool", page_visitor),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, help="write what was measured here (JSON)")
    args = parser.parse_args()
    smoke = Smoke()
    measured: dict = {}
    with tempfile.TemporaryDirectory(prefix="rmbg-zerogpu-") as folder:
        work = Path(folder)
        log = work / "asks.jsonl"
        out: list[str] = []
        started = time.monotonic()
        try:
            with app_running(space_environment(work, log), out) as url:
                measured["start_s"] = round(time.monotonic() - started, 1)
                smoke.say(f"app.py serving as a ZeroGPU Space at {url} after {measured['start_s']} s")
                for name, step in rest_steps(url, work, log, measured):
                    smoke.run(name, step)
        except Exception:
            smoke.failed("app: start", traceback.format_exc(limit=3))
        if smoke.failures:
            smoke.say("app.py's output, last 40 lines:\n  " + "\n  ".join(out[-40:]))
    smoke.say(f"measured: {json.dumps({k: v for k, v in measured.items() if k != 'refusal'})}")
    if args.results:
        args.results.write_text(json.dumps({"command": "python .ci/zerogpu_rehearsal.py", **measured}, indent=2))
    return smoke.report()


if __name__ == "__main__":
    sys.exit(main())
