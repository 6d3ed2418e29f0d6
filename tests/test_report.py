"""Text tables and counts for the command line."""

from __future__ import annotations

from tasks.run.report import count_of, format_table


def test_count_of_agrees_in_number() -> None:
    assert count_of(1, "record") == "1 record"
    assert count_of(0, "record") == "0 records"
    assert count_of(12345, "record") == "12,345 records"


def test_format_table_aligns_numbers_right() -> None:
    text = format_table(["table", "rows"], [("songplays", 3729), ("users", 83), ("time", None)])
    assert text.splitlines() == [
        "table       rows",
        "---------  -----",
        "songplays  3,729",
        "users         83",
        "time",
    ]
