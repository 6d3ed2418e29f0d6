"""Charts of the analytics flow as plain SVG, drawn here, shown in a markdown artifact.

The Prefect UI renders a markdown image whose source is a data URI, so each chart is an SVG
document (bars, their labels and values, no script, no external reference: nothing to fetch
when it is shown) embedded as `![title](data:image/svg+xml;base64,...)`. Bars are vertical for
an ordered axis (hours, days) and horizontal for a ranking (songs, artists), whose long names
then read left to right. Text is escaped; numbers have thousands separators.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from xml.sax.saxutils import escape

WIDTH = 760
BAR_COLOR = "#2563eb"
TEXT_STYLE = 'font-family="sans-serif" font-size="12" fill="#1f2937"'
# Characters of a ranking's label shown before it is cut (with an ellipsis).
LABEL_CHARS = 38


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {TEXT_STYLE} {extra}>'
        f"{escape(text)}</text>"
    )


def _document(title: str, height: int, parts: list[str]) -> str:
    heading = _text(WIDTH / 2, 20, title, "middle", 'font-weight="bold"')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img"><title>{escape(title)}</title>'
        f'<rect width="100%" height="100%" fill="white"/>{heading}{"".join(parts)}</svg>'
    )


def _bar(x: float, y: float, width: float, height: float, label: str, value: float) -> str:
    """One bar, its label and value in its tooltip."""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
        f'fill="{BAR_COLOR}"><title>{escape(label)}: {value:,}</title></rect>'
    )


def column_chart(title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """Vertical bars, one per label, in the given order (an ordered axis: hours, days)."""
    height, top, bottom, left = 300, 40, 50, 20
    plot_w, plot_h = WIDTH - 2 * left, height - top - bottom
    peak = max(values, default=0) or 1
    step = plot_w / max(len(values), 1)
    every = -(-len(labels) // 12) or 1  # at most 12 axis labels
    parts = []
    for n, (label, value) in enumerate(zip(labels, values, strict=True)):
        bar_h = plot_h * value / peak
        x, y = left + n * step, top + plot_h - bar_h
        parts.append(_bar(x + step * 0.1, y, step * 0.8, bar_h, label, value))
        if n % every == 0:
            parts.append(_text(x + step / 2, height - bottom + 16, label, "middle"))
    parts.append(_text(left, height - 12, f"highest: {peak:,}", "start"))
    return _document(title, height, parts)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """Horizontal bars, one per label, top to bottom (a ranking), each with its value."""
    row, top, label_w = 24, 40, 300
    height = top + row * max(len(values), 1) + 16
    peak = max(values, default=0) or 1
    plot_w = WIDTH - label_w - 90
    parts = []
    for n, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + n * row
        shown = label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
        bar_w = plot_w * value / peak
        parts.append(_text(label_w - 8, y + row * 0.65, shown, "end"))
        parts.append(_bar(label_w, y + 3, bar_w, row - 6, label, value))
        parts.append(_text(label_w + bar_w + 6, y + row * 0.65, f"{value:,}"))
    return _document(title, height, parts)


def markdown_image(title: str, svg: str) -> str:
    """The chart as a markdown image the Prefect UI shows: a base64 data URI."""
    encoded = base64.b64encode(svg.encode()).decode()
    return f"![{title}](data:image/svg+xml;base64,{encoded})"


def _column(result: dict, name: str) -> list:
    index = result["columns"].index(name)
    return [row[index] for row in result["rows"]]


def analytics_markdown(queries: dict[str, dict]) -> str:
    """The analytics flow's headline and charts, as one markdown document, from its queries'
    results (columns and rows of sql/analytics/*.sql)."""
    plays, users, matched = queries["headline"]["rows"][0]
    rate = matched / plays if plays else 0.0
    share = f"{rate:.2%}" if 0 < rate < 0.01 else f"{rate:.1%}"
    lines = [
        "# Sparkify listening",
        "",
        f"**{plays:,} plays** by **{users:,} users**. {matched:,} of the {plays:,} plays "
        f"({share}) matched a song of the catalog: the rankings count those only.",
    ]
    hours, days = queries["plays_by_hour"], queries["daily_plays"]
    levels, songs = queries["plays_by_level"], queries["most_played_songs"]
    artists = queries["top_artists"]
    song_names = zip(_column(songs, "title"), _column(songs, "artist"), strict=True)
    specs = [
        (
            "Plays by hour of day (UTC)",
            column_chart,
            [f"{h:02d}" for h in _column(hours, "hour")],
            _column(hours, "plays"),
        ),
        (
            "Plays per day (month-day)",
            column_chart,
            [f"{d:%m-%d}" if hasattr(d, "month") else str(d) for d in _column(days, "day")],
            _column(days, "plays"),
        ),
        (
            "Plays by level (free or paid)",
            bar_chart,
            [str(level) for level in _column(levels, "level")],
            _column(levels, "plays"),
        ),
        (
            "Most played songs",
            bar_chart,
            [f"{title} — {artist or 'unknown artist'}" for title, artist in song_names],
            _column(songs, "plays"),
        ),
        (
            "Most played artists",
            bar_chart,
            [str(a) for a in _column(artists, "artist")],
            _column(artists, "plays"),
        ),
    ]
    charts = [(title, draw(title, labels, values)) for title, draw, labels, values in specs]
    for title, svg in charts:
        lines += ["", markdown_image(title, svg)]
    return "\n".join(lines) + "\n"
