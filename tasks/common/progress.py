"""Progress of long work (staging, transforms, cluster waits), in the Prefect UI and the terminal.

Counted work: say how much there is, then advance as parts finish.

    from tasks.common.progress import Progress

    with Progress("staging events", total=len(files), unit="files") as progress:
        for batch in batches:
            load(batch)
            progress.advance(len(batch), note=batch[-1])

A wait, whose end is unknown: say its timeout, then report the state at each look.

    with Progress.wait("waiting for cluster c1 to be available", timeout_s=1800) as progress:
        while (state := look()) != "available":
            progress.status(state)
            sleep(30)

What it shows:
- Inside a Prefect flow or task run, a progress artifact keyed `sparkify-progress-<title>` (e.g.
  `sparkify-progress-staging-events`), with the last line as its description; updated at most
  once a second and when the block ends, at 100% when it ends without an exception. A wait shows
  the fraction of its timeout spent.
- Everywhere, outside any run too, lines through the run logger (tasks/common/logs.py), at a
  pace a person reads: `staging events: 120/600 files (20%), 14.2s - <note>` every 10 s while
  the work goes on, and once at its end (work of a few seconds says only its end); a wait's
  lines, `waiting for cluster c1 to be available: creating, 35.0s (timeout 1800s)`, come when
  the state changes or 10 s after the previous line. Leaving with an exception logs where the
  work stopped.

Lines and updates happen inside `advance` and `status`: a part that takes a minute shows
nothing during that minute. The artifact's calls to the Prefect API are made in order by a
thread of the block's own, so the work goes on while they are in flight: against a remote
Prefect API each call is a round trip over the network, and work that reports every second
would otherwise wait on one each second. The block's end waits for the last of them, so the
artifact is complete when the block is. Reporting never fails the work: an artifact the
Prefect API refuses is given up after one warning.
"""

from __future__ import annotations

import contextvars
import math
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import TracebackType
from typing import Any
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import FlowRunContext, TaskRunContext

from tasks.common.logs import run_logger

KEY_PREFIX = "sparkify-progress"
# A log line while the work goes on at most this often.
LOG_EVERY_S = 10.0
# The artifact is written at most this often (each write is a call to the Prefect API).
ARTIFACT_EVERY_S = 1.0


def progress_key(title: str) -> str:
    """The artifact key of a title: `staging events` -> `sparkify-progress-staging-events`."""
    # Not tasks.run.artifacts.artifact_key: that module imports transform, which imports this one.
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return f"{KEY_PREFIX}-{slug}" if slug else KEY_PREFIX


# The part of a run in parts (tasks/run/parts.py) that the work belongs to: (number, parts).
_PART: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "sparkify_progress_part", default=None
)


@contextmanager
def in_part(number: int, parts: int) -> Iterator[None]:
    """Progress begun inside the block is of part `number` of a run in `parts` parts: its title
    (and so its artifact key) ends "(part 2 of 10)", so each part's staging and transforms show
    on their own instead of one artifact starting again at every part. Nothing changes for a
    run in one part."""
    token = _PART.set((number, parts)) if parts > 1 else None
    try:
        yield
    finally:
        if token is not None:
            _PART.reset(token)


def in_prefect_run() -> bool:
    """True inside a Prefect flow run or task run (where an artifact has a run to belong to)."""
    return TaskRunContext.get() is not None or FlowRunContext.get() is not None


class Progress:
    """Progress of counted work or of a wait, logged and shown as a Prefect progress artifact."""

    def __init__(
        self,
        title: str,
        total: int,
        unit: str,
        *,
        key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total < 0:
            raise ValueError(f"a progress total cannot be negative: {total}")
        if (part := _PART.get()) is not None:
            title = f"{title} (part {part[0]} of {part[1]})"
        self.title = title
        self.total: int | None = total
        self.unit = unit
        self.key = key or progress_key(title)
        self.timeout_s: float | None = None
        self.done = 0
        self.note: str | None = None
        self._clock = clock
        self._started: float | None = None
        self._logger: Any = None
        self._artifact_id: UUID | None = None
        self._artifact_at = -math.inf
        self._writer: ThreadPoolExecutor | None = None
        self._context: contextvars.Context | None = None
        self._logged_at = -math.inf
        self._logged_note: str | None = None

    @classmethod
    def wait(
        cls,
        title: str,
        timeout_s: float,
        *,
        key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Progress:
        """A wait of at most timeout_s seconds: its lines show the state and the time waited."""
        progress = cls(title, 0, "s", key=key, clock=clock)
        progress.total = None
        progress.timeout_s = timeout_s
        return progress

    # --- what the work calls ----------------------------------------------------------------

    def __enter__(self) -> Progress:
        self._started = self._clock()
        self._logger = run_logger()
        if in_prefect_run():
            # The calls run in a copy of this context: the artifact belongs to this run.
            self._context = contextvars.copy_context()
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="progress-artifact")
            self._artifact_at = self._started
            self._send(self._create_artifact, self.line(self._started))
        if self.timeout_s is None:
            self._logged_at = self._started  # counted work: its first line 10 s in, if it lasts
        return self

    def advance(self, n: int = 1, note: str | None = None) -> None:
        """Count n more parts done (note: what was just done, shown in the line)."""
        self.done += n
        if note is not None:
            self.note = note
        self._report()

    def status(self, note: str) -> None:
        """Say what the work is doing now (a wait's state) without counting anything done."""
        self.note = note
        self._report()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        now = self._clock()
        if exc_type is None:
            self._log(now, self.line(now, final=True))
            self._send(self._write_artifact, 100.0, self.line(now, final=True))
        else:
            stopped = f"{self.line(now)} (stopped: {exc_type.__name__})"
            self._logger.warning("%s", stopped)
            self._send(self._write_artifact, self.percent(now), stopped)
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    # --- what it shows --------------------------------------------------------------------

    @property
    def started(self) -> float:
        """The clock's reading when the block was entered."""
        if self._started is None:
            raise RuntimeError("use Progress as a context manager: `with Progress(...) as p:`")
        return self._started

    def fraction(self, now: float) -> float:
        """How far the work is, 0 to 1 (a wait: the part of its timeout spent, below 1)."""
        if self.timeout_s is not None:
            return min((now - self.started) / self.timeout_s, 0.99) if self.timeout_s > 0 else 0.0
        if not self.total:
            return 1.0
        return min(self.done / self.total, 1.0)

    def percent(self, now: float) -> float:
        """The fraction as the percentage the progress artifact shows."""
        return round(100 * self.fraction(now), 1)

    def line(self, now: float, final: bool = False) -> str:
        """The progress line: `staging events: 120/600 files (20%), 14.2s - note`."""
        elapsed = now - self.started
        if self.timeout_s is not None:
            state = "done" if final else self.note or "waiting"
            return f"{self.title}: {state}, {elapsed:.1f}s (timeout {self.timeout_s:.0f}s)"
        counts = f"{self.done:,}/{self.total:,} {self.unit}"
        text = f"{self.title}: {counts} ({math.floor(100 * self.fraction(now))}%), {elapsed:.1f}s"
        return f"{text} - {self.note}" if self.note else text

    # --- throttling -----------------------------------------------------------------------

    def _report(self) -> None:
        self.started  # noqa: B018 - refuses a Progress that was never entered
        now = self._clock()
        if self._should_log(now):
            self._log(now)
        if self._writer is not None and now - self._artifact_at >= ARTIFACT_EVERY_S:
            self._artifact_at = now
            self._send(self._write_artifact, self.percent(now), self.line(now))

    def _should_log(self, now: float) -> bool:
        if self.timeout_s is not None:
            return self.note != self._logged_note or now - self._logged_at >= LOG_EVERY_S
        if self.fraction(now) >= 1.0:
            return False  # the line at 100% is the end's, with the whole time taken
        return now - self._logged_at >= LOG_EVERY_S

    def _log(self, now: float, line: str | None = None) -> None:
        self._logger.info("%s", line or self.line(now))
        self._logged_at = now
        self._logged_note = self.note

    # --- the artifact: calls made in order by the block's writer thread ----------------------

    def _send(self, call: Callable[..., None], *args: Any) -> None:
        """Have the writer thread make an artifact call, after those sent before it."""
        if self._writer is not None and self._context is not None:
            self._writer.submit(self._context.run, call, *args)

    def _create_artifact(self, description: str) -> None:
        try:
            self._artifact_id = create_progress_artifact(
                progress=0.0, key=self.key, description=description
            )
        except Exception as error:
            self._give_up_artifact(error)

    def _write_artifact(self, percent: float, description: str) -> None:
        if self._artifact_id is None:  # never created, or given up
            return
        try:
            update_progress_artifact(self._artifact_id, progress=percent, description=description)
        except Exception as error:
            self._give_up_artifact(error)

    def _give_up_artifact(self, error: Exception) -> None:
        self._artifact_id = None
        self._logger.warning(
            "progress artifact %r given up (%s: %s); progress goes on in the log",
            self.key,
            type(error).__name__,
            error,
        )
