"""A server process the production tests and benchmarks start, stop, SIGKILL (its whole tree, as when a machine
dies) and restart on the same port, as an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support import wait_for


def kill_tree(pid: int) -> None:
    """SIGKILL PID and everything below it at once, as when the machine dies."""
    import psutil

    try:
        parent = psutil.Process(pid)
        targets = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for target in targets:
        try:
            target.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


@dataclass
class Service:
    """A server or worker process: started in its own session with its output in LOG, healthy when HEALTH (a
    URL) answers 200; stoppable, killable and restartable with the same command, environment and port."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    health: str | None = None
    cwd: Path | None = None
    ready_s: float = 240
    url: str = ""  # what clients use: the MLflow server's URL, the Prefect server's API URL
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Service:
        with open(self.log, "ab") as out:
            out.write(f"\n--- start {' '.join(self.argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        if self.health:
            wait_for(self.healthy, self.ready_s, f"{self.name} at {self.health}", interval=0.5)
        return self

    def healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited ({self.proc and self.proc.returncode}):\n{self.tail()}")
        assert self.health is not None, f"{self.name} has no health URL to ask"  # start asks only when it has one
        try:
            return httpx.get(self.health, timeout=5).status_code == 200
        except (OSError, httpx.HTTPError):
            return False

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, grace: float = 10) -> None:
        """SIG to the process group, twice (a Prefect worker escalates on the second SIGINT), then SIGKILL. GRACE
        per signal: a throwaway service that has not stopped in 20 s is killed (a test checking a graceful stop
        waits for it itself)."""
        if self.proc is None:
            return
        for _ in range(2):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.kill()
        try:  # whatever it left in its group (uvicorn workers)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """SIGKILL the process and all its descendants, wherever their process group."""
        if self.proc is not None and self.proc.poll() is None:
            kill_tree(self.proc.pid)
            self.proc.wait(timeout=60)

    def restart(self, down_s: float = 0) -> Service:
        self.stop()
        time.sleep(down_s)
        return self.start()
