"""The REST job stores without models (fast tier): the same contract for the embedded SQLite store and the shared
PostgreSQL store (a real ``postgres`` started here on loopback; skipped, saying why, where it is not installed):
persistence, claims under a lease, takeover after a lease expires, fencing, cancel and delete, completion decided
once, idempotent migrations; and the runner: an item that fails in any way is failed, never left running."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from speechsvc.batch.jobs import JobRunner, JobStore, RunnerOptions, SqliteJobStore
from speechsvc.batch.jobs import runner as runner_module
from speechsvc.batch.jobs.sql import SqlJobStore
from tests.support.fakes import fake_engine
from tests.support.pgserver import INITDB, SKIP_REASON, PostgresServer

REQUEST = {"formats": ["json"], "language": "zh", "uploaded": False}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if INITDB is None:
        pytest.skip(SKIP_REASON)
    with PostgresServer() as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A function that opens the store (again: a restart, or another replica on the same database)."""
    opened: list[SqlJobStore] = []
    url = request.getfixturevalue("postgres").fresh_database() if request.param == "postgres" else ""

    def make() -> SqlJobStore:
        store: SqlJobStore
        if request.param == "sqlite":
            store = SqliteJobStore(tmp_path / "jobs")
        else:
            from speechsvc.batch.jobs.postgres import PostgresJobStore

            store = PostgresJobStore(url, tmp_path / "jobs")
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def test_jobs_persist_and_claims_share_out_items(make_store: Any) -> None:
    store = make_store()
    a = store.create({**REQUEST, "inputs": ["a.wav"]}, tenant="t1")
    b = store.create({**REQUEST, "inputs": ["b1.wav", "b2.wav"], "language": None}, tenant="t1")
    claims = store.claim("r1", 2, 30.0)
    assert [(c.job_id, c.input, c.attempts) for c in claims] == [(a.id, "a.wav", 1), (b.id, "b1.wav", 1)]
    other = make_store()  # a restart, or a second replica on the same store
    assert other.get(a.id).state == "running" and other.get(b.id).progress["total"] == 2
    assert [c.input for c in other.claim("r2", 5, 30.0)] == ["b2.wav"]  # held items are not handed out twice
    assert other.claim("r2", 5, 30.0) == [] and other.get("nope") is None
    assert other.count("t1") == 2 and other.count("t2") == 0 and other.active("t1") == 2
    assert [j.id for j in other.list("t1")] == [b.id, a.id] and other.list("t2") == []


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced(make_store: Any) -> None:
    store = make_store()
    job = store.create({**REQUEST, "inputs": ["x.wav", "y.wav"]}, tenant="t")
    dead = store.claim("dead", 1, 0.0)  # a replica that dies at once: its lease ends now
    alive = make_store()
    taken = alive.claim("alive", 1, 30.0)
    assert [(c.input, c.attempts) for c in taken] == [("x.wav", 2)]  # the same item, a second attempt
    assert not store.finish(dead[0], "dead", "done")  # the dead replica's late result is refused
    assert alive.renew("alive", 30.0) == 1
    assert alive.finish(taken[0], "alive", "done", audio_s=3.0)
    assert alive.complete_if_finished(job.id) is None  # y.wav is still queued
    (y,) = alive.claim("alive", 5, 30.0)
    assert alive.finish(y, "alive", "failed", "ValueError: no audio")
    done = alive.complete_if_finished(job.id)
    assert done is not None and done.state == "done" and alive.complete_if_finished(job.id) is None
    assert done.progress == {"total": 2, "done": 1, "skipped": 0, "failed": 1, "audio_s": 3.0,
                             "errors": {"y.wav": "ValueError: no audio"}}
    items = alive.items(job.id, 0, 10)
    assert [(i.state, i.replica, i.attempts) for i in items] == [("done", "alive", 2), ("failed", "alive", 1)]


def test_concurrent_claims_never_share_an_item(make_store: Any) -> None:
    store = make_store()
    job = store.create({**REQUEST, "inputs": [f"{i}.wav" for i in range(60)]})
    replicas = [make_store() for _ in range(3)]
    got: dict[str, list[int]] = {}

    def work(name: str, replica: SqlJobStore) -> None:
        mine = got.setdefault(name, [])
        while claims := replica.claim(name, 3, 30.0):
            for claim in claims:
                assert replica.finish(claim, name, "done")
                mine.append(claim.index)

    threads = [threading.Thread(target=work, args=(f"r{i}", s)) for i, s in enumerate(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    indexes = sorted(i for mine in got.values() for i in mine)
    assert indexes == list(range(60))  # none lost, none twice
    finals = [s.complete_if_finished(job.id) for s in replicas]
    assert sum(f is not None for f in finals) == 1  # exactly one replica completes it (and sends its callback)


def test_cancel_hides_the_job_at_once_and_purges_when_no_item_runs(make_store: Any) -> None:
    store = make_store()
    job = store.create({**REQUEST, "inputs": ["a.wav", "b.wav", "c.wav"]})
    (running,) = store.claim("r1", 1, 30.0)
    assert store.cancel(job.id) and not store.cancel(job.id)
    assert store.get(job.id) is None and store.count(None) == 0
    assert store.claim("r2", 5, 30.0) == []  # its queued items never start
    assert store.purge_deleted() == []  # an item still runs (its boundary is not reached)
    assert store.finish(running, "r1", "done") and store.complete_if_finished(job.id) is None
    assert store.purge_deleted() == [job.id] and store.items(job.id, 0, 10) == []


def test_a_graceful_stop_hands_items_back_without_counting_the_attempt(make_store: Any) -> None:
    store = make_store()
    store.create({**REQUEST, "inputs": ["a.wav"]})
    store.claim("r1", 1, 30.0)
    assert store.release("r1") == 1
    assert [c.attempts for c in store.claim("r2", 1, 30.0)] == [1]


def test_uploads_become_runnable_only_when_complete(make_store: Any) -> None:
    store = make_store()
    job = store.create({**REQUEST, "inputs": [], "uploaded": True}, state="uploading", tenant="t",
                       webhook_url="http://127.0.0.1:9/hook")
    assert store.claim("r1", 5, 30.0) == []
    store.set_request(job.id, {**REQUEST, "inputs": ["/x/0000_a.wav"], "names": ["my call.wav"], "uploaded": True})
    again = store.get(job.id)
    assert again.state == "queued" and again.name(0) == "my call.wav" and again.webhook_url == "http://127.0.0.1:9/hook"
    assert [c.input for c in store.claim("r1", 5, 30.0)] == ["/x/0000_a.wav"]
    assert store.fail_stale_uploads(0.0) == 0  # nothing is uploading any more


def test_postgres_migrations_are_idempotent_and_concurrent(postgres: PostgresServer, tmp_path: Path) -> None:
    import psycopg

    from speechsvc.batch.jobs.postgres import MIGRATIONS, PostgresJobStore

    url = postgres.fresh_database()
    stores: list[PostgresJobStore] = []
    threads = [threading.Thread(target=lambda: stores.append(PostgresJobStore(url, tmp_path)))
               for _ in range(3)]  # replicas starting together
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(stores) == 3
    with psycopg.connect(url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM speechsvc_schema ORDER BY version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    for store in stores:
        store.close()


def test_postgres_down_at_start_then_back(postgres: PostgresServer, tmp_path: Path) -> None:
    """A replica starts without its job database (live calls never need it); jobs work once it answers."""
    from speechsvc.batch.jobs import StoreUnavailable
    from speechsvc.batch.jobs.postgres import PostgresJobStore

    down = PostgresJobStore("postgresql://nobody@127.0.0.1:9/none?connect_timeout=1", tmp_path)
    with pytest.raises(StoreUnavailable):
        down.count(None)
    store = PostgresJobStore(url := postgres.fresh_database(), tmp_path)
    store.close()  # the database goes away (a new connection will be made)
    store.url, store._migrated = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1", False
    with pytest.raises(StoreUnavailable):
        store.count(None)
    store.url = url  # back: migrated at the first use
    assert store.count(None) == 0 and store._migrated
    store.close()


def test_a_restart_on_one_machine_resumes_at_once(tmp_path: Path) -> None:
    from speechsvc.batch.jobs import open_store
    from tests.support.fakes import fast_settings

    store = SqliteJobStore(tmp_path / "jobs")
    store.create({**REQUEST, "inputs": ["a.wav"]})
    store.claim("dead", 1, 3600.0)  # the process dies holding it for an hour
    store.close()
    again = open_store(fast_settings(jobs_dir=tmp_path / "jobs"))
    assert [c.attempts for c in again.claim("alive", 1, 30.0)] == [2]
    again.close()


@pytest.mark.parametrize("error", [OSError("disk full"), RuntimeError("a bug"), KeyError("formats")])
async def test_an_item_that_fails_in_any_way_is_failed_never_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(runner_module, "analyze_recording", broken)
    monkeypatch.setattr(runner_module, "load_audio", lambda *a: (None, 16000))
    store: JobStore = SqliteJobStore(tmp_path)
    runner = JobRunner(fake_engine(), store, RunnerOptions("r1", poll_s=0.05))
    runner.start()
    job = runner.submit({**REQUEST, "inputs": ["x.wav"]})
    for _ in range(200):
        if store.get(job.id).state == "done":  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.02)
    done = store.get(job.id)
    assert done is not None and done.state == "done" and done.progress["failed"] == 1
    assert type(error).__name__ in done.progress["errors"]["x.wav"]
    await runner.stop()
    store.close()
