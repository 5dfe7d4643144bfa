"""GroupCommit: concurrent writes share transactions; a refused write fails alone; order kept."""

import threading
from contextlib import contextmanager

import pytest

from services.db_manager.group_commit import GroupCommit
from sextant.store.interface import Conflict


class FakeDb:
    """Records transactions: each is the list of ops run in it; ``fail_on`` makes a commit fail."""

    def __init__(self, fail_on=None):
        self.transactions: list[list[str]] = []
        self.fail_on = fail_on
        self.gate = threading.Event()
        self.gate.set()

    @contextmanager
    def begin(self):
        ops: list[str] = []
        yield ops
        self.gate.wait()
        if self.fail_on is not None and self.fail_on in ops:
            raise RuntimeError(f"database refused {self.fail_on}")
        self.transactions.append(ops)


def _op(name, after_log=None, error=None):
    def op(conn):
        if error is not None:
            raise error
        conn.append(name)
        return name.upper(), (lambda: after_log.append(name)) if after_log is not None else None
    return op


def test_writes_waiting_together_share_one_commit_and_run_after_commit_in_order():
    db = FakeDb()
    commits = GroupCommit(db.begin)
    after: list[str] = []
    db.gate.clear()  # hold the first commit so the others queue up behind it
    results: dict[str, str] = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, commits.run(_op(n, after))))
               for n in ["a", "b", "c", "d"]]
    threads[0].start()
    while not commits._leading or commits._queue:  # "a" is running, held at the commit
        pass
    for t in threads[1:]:
        t.start()
    while len(commits._queue) < 3:
        pass
    db.gate.set()
    for t in threads:
        t.join(5)
    assert results == {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert db.transactions[0] == ["a"] and sorted(db.transactions[1]) == ["b", "c", "d"]
    assert commits.batches == 2 and commits.writes == 4
    assert after[0] == "a" and after[1:] == db.transactions[1]


def test_a_store_error_fails_only_its_writer():
    db = FakeDb()
    commits = GroupCommit(db.begin)
    with pytest.raises(Conflict):
        commits.run(_op("x", error=Conflict("stale")))
    assert commits.run(_op("y")) == "Y"
    assert db.transactions[-1] == ["y"]


def test_a_refused_batch_is_retried_one_by_one():
    db = FakeDb(fail_on="bad")
    commits = GroupCommit(db.begin)
    # Run two writes in one batch by queueing them behind a leader held at the gate.
    db.gate.clear()
    out: dict[str, object] = {}

    def run(name):
        try:
            out[name] = commits.run(_op(name))
        except RuntimeError as err:
            out[name] = err

    first = threading.Thread(target=run, args=("first",))
    first.start()
    while not commits._leading or commits._queue:  # "first" is running, held at the commit
        pass
    others = [threading.Thread(target=run, args=(n,)) for n in ("good", "bad")]
    for t in others:
        t.start()
    while len(commits._queue) < 2:
        pass
    db.gate.set()
    for t in [first, *others]:
        t.join(5)
    assert out["first"] == "FIRST" and out["good"] == "GOOD"
    assert isinstance(out["bad"], RuntimeError)
    assert ["good"] in db.transactions and all("bad" not in t for t in db.transactions)


def test_without_grouping_each_write_has_its_own_transaction():
    db = FakeDb()
    commits = GroupCommit(db.begin, max_batch=1)
    assert [commits.run(_op(n)) for n in "pq"] == ["P", "Q"]
    assert db.transactions == [["p"], ["q"]]
