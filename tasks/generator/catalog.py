"""The song catalog: artists, songs, their metadata files and the pools of plays drawn from it."""

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import orjson

from .formats import json_text
from .words import (
    ACCENTED_ARTISTS,
    ACCENTED_TITLES,
    ADJECTIVES,
    ARTIST_PLACES,
    FEMALE_NAMES,
    LAST_NAMES,
    MALE_NAMES,
    NOUNS,
    VERBS,
)

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# (artist JSON, song JSON, length JSON, whether it matches a song file on all three)
Play: TypeAlias = tuple[str, str, str, bool]


@dataclass(frozen=True, slots=True)
class Artist:
    """An artist as its song files describe it."""

    artist_id: str
    name: str
    location: str
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True, slots=True)
class Song:
    """One song of the catalog, written to its own metadata file."""

    track_id: str
    song_id: str
    title: str
    duration: float
    year: int
    artist: Artist
    # As written in this song's file: a "feat." credit makes it differ from artist.name.
    artist_name: str


def _code(rng: random.Random, prefix: str, taken: set[str], letters: int = 0) -> str:
    # The public set's track ids begin "TRA" and two more letters, so its files sit under
    # song_data/A/A..Z/A..Z. Keeping that shape also keeps directories few: with one new
    # directory per file, writing 20k song files takes several times longer.
    while True:
        code = (
            prefix
            + "".join(rng.choices(_LETTERS, k=letters))
            + "".join(rng.choices(_ALNUM, k=18 - len(prefix) - letters))
        )
        if code not in taken:
            taken.add(code)
            return code


def draw_person(rng: random.Random) -> tuple[str, str, str]:
    """A random gender, first name and last name."""
    gender = "F" if rng.random() < 0.5 else "M"
    first = rng.choice(FEMALE_NAMES if gender == "F" else MALE_NAMES)
    return gender, first, rng.choice(LAST_NAMES)


def _artist_name(rng: random.Random, taken: set[str]) -> str:
    for _ in range(50):
        pattern = rng.randrange(6)
        if pattern == 0:
            name = f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}s"
        elif pattern == 1:
            _, first, last = draw_person(rng)
            name = f"{first} {last}"
        elif pattern == 2:
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        elif pattern == 3:
            _, first, last = draw_person(rng)
            name = f"{first} {last} & The {rng.choice(NOUNS)}s"
        elif pattern == 4:
            name = f"DJ {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
        else:
            name = rng.choice(ACCENTED_ARTISTS)
        if name not in taken:
            taken.add(name)
            return name
    # The word lists allow far more names than any run needs; this only breaks a long streak.
    number = 2
    while f"{name} {number}" in taken:
        number += 1
    taken.add(f"{name} {number}")
    return f"{name} {number}"


# Song title shapes, picked uniformly; each draws its words left to right.
_TITLE_SHAPES: tuple[Callable[[random.Random], str], ...] = (
    lambda rng: f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
    lambda rng: f"The {rng.choice(NOUNS)}",
    lambda rng: f"{rng.choice(NOUNS)} of the {rng.choice(NOUNS)}s",
    lambda rng: f"{rng.choice(VERBS)} the {rng.choice(NOUNS)}",
    lambda rng: f"I {rng.choice(VERBS)} You",
    lambda rng: f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} (Live)",
    lambda rng: f"{rng.choice(NOUNS)} Song",
    lambda rng: rng.choice(ACCENTED_TITLES),
)


def _title(rng: random.Random) -> str:
    return _TITLE_SHAPES[rng.randrange(len(_TITLE_SHAPES))](rng)


def _duration(rng: random.Random) -> float:
    return round(30.0 + rng.lognormvariate(5.2, 0.35), 5)


def build_catalog(rng: random.Random, n_songs: int) -> tuple[list[Artist], list[Song]]:
    """Draw artists and n_songs songs by them."""
    artist_ids: set[str] = set()
    song_ids: set[str] = set()
    track_ids: set[str] = set()
    names: set[str] = set()
    # The first artists carry accented names and several songs, so even tiny runs have both.
    accented = list(ACCENTED_ARTISTS)
    rng.shuffle(accented)
    artists: list[Artist] = []
    songs: list[Song] = []
    songs_per_artist = (1, 1, 1, 1, 2, 2, 3, 4, 5, 7)
    while len(songs) < n_songs:
        index = len(artists)
        if index < 3:
            name = accented[index]
            names.add(name)
        else:
            name = _artist_name(rng, names)
        place_kind = rng.random()
        if place_kind < 0.55:
            location, latitude, longitude = rng.choice(ARTIST_PLACES)
        elif place_kind < 0.75:
            location, latitude, longitude = rng.choice(ARTIST_PLACES)[0], None, None
        else:
            location, latitude, longitude = "", None, None
        artist = Artist(_code(rng, "AR", artist_ids), name, location, latitude, longitude)
        artists.append(artist)
        count = 3 if index == 0 else rng.choice(songs_per_artist)
        count = min(count, n_songs - len(songs))
        for position in range(count):
            credited = name
            if position == count - 1 and count > 1 and rng.random() < 0.15:
                # The real set credits guests on some files of the same artist_id.
                _, first, last = draw_person(rng)
                credited = f"{name} feat. {first} {last}"
                if credited in names:
                    credited = name
                names.add(credited)
            year = 0 if rng.random() < 0.35 else rng.randint(1956, 2010)
            songs.append(
                Song(
                    track_id=_code(rng, "TRA", track_ids, letters=2),
                    song_id=_code(rng, "SO", song_ids),
                    title=_title(rng),
                    duration=_duration(rng),
                    year=year,
                    artist=artist,
                    artist_name=credited,
                )
            )
    return artists, songs


def song_metadata(song: Song) -> bytes:
    """A song's metadata file, as JSON bytes."""
    artist = song.artist
    return orjson.dumps(
        {
            "num_songs": 1,
            "artist_id": artist.artist_id,
            "artist_latitude": artist.latitude,
            "artist_longitude": artist.longitude,
            "artist_location": artist.location,
            "artist_name": song.artist_name,
            "song_id": song.song_id,
            "title": song.title,
            "duration": song.duration,
            "year": song.year,
        }
    )


def _play(title: str, artist: str, length: float, known: set[tuple[str, str, float]]) -> Play:
    return (
        json_text(artist),
        json_text(title),
        json_text(length),
        (title, artist, length) in known,
    )


def build_play_pools(
    rng: random.Random, artists: list[Artist], songs: list[Song], names: set[str]
) -> tuple[list[Play], list[Play], list[Play], list[Play]]:
    """Pools of plays: matching a song file, with another artist, length, or no song."""
    known = {(song.title, song.artist_name, song.duration) for song in songs}
    known_pairs = {(title, artist) for title, artist, _ in known}
    # Shuffled so the skewed pick below makes a random subset of songs the popular ones.
    by_popularity = list(songs)
    rng.shuffle(by_popularity)
    matching = [_play(s.title, s.artist_name, s.duration, known) for s in by_popularity]
    strangers = [_artist_name(rng, names) for _ in range(max(8, len(artists) // 2))]
    other_artist = [
        _play(song.title, rng.choice(strangers), song.duration, known)
        for song in rng.sample(songs, max(1, min(len(songs), len(songs) // 10)))
    ]
    other_length = []
    for song in rng.sample(songs, max(1, min(len(songs), len(songs) // 20))):
        shift = rng.uniform(1.0, 20.0) * (1 if rng.random() < 0.5 else -1)
        length = round(max(10.0, song.duration + shift), 5)
        other_length.append(_play(song.title, song.artist_name, length, known))
    unknown = []
    for index in range(max(20, len(songs) // 2)):
        artist = rng.choice(strangers) if index % 2 else rng.choice(artists).name
        title = _title(rng)
        while (title, artist) in known_pairs:
            title = f"{title} (Remix)"
        unknown.append(_play(title, artist, _duration(rng), known))
    return matching, other_artist, other_length, unknown
