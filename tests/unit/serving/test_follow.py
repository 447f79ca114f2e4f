"""Following the registry: the swap holder (`textops.serving.follow.Follower`) over a stand-in source. The real
registry, real loads and real servers are in tests/integration/test_serve.py."""

from __future__ import annotations

import threading
import time

from helpers import StandInSource, wait_for

from textops.serving.follow import RETRY_FAILED_POLLS, Follower


def follower(source: StandInSource, poll: float = 3600) -> tuple[Follower, list]:
    events: list = []
    f = Follower(source, poll, lambda kind, info: events.append((kind, info)))
    f.load_initial()
    return f, events


def test_a_moved_alias_is_loaded_warmed_and_swapped_in():
    source = StandInSource("1")
    f, events = follower(source)
    first = f.current
    assert first.model_version == "1" and first.model.calls == 1  # warmed before it served
    assert f.check() == {"result": "unchanged", "model_version": "1"}
    source.version = "2"
    assert f.check()["result"] == "swapped"
    assert f.current.model_version == "2" and f.current.model.calls == 1
    assert first.model_version == "1"  # what a request read at its start is not changed by the swap
    assert events == [("swapped", {"from": "1", "to": "2", "load_seconds": f.current.load_seconds})]


def test_a_version_that_fails_to_load_is_not_swapped_in():
    source = StandInSource("1", broken=("3",))
    f, events = follower(source, poll=10)
    source.version = "3"
    result = f.check()
    assert result["result"] == "failed" and f.current.model_version == "1"
    assert f.last_error["version"] == "3" and "model.safetensors" in f.last_error["message"]
    assert events[-1][0] == "failed"
    # the poller does not hammer a broken version; a forced check (POST /reload, SIGHUP) tries it again
    assert f.check()["result"] == "failed" and source.loads.count("3") == 1
    assert f.check(force=True)["result"] == "failed" and source.loads.count("3") == 2
    assert RETRY_FAILED_POLLS >= 2
    # a good version promoted next is swapped in, and the error is cleared
    source.version = "2"
    assert f.check()["result"] == "swapped" and f.current.model_version == "2" and f.last_error is None


def test_an_unreachable_registry_keeps_the_current_model():
    source = StandInSource("1")
    f, _ = follower(source)
    source.down = True
    assert f.check()["result"] == "failed"
    assert f.current.model_version == "1" and "registry unreachable" in f.last_error["message"]
    source.down = False
    assert f.check()["result"] == "unchanged"


def test_nobody_waits_for_a_load():
    source = StandInSource("1")
    f, _ = follower(source)
    source.version, source.gate = "2", threading.Event()
    loader = threading.Thread(target=f.check)
    loader.start()
    wait_for(lambda: "2" in source.loads, 10, "the load to start", interval=0.01)
    start = time.monotonic()
    assert f.current.model_version == "1"  # read while the load is under way: at once, the old model
    assert time.monotonic() - start < 0.1
    source.gate.set()
    loader.join(10)
    assert f.current.model_version == "2"


def test_request_reload_wakes_the_poller():
    source = StandInSource("1")
    f, _ = follower(source, poll=3600)
    f.start()
    try:
        source.version = "2"
        time.sleep(0.3)
        assert f.current.model_version == "1"  # nothing polls for an hour
        f.request_reload()
        wait_for(lambda: f.current.model_version == "2", 10, "the reload", interval=0.05)
    finally:
        f.stop()


def test_the_poller_follows_the_alias():
    source = StandInSource("1")
    f, _ = follower(source, poll=0.1)
    f.start()
    try:
        source.version = "2"
        wait_for(lambda: f.current.model_version == "2", 10, "the poll", interval=0.05)
    finally:
        f.stop()


def test_reload_runs_in_the_poller_at_a_lower_priority():
    from pathlib import Path

    source = StandInSource("1")
    f, _ = follower(source, poll=3600)
    f.start()
    try:
        source.version = "2"
        assert f.reload() == {"result": "swapped", "model_version": "2", "previous": "1"}
        assert f.reload() == {"result": "unchanged", "model_version": "2"}
        stat = Path(f"/proc/self/task/{f._thread.native_id}/stat")
        if stat.exists():  # Linux: the poller's nice value (field 19) is raised
            assert int(stat.read_text().rsplit(")", 1)[1].split()[16]) == 10
    finally:
        f.stop()
