"""The journal is written ahead of every mutating call (issue 18: a journal that loses nothing)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from migrate.aws.session import AwsSession, CallRecord
from migrate.engine.journal import NO_ANSWER, SENT, Journal
from migrate.store import open_store


def _rows(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT operation, outcome, request_id FROM journal ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def test_the_intent_is_committed_before_the_request_leaves(endpoint: str, tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    store = open_store(str(db))
    journal = Journal(store)
    journal.scope.run_id = "r-test"
    session = AwsSession(region="us-east-1", endpoint_url=endpoint)
    session.set_recorder(journal)
    kms = session.client("kms")
    seen_at_send: list[list[tuple[Any, ...]]] = []
    # Another reader, at the moment botocore sends the request: the intent must be there.
    kms.meta.events.register(
        "before-send.kms.CreateKey", lambda **kw: seen_at_send.append(_rows(db))
    )
    kms.create_key(Description="journal test")
    kms.list_keys()  # a read: never journaled
    journal.flush()
    assert seen_at_send == [[("CreateKey", SENT, None)]]
    [(operation, outcome, request_id)] = _rows(db)
    assert (operation, outcome) == ("CreateKey", "ok") and request_id
    store.close()


def test_a_call_whose_answer_never_arrived_is_marked_on_resume(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    store = open_store(str(db))
    journal = Journal(store)
    journal.scope.run_id = "r-killed"
    journal.intent(CallRecord("rds", "ModifyDBInstance", "us-east-1", "legacy-db", {}, None, SENT))
    # The process died here. A new one takes the run over:
    assert Journal(store).mark_unanswered("r-killed") == 1
    assert _rows(db) == [("ModifyDBInstance", NO_ANSWER, None)]
    store.close()


def test_concurrent_intents_share_commits_and_each_gets_its_own_entry(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = open_store(str(tmp_path / "j.db"))
    journal = Journal(store)
    record = CallRecord("s3", "CopyObject", "us-east-1", "s3://b/k", {}, None, SENT)
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda _: journal.intent(record), range(200)))
    assert len(set(ids)) == 200
    store.close()
