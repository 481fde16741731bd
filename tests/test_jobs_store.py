"""The REST job store and runner without models (fast tier): persistence across a restart, queue order, and
that a job whose run fails in any way is marked failed, never left running."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from speechsvc.batch import jobs
from speechsvc.batch.jobs import JobRunner, JobStore
from speechsvc.batch.runners import JobProgress
from tests.fakes import fake_engine


def test_store_persists_and_requeues_interrupted_jobs(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    a = store.create({"inputs": ["a.wav"], "formats": ["json"], "language": "zh"})
    b = store.create({"inputs": ["b.wav", "c.wav"], "formats": ["json"], "language": None})
    assert store.next_queued().id == a.id  # type: ignore[union-attr]
    store.update(a.id, state="running", progress={"total": 1, "done": 0})
    store.close()
    again = JobStore(tmp_path)  # a restart
    assert again.get(a.id).state == "running" and again.get(b.id).progress == {"total": 2}  # type: ignore[union-attr]
    assert again.requeue_interrupted() == 1 and again.get(a.id).state == "queued"  # type: ignore[union-attr]
    assert again.get("nope") is None
    again.close()


@pytest.mark.parametrize("error", [OSError("disk full"), RuntimeError("a bug"), KeyError("formats")])
async def test_a_job_that_fails_in_any_way_is_marked_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> JobProgress:
        raise error

    monkeypatch.setattr(jobs, "run_local", broken)
    store = JobStore(tmp_path)
    runner = JobRunner(fake_engine(), store)
    runner.start()
    job = runner.submit({"inputs": ["x.wav"], "formats": ["json"], "language": "zh", "uploaded": False})
    for _ in range(200):
        if store.get(job.id).state == "failed":  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.01)
    done = store.get(job.id)
    assert done is not None and done.state == "failed" and type(error).__name__ in (done.error or "")
    await runner.stop()
    store.close()
