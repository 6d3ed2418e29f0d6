"""The load card: what a run loaded, as a markdown artifact people read in the Prefect UI.

The load table artifact (`sparkify-etl-load`) keeps its numbers as numbers, for tools that read
it through the API; this card shows the same figures with thousands separators, the table's
columns narrow enough to read at 1600 px, and what the run did not load in sections of their
own: skipped files, missing days, files unchanged since their last load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

LOAD_CARD_KEY = "sparkify-etl-load-card"
FIGURES = ("files", "staged", "rejected", "inserted", "updated", "rows")
SECTIONS = {
    "skipped file": "Skipped files",
    "missing day": "Missing days",
    "unchanged files": "Unchanged files",
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def load_card(rows: Sequence[Mapping[str, Any]], description: str, outcome: str) -> str:
    """The card, from the load table's rows (tasks/run/artifacts.py: load_rows) and caption."""
    header = ["table", *FIGURES, "seconds"]
    lines = [
        f"**{outcome}**",
        "",
        description,
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---", *["--:"] * (len(header) - 1)]) + "|",
    ]
    sections: dict[str, list[str]] = {}
    for row in rows:
        if row["table"] in SECTIONS:
            sections.setdefault(row["table"], []).append(_cell(row["detail"]))
            continue
        seconds = "" if row["seconds"] is None else f"{row['seconds']:.2f}"
        cells = [_cell(row["table"]), *(_cell(row[f]) for f in FIGURES), seconds]
        lines.append("| " + " | ".join(cells) + " |")
    for kind, title in SECTIONS.items():
        if kind in sections:
            lines += ["", f"### {title} ({len(sections[kind]):,})", ""]
            lines += [f"- {detail}" for detail in sections[kind]]
    return "\n".join(lines) + "\n"
