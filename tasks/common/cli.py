"""What every command line of flows/ shares: a user's mistake ends as `<prog>: <one line>` on
stderr with exit status 2 and no traceback (`--debug` or SPARKIFY_DEBUG=1 shows it), whether
main's own argument checks find it, before any Prefect server starts, or the flow run does.
Argparse's own mistakes (an unknown option, a malformed date) stay argparse's: usage, exit 2.
A command line calls `start_temporary_server()` once its checks pass: a plain local run (no
PREFECT_API_URL) then starts its temporary Prefect server in turn with other local runs
(tasks/common/local_server.py)."""

from __future__ import annotations

import argparse
import atexit
import functools
import inspect
import os
import signal
import sys
import threading
import traceback
import typing
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from tasks.common.errors import UserError, debug_enabled, set_debug

USER_ERROR_STATUS = 2
# A process stopped by SIGINT exits 128 + 2, as shells report it.
INTERRUPTED_STATUS = 130
INTERRUPTED_LINE = (
    "interrupted: the run stopped; the warehouse keeps its last committed load, nothing "
    "half-written: rerun the command to load what this run did not"
)
DEBUG_FLAG = "--debug"

Main = Callable[[list[str] | None], int | None]

# Lines said at the process's exit, after anything Prefect says then.
_last_words: list[str] = []


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """Add --debug: show the traceback of a user's mistake instead of its one line."""
    parser.add_argument(
        DEBUG_FLAG,
        action="store_true",
        help="show the traceback of an error instead of one line (or set SPARKIFY_DEBUG=1)",
    )


def debug_requested(argv: Sequence[str]) -> bool:
    """True when the command line asks for tracebacks (--debug before any `--`)."""
    for argument in argv:
        if argument == "--":
            return False
        if argument == DEBUG_FLAG:
            return True
    return False


def run_cli(main: Main, argv: list[str] | None, prog: str) -> int:
    """Run a command line's main: its exit status, or 2 with `<prog>: <line>` on stderr when a
    UserError ends it (the traceback above the line only when debugging). With argv None (a
    script's own command line) the line is said at exit, as the last line."""
    debug = debug_requested(sys.argv[1:] if argv is None else argv)
    set_debug(debug)
    try:
        status = main(argv)
    except UserError as error:
        if debug_enabled():
            traceback.print_exc()
        say_last(f"{prog}: {error}", at_exit=argv is None)
        return USER_ERROR_STATUS
    except KeyboardInterrupt:
        # Ctrl-C where the command keeps Python's handling (see stop_on_interrupt): its cleanup
        # (a cluster's teardown) ran on the way here.
        if debug_enabled():
            traceback.print_exc()
        say_last(f"{prog}: {INTERRUPTED_LINE}", at_exit=argv is None)
        return INTERRUPTED_STATUS
    finally:
        set_debug(False)
    return 0 if status is None else status


def command(prog: str) -> Callable[[Main], Callable[[list[str] | None], int]]:
    """Decorate a flow file's main so that a user's mistake ends as run_cli says."""

    def decorate(main: Main) -> Callable[[list[str] | None], int]:
        @functools.wraps(main)
        def wrapped(argv: list[str] | None = None) -> int:
            return run_cli(main, argv, prog)

        return wrapped

    return decorate


def stop_on_interrupt(prog: str, argv: list[str] | None) -> None:
    """Make Ctrl-C (SIGINT) end a script's process (argv None: its own command line, in its
    main thread) at once with one line and INTERRUPTED_STATUS; a main called with arguments
    (in another program's process) leaves SIGINT alone.

    A KeyboardInterrupt would reach the main thread only, while the run's work goes on in
    Prefect's task threads (a DuckDB statement runs to its end), each layer logging its
    traceback, and a temporary server that the terminal's Ctrl-C stopped too would make every
    call to it retry for a minute. Ending the process is what kill -9 does, and a run survives
    that at any point: the warehouse keeps its last committed state (DuckDB discards an
    uncommitted transaction; Redshift rolls back one whose connection drops), and the
    temporary server's watcher stops the server. Only for commands that hold nothing else to
    clean up: a run with an ephemeral cluster and the cluster commands keep Python's
    KeyboardInterrupt, so that their teardown runs."""
    if argv is not None or threading.current_thread() is not threading.main_thread():
        return

    def stop(signum: int, frame: object) -> None:
        os.write(sys.stderr.fileno(), f"\n{prog}: {INTERRUPTED_LINE}\n".encode())
        os._exit(INTERRUPTED_STATUS)

    signal.signal(signal.SIGINT, stop)


def say_last(line: str, at_exit: bool) -> None:
    """Print the line on stderr; at_exit (a script's run), when the process exits, after what
    Prefect says then (its queued events and logs sent, its temporary server stopped)."""
    if not at_exit:
        print(line, file=sys.stderr, flush=True)
        return
    if not _last_words:
        atexit.register(_say_last_words)
    _last_words.append(line)


def _say_last_words() -> None:
    # Prefect's workers drain before exit handlers run; its temporary server stops in an exit
    # handler registered before this one, so after it: stop the server first (its handler then
    # finds nothing to stop), so that its "Stopping temporary server" line comes before ours.
    if "prefect.server.api.server" in sys.modules:
        from prefect.server.api.server import SubprocessASGIServer

        SubprocessASGIServer().stop()
    for line in _last_words:
        print(line, file=sys.stderr, flush=True)
    _last_words.clear()


def add_flow_parameters(
    parser: argparse.ArgumentParser, flow: Any, leave_out: Sequence[str] = ()
) -> None:
    """An option for each of the flow's parameters (`--start-date` for start_date), with its
    default and the description its docstring gives, as the flow's form in the Prefect UI shows
    them: the parameters are declared once, on the flow. A bool is a switch; a date is read
    as YYYY-MM-DD; an int as a number; anything else as text."""
    function = inspect.unwrap(flow.fn)
    hints = typing.get_type_hints(function)
    described = flow.parameters.properties
    for name, parameter in inspect.signature(function).parameters.items():
        if name in leave_out:
            continue
        option = "--" + name.replace("_", "-")
        kind = {t for t in typing.get_args(hints[name]) or (hints[name],) if t is not type(None)}
        help_text = described.get(name, {}).get("description")
        if kind == {bool}:
            parser.add_argument(option, action="store_true", help=help_text)
            continue
        read = {date: date.fromisoformat, int: int}.get(next(iter(kind)), str)
        parser.add_argument(option, type=read, default=parameter.default, help=help_text)
