"""The data set's formats: record keys, pages, file layout and how values are written."""

from datetime import date
from pathlib import PurePosixPath

import orjson

EVENT_KEYS: tuple[str, ...] = (
    "artist",
    "auth",
    "firstName",
    "gender",
    "itemInSession",
    "lastName",
    "length",
    "level",
    "location",
    "method",
    "page",
    "registration",
    "sessionId",
    "song",
    "status",
    "ts",
    "userAgent",
    "userId",
)
SONG_KEYS: tuple[str, ...] = (
    "num_songs",
    "artist_id",
    "artist_latitude",
    "artist_longitude",
    "artist_location",
    "artist_name",
    "song_id",
    "title",
    "duration",
    "year",
)
LOGGED_OUT_PAGES: tuple[str, ...] = ("Home", "Login", "Help", "About")
# Pages that answer a form submission with a redirect, as the real logs record them.
REDIRECT_PAGES: frozenset[str] = frozenset(
    {"Logout", "Submit Upgrade", "Submit Downgrade", "Save Settings"}
)
ERROR_PAGE = "Error"
DEFAULT_START_DATE = date(2018, 11, 1)
DAY_MS = 86_400_000
MAX_USERS = 3000


def json_text(value: object) -> str:
    """Compact JSON text of a value, as the data set writes it."""
    return orjson.dumps(value).decode()


def registration_text(epoch_ms: int) -> str:
    """Epoch milliseconds written the way the data set writes them, e.g. 1.540919166796E12."""
    if epoch_ms <= 0:
        raise ValueError(f"registration must be a positive epoch in ms, got {epoch_ms}")
    digits = str(epoch_ms)
    fraction = digits[1:].rstrip("0") or "0"
    return f"{digits[0]}.{fraction}E{len(digits) - 1}"


def event_file_path(day: date) -> PurePosixPath:
    """Path of a day's event log relative to the output root."""
    return PurePosixPath("log_data", f"{day:%Y}", f"{day:%m}", f"{day:%Y-%m-%d}-events.json")


def song_file_path(track_id: str) -> PurePosixPath:
    """Path of a track's metadata file relative to the output root."""
    if len(track_id) < 5:
        raise ValueError(f"track id too short: {track_id!r}")
    return PurePosixPath("song_data", track_id[2], track_id[3], track_id[4], f"{track_id}.json")


def user_pool_size(events: int) -> int:
    """Number of distinct users for a run of that many events."""
    return min(max(20, events // 50), MAX_USERS)
