"""Synthetic Sparkify source data: daily event logs and one-song metadata files.

The output follows the public Sparkify data set's layout and formats, including the quirks a
loader has to survive (logged-out events, plays of songs that have no metadata, E-notation
registrations, users changing level mid-month). Everything is drawn from one seeded
``random.Random``, so the same arguments always give byte-identical files.
"""

import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path, PurePosixPath
from typing import TypeAlias

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
_WRITER_THREADS = 4

_EPOCH = date(1970, 1, 1)
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Shares of the NextSong plays (cumulative thresholds). Most plays match a song file; the rest
# are the misses a loader must keep with null song_id/artist_id.
_PLAY_KNOWN = 0.62
_PLAY_OTHER_ARTIST = 0.68
_PLAY_OTHER_LENGTH = 0.70
_NEXT_SONG_SHARE = 0.82
_ANONYMOUS_SESSION_SHARE = 0.08
_MEAN_SESSION_BODY = 14.0
_MAX_MEAN_GAP_MS = 200_000

# Weighted by repetition so a single random() picks one without a cumulative search.
_OTHER_PAGE_BAG: tuple[str, ...] = (
    ("Home",) * 10
    + ("Settings",) * 3
    + ("Save Settings",) * 1
    + ("Help",) * 2
    + ("About",) * 1
    + ("Upgrade/Downgrade",) * 3
    + (ERROR_PAGE,) * 1
)

_ADJECTIVES = (
    "Silver", "Broken", "Electric", "Golden", "Quiet", "Wild", "Velvet", "Hollow", "Crimson",
    "Lonely", "Midnight", "Neon", "Paper", "Burning", "Frozen", "Gentle", "Restless", "Distant",
    "Sweet", "Bitter", "Blue", "Black", "Bright", "Crystal", "Empty", "Faded", "Fallen", "Hidden",
    "Lucky", "Lost", "Northern", "Open", "Painted", "Perfect", "Secret", "Shallow", "Sleepy",
    "Strange", "Summer", "Tender", "Wicked", "Winter", "Young", "Ancient", "Cosmic", "Dusty",
    "Heavy", "Liquid", "Magnetic", "Savage", "Solar", "Stone", "Sunday", "Twisted", "Urban",
    "Violet", "Wooden", "Radio", "Glass", "Naïve",
)  # fmt: skip
_NOUNS = (
    "Heart", "River", "Mountain", "Shadow", "Dream", "Fire", "Ocean", "Road", "Star", "City",
    "Garden", "Mirror", "Train", "Window", "Letter", "Horse", "Wolf", "Bird", "Ghost", "Rain",
    "Storm", "Thunder", "Moon", "Sun", "Sky", "Island", "Forest", "Desert", "Highway", "Harbor",
    "Kingdom", "Machine", "Engine", "Angel", "Stranger", "Lover", "Sailor", "Soldier", "Queen",
    "King", "Child", "Tiger", "Rose", "Diamond", "Bell", "Candle", "Lantern", "Echo", "Wave",
    "Valley", "Bridge", "Tower", "Castle", "Circus", "Carnival", "Planet", "Comet", "Signal",
    "Pilot", "Saint",
)  # fmt: skip
_VERBS = (
    "Love", "Follow", "Remember", "Leave", "Hold", "Chase", "Call", "Miss", "Save", "Kiss",
    "Burn", "Carry", "Find", "Forget", "Wake", "Meet", "Trust", "Need", "Light", "Dance",
)  # fmt: skip
_ACCENTED_TITLES = (
    "Café", "Déjà Vu", "Mañana", "Señorita", "Über Alles", "Fiancée", "Cliché", "Piñata",
    "Rêverie", "Noël", "Jalapeño", "Ça Plane Pour Moi", "Sólo Tú", "Smörgåsbord",
)  # fmt: skip
_ACCENTED_ARTISTS = (
    "Beyoncé", "Sigur Rós", "Björk", "Mötley Crüe", "Céline Dion", "Zoë Keating",
    "Ólafur Arnalds", "Röyksopp", "Motörhead", "Maná", "Café Tacvba", "Hüsker Dü",
    "Blue Öyster Cult", "Édith Piaf", "Mónica Naranjo", "Måneskin",
)  # fmt: skip
_FEMALE_NAMES = (
    "Lily", "Chloé", "Zoë", "Jacqueline", "Kate", "Ava", "Sophia", "Renée", "Inés", "Mia",
    "Layla", "Tegan", "Aleena", "Anabelle", "Brianna", "Kinsley", "Madison", "Elena", "Noémie",
    "Harper", "Katherine", "Lucía", "Amélie", "Olivia", "Emma", "Kaylee", "Sara", "Jordyn",
)  # fmt: skip
_MALE_NAMES = (
    "Jacob", "Ryan", "Liam", "Jayden", "Aiden", "Kevin", "Matthew", "Sebastián", "José",
    "Noël", "Björn", "Søren", "Tom", "Wyatt", "Connar", "Mohammad", "Chase", "Theo", "Andrés",
    "Joaquín", "Lucas", "Ethan", "Owen", "Jordan", "Zachary", "Rayden", "Marcus", "Diego",
)  # fmt: skip
_LAST_NAMES = (
    "Koch", "Smith", "Lynch", "Levine", "Williams", "Cruz", "Young", "Moreno", "Muñoz", "Peña",
    "Müller", "García", "Brontë", "O'Brien", "Nuñez", "Johnson", "Harrell", "Ramirez", "Porter",
    "Chen", "Nguyen", "Kowalski", "Sánchez", "Gómez", "Lefèvre", "Østergaard", "Jørgensen",
    "Bailey", "Thompson", "Fox", "Rodríguez", "Becker", "Silva", "Doyle", "Wright", "Ayala",
)  # fmt: skip
_USER_LOCATIONS = (
    "San Jose-Sunnyvale-Santa Clara, CA", "Atlanta-Sandy Springs-Roswell, GA",
    "New York-Newark-Jersey City, NY-NJ-PA", "Chicago-Naperville-Elgin, IL-IN-WI",
    "Los Angeles-Long Beach-Anaheim, CA", "Houston-The Woodlands-Sugar Land, TX",
    "Seattle-Tacoma-Bellevue, WA", "Lansing-East Lansing, MI", "Bakersfield, CA",
    "Tampa-St. Petersburg-Clearwater, FL", "Portland-South Portland, ME", "Española, NM",
    "Mayagüez, PR", "Cañon City, CO", "San Germán-Cabo Rojo, PR", "Waterloo-Cedar Falls, IA",
    "Red Bluff, CA", "Birmingham-Hoover, AL", "Phoenix-Mesa-Scottsdale, AZ",
    "Detroit-Warren-Dearborn, MI", "Winston-Salem, NC", "Santa Maria-Santa Barbara, CA",
    "Minneapolis-St. Paul-Bloomington, MN-WI", "Boston-Cambridge-Newton, MA-NH",
    "Denver-Aurora-Lakewood, CO",
)  # fmt: skip
_ARTIST_PLACES: tuple[tuple[str, float, float], ...] = (
    ("Reykjavík, Iceland", 64.13548, -21.89541),
    ("São Paulo, Brazil", -23.5475, -46.63611),
    ("Montréal, Québec, Canada", 45.50884, -73.58781),
    ("Zürich, Switzerland", 47.36667, 8.55),
    ("Malmö, Sweden", 55.60587, 13.00073),
    ("Bogotá, Colombia", 4.60971, -74.08175),
    ("Köln, Germany", 50.93333, 6.95),
    ("Houston, TX", 29.76045, -95.36978),
    ("Memphis, TN", 35.14968, -90.04892),
    ("London, England", 51.50632, -0.12714),
    ("Los Angeles, CA", 34.05349, -118.24532),
    ("Chicago, IL", 41.88415, -87.63241),
    ("Nashville, TN", 36.16778, -86.77836),
    ("Detroit, MI", 42.33168, -83.04792),
    ("Kingston, Jamaica", 17.99702, -76.79358),
    ("Paris, France", 48.85693, 2.3412),
    ("Berlin, Germany", 52.51607, 13.37698),
    ("Seattle, WA", 47.60356, -122.32944),
    ("Austin, TX", 30.26759, -97.74299),
    ("New Orleans, LA", 29.95369, -90.07771),
    ("Dublin, Ireland", 53.34376, -6.24953),
    ("Melbourne, Australia", -37.81753, 144.96715),
    ("Tokyo, Japan", 35.68501, 139.7514),
    ("Oslo, Norway", 59.91228, 10.74998),
    ("Ciudad de México, México", 19.43261, -99.13321),
)
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.77.4 (KHTML, like Gecko) "
    "Version/7.0.5 Safari/537.77.4",
    "Mozilla/5.0 (Windows NT 6.3; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Ubuntu Chromium/36.0.1985.125 Chrome/36.0.1985.125 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 "
    "(KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; WOW64; Trident/6.0)",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
)

# (artist JSON, song JSON, length JSON, whether it matches a song file on all three)
_Play: TypeAlias = tuple[str, str, str, bool]
# (JSON fragments of the person, page, level, play or None)
_Item: TypeAlias = tuple["_Fragments", str, str, _Play | None]


@dataclass(frozen=True, slots=True)
class GenerationSummary:
    """What one generator run wrote."""

    out_dir: Path
    log_files: int
    song_files: int
    events: int
    song_plays: int
    matched_song_plays: int
    logged_out_events: int
    songs: int
    artists: int
    users: int
    upgraded_users: int
    downgraded_users: int

    def describe(self) -> str:
        """One line for a terminal or a log."""
        return (
            f"wrote {self.log_files} log files and {self.song_files} song files to "
            f"{self.out_dir}: {self.events} events ({self.song_plays} NextSong, "
            f"{self.matched_song_plays} matching a song file, {self.logged_out_events} logged "
            f"out), {self.songs} songs by {self.artists} artists, {self.users} users "
            f"({self.upgraded_users} upgraded, {self.downgraded_users} downgraded)"
        )


@dataclass(frozen=True, slots=True)
class _Artist:
    artist_id: str
    name: str
    location: str
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True, slots=True)
class _Song:
    track_id: str
    song_id: str
    title: str
    duration: float
    year: int
    artist: _Artist
    # As written in this song's file: a "feat." credit makes it differ from artist.name.
    artist_name: str


@dataclass(frozen=True, slots=True)
class _Fragments:
    """Pre-encoded JSON pieces of the fields that depend only on who is acting."""

    auth_to_item: str
    last_to_length: str
    location: str
    registration: str
    agent_and_id: str


@dataclass(slots=True)
class _User:
    user_id: int
    weight: float
    fragments: _Fragments
    level: str
    upgrade_day: int | None
    downgrade_day: int | None
    upgraded: bool = False
    downgraded: bool = False


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


_ANONYMOUS = _Fragments(
    auth_to_item='"auth":"Logged Out","firstName":null,"gender":null,"itemInSession":',
    last_to_length='"lastName":null,"length":',
    location='"location":null',
    registration='"registration":null',
    agent_and_id='"userAgent":null,"userId":""',
)
_PAGE_FIELDS: dict[str, tuple[str, int]] = {
    page: (
        f'"method":"{"PUT" if page == "NextSong" else "GET"}","page":{_json(page)}',
        307 if page in REDIRECT_PAGES else 404 if page == ERROR_PAGE else 200,
    )
    for page in (
        "NextSong",
        "Home",
        "Login",
        "Logout",
        "Settings",
        "Save Settings",
        "Help",
        "About",
        "Upgrade",
        "Submit Upgrade",
        "Downgrade",
        "Submit Downgrade",
        ERROR_PAGE,
    )
}


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


def _epoch_ms(day: date) -> int:
    return (day - _EPOCH).days * DAY_MS


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


def _person(rng: random.Random) -> tuple[str, str, str]:
    gender = "F" if rng.random() < 0.5 else "M"
    first = rng.choice(_FEMALE_NAMES if gender == "F" else _MALE_NAMES)
    return gender, first, rng.choice(_LAST_NAMES)


def _artist_name(rng: random.Random, taken: set[str]) -> str:
    for _ in range(50):
        pattern = rng.randrange(6)
        if pattern == 0:
            name = f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}s"
        elif pattern == 1:
            _, first, last = _person(rng)
            name = f"{first} {last}"
        elif pattern == 2:
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        elif pattern == 3:
            _, first, last = _person(rng)
            name = f"{first} {last} & The {rng.choice(_NOUNS)}s"
        elif pattern == 4:
            name = f"DJ {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        else:
            name = rng.choice(_ACCENTED_ARTISTS)
        if name not in taken:
            taken.add(name)
            return name
    # The word lists allow far more names than any run needs; this only breaks a long streak.
    number = 2
    while f"{name} {number}" in taken:
        number += 1
    taken.add(f"{name} {number}")
    return f"{name} {number}"


def _title(rng: random.Random) -> str:
    pattern = rng.randrange(8)
    if pattern == 0:
        return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    if pattern == 1:
        return f"The {rng.choice(_NOUNS)}"
    if pattern == 2:
        return f"{rng.choice(_NOUNS)} of the {rng.choice(_NOUNS)}s"
    if pattern == 3:
        return f"{rng.choice(_VERBS)} the {rng.choice(_NOUNS)}"
    if pattern == 4:
        return f"I {rng.choice(_VERBS)} You"
    if pattern == 5:
        return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} (Live)"
    if pattern == 6:
        return f"{rng.choice(_NOUNS)} Song"
    return rng.choice(_ACCENTED_TITLES)


def _duration(rng: random.Random) -> float:
    return round(30.0 + rng.lognormvariate(5.2, 0.35), 5)


def _build_catalog(rng: random.Random, n_songs: int) -> tuple[list[_Artist], list[_Song]]:
    artist_ids: set[str] = set()
    song_ids: set[str] = set()
    track_ids: set[str] = set()
    names: set[str] = set()
    # The first artists carry accented names and several songs, so even tiny runs have both.
    accented = list(_ACCENTED_ARTISTS)
    rng.shuffle(accented)
    artists: list[_Artist] = []
    songs: list[_Song] = []
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
            location, latitude, longitude = rng.choice(_ARTIST_PLACES)
        elif place_kind < 0.75:
            location, latitude, longitude = rng.choice(_ARTIST_PLACES)[0], None, None
        else:
            location, latitude, longitude = "", None, None
        artist = _Artist(_code(rng, "AR", artist_ids), name, location, latitude, longitude)
        artists.append(artist)
        count = 3 if index == 0 else rng.choice(songs_per_artist)
        count = min(count, n_songs - len(songs))
        for position in range(count):
            credited = name
            if position == count - 1 and count > 1 and rng.random() < 0.15:
                # The real set credits guests on some files of the same artist_id.
                _, first, last = _person(rng)
                credited = f"{name} feat. {first} {last}"
                if credited in names:
                    credited = name
                names.add(credited)
            year = 0 if rng.random() < 0.35 else rng.randint(1956, 2010)
            songs.append(
                _Song(
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


def _song_metadata(song: _Song) -> bytes:
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


def _play(title: str, artist: str, length: float, known: set[tuple[str, str, float]]) -> _Play:
    return (_json(artist), _json(title), _json(length), (title, artist, length) in known)


def _build_play_pools(
    rng: random.Random, artists: list[_Artist], songs: list[_Song], names: set[str]
) -> tuple[list[_Play], list[_Play], list[_Play], list[_Play]]:
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
        if index % 2:
            artist = rng.choice(strangers)
        else:
            artist = rng.choice(artists).name
        title = _title(rng)
        while (title, artist) in known_pairs:
            title = f"{title} (Remix)"
        unknown.append(_play(title, artist, _duration(rng), known))
    return matching, other_artist, other_length, unknown


def _user_fragments(
    user_id: int,
    first: str,
    last: str,
    gender: str,
    location: str,
    agent: str,
    registration_ms: int,
) -> _Fragments:
    return _Fragments(
        auth_to_item=(
            f'"auth":"Logged In","firstName":{_json(first)},"gender":{_json(gender)},'
            '"itemInSession":'
        ),
        last_to_length=f'"lastName":{_json(last)},"length":',
        location=f'"location":{_json(location)}',
        registration=f'"registration":{registration_text(registration_ms)}',
        agent_and_id=f'"userAgent":{_json(agent)},"userId":{_json(str(user_id))}',
    )


def _build_users(rng: random.Random, count: int, start_ms: int, days: int) -> list[_User]:
    ids = sorted(rng.sample(range(2, 2 + 3 * count), count))
    users: list[_User] = []
    for index, user_id in enumerate(ids):
        gender, first, last = _person(rng)
        # Pin accented names on the first two users so even the smallest run has them.
        if index == 0:
            first = "Zoë" if gender == "F" else "José"
        elif index == 1:
            last = "Muñoz"
        agent = rng.choice(_USER_AGENTS)
        if "," in agent:
            # The source logged agents CSV-style: quoted exactly when they contain a comma.
            agent = f'"{agent}"'
        registration_ms = start_ms - rng.randrange(DAY_MS, 200 * DAY_MS)
        level = "paid" if rng.random() < 0.25 else "free"
        upgrade_day = None
        if level == "free" and rng.random() < 0.2:
            upgrade_day = rng.randrange(1, days) if days > 1 else 0
        users.append(
            _User(
                user_id=user_id,
                weight=rng.lognormvariate(0.0, 1.0),
                fragments=_user_fragments(
                    user_id,
                    first,
                    last,
                    gender,
                    rng.choice(_USER_LOCATIONS),
                    agent,
                    registration_ms,
                ),
                level=level,
                upgrade_day=upgrade_day,
                downgrade_day=None,
            )
        )
    upgraders = [user for user in users if user.upgrade_day is not None]
    if not upgraders:
        free = [user for user in users if user.level == "free"]
        if free:
            free[0].upgrade_day = rng.randrange(1, days) if days > 1 else 0
            upgraders = free[:1]
    if not upgraders:
        return users
    # The most active upgrader is planned to change level early and back again, so that even
    # small runs almost surely show both an upgrade and a downgrade; the others follow chance.
    anchor = max(upgraders, key=lambda user: (user.weight, -user.user_id))
    for user in upgraders:
        assert user.upgrade_day is not None
        # A level change only shows if the user comes back afterwards, so no changer is shy.
        user.weight = max(user.weight, 3.0)
        if user is anchor:
            user.weight = max(user.weight, 8.0)
            user.upgrade_day = min(user.upgrade_day, max(1, days // 3))
        if user is anchor or rng.random() < 0.3:
            user.downgrade_day = user.upgrade_day + rng.randint(1, max(1, days // 4))
    return users


def _day_quotas(rng: random.Random, events: int, days: int) -> list[int]:
    # One event per day first, so no day file is empty (an empty file is bad input downstream).
    floor = 1 if events >= days else 0
    rest = events - floor * days
    weights = [0.75 + 0.5 * rng.random() for _ in range(days)]
    total = sum(weights)
    shares = [rest * weight / total for weight in weights]
    quotas = [int(share) for share in shares]
    by_remainder = sorted(range(days), key=lambda day: (quotas[day] - shares[day], day))
    for day in by_remainder[: rest - sum(quotas)]:
        quotas[day] += 1
    return [floor + quota for quota in quotas]


class _EventWriter:
    """Draws sessions for one run and renders them, a day at a time."""

    def __init__(
        self,
        rng: random.Random,
        users: list[_User],
        pools: tuple[list[_Play], list[_Play], list[_Play], list[_Play]],
    ) -> None:
        self.rng = rng
        self.users = users
        self.cum_weights: list[float] = []
        running = 0.0
        for user in users:
            running += user.weight
            self.cum_weights.append(running)
        self.matching, self.other_artist, self.other_length, self.unknown = pools
        self.next_session_id = rng.randrange(100, 1000)
        self.song_plays = 0
        self.matched_song_plays = 0
        self.logged_out_events = 0
        self.upgraded: set[int] = set()
        self.downgraded: set[int] = set()

    def _pick_play(self) -> _Play:
        rnd = self.rng.random
        kind = rnd()
        if kind < _PLAY_KNOWN:
            pool = self.matching
            # Squaring skews plays towards the head of the shuffled list: a few hits, long tail.
            return pool[int(len(pool) * rnd() * rnd())]
        if kind < _PLAY_OTHER_ARTIST:
            pool = self.other_artist
        elif kind < _PLAY_OTHER_LENGTH:
            pool = self.other_length
        else:
            pool = self.unknown
        return pool[int(len(pool) * rnd())]

    def _anonymous_session(self, size: int) -> list[_Item]:
        rng = self.rng
        level = "paid" if rng.random() < 0.3 else "free"
        pages = ["Home"] + [rng.choice(LOGGED_OUT_PAGES) for _ in range(size - 1)]
        return [(_ANONYMOUS, page, level, None) for page in pages]

    def _user_session(self, user: _User, day_index: int, planned: int) -> list[_Item]:
        rnd = self.rng.random
        fragments = user.fragments
        prefix = 2 if rnd() < 0.25 else 0
        logout = rnd() < 0.35
        suffix = (1 + (rnd() < 0.5)) if logout else 0
        body = planned - prefix - suffix
        if body < 1:
            prefix = suffix = 0
            body = planned
        items: list[_Item] = []
        if prefix:
            items.append((_ANONYMOUS, "Home", user.level, None))
            items.append((_ANONYMOUS, "Login", user.level, None))
        change_at = -1
        if (
            user.level == "free"
            and not user.upgraded
            and user.upgrade_day is not None
            and day_index >= user.upgrade_day
        ) or (
            user.upgraded
            and not user.downgraded
            and user.downgrade_day is not None
            and day_index >= user.downgrade_day
        ):
            # Leave room for one event after the submit, so the new level shows in the session.
            change_at = self.rng.randrange(body - 2) if body >= 3 else -1
        done = 0
        while done < body:
            if done == change_at:
                # The submit event still carries the old level; the next event has the new one.
                if user.level == "free":
                    items.append((fragments, "Upgrade", "free", None))
                    items.append((fragments, "Submit Upgrade", "free", None))
                    user.level = "paid"
                    user.upgraded = True
                    self.upgraded.add(user.user_id)
                else:
                    items.append((fragments, "Downgrade", "paid", None))
                    items.append((fragments, "Submit Downgrade", "paid", None))
                    user.level = "free"
                    user.downgraded = True
                    self.downgraded.add(user.user_id)
                done += 2
                continue
            if done == 0 and prefix:
                page = "Home"
            elif rnd() < _NEXT_SONG_SHARE:
                items.append((fragments, "NextSong", user.level, self._pick_play()))
                done += 1
                continue
            else:
                page = _OTHER_PAGE_BAG[int(len(_OTHER_PAGE_BAG) * rnd())]
                if page == "Upgrade/Downgrade":
                    page = "Upgrade" if user.level == "free" else "Downgrade"
            items.append((fragments, page, user.level, None))
            done += 1
        if suffix:
            items.append((fragments, "Logout", user.level, None))
            if suffix == 2:
                items.append((_ANONYMOUS, "Home", user.level, None))
        return items

    def _offsets(self, size: int, mean_gap: int) -> list[int]:
        rnd = self.rng.random
        offsets = [0]
        offset = 0
        for _ in range(size - 1):
            offset += 1 + int(mean_gap * (0.5 + rnd()))
            offsets.append(offset)
        return offsets

    def day_lines(self, day_index: int, day_start_ms: int, quota: int) -> list[str]:
        """Draw one day's sessions and render its event lines in time order."""
        rng = self.rng
        rnd = rng.random
        by_user: dict[int, list[tuple[int, list[_Item]]]] = {}
        anonymous: list[tuple[int, list[_Item]]] = []
        remaining = quota
        while remaining > 0:
            session_id = self.next_session_id
            self.next_session_id += 1
            if rnd() < _ANONYMOUS_SESSION_SHARE:
                items = self._anonymous_session(min(remaining, 1 + rng.randrange(3)))
                anonymous.append((session_id, items))
            else:
                index = rng.choices(range(len(self.users)), cum_weights=self.cum_weights)[0]
                planned = 1 + int(rng.expovariate(1.0 / _MEAN_SESSION_BODY))
                user = self.users[index]
                items = self._user_session(user, day_index, min(remaining, planned))
                by_user.setdefault(index, []).append((session_id, items))
            remaining -= len(items)

        # (start offset in the day, session id, event offsets, items)
        placed: list[tuple[int, int, list[int], list[_Item]]] = []
        for sessions in by_user.values():
            # A user's sessions never overlap and keep their draw order, so level changes made
            # while drawing stay in time order.
            events = sum(len(items) for _, items in sessions)
            mean_gap = min(_MAX_MEAN_GAP_MS, DAY_MS // (2 * events))
            offsets = [self._offsets(len(items), mean_gap) for _, items in sessions]
            free_time = DAY_MS - 1 - sum(session[-1] for session in offsets)
            pauses = [rnd() for _ in range(len(sessions) + 1)]
            scale = free_time / sum(pauses)
            start = 0
            for (session_id, items), session_offsets, pause in zip(
                sessions, offsets, pauses, strict=False
            ):
                start += int(pause * scale)
                placed.append((start, session_id, session_offsets, items))
                start += session_offsets[-1]
        for session_id, items in anonymous:
            session_offsets = self._offsets(len(items), 30_000)
            start = rng.randrange(DAY_MS - session_offsets[-1])
            placed.append((start, session_id, session_offsets, items))

        rendered: list[tuple[int, int, int, str]] = []
        for start, session_id, session_offsets, items in placed:
            for item_in_session, (fragments, page, level, play) in enumerate(items):
                ts = day_start_ms + start + session_offsets[item_in_session]
                if play is None:
                    artist = song = length = "null"
                else:
                    artist, song, length, matched = play
                    self.song_plays += 1
                    self.matched_song_plays += matched
                if fragments is _ANONYMOUS:
                    self.logged_out_events += 1
                method_page, status = _PAGE_FIELDS[page]
                rendered.append(
                    (
                        ts,
                        session_id,
                        item_in_session,
                        f'{{"artist":{artist},{fragments.auth_to_item}{item_in_session},'
                        f'{fragments.last_to_length}{length},"level":"{level}",'
                        f"{fragments.location},{method_page},{fragments.registration},"
                        f'"sessionId":{session_id},"song":{song},"status":{status},"ts":{ts},'
                        f"{fragments.agent_and_id}}}",
                    )
                )
        rendered.sort()
        return [line for _, _, _, line in rendered]


def _write_files(files: list[tuple[Path, bytes]]) -> int:
    made: set[Path] = set()
    for path, data in files:
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(data)
    return len(files)


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    for name in ("log_data", "song_data"):
        target = out_dir / name
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
            # Only the generator's own subtrees go: the rest of out_dir is the caller's.
            shutil.rmtree(target)
    out_dir.mkdir(parents=True, exist_ok=True)


def generate_dataset(
    out_dir: Path | str,
    *,
    events: int,
    songs: int,
    seed: int,
    start_date: date = DEFAULT_START_DATE,
    days: int = 30,
    overwrite: bool = False,
) -> GenerationSummary:
    """Write a Sparkify-shaped data set (log_data/ and song_data/) under out_dir."""
    if events < 0:
        raise ValueError(f"events must be >= 0, got {events}")
    if songs < 1:
        raise ValueError(f"songs must be >= 1, got {songs}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    out = Path(out_dir)
    _prepare_out_dir(out, overwrite)
    rng = random.Random(seed)

    artists, catalog = _build_catalog(rng, songs)
    names = {artist.name for artist in artists} | {song.artist_name for song in catalog}
    pools = _build_play_pools(rng, artists, catalog, names)
    start_ms = _epoch_ms(start_date)
    users = _build_users(rng, user_pool_size(events), start_ms, days)
    quotas = _day_quotas(rng, events, days)

    # Creating many small files here is bound by the disk's latency, not by the CPU, so a few
    # threads overlap it. They run before the CPU-bound event drawing, not beside it: next to a
    # busy thread each of them would wait for the GIL after every system call.
    by_subtree: dict[str, list[tuple[Path, bytes]]] = {}
    for song in catalog:
        by_subtree.setdefault(song.track_id[2:4], []).append(
            (out / song_file_path(song.track_id), _song_metadata(song))
        )
    for subtree in by_subtree:
        (out / "song_data" / subtree[0]).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=_WRITER_THREADS) as pool:
        # One subtree song_data/X/Y per task, so no two threads create the same directory.
        song_files = sum(pool.map(_write_files, by_subtree.values()))

    writer = _EventWriter(rng, users, pools)
    log_files = 0
    for day_index, quota in enumerate(quotas):
        if quota == 0:
            continue
        day = start_date + timedelta(days=day_index)
        lines = writer.day_lines(day_index, _epoch_ms(day), quota)
        data = ("\n".join(lines) + "\n").encode()
        log_files += _write_files([(out / event_file_path(day), data)])

    return GenerationSummary(
        out_dir=out,
        log_files=log_files,
        song_files=song_files,
        events=events,
        song_plays=writer.song_plays,
        matched_song_plays=writer.matched_song_plays,
        logged_out_events=writer.logged_out_events,
        songs=len(catalog),
        artists=len(artists),
        users=len(users),
        upgraded_users=len(writer.upgraded),
        downgraded_users=len(writer.downgraded),
    )
