"""The install smoke's command-line half: each command `rmbg --help` lists, run as a user runs it (the
console script the install made, in a subprocess), its exit status and what it wrote checked. A command
that `rmbg --help` lists and this file does not run fails the smoke, so a new one gets a step here."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from smoke_checks import ROOT, alpha_range, clip_1s, expect, video_alpha

DAVIS = ROOT / "data" / "davis2016-sample"
FRAMES = ("blackswan_00000", "dog_00000", "libby_00000")
TIMEOUT_S = 300.0


def rmbg_command() -> list[str]:
    """The `rmbg` script installed beside this Python (what the README's first command made)."""
    script = Path(sys.executable).with_name("rmbg")
    return [str(script)] if script.exists() else [sys.executable, "-m", "rmbg"]


def cli_steps(env: dict[str, str], work: Path) -> list[tuple[str, Callable[[], None]]]:
    out = work / "cli"

    def rmbg(*args: str, status: int = 0) -> str:
        done = subprocess.run(
            [*rmbg_command(), *args], cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
        )
        said = done.stdout + done.stderr
        expect(done.returncode == status, f"`rmbg {' '.join(args)}` to exit {status}", f"{done.returncode}: {said}")
        return said

    def listed() -> None:
        said = rmbg("--help")
        block = said.split("positional arguments:")[1].split("options:")[0]
        commands = set(re.findall(r"^    (\w[\w-]*)", block, re.M))
        expect(commands == set(COVERED), f"the commands this smoke runs, {sorted(COVERED)}", sorted(commands))

    def providers() -> None:
        said = rmbg("providers")
        ready = {line.split()[0] for line in said.splitlines() if re.match(r"^\S+\s+local\s+ready\b", line)}
        expect(ready == {"u2netp", "isnet-general"}, "the two stand-in models ready", said)
        expect(re.search(r"^default: (isnet-general|u2netp) \(\w", said, re.M), "the default and why", said)

    def remove() -> None:
        rmbg("remove", str(ROOT / "examples" / "cat.jpg"), "-o", str(out / "remove"), "--provider", "u2netp")
        low, high = alpha_range(out / "remove" / "cat.png")
        expect(low < 30 and high > 225, "a cut-out whose alpha keeps a subject and cuts a background", (low, high))

    def video() -> None:
        clip = clip_1s(work / "cli-dog-1s.mp4")
        rmbg("video", str(clip), "-o", str(out / "dog.webm"), "--provider", "u2netp")
        frames, low, high = video_alpha(out / "dog.webm")
        expect(frames == 24 and low < 30 and high > 225, "24 frames with an alpha", (frames, low, high))

    def evaluate() -> None:
        data = work / "davis3"
        for kind, suffix in (("images", "jpg"), ("masks", "png")):
            (data / kind).mkdir(parents=True)
            for name in FRAMES:
                shutil.copy(DAVIS / kind / f"{name}.{suffix}", data / kind / f"{name}.{suffix}")
        said = rmbg("evaluate", str(data), "-p", "u2netp", "-p", "isnet-general", "--bootstrap", "200", "--out", "ev")
        written = sorted(p.name for p in (work / "ev").iterdir())
        expect({"summary.csv", "per_image.csv"} <= set(written), "the scores written", written)
        rows = (work / "ev" / "per_image.csv").read_text().splitlines()
        expect(len(rows) == 1 + 2 * len(FRAMES), "a row per image and provider", rows)
        expect("u2netp" in said and "isnet-general" in said, "both providers in the summary", said)

    def replace() -> None:
        said = rmbg(
            "replace", str(ROOT / "examples" / "cat.jpg"), "-o", str(out / "replace"), "--prompt", "a beach", status=1
        )
        expect("needs FAL_KEY" in said and "Traceback" not in said, "the missing key in a sentence", said)

    def ledger() -> None:
        said = rmbg("ledger", "holds")
        expect("no holds in flight" in said, "an empty ledger", said)
        said = rmbg("ledger", "settle", "--release", "no-such-hold", status=1)
        expect("no-such-hold" in said and "Traceback" not in said, "an unknown hold refused in a sentence", said)

    COVERED = {
        "providers": providers,
        "remove": remove,
        "video": video,
        "evaluate": evaluate,
        "replace": replace,
        "ledger": ledger,
    }
    return [("cli: rmbg --help lists what this smoke runs", listed)] + [
        (f"cli: rmbg {name}", step) for name, step in COVERED.items()
    ]
