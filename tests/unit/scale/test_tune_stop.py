"""A search that Ctrl-C or SIGTERM stops, or that Ray Tune cuts short, is no answer: `verdict` says so (exit 130,
143, or 1), and PoliteStop turns both signals into Ray Tune's own polite stop while its loop runs (raising inside
that loop leaves Ray Tune's writer thread keeping the process alive; its own Ctrl-C handler hands back half a search
as finished). The loop here is Ray Tune's own signal set-up (`ray.tune.tune._setup_signal_catching`), waited on as
`tune.run` does."""

from __future__ import annotations

import os
import signal
import time

import pytest

from textops.core.errors import Stopped, exit_code
from textops.scale.tune_stop import PoliteStop, SearchStopped, verdict


def test_a_signal_makes_the_search_stopped_with_the_shells_exit_code():
    assert verdict(signal.SIGINT, 3, 3) == (130, "stopped by Ctrl-C (SIGINT)")
    assert verdict(signal.SIGTERM, 1, 3) == (143, "stopped by SIGTERM")


def test_fewer_finished_trials_than_asked_is_an_incomplete_search():
    code, why = verdict(None, 2, 3)
    assert code == 1 and "early" in why
    assert verdict(None, 3, 3) is None


def test_search_stopped_carries_its_exit_code():
    assert exit_code(SearchStopped("stopped", 143)) == 143


class RayLoop:
    """What Tuner.fit does with signals: Ray Tune's own set-up, then its loop until the stop event (or a timeout),
    sending SIG to this process once it runs."""

    def __init__(self, sig: int):
        self.sig = sig

    def fit(self) -> str:
        from ray.tune.tune import _setup_signal_catching

        stop = _setup_signal_catching()
        os.kill(os.getpid(), self.sig)
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        return "stopped" if stop.is_set() else "ran on"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_search_ends_ray_tunes_loop_and_is_remembered(sig):
    pytest.importorskip("ray.tune")
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    try:
        with PoliteStop() as stop:
            assert stop.fit(RayLoop(sig)) == "stopped"  # returned, not raised inside the loop
        assert stop.signum == sig
        assert signal.getsignal(signal.SIGINT) == saved[signal.SIGINT]  # the handlers of before are back
        assert signal.getsignal(signal.SIGTERM) == saved[signal.SIGTERM]
        assert "TUNE_DISABLE_SIGINT_HANDLER" not in os.environ
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


@pytest.mark.parametrize(("sig", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Stopped)])
def test_a_signal_outside_the_search_loop_raises_as_usual(sig, raised):
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(raised), PoliteStop() as stop:
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the handler runs here
        assert stop.signum == sig
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
