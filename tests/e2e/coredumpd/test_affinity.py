"""Keeping a thread and ours apart, on real threads: each on its side, and ours given back."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

from coredumpd.affinity import apart
from procfs.parse.stat import parse_stat

pytestmark = pytest.mark.e2e


def processor(pid: int) -> int | None:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return parse_stat(f.read()).processor


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to keep apart")
def test_the_other_thread_keeps_its_cpu_and_we_take_the_rest() -> None:
    child = subprocess.Popen(["sleep", "30"])
    seen: dict[str, object] = {}

    def worker() -> None:  # affinity is per thread: the caller's is changed, nobody else's
        before = os.sched_getaffinity(0)
        with apart(child.pid):
            seen["child"] = os.sched_getaffinity(child.pid)
            seen["ours"] = os.sched_getaffinity(0)
            seen["started"] = _affinity_of_a_thread_started_now()
        seen["after"] = os.sched_getaffinity(0)
        seen["before"] = before

    try:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(30)
        cpu = processor(child.pid)
    finally:
        child.kill()
        child.wait()
    assert seen["child"] == {cpu}
    assert seen["ours"] == seen["before"] - {cpu}  # type: ignore[operator]
    assert seen["started"] == seen["ours"]  # the core's reader and writer threads follow
    assert seen["after"] == seen["before"]
    assert os.sched_getaffinity(0) == seen["before"]  # the main thread was never touched


def _affinity_of_a_thread_started_now() -> set[int]:
    box: list[set[int]] = []
    thread = threading.Thread(target=lambda: box.append(os.sched_getaffinity(0)))
    thread.start()
    thread.join()
    return box[0]


def test_a_gone_thread_changes_nothing() -> None:
    before = os.sched_getaffinity(0)
    child = subprocess.Popen(["true"])
    child.wait()
    with apart(child.pid):
        assert os.sched_getaffinity(0) == before
    with apart(None):
        assert os.sched_getaffinity(0) == before
