"""tests/unit starts no process. test_structure.py checks the tests' own code with ast; this fixture checks what the
code under test does at run time: a test that starts a child process, itself or through a library (MLflow's
`save_model` runs a child interpreter to infer the requirements it is not given), fails and names the command.
Such a test belongs in tests/integration."""

from __future__ import annotations

import os
import platform
import subprocess

import pytest

# platform.processor() runs `uname -p` once per process, when a library first asks (onnxruntime's quantizer does):
# asked here, at collection, so that no test is blamed for it.
platform.processor()
_forks: list[list[str]] = []  # the running test's list of processes started, while one runs
os.register_at_fork(before=lambda: _forks and _forks[-1].append("os.fork()"))


@pytest.fixture(autouse=True)
def no_process(monkeypatch: pytest.MonkeyPatch):
    started: list[str] = []
    execute_child = subprocess.Popen._execute_child

    def recorded(self, args, *rest, **kwargs):
        started.append(args if isinstance(args, str | bytes) else " ".join(map(str, args))[:300])
        return execute_child(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "_execute_child", recorded)
    _forks.append(started)
    try:
        yield
    finally:
        _forks.remove(started)
    assert started == [], f"a unit test started a process (it belongs in tests/integration): {started}"
