"""What only a real cluster can answer: the Redshift smoke test (flows/redshift_smoke.py) asks
each of these of its throwaway cluster and prints the answers, where Redshift's documentation
leaves the product's choice open (README, "What only a cluster can tell").

Each question runs on its own connection and leaves nothing behind: a probe table and objects
under the run's S3 prefix, dropped and deleted at the end, and, for the owner question, a
database user without a password (signed in through IAM), dropped at the end."""

from __future__ import annotations

import time as clock
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, Table, func, select, text
from sqlalchemy.exc import DBAPIError

from tasks.common.errors import WarehouseBusy
from tasks.source.s3 import S3Source
from tasks.warehouse.redshift.staging_copy import copy_statement, manifest
from tasks.warehouse.redshift.warehouse import RedshiftWarehouse

PROBE = Table("sparkify_smoke_probe", MetaData(), Column("a", Integer), Column("b", BigInteger))
# A database user for the owner question: no password, signed in with IAM only.
PROBE_USER = "sparkify_smoke_probe"
# Seconds the lock question's second run waits for the first.
LOCK_WAIT_SECONDS = 5.0
# The JSONPaths expression of the probe records' one field.
A = "$['a']"


@dataclass(frozen=True)
class Answer:
    """A question and what the cluster answered."""

    question: str
    answer: str


@dataclass
class Probe:
    """Where the questions run: the cluster's warehouse block and the run's S3 prefix."""

    warehouse: RedshiftWarehouse
    s3: S3Source
    cluster_identifier: str | None = None

    def copy_statement(self, data_uri: str, paths_uri: str, *extra: str) -> str:
        """The run's COPY (staging_copy.py) of one object into the probe table, through a
        manifest naming it, both columns from the JSONPaths, with `extra` options after it."""
        manifest_key = self.s3.key("_questions", data_uri.rsplit("/", 1)[-1] + ".manifest")
        manifest_uri = self.s3.put_json(manifest_key, manifest([data_uri]))
        statement = copy_statement(PROBE, manifest_uri, paths_uri, self.warehouse)
        return "\n".join([statement, *extra])

    def put_paths(self) -> str:
        """A JSONPaths document naming field a for both of the probe table's columns; its URI."""
        return self.s3.put_json(self.s3.key("_questions", "paths.json"), {"jsonpaths": [A] * 2})

    def put_lines(self, name: str, lines: list[str]) -> str:
        """An object of JSON lines under the run's prefix; its URI."""
        key = self.s3.key("_questions", name)
        body = "".join(f"{line}\n" for line in lines).encode()
        self.s3.client().put_object(Bucket=self.s3.bucket, Key=key, Body=body)
        return self.s3.uri(key)

    @contextmanager
    def table(self) -> Iterator[None]:
        """The probe table for the question's time."""
        engine = self.warehouse.get_engine()
        with engine.begin() as conn:
            PROBE.drop(conn, checkfirst=True)
            PROBE.create(conn)
        try:
            yield
        finally:
            with engine.begin() as conn:
                PROBE.drop(conn, checkfirst=True)
            engine.dispose()


def _value(conn: Connection, query: str, **values: object) -> object:
    """The first value of a query's first row, or the error it raised, in words; the
    connection's transaction ends either way."""
    try:
        value = conn.execute(text(query), values).scalar()
        conn.commit()
        return value
    except DBAPIError as error:
        conn.rollback()
        return f"error: {str(error.orig).splitlines()[0]}"


def copy_ids_and_json_mapping(probe: Probe) -> list[Answer]:
    """One COPY of a record with a key twice and a record that fails, through a JSONPaths
    document naming one field for both columns: which query ids its load errors carry in the
    SYS view and the STL table against pg_last_copy_id(), which value of the repeated key it
    kept, and whether one field may fill two columns."""
    paths = probe.s3.put_json(
        probe.s3.key("_questions", "paths.json"), {"jsonpaths": ["$['a']"] * 2}
    )
    data = probe.put_lines("records.json", ['{"a": 1, "a": 2}', '{"a": "not a number"}'])
    with probe.table():
        engine = probe.warehouse.get_engine()
        with engine.connect() as conn:
            try:
                with conn.begin():
                    probe.warehouse.copy(conn, probe.copy_statement(data, paths))
                    last = conn.execute(select(func.pg_last_copy_id())).scalar()
                    rows = conn.execute(select(PROBE.c.a, PROBE.c.b)).all()
            except DBAPIError as error:
                failed = f"the COPY failed: {str(error.orig).splitlines()[0]}"
                return [Answer(q, failed) for q in _COPY_QUESTIONS]
            sys_id = _value(
                conn,
                "select max(query_id) from sys_load_error_detail where trim(file_name) = :f",
                f=data,
            )
            stl_id = _value(
                conn, "select max(query) from stl_load_errors where trim(filename) = :f", f=data
            )
        engine.dispose()
    ids = f"pg_last_copy_id() {last}, SYS_LOAD_ERROR_DETAIL.query_id {sys_id}, "
    ids += f"STL_LOAD_ERRORS.query {stl_id}"
    same = "the same" if sys_id == last else "different"
    kept = {(1, 1): "the first", (2, 2): "the last"}.get(tuple(rows[0]) if rows else (), "")
    return [
        Answer(_COPY_QUESTIONS[0], f"{same}: {ids}"),
        Answer(_COPY_QUESTIONS[1], f"{kept or 'neither'} value (rows {rows})"),
        Answer(_COPY_QUESTIONS[2], "yes" if rows and rows[0][0] == rows[0][1] else f"no {rows}"),
    ]


_COPY_QUESTIONS = (
    "load errors' query ids in SYS_LOAD_ERROR_DETAIL against pg_last_copy_id()",
    "which value of a key given twice in one record COPY keeps",
    "whether a JSONPaths document may fill two columns from one field",
)


def lock_wait_bound(probe: Probe) -> list[Answer]:
    """Whether a run waiting for the run lock is ended by the client's bound, and how long
    that took, while another run holds the lock."""
    question = f"whether the client's bound ends a LOCK wait of {LOCK_WAIT_SECONDS:.0f} s"
    waiter = probe.warehouse.model_copy(update={"lock_wait_seconds": LOCK_WAIT_SECONDS})
    with probe.warehouse.hold():
        started = clock.monotonic()
        try:
            with waiter.hold():
                answer = "no: the lock was granted while another run held it"
        except WarehouseBusy:
            answer = f"yes: WarehouseBusy after {clock.monotonic() - started:.1f} s"
        except DBAPIError as error:
            answer = f"no: {str(error.orig).splitlines()[0]}"
    return [Answer(question, answer)]


def statupdate_needs_owner(probe: Probe) -> list[Answer]:
    """Whether COPY with STATUPDATE ON fails for a user with INSERT who does not own the
    table, and whether the same COPY without STATUPDATE loads (signed in through IAM as a
    database user without a password)."""
    question = "whether COPY needs the table's owner with STATUPDATE, and only INSERT without"
    if probe.cluster_identifier is None:
        return [Answer(question, "not asked: no cluster identifier for IAM sign-in")]
    paths = probe.s3.put_json(
        probe.s3.key("_questions", "paths.json"), {"jsonpaths": ["$['a']"] * 2}
    )
    data = probe.put_lines("one.json", ['{"a": 7}'])
    quote = probe.warehouse.get_engine().dialect.identifier_preparer.quote
    user, table = quote(PROBE_USER), quote(PROBE.name)
    admin = probe.warehouse.get_engine()
    guest = probe.warehouse.model_copy(
        update={
            "user": PROBE_USER,
            "password": None,
            "sign_in": "iam",
            "cluster_identifier": probe.cluster_identifier,
        }
    ).get_engine()
    results = []
    with probe.table():
        try:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"create user {user} password disable")
                conn.exec_driver_sql(f"grant insert, select on {table} to {user}")
            for extra in (("STATUPDATE ON",), ()):
                try:
                    with guest.begin() as conn:
                        conn.exec_driver_sql(probe.copy_statement(data, paths, *extra))
                    results.append("loaded")
                except DBAPIError as error:
                    results.append(f"refused ({str(error.orig).splitlines()[0]})")
        finally:
            guest.dispose()
            with admin.begin() as conn:
                conn.exec_driver_sql(f"revoke all on {table} from {user}")
                conn.exec_driver_sql(f"drop user if exists {user}")
            admin.dispose()
    return [Answer(question, f"with STATUPDATE ON: {results[0]}; without: {results[1]}")]


QUESTIONS: tuple[Callable[[Probe], list[Answer]], ...] = (
    copy_ids_and_json_mapping,
    lock_wait_bound,
    statupdate_needs_owner,
)


Question = Callable[[Probe], list[Answer]]


def ask(probe: Probe, questions: tuple[Question, ...] | None = None) -> list[Answer]:
    """Every question's answers; a question that fails answers with its error, so the others
    are still asked."""
    answers = []
    for question in questions or QUESTIONS:
        try:
            answers += question(probe)
        except Exception as error:
            said = (str(error).strip().splitlines() or [type(error).__name__])[0]
            answers.append(Answer(question.__name__, f"could not ask: {said}"))
    return answers
