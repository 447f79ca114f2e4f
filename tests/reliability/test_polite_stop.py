"""A polite stop of `textops run` during training (SIGTERM from systemd or a CI runner, Ctrl-C's SIGINT to the
terminal's process group) releases what the run holds: the command ends with a paragraph and the signal's exit
code, its temporary Prefect server is gone, and the next run neither waits for the training slot nor fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from helpers import FAST, FLOW, make_project, set_params, textops, wait_for

pytestmark = pytest.mark.reliability


def servers_of(root: Path) -> list[psutil.Process]:
    """The Prefect API servers whose database is ROOT's (`PREFECT_HOME` under the project)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "prefect.server.api.server:create_app" in " ".join(proc.info["cmdline"] or []):
                if proc.environ().get("PREFECT_HOME", "").startswith(str(root)):
                    found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_a_polite_stop_during_training_releases_everything(tmp_path, monkeypatch, how):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    root = make_project(tmp_path / "proj")
    # Minutes of training (FAST's tiny model trains 200 epochs of these rows in about 30 s), stopped
    set_params(root, FAST, FLOW, {"train": {"epochs": 2000, "save_steps": 10}})
    exe = Path(sys.executable).with_name("textops")
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115
    # Its own process group, as a terminal's foreground job: Ctrl-C is SIGINT to the whole group.
    # SIGINT as a terminal gives its foreground job: a runner that starts CI in the background (`cmd &` without job
    # control) passes SIGINT down ignored, and Python keeps ignoring a SIGINT it inherits ignored.
    proc = subprocess.Popen(
        [str(exe), "run"],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        checkpoints = root / "artifacts" / "checkpoints"

        def training() -> bool:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()  # it ended before it was stopped
            return any(checkpoints.glob("checkpoint-*"))

        wait_for(training, 900, "the run to be training (a first checkpoint)")
        assert (root / ".textops" / "training-slot.json").exists()
        assert servers_of(root), "the run's temporary Prefect server is not running"
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=300)  # a ceiling, not a measurement: it must not take Prefect's 4 minutes of retries
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    said = (tmp_path / "run.log").read_text()
    assert proc.returncode == (143 if how == "sigterm" else 130), said
    assert f"stopped ({'SIGTERM' if how == 'sigterm' else 'Ctrl-C (SIGINT)'})" in said, said
    assert "likely a bug" not in said and "Traceback" not in said, said
    wait_for(lambda: not servers_of(root), 60, "the temporary Prefect server to be gone")
    assert not (root / ".textops" / "training-slot.json").exists()  # given back, so no holder is left

    again = textops(root, "run", "-S", "train.epochs=1", "-S", "train.save_steps=1000")
    assert "waiting for the training slot" not in again.stdout + again.stderr, again.stderr
    assert "registered" in again.stdout, again.stdout
