"""The smoke test's questions for a real cluster (tasks/cluster/questions.py), asked of the
PostgreSQL stand-in: each runs, reads what it should and leaves nothing behind. What the
stand-in answers is its emulation's (tests/redshift_copy.py); only a cluster's answers count."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

from tasks.cluster.questions import (
    PROBE,
    Probe,
    ask,
    copy_ids_and_json_mapping,
    lock_wait_bound,
    statupdate_needs_owner,
)
from tasks.source.s3 import S3Source
from tests.postgres_redshift import stand_in

pytestmark = pytest.mark.postgres


def test_the_questions_are_asked_and_leave_nothing(
    postgres_database: str, aws_credentials, bucket_name: str
) -> None:
    s3 = S3Source(bucket_name, "smoke-run", aws_credentials)
    s3.client().create_bucket(Bucket=bucket_name)
    probe = Probe(stand_in(postgres_database, aws_credentials), s3)

    answers = {a.question: a.answer for a in ask(probe)}

    ids, kept, two_columns, lock, owner = answers.values()
    # The stand-in logs SYS rows under query ids of their own, as Redshift's reference says.
    assert ids.startswith("different: pg_last_copy_id() ")
    assert "SYS_LOAD_ERROR_DETAIL.query_id " in ids
    assert "STL_LOAD_ERRORS.query " in ids
    assert kept.startswith("the last value")  # Python's JSON parser keeps the last
    assert two_columns == "yes"
    assert lock.startswith("yes: WarehouseBusy after ")
    assert owner == "not asked: no cluster identifier for IAM sign-in"
    assert PROBE.name not in inspect(create_engine(postgres_database)).get_table_names()


def test_a_question_that_fails_answers_with_its_error(aws_credentials, bucket_name) -> None:
    probe = Probe(
        stand_in("postgresql+psycopg2://nobody@127.0.0.1:1/none", aws_credentials),
        S3Source(bucket_name, "smoke-run", aws_credentials),
    )
    answers = ask(probe, (copy_ids_and_json_mapping, lock_wait_bound, statupdate_needs_owner))
    assert [a.answer.split(":")[0] for a in answers[:2]] == ["could not ask", "could not ask"]
    assert len(answers) == 3
