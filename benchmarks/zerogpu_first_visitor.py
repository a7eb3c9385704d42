"""The first visitor of a ZeroGPU Space: how long the app takes to serve, how long their first cut-out
takes, what each photo asks ZeroGPU for, and how many photos an unsigned visitor's 2 minutes hold.

    python benchmarks/zerogpu_first_visitor.py

It runs the ZeroGPU rehearsal (.ci/zerogpu_rehearsal.py: `python app.py` with a Space's environment,
the stand-in `spaces` package of the tests, the install smoke's offline stand-in weights, every call
charged all it asked for) and writes benchmarks/results/zerogpu_first_visitor.json. The first photo
goes through POST /api/remove right after the page answers, with U2-Net-p (the default on this CPU,
loaded at import as on ZeroGPU): on ZeroGPU hardware the forward runs on the GPU, so only the app's
start, the ask and the count are ZeroGPU's; the seconds are this CPU's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import markdown, table, write_results

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "rehearsal.json"
        done = subprocess.run([sys.executable, str(ROOT / ".ci" / "zerogpu_rehearsal.py"), "--results", str(results)])
        if done.returncode != 0:
            print("the rehearsal failed: nothing written")
            return 1
        measured = json.loads(results.read_text())
    rows = [
        ["app start to serving (s)", measured["start_s"]],
        ["first visitor's first cut-out, POST /api/remove (s)", measured["first_photo_s"]],
        ["ZeroGPU ask of each photo (s)", ", ".join(map(str, measured["asks_s"]))],
        ["photos within an unsigned visitor's 120 s", measured["photos"]],
        ["then", f"{measured['refusal']['zerogpu']} (429), retry_on_cpu {measured['refusal']['retry_on_cpu']}"],
    ]
    tables = [table("The first visitor of a ZeroGPU Space (stand-in spaces, U2-Net-p)", ["measure", "value"], rows)]
    print(markdown(tables))
    write_results("zerogpu_first_visitor", "python benchmarks/zerogpu_first_visitor.py", tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
