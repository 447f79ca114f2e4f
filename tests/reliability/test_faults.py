"""Faults in the components textops depends on: the DVC remote missing or unreadable, the MLflow store locked
or unreachable, the output directory's disk full. Each gives a clear error and a non-zero exit, loses nothing,
and the next run works once the fault is gone.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from helpers import digest, dvc, free_port, git, set_params, textops, two_sample_files

pytestmark = pytest.mark.reliability


@pytest.fixture
def sampled(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return two_sample_files(tmp_path)


# --------------------------------------------------------------------------------------------------
# DVC remote


@pytest.mark.parametrize("fault", [pytest.param("cannot-be-created", marks=pytest.mark.extended), "not-a-directory"])
def test_dvc_remote_fault_keeps_the_data_and_the_next_ingest_pushes(sampled, fault):
    root = sampled
    remote = root.parent / "remote"
    if fault == "not-a-directory":
        remote.write_text("a file where the remote directory should be\n")
        dvc(root, "remote", "modify", "local", "url", str(remote))
    else:  # a local remote that does not exist is created by DVC; under /proc nothing can be
        dvc(root, "remote", "modify", "local", "url", "/proc/textops-remote")

    proc = textops(root, "ingest", str(root.parent / "v1.csv"), "--commit", check=False)
    assert proc.returncode != 0
    assert "`dvc push` to the default remote failed" in proc.stderr and "nothing was lost" in proc.stderr
    assert "Traceback" not in proc.stderr
    # Versioned and committed locally: data/, data.dvc and the cache agree.
    assert "up to date" in dvc(root, "status", "data.dvc").stdout
    assert "data: ingest v1.csv" in git(root, "log", "-1", "--format=%s")

    if fault == "not-a-directory":
        remote.unlink()
    remote.mkdir()
    dvc(root, "remote", "modify", "local", "url", str(remote))
    again = textops(root, "ingest", str(root.parent / "v1.csv"))
    assert "already ingested" in again.stdout
    assert any(p.is_file() for p in remote.rglob("*")), "the retried push did not reach the remote"
    assert "in sync" in dvc(root, "status", "--cloud", "data.dvc").stdout


@pytest.mark.extended
def test_checkout_with_an_empty_cache_and_no_remote_changes_nothing(sampled):
    root = sampled
    textops(root, "ingest", str(root.parent / "v1.csv"), "--commit")
    v1 = git(root, "rev-parse", "HEAD").strip()
    textops(root, "ingest", str(root.parent / "v2.csv"), "--commit")
    before = digest(root / "data", root / "data.dvc")
    shutil.rmtree(root / ".dvc" / "cache")
    dvc(root, "remote", "modify", "local", "url", str(root.parent / "no-such-remote"))

    proc = textops(root, "data", "checkout", v1, check=False)
    assert proc.returncode != 0 and "could not restore the data" in proc.stderr, proc.stderr
    assert "back as they were" in proc.stderr and "Traceback" not in proc.stderr
    assert digest(root / "data", root / "data.dvc") == before
    assert git(root, "status", "--porcelain", "data.dvc", "dvc.lock") == ""

    dvc(root, "remote", "modify", "local", "url", str(root.parent / "proj-remote"))
    assert "restored" in textops(root, "data", "checkout", v1).stdout
    assert (root / "data.dvc").read_text() == git(root, "show", f"{v1}:data.dvc")


# --------------------------------------------------------------------------------------------------
# MLflow store


def hold_exclusive_lock(db: Path, release: threading.Event, holding: threading.Event) -> None:
    con = sqlite3.connect(db, timeout=1, check_same_thread=False)
    con.execute("BEGIN EXCLUSIVE")
    holding.set()
    release.wait(120)
    con.rollback()
    con.close()


def test_locked_mlflow_store_is_a_clear_error_and_changes_nothing(champion_template, monkeypatch):
    root = champion_template
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the project's own store: the one locked here
    db = root / "mlruns" / "mlflow.db"
    before = {**digest(root / "metrics"), **digest(root / "artifacts" / "eval")}
    release, holding = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_exclusive_lock, args=(db, release, holding), daemon=True)
    holder.start()
    try:
        assert holding.wait(30)
        for command in (["model", "list"], ["evaluate"]):
            start = time.monotonic()
            proc = textops(root, *command, check=False, timeout=120)
            assert proc.returncode != 0, proc.stdout
            assert "cannot be written" in proc.stderr and "Nothing was changed" in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr
            assert time.monotonic() - start < 60
        assert {**digest(root / "metrics"), **digest(root / "artifacts" / "eval")} == before
    finally:
        release.set()
        holder.join(30)
    assert "champion" in textops(root, "model", "list").stdout


def test_unreachable_tracking_server_is_a_clear_error(champion_template, monkeypatch):
    root = champion_template
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ci:hunter2@127.0.0.1:{free_port()}")
    for command in (["model", "list"], ["register"], ["serve"]):
        start = time.monotonic()
        proc = textops(root, *command, check=False, timeout=120)
        assert proc.returncode != 0
        assert "does not answer" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert "hunter2" not in proc.stderr + proc.stdout  # the password in the URI is masked
        assert time.monotonic() - start < 60
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert "champion" in textops(root, "model", "list").stdout


# --------------------------------------------------------------------------------------------------
# full disk


@pytest.fixture
def small_disk(sampled):
    """A 3 MB tmpfs mounted at PROJECT/out (skipped where this machine cannot mount one)."""
    out = sampled / "out"
    out.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(out)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here (needs root / CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield sampled, out
    finally:
        subprocess.run(["umount", "-l", str(out)], capture_output=True)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Fill DISK but LEAVE_BYTES; returns the filler file."""
    filler = disk / "filler"
    usage = shutil.disk_usage(disk)
    with open(filler, "ab") as fh:
        fh.write(b"\0" * max(usage.free - leave_bytes, 0))
    return filler


@pytest.mark.extended
def test_full_disk_stops_preprocess_and_training_cleanly(small_disk):
    root, disk = small_disk
    set_params(
        root,
        {"data": {"clean_dir": "out/clean"}, "train": {"checkpoint_dir": "out/checkpoints", "output_dir": "out/model"}},
    )
    textops(root, "ingest", str(root.parent / "v1.csv"))
    textops(root, "preprocess")
    textops(root, "validate")
    clean = digest(disk / "clean")

    # Preprocess of grown data with 8 kB left: refused, the old splits untouched.
    textops(root, "ingest", str(root.parent / "v2.csv"))
    filler = fill(disk, 8 * 1024)
    proc = textops(root, "preprocess", check=False)
    assert proc.returncode != 0 and "Free some space" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert digest(disk / "clean") == clean
    filler.unlink()
    textops(root, "preprocess")
    assert digest(disk / "clean") != clean
    textops(root, "validate")

    # Training runs out of space at its first checkpoint: a clear message, the run FAILED, no model.
    filler = fill(disk, 64 * 1024)
    proc = textops(root, "train", check=False)
    assert proc.returncode != 0 and "no space left on the device" in proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Logging error" not in proc.stderr
    assert proc.stderr.count("error:") == 1  # said once, as a paragraph
    assert not (disk / "model" / "run.json").exists()
    filler.unlink()
    out = textops(root, "train")
    assert "val accuracy" in out.stdout
    assert json.loads((disk / "model" / "run.json").read_text())["run_id"]
