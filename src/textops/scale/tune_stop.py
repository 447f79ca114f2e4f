"""How a search (`textops.scale.tune`) ends early: Ctrl-C and SIGTERM stop it politely, and a search Ray Tune hands
back is checked complete before anything of it is recorded as the answer or applied.

Left to themselves, Ray Tune's Ctrl-C handler ends its loop and hands back the trials so far as if the search had
finished (exit 0, and `--apply` applied half a search), and ray.init's SIGTERM handler exits from wherever the
main thread is (Ray's abort dump, exit 134, trial runs left RUNNING). Raising KeyboardInterrupt inside Ray Tune's
loop instead leaves its writer thread keeping the process alive. So while a search runs, both signals only note
which one came and ask Ray Tune's loop to end the way its own Ctrl-C handler does (the handler it keeps on
SIGUSR1: it stops the trials and returns); `verdict` then reads the search as stopped, and `tune` ends its runs
KILLED and raises `SearchStopped`: exit 130 (SIGINT) or 143 (SIGTERM), as `textops run` exits on the same signals
(`ui.command.user_errors`), nothing applied. A second signal raises at once, as Python's own handlers do.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from textops.core.errors import Stopped, TextopsError

log = logging.getLogger("textops")
# Ray Tune's switch for its own Ctrl-C handler: ours (PoliteStop) takes its place.
NO_RAY_SIGINT = "TUNE_DISABLE_SIGINT_HANDLER"
SIGNAL_NAMES: dict[int, str] = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}


class SearchStopped(TextopsError):
    """A search that did not run all its trials: nothing of it is applied; exit 130/143 after a signal."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.exit_code = code


def verdict(signum: int | None, finished: int, expected: int) -> tuple[int, str] | None:
    """None when a search that ran to its end is complete: no stop signal came and FINISHED trials (ended by
    themselves, by ASHA or by an error) are the EXPECTED tune.trials; else (exit code, why it is incomplete)."""
    if signum is not None:
        return 128 + signum, f"stopped by {SIGNAL_NAMES.get(signum, f'signal {signum}')}"
    if finished < expected:
        return 1, "Ray Tune ended it early (a signal it handles itself, such as SIGUSR1)"
    return None


def stopped_message(why: str, started: int, expected: int, run_id: str, experiment: str) -> str:
    return (
        f"the search {why}, {started} of its {expected} trial(s) started: nothing of it is applied (params.yaml "
        f"is as it was) and no best is recorded; its parent run {run_id} in experiment {experiment} is marked "
        "KILLED and none of its trial runs is left RUNNING. Run `textops tune` again for a complete search."
    )


class PoliteStop:
    """For the block: SIGINT and SIGTERM end Ray Tune's loop instead of raising inside it (module docstring);
    `signum` says which came. Outside `fit` (Ray starting, MLflow calls) they raise KeyboardInterrupt / Stopped as
    usual. The handlers of before are back after the block; they are set only in the main thread (Python's rule),
    so elsewhere (a Prefect task's thread) nothing changes."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}
        self._ray_stop_before: Any = None
        self._fitting = False
        self._env: str | None = None

    def __enter__(self) -> PoliteStop:
        if threading.current_thread() is threading.main_thread():
            self._saved = {s: signal.getsignal(s) for s in SIGNAL_NAMES}
            self.arm()
        self._env = os.environ.get(NO_RAY_SIGINT)
        os.environ[NO_RAY_SIGINT] = "1"
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        if self._env is None:
            os.environ.pop(NO_RAY_SIGINT, None)
        else:
            os.environ[NO_RAY_SIGINT] = self._env

    def arm(self) -> None:
        """Our handlers (again: ray.init puts its own SIGTERM handler in place)."""
        for signum in self._saved:
            signal.signal(signum, self._handle)

    def fit(self, tuner):
        """tuner.fit(), where a signal ends the search through Ray Tune's own stop."""
        self._ray_stop_before = signal.getsignal(signal.SIGUSR1)
        self._fitting = True
        try:
            return tuner.fit()
        finally:
            self._fitting = False

    def _handle(self, signum: int, frame) -> None:
        first = self.signum is None
        self.signum = self.signum or signum
        ray_stop = signal.getsignal(signal.SIGUSR1)
        # Ray Tune puts its stop on SIGUSR1 once its loop is set up; before that there is nothing to end politely.
        if first and self._fitting and callable(ray_stop) and ray_stop is not self._ray_stop_before:
            log.warning("tune: %s: ending the search (again to stop at once)", SIGNAL_NAMES[signum])
            ray_stop(signum, frame)
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Stopped()
