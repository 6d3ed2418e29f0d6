"""Users and their sessions: the event log lines of each day, drawn and rendered."""

import random
from dataclasses import dataclass
from typing import TypeAlias

from .catalog import Play, draw_person
from .formats import (
    DAY_MS,
    ERROR_PAGE,
    LOGGED_OUT_PAGES,
    REDIRECT_PAGES,
    json_text,
    registration_text,
)
from .words import USER_AGENTS, USER_LOCATIONS

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

# (JSON fragments of the person, page, level, play or None)
_Item: TypeAlias = tuple["_Fragments", str, str, Play | None]


@dataclass(frozen=True, slots=True)
class _Fragments:
    """Pre-encoded JSON pieces of the fields that depend only on who is acting."""

    auth_to_item: str
    last_to_length: str
    location: str
    registration: str
    agent_and_id: str


@dataclass(slots=True)
class User:
    """A listener, with the level changes planned for the run."""

    user_id: int
    weight: float
    fragments: _Fragments
    level: str
    upgrade_day: int | None
    downgrade_day: int | None
    upgraded: bool = False
    downgraded: bool = False


_ANONYMOUS = _Fragments(
    auth_to_item='"auth":"Logged Out","firstName":null,"gender":null,"itemInSession":',
    last_to_length='"lastName":null,"length":',
    location='"location":null',
    registration='"registration":null',
    agent_and_id='"userAgent":null,"userId":""',
)
_PAGE_FIELDS: dict[str, tuple[str, int]] = {
    page: (
        f'"method":"{"PUT" if page == "NextSong" else "GET"}","page":{json_text(page)}',
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
            f'"auth":"Logged In","firstName":{json_text(first)},"gender":{json_text(gender)},'
            '"itemInSession":'
        ),
        last_to_length=f'"lastName":{json_text(last)},"length":',
        location=f'"location":{json_text(location)}',
        registration=f'"registration":{registration_text(registration_ms)}',
        agent_and_id=f'"userAgent":{json_text(agent)},"userId":{json_text(str(user_id))}',
    )


def build_users(rng: random.Random, count: int, start_ms: int, days: int) -> list[User]:
    """Draw count users registered before start_ms, some planned to change level."""
    ids = sorted(rng.sample(range(2, 2 + 3 * count), count))
    users: list[User] = []
    for index, user_id in enumerate(ids):
        gender, first, last = draw_person(rng)
        # Pin accented names on the first two users so even the smallest run has them.
        if index == 0:
            first = "Zoë" if gender == "F" else "José"
        elif index == 1:
            last = "Muñoz"
        agent = rng.choice(USER_AGENTS)
        if "," in agent:
            # The source logged agents CSV-style: quoted exactly when they contain a comma.
            agent = f'"{agent}"'
        registration_ms = start_ms - rng.randrange(DAY_MS, 200 * DAY_MS)
        level = "paid" if rng.random() < 0.25 else "free"
        upgrade_day = None
        if level == "free" and rng.random() < 0.2:
            upgrade_day = rng.randrange(1, days) if days > 1 else 0
        users.append(
            User(
                user_id=user_id,
                weight=rng.lognormvariate(0.0, 1.0),
                fragments=_user_fragments(
                    user_id,
                    first,
                    last,
                    gender,
                    rng.choice(USER_LOCATIONS),
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


def day_quotas(rng: random.Random, events: int, days: int) -> list[int]:
    """Split events over the days, at least one a day when there are enough."""
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


class EventWriter:
    """Draws sessions for one run and renders them, a day at a time."""

    def __init__(
        self,
        rng: random.Random,
        users: list[User],
        pools: tuple[list[Play], list[Play], list[Play], list[Play]],
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

    def _pick_play(self) -> Play:
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

    def _user_session(self, user: User, day_index: int, planned: int) -> list[_Item]:
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
