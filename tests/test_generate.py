"""Tests of the synthetic data generator: formats, layout, determinism and the quirks it plants."""

import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tasks.generator import (
    EVENT_KEYS,
    LOGGED_OUT_PAGES,
    MAX_USERS,
    REDIRECT_PAGES,
    SONG_KEYS,
    GenerationSummary,
    event_file_path,
    generate_dataset,
    registration_text,
    song_file_path,
    user_pool_size,
)
from tests.conftest import Said

START = date(2018, 11, 1)
DAYS = 10
LOG_PATH = re.compile(r"log_data/(\d{4})/(\d{2})/(\d{4})-(\d{2})-(\d{2})-events\.json")
E_NOTATION = re.compile(r'"registration":(\d\.\d+E\d+),')
LENGTH_TEXT = re.compile(r'"length":([^,]+),')
DURATION_TEXT = re.compile(r'"duration":([^,]+),')


@dataclass(frozen=True)
class Event:
    day: date
    line: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class SongFile:
    path: Path
    text: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Dataset:
    root: Path
    summary: GenerationSummary
    events: list[Event]
    songs: list[SongFile]


def read_dataset(root: Path, summary: GenerationSummary) -> Dataset:
    events = []
    for path in sorted((root / "log_data").rglob("*.json")):
        match = LOG_PATH.fullmatch(path.relative_to(root).as_posix())
        assert match, path
        day = date(int(match[3]), int(match[4]), int(match[5]))
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n")
        for line in text.splitlines():
            events.append(Event(day, line, json.loads(line)))
    songs = [
        SongFile(path, path.read_text(encoding="utf-8"), json.loads(path.read_text("utf-8")))
        for path in sorted((root / "song_data").rglob("*.json"))
    ]
    return Dataset(root, summary, events, songs)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def has_accent(text: str | None) -> bool:
    return text is not None and any(ord(char) > 127 for char in text)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    root = tmp_path_factory.mktemp("sparkify")
    summary = generate_dataset(root, events=4000, songs=80, seed=3, start_date=START, days=DAYS)
    return read_dataset(root, summary)


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    trees = []
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        generate_dataset(tmp_path / name, events=1500, songs=40, seed=seed, days=5)
        trees.append(tree_bytes(tmp_path / name))
    assert trees[0] == trees[1]
    assert trees[0] != trees[2]


def test_summary_matches_the_files(dataset: Dataset) -> None:
    summary, events = dataset.summary, dataset.events
    plays = [event for event in events if event.fields["page"] == "NextSong"]
    submits = Counter(event.fields["page"] for event in events)
    assert summary.events == len(events) == 4000
    assert summary.log_files == DAYS
    assert summary.song_files == summary.songs == len(dataset.songs) == 80
    assert summary.song_plays == len(plays)
    assert summary.logged_out_events == sum(e.fields["userId"] == "" for e in events)
    assert summary.upgraded_users == submits["Submit Upgrade"]
    assert summary.downgraded_users == submits["Submit Downgrade"]
    assert summary.users == user_pool_size(4000)
    assert len({e.fields["userId"] for e in events} - {""}) <= summary.users


def test_event_lines_have_exact_keys_in_order_and_json_types(dataset: Dataset) -> None:
    nullable_str = (str, type(None))
    for event in dataset.events:
        fields = event.fields
        assert tuple(fields) == EVENT_KEYS, event.line
        assert isinstance(fields["userId"], str)
        for key in ("artist", "firstName", "lastName", "location", "song", "userAgent"):
            assert isinstance(fields[key], nullable_str), (key, event.line)
        for key in ("itemInSession", "sessionId", "status", "ts"):
            assert type(fields[key]) is int, (key, event.line)
        assert type(fields["length"]) in (float, type(None))
        assert type(fields["registration"]) in (float, type(None))
        assert fields["auth"] in ("Logged In", "Logged Out")
        assert fields["level"] in ("free", "paid")
        assert fields["gender"] in ("F", "M", None)
        assert fields["method"] == ("PUT" if fields["page"] == "NextSong" else "GET")
        expected_status = 307 if fields["page"] in REDIRECT_PAGES else 200
        assert fields["status"] == (404 if fields["page"] == "Error" else expected_status)
        if fields["auth"] == "Logged In":
            assert fields["userId"].isdigit()
            match = E_NOTATION.search(event.line)
            assert match, event.line
            assert float(match[1]) == fields["registration"]
            assert fields["registration"].is_integer()
        else:
            assert '"registration":null,' in event.line


def test_log_files_hold_one_utc_day_each(dataset: Dataset) -> None:
    days = sorted({event.day for event in dataset.events})
    assert days == [START + timedelta(days=offset) for offset in range(DAYS)]
    for day in days:
        assert (dataset.root / event_file_path(day)).is_file()
    for event in dataset.events:
        day_start = datetime(event.day.year, event.day.month, event.day.day, tzinfo=UTC)
        start_ms = int(day_start.timestamp() * 1000)
        assert start_ms <= event.fields["ts"] < start_ms + 86_400_000


def test_events_are_in_time_order_within_a_file(dataset: Dataset) -> None:
    by_day: dict[date, list[int]] = defaultdict(list)
    for event in dataset.events:
        by_day[event.day].append(event.fields["ts"])
    for stamps in by_day.values():
        assert stamps == sorted(stamps)


def test_sessions_count_items_up_and_time_moves_forward(dataset: Dataset) -> None:
    sessions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in dataset.events:
        sessions[event.fields["sessionId"]].append(event.fields)
    sizes = []
    for session in sessions.values():
        session.sort(key=lambda fields: fields["itemInSession"])
        assert [fields["itemInSession"] for fields in session] == list(range(len(session)))
        stamps = [fields["ts"] for fields in session]
        assert all(earlier < later for earlier, later in itertools.pairwise(stamps))
        assert len({fields["userId"] for fields in session} - {""}) <= 1
        sizes.append(len(session))
    assert max(sizes) >= 10


def test_song_files_hold_one_song_at_the_path_of_their_track(dataset: Dataset) -> None:
    for song in dataset.songs:
        relative = song.path.relative_to(dataset.root)
        track_id = relative.stem
        assert re.fullmatch(r"TR[A-Z0-9]{16}", track_id)
        assert relative.as_posix() == song_file_path(track_id).as_posix()
        fields = song.fields
        assert tuple(fields) == SONG_KEYS
        assert fields["num_songs"] == 1
        assert re.fullmatch(r"AR[A-Z0-9]{16}", fields["artist_id"])
        assert re.fullmatch(r"SO[A-Z0-9]{16}", fields["song_id"])
        assert type(fields["duration"]) is float
        assert type(fields["year"]) is int
        assert type(fields["artist_latitude"]) in (float, type(None))
        assert type(fields["artist_longitude"]) in (float, type(None))
        assert isinstance(fields["artist_location"], str)
    assert len({song.fields["song_id"] for song in dataset.songs}) == len(dataset.songs)
    assert song_file_path("TRAABJL12903CDCF1A").as_posix() == (
        "song_data/A/A/B/TRAABJL12903CDCF1A.json"
    )


def test_logged_out_events_are_anonymous(dataset: Dataset) -> None:
    logged_out = [e.fields for e in dataset.events if e.fields["auth"] == "Logged Out"]
    assert len(logged_out) >= 20
    for fields in logged_out:
        assert fields["userId"] == ""
        assert fields["page"] in LOGGED_OUT_PAGES
        for key in ("firstName", "lastName", "gender", "registration", "location", "userAgent"):
            assert fields[key] is None
    assert {fields["level"] for fields in logged_out} == {"free", "paid"}
    for event in dataset.events:
        if event.fields["page"] == "NextSong":
            assert event.fields["auth"] == "Logged In"


def test_non_song_pages_are_present_with_null_song_fields(dataset: Dataset) -> None:
    pages = Counter(event.fields["page"] for event in dataset.events)
    expected = {"Home", "Login", "Logout", "Settings", "Save Settings", "Help", "About"}
    assert expected | {"Upgrade", "Submit Upgrade", "Downgrade", "Error"} <= set(pages)
    assert pages["NextSong"] > sum(pages.values()) / 2
    for event in dataset.events:
        if event.fields["page"] != "NextSong":
            assert event.fields["artist"] is None
            assert event.fields["song"] is None
            assert event.fields["length"] is None
        else:
            assert event.fields["length"] > 0


def test_users_change_level_mid_month(dataset: Dataset) -> None:
    by_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in dataset.events:
        if event.fields["userId"]:
            by_user[event.fields["userId"]].append(event.fields)
    upgraded = downgraded = 0
    for events in by_user.values():
        events.sort(key=lambda fields: fields["ts"])
        level = events[0]["level"]
        for fields in events:
            # The submit event carries the level it was submitted from; the change follows it.
            assert fields["level"] == level
            if fields["page"] == "Submit Upgrade":
                assert level == "free"
                level = "paid"
                upgraded += 1
            elif fields["page"] == "Submit Downgrade":
                assert level == "paid"
                level = "free"
                downgraded += 1
        if any(fields["page"] == "Submit Upgrade" for fields in events):
            first = events[0]["ts"]
            submit = next(f["ts"] for f in events if f["page"] == "Submit Upgrade")
            assert submit > first
            assert any(f["level"] == "paid" for f in events if f["ts"] > submit)
    assert upgraded >= 2
    assert downgraded >= 1


def test_users_keep_stable_attributes(dataset: Dataset) -> None:
    attributes: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for event in dataset.events:
        fields = event.fields
        if fields["userId"]:
            attributes[fields["userId"]].add(
                tuple(
                    fields[key]
                    for key in (
                        "firstName",
                        "lastName",
                        "gender",
                        "location",
                        "userAgent",
                        "registration",
                    )
                )
            )
    assert len(attributes) >= 20
    assert all(len(values) == 1 for values in attributes.values())
    agents = {next(iter(values))[4] for values in attributes.values()}
    assert any(agent.startswith('"') and agent.endswith('"') for agent in agents)


def test_song_plays_match_some_songs_and_miss_others(dataset: Dataset) -> None:
    known = {
        (song.fields["title"], song.fields["artist_name"], song.fields["duration"])
        for song in dataset.songs
    }
    duration_texts = {
        (song.fields["title"], song.fields["artist_name"], song.fields["duration"]): (
            DURATION_TEXT.search(song.text)[1]
        )
        for song in dataset.songs
    }
    titles = {song.fields["title"] for song in dataset.songs}
    artist_names = {song.fields["artist_name"] for song in dataset.songs}
    matched = unknown_title = other_artist = 0
    for event in dataset.events:
        fields = event.fields
        if fields["page"] != "NextSong":
            continue
        if (fields["song"], fields["artist"], fields["length"]) in known:
            matched += 1
            length_text = LENGTH_TEXT.search(event.line)[1]
            assert (
                length_text == duration_texts[(fields["song"], fields["artist"], fields["length"])]
            )
        elif fields["song"] not in titles:
            unknown_title += 1
        elif fields["artist"] not in artist_names:
            other_artist += 1
    assert matched == dataset.summary.matched_song_plays
    assert matched > dataset.summary.song_plays / 3
    assert unknown_title > 0
    assert other_artist > 0


def test_catalog_has_multi_song_artists_and_sparse_metadata(dataset: Dataset) -> None:
    songs = [song.fields for song in dataset.songs]
    per_artist = Counter(fields["artist_id"] for fields in songs)
    assert sum(count >= 2 for count in per_artist.values()) >= 3
    assert any(fields["year"] == 0 for fields in songs)
    assert any(fields["year"] > 1900 for fields in songs)
    assert any(fields["artist_latitude"] is None for fields in songs)
    assert any(fields["artist_longitude"] is None for fields in songs)
    assert any(fields["artist_location"] == "" for fields in songs)
    assert any(fields["artist_latitude"] is not None for fields in songs)


def test_names_and_places_include_unicode(dataset: Dataset) -> None:
    songs = [song.fields for song in dataset.songs]
    users = [event.fields for event in dataset.events if event.fields["userId"]]
    assert any(has_accent(fields["artist_name"]) for fields in songs)
    assert any(has_accent(fields["title"]) for fields in songs)
    assert any(has_accent(fields["artist_location"]) for fields in songs)
    assert any(has_accent(fields["firstName"]) for fields in users)
    assert any(has_accent(fields["lastName"]) for fields in users)
    assert any(has_accent(fields["location"]) for fields in users)


def test_registration_text_uses_e_notation() -> None:
    assert registration_text(1540919166796) == "1.540919166796E12"
    assert registration_text(1541000000000) == "1.541E12"
    assert registration_text(1000000000000) == "1.0E12"
    for value in (1540919166796, 1541000000000, 1000000000000, 1534567890123):
        assert float(registration_text(value)) == value
    with pytest.raises(ValueError, match="registration must be a positive epoch in ms, got 0"):
        registration_text(0)


def test_user_pool_scales_with_events_within_bounds() -> None:
    assert user_pool_size(0) == 20
    assert user_pool_size(5000) == 100
    assert user_pool_size(1_000_000) == MAX_USERS


def test_existing_output_is_refused_unless_overwritten(tmp_path: Path) -> None:
    generate_dataset(tmp_path, events=200, songs=10, seed=1, days=2)
    with pytest.raises(FileExistsError):
        generate_dataset(tmp_path, events=200, songs=10, seed=1, days=2)
    summary = generate_dataset(tmp_path, events=300, songs=5, seed=2, days=3, overwrite=True)
    assert len(list((tmp_path / "song_data").rglob("*.json"))) == summary.song_files == 5
    assert len(list((tmp_path / "log_data").rglob("*.json"))) == summary.log_files == 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"events": -1, "songs": 5}, "events must be >= 0, got -1"),
        ({"events": 10, "songs": 0}, "songs must be >= 1, got 0"),
        ({"days": 0}, "days must be >= 1, got 0"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, arguments: dict[str, int], message: str) -> None:
    options = {"events": 10, "songs": 5, "seed": 1, "days": 2} | arguments
    with pytest.raises(ValueError, match=message):
        generate_dataset(tmp_path, **options)


def test_cli_writes_the_data_set(tmp_path: Path, command_line: Callable[..., Said]) -> None:
    out = tmp_path / "out"
    args = ["--events", "600", "--songs", "12", "--out", str(out), "--seed", "5"]
    args += ["--start-date", "2018-11-20", "--days", "3"]
    said = command_line("generate.py", *args)
    assert said.status == 0, said.err
    assert len(said.out.strip().splitlines()) == 1
    assert "600 events" in said.out
    logs = sorted(path.name for path in (out / "log_data").rglob("*.json"))
    assert logs == [f"2018-11-{day}-events.json" for day in (20, 21, 22)]
    assert len(list((out / "song_data").rglob("*.json"))) == 12
    again = command_line("generate.py", *args)
    assert again.status == 2
    assert "exists" in again.err
