"""The install smoke: every feature the app shows, on exactly what the README's first command installs.

    pip install -e . -r requirements.txt     # in a fresh virtualenv (.ci/run: .venv, Python 3.12)
    python .ci/smoke_app.py                  # about a minute; exit status 0 when everything worked

It needs nothing else: no pytest, no dev requirement, no network, no model download. The two local
models it runs (U2-Net-p and IS-Net general) are stand-ins written by .ci/smoke_weights.py; the
paid services are not called (their keyless answer is checked instead). It starts `python app.py`
on a free port, drives each tab through the app's named API (gradio_client, which comes with
gradio) and REST (httpx), then runs each command of the `rmbg` console script
(.ci/smoke_cli.py). Each check says what it expected and what it got; every failure is listed at
the end, and the exit status is 1 when there was one.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from smoke_checks import ROOT, Smoke, alpha_range, clip_1s, expect, video_alpha
from smoke_cli import cli_steps
from smoke_weights import write_models

STARTUP_S = 300.0  # the first start measures the local models once (rmbg.providers.local.calibration)
DAVIS = ROOT / "data" / "davis2016-sample"
FRAMES = ("blackswan_00000", "dog_00000", "libby_00000")
# Every tab on the page (its label), and the step below that drives it: a new tab fails the smoke until it has one.
TABS = {
    "Remove": "tab Remove",
    "Compare": "tab Compare",
    "Video": "tab Video",
    "One provider": "tab Video",
    "Side by side": "tab Video: side by side",
    "AI background": "tab AI background (no key)",
    "Benchmark": "tab Benchmark (ground truth)",
}
SECRETS = ("HF_TOKEN", "FAL_KEY", "RUNWARE_API_KEY", "REMOVEBG_API_KEY", "PHOTOROOM_API_KEY")


def environment(work: Path) -> dict[str, str]:
    """This process's environment, cut off from the network and from the user's caches, keys and ledger: a home
    with nothing under it, so the app makes its state where a fresh machine would (~/.local/state/rmbg)."""
    env = {k: v for k, v in os.environ.items() if k not in SECRETS and not k.startswith(("RMBG_", "GRADIO_"))}
    env.pop("XDG_STATE_HOME", None)
    env.update(write_models(work / "models"))
    home = work / "home"  # a machine the app has never run on: the ledger and the votes at their defaults under it
    home.mkdir()
    env.update(
        HOME=str(home),
        RMBG_OFFLINE="1",
        RMBG_ISNET_GENERAL_URL="http://127.0.0.1:9/isnet-general-use.onnx",  # a mirror never asked: the file is cached
        HF_HUB_OFFLINE="1",
        HF_HOME=str(work / "hf"),
        XDG_CACHE_HOME=str(work / "cache"),
        MPLCONFIGDIR=str(work / "matplotlib"),
        GRADIO_ANALYTICS_ENABLED="False",
        GRADIO_TEMP_DIR=str(work / "gradio"),
        PYTHONUNBUFFERED="1",
    )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def app_running(env: dict[str, str], log: list[str]) -> Iterator[str]:
    """`python app.py` on a free port; yields its URL once it says it is serving (its own words on stdout)."""
    port = free_port()
    env = {**env, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    proc = subprocess.Popen(  # a process group of its own: the processes it forks (ZeroGPU's workers) end with it
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line.rstrip())
            lines.put(line)
        lines.put(None)  # the app closed its output: it ended

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + STARTUP_S
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"app.py did not say it was serving within {STARTUP_S:g} s") from None
            if line is None:
                raise AssertionError(f"app.py ended before serving (exit status {proc.wait()})")
            if "Running on local URL" in line:
                break
        yield f"http://127.0.0.1:{port}/"
    finally:
        end_group(proc)


def end_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the app's whole process group, SIGKILL to what is left after 30 s."""
    for sig, wait_s in ((signal.SIGTERM, 30.0), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break  # the group is gone
        try:
            proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the group's other members (forked workers)
            except ProcessLookupError:
                pass
        break


def tab_steps(url: str, work: Path, log: list[str]) -> list[tuple[str, Callable[[], None]]]:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    cat = handle_file(str(ROOT / "examples" / "cat.jpg"))
    cutouts: list[Path] = []  # what Remove made, for the re-render to match

    def startup() -> None:
        said = [line for line in log if line.startswith("rmbg: default provider")]
        # Which one depends on this CPU (the better one when it answers a 1 MP photo within 3 s), so either.
        chosen = said[0].split(":")[1].split()[-1] if said else None
        expect(chosen in ("isnet-general", "u2netp"), "the default it chose, one of the two ready", said)

    def tabs() -> None:
        import httpx

        config = httpx.get(url + "config").json()
        shown = {c["props"]["label"] for c in config["components"] if c.get("type") == "tabitem"}
        expect(shown == set(TABS), f"the tabs this smoke drives, {sorted(TABS)}", sorted(shown))
        expect(set(TABS.values()) <= {name for name, _ in steps}, "a step for each tab", TABS)

    def remove() -> None:
        _slider, download, line = client.predict(image=cat, provider="u2netp", api_name="/remove")
        low, high = alpha_range(Path(download))
        expect(low < 30 and high > 225, "a cut-out whose alpha keeps a subject and cuts a background", (low, high))
        cutouts.append(Path(download))
        expect(
            "U2-Net-p" in line and "(compute estimate)" in line, "the result line names the model and its cost", line
        )

    def restyle() -> None:  # the kept matte on red, as a JPEG: where the cut-out was clear, red
        _slider, download, _line = client.predict(
            background="colour", colour="#ff0000", format="jpeg", api_name="/rerender"
        )
        with Image.open(download) as red, Image.open(cutouts[-1]) as cutout:
            expect(red.format == "JPEG" and red.mode == "RGB", "an RGB JPEG", (red.format, red.mode))
            clear = np.asarray(cutout.getchannel("A")) == 0
            shown = np.asarray(red).astype(int)[clear].mean(axis=0)
        expect(abs(shown - (255, 0, 0)).max() < 40, "red where the matte is clear", shown)

    def rest() -> None:
        import httpx

        with open(ROOT / "examples" / "cat.jpg", "rb") as photo:
            answer = httpx.post(
                url + "api/remove", files={"image": ("cat.jpg", photo, "image/jpeg")}, data={"provider": "u2netp"}
            )
        expect(answer.status_code == 200, "POST /api/remove answers 200", (answer.status_code, answer.text[:300]))
        expect(answer.headers["content-type"] == "image/png", "a PNG", answer.headers["content-type"])
        out = work / "rest.png"
        out.write_bytes(answer.content)
        low, high = alpha_range(out)
        expect(low < 30 and high > 225, "REST's cut-out has an alpha", (low, high))

    def compare() -> None:
        gallery, table, agreement, *_ = client.predict(
            image=cat, providers=["u2netp", "isnet-general"], api_name="/compare"
        )
        expect(len(gallery) == 2, "two results in the gallery", len(gallery))
        rows = table["data"]
        expect([row[0] for row in rows] == ["u2netp", "isnet-general"], "a row per provider", rows)
        expect(len(agreement["data"]) >= 1, "an agreement table", agreement)

    def benchmark() -> None:
        archive = work / "davis3.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for name in FRAMES:
                zf.write(DAVIS / "images" / f"{name}.jpg", f"images/{name}.jpg")
                zf.write(DAVIS / "masks" / f"{name}.png", f"masks/{name}.png")
        status, table, _plot, gallery, files = client.predict(
            images=[handle_file(str(archive))], providers=["u2netp", "isnet-general"], api_name="/benchmark"
        )
        expect(status.startswith("**Done**: 3 image(s), 6 provider runs, 0 failed"), "a scored benchmark", status)
        expect(table["headers"][:2] == ["provider", "composite [95 % CI]"], "the scores' columns", table["headers"])
        expect(sorted(row[0] for row in table["data"]) == ["isnet-general", "u2netp"], "a row each", table["data"])
        expect(len(gallery) == 6, "each image by each provider, worst first", len(gallery))
        names = sorted(Path(f).name for f in files)
        # cascades.csv: U2-Net-p -> IS-Net general, simulated from the same mattes (rmbg.eval.frontier)
        expect(names == ["cascades.csv", "evaluation.json", "per_image.csv", "summary.csv"], "the downloads", names)

    def blind_vote() -> None:  # no ground truth: blind pairs, a vote, the ranking
        photos = [handle_file(str(DAVIS / "images" / f"{name}.jpg")) for name in FRAMES[:2]]
        status, *_ = client.predict(images=photos, providers=["u2netp", "isnet-general"], api_name="/benchmark")
        expect(status.startswith("**Done**: no ground truth"), "a benchmark to vote on", status)
        _left, _right, ticket, _reveal = client.predict(api_name="/benchmark_pair")
        reveal, ranking = client.predict(ticket=ticket, choice="left", api_name="/benchmark_vote")
        expect(reveal.startswith("Left was **"), "the vote's reveal", reveal)
        ranked = sorted(row[1] for row in ranking["data"])
        expect(ranked == ["isnet-general", "u2netp"], "both providers ranked", ranking)

    def video() -> None:
        clip = clip_1s(work / "dog-1s.mp4")
        preview, download, line = client.predict(video=handle_file(str(clip)), provider="u2netp", api_name="/video")
        path = Path(download["video"] if isinstance(download, dict) else download)
        frames, low, high = video_alpha(path)
        expect(path.suffix == ".webm" and frames == 24, "a 24-frame WebM", (path.name, frames))
        expect(low < 30 and high > 225, "the clip's alpha keeps a subject and cuts a background", (low, high))
        expect("24 frames" in line and "U2-Net-p" in line, "the result line", line)

    def side_by_side() -> None:
        clip = clip_1s(work / "dog-1s-pair.mp4")
        a, b, _frame, table, _line = client.predict(
            video=handle_file(str(clip)), provider_a="u2netp", provider_b="isnet-general", api_name="/video_compare"
        )
        for side in (a, b):
            path = Path(side["video"] if isinstance(side, dict) else side)
            expect(video_alpha(path)[0] == 24, "each side: 24 frames", path.name)
        expect(len(table["data"]) == 2, "a row per provider", table["data"])

    def ai_background() -> None:
        try:
            client.predict(image=cat, prompt="a sunny beach", api_name="/replace")
        except Exception as refused:  # the app's own words for a missing key, not a crash
            said = str(refused)
            expect("needs an API key" in said and "fal_key" in said, "the keyless message names the key", said)
            expect("Traceback" not in said, "no traceback", said)
            return
        raise AssertionError("/replace ran without any fal.ai key")

    steps = [
        ("app: startup", startup),
        ("app: the page's tabs are the ones driven here", tabs),
        ("tab Remove", remove),
        ("tab Remove: another background from the kept matte", restyle),
        ("REST POST /api/remove", rest),
        ("tab Compare", compare),
        ("tab Benchmark (ground truth)", benchmark),
        ("tab Benchmark: blind vote", blind_vote),
        ("tab Video", video),
        ("tab Video: side by side", side_by_side),
        ("tab AI background (no key)", ai_background),
    ]
    return steps


def main() -> int:
    smoke = Smoke()
    with tempfile.TemporaryDirectory(prefix="rmbg-smoke-") as folder:
        work = Path(folder)
        env = environment(work)
        log: list[str] = []
        started = time.monotonic()
        try:
            with app_running(env, log) as url:
                smoke.say(f"app.py serving at {url} after {time.monotonic() - started:.1f} s")
                for name, step in tab_steps(url, work, log):
                    smoke.run(name, step)
        except Exception:
            smoke.failed("app: start", traceback.format_exc(limit=3))
        if smoke.failures:
            smoke.say("app.py's output, last 40 lines:\n  " + "\n  ".join(log[-40:]))
        for name, step in cli_steps(env, work):
            smoke.run(name, step)
    return smoke.report()


if __name__ == "__main__":
    sys.exit(main())
