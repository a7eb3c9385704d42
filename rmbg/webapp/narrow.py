"""What the page does on a narrow screen (a phone): the CSS that keeps every box of it from
scrolling sideways and every label whole, on top of the page's CSS (rmbg.webapp.ui.common). It names
the features' tables (Benchmark's, Compare's, the Video comparison's), so it is a door beside the page
(rmbg.webapp.page adds it), not part of the kit the features import.
tests/test_widths_browser.py checks it at 420 px, and that 1400 px is left as it was."""

from __future__ import annotations

from collections.abc import Sequence

from ..eval.votes import RANKING_HEADERS
from .benchmark.report import SUMMARY_HEADERS
from .compare.comparing import TABLE_HEADERS
from .video.compare import TABLE_HEADERS as VIDEO_HEADERS

NARROW_PX = 720  # up to this width galleries and the tables of stacked_rows change

# a gallery shows two pictures a row, each whole, its caption under it at every width (the page's CSS,
# rmbg.webapp.ui.common), and its label above the first row (gradio lays it over the first row's head: on a
# phone's small tiles that hid half of each)
GALLERIES = """
.grid-wrap {padding-top: 2.4em !important;}  /* the first row starts under the gallery's label, not behind it */
.grid-container {grid-template-columns: repeat(2, minmax(0, 1fr)) !important;}
.label-text, [data-testid=block-info] {white-space: normal; overflow-wrap: break-word;}  /* whole words */
.head:has(> .tab-like-container) {flex-wrap: wrap; row-gap: 4px;}  /* a slider's number goes under a long label */
"""

# one card per row: the header row hidden, each cell a line of its own after its column's name (the ::before)
CARD = {
    ".header-table": "display: none;",
    ".virtual-table-viewport": "max-height: none !important;",  # every card on the page, none behind a scroll
    ".virtual-body": "width: 100% !important;",
    ".virtual-row": "display: block !important; border-bottom: 2px solid var(--border-color-primary);",
    ".body-cell": "display: flex; width: 100% !important; flex: none !important; box-shadow: none;",
    ".body-cell::before": "flex: 0 0 42%; padding: 2px 6px; font-weight: 600; overflow-wrap: anywhere;",
    ".body-cell .cell-wrap": "flex: 1 1 0; min-width: 0;",
    ".body-cell .cell-wrap *": "white-space: normal !important; overflow-wrap: anywhere;",
}


def stacked_rows(tables: dict[str, Sequence[str]]) -> str:
    """CSS rules that lay each row of these tables (element id: its column names) out as a card:
    one line per cell, its column's name before it. Benchmark's ten columns squeezed into a phone's
    width would break their words letter by letter, or scroll inside their box. The column names
    are written here because CSS cannot read a header from a cell: gradio's cells are
    div.body-cell with only their column's index (data-col)."""
    rules = [f"{', '.join(f'#{t} {part}' for t in tables)} {{{style}}}" for part, style in CARD.items()]
    for elem_id, headers in tables.items():
        for col, header in enumerate(headers):
            name = header.replace("\\", "\\\\").replace('"', '\\"')
            rules.append(f'#{elem_id} .body-cell[data-col="{col}"]::before {{content: "{name}";}}')
    return "\n".join(rules)


CARDS = stacked_rows(
    {
        "bench-table": SUMMARY_HEADERS,
        "vote-ranking": RANKING_HEADERS,
        "compare-table": TABLE_HEADERS,
        "video-compare-table": VIDEO_HEADERS,
    }
)
NARROW_CSS = f"@media (max-width: {NARROW_PX}px) {{{GALLERIES}{CARDS}\n}}\n"
