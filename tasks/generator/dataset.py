"""One generator run: the catalog's song files, then the event logs a day at a time."""

import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from .catalog import build_catalog, build_play_pools, song_metadata
from .events import EventWriter, build_users, day_quotas
from .formats import DAY_MS, DEFAULT_START_DATE, event_file_path, song_file_path, user_pool_size

_WRITER_THREADS = 4

_EPOCH = date(1970, 1, 1)


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


def _epoch_ms(day: date) -> int:
    return (day - _EPOCH).days * DAY_MS


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

    artists, catalog = build_catalog(rng, songs)
    names = {artist.name for artist in artists} | {song.artist_name for song in catalog}
    pools = build_play_pools(rng, artists, catalog, names)
    start_ms = _epoch_ms(start_date)
    users = build_users(rng, user_pool_size(events), start_ms, days)
    quotas = day_quotas(rng, events, days)

    # Creating many small files here is bound by the disk's latency, not by the CPU, so a few
    # threads overlap it. They run before the CPU-bound event drawing, not beside it: next to a
    # busy thread each of them would wait for the GIL after every system call.
    by_subtree: dict[str, list[tuple[Path, bytes]]] = {}
    for song in catalog:
        by_subtree.setdefault(song.track_id[2:4], []).append(
            (out / song_file_path(song.track_id), song_metadata(song))
        )
    for subtree in by_subtree:
        (out / "song_data" / subtree[0]).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=_WRITER_THREADS) as pool:
        # One subtree song_data/X/Y per task, so no two threads create the same directory.
        song_files = sum(pool.map(_write_files, by_subtree.values()))

    writer = EventWriter(rng, users, pools)
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
