"""Synthetic Sparkify source data: daily event logs and one-song metadata files.

The output follows the public Sparkify data set's layout and formats, including the quirks a
loader has to survive (logged-out events, plays of songs that have no metadata, E-notation
registrations, users changing level mid-month). Everything is drawn from one seeded
``random.Random``, so the same arguments always give byte-identical files.
"""

from .dataset import GenerationSummary, generate_dataset
from .formats import (
    DAY_MS,
    DEFAULT_START_DATE,
    ERROR_PAGE,
    EVENT_KEYS,
    LOGGED_OUT_PAGES,
    MAX_USERS,
    REDIRECT_PAGES,
    SONG_KEYS,
    event_file_path,
    registration_text,
    song_file_path,
    user_pool_size,
)

__all__ = [
    "DAY_MS",
    "DEFAULT_START_DATE",
    "ERROR_PAGE",
    "EVENT_KEYS",
    "LOGGED_OUT_PAGES",
    "MAX_USERS",
    "REDIRECT_PAGES",
    "SONG_KEYS",
    "GenerationSummary",
    "event_file_path",
    "generate_dataset",
    "registration_text",
    "song_file_path",
    "user_pool_size",
]
