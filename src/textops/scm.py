"""git and DVC: the one place that runs them, and the one owner of the raw-data pointer.

The raw data lives in `data.raw_dir` (default `data/raw`) inside the directory that `data.dvc` tracks
(`data/`); the cleaned splits are the `preprocess` stage's output, pinned in `dvc.lock`. `raw_pointer` and
`lock_out_md5` are the only code that knows those file names and formats.

DVC's Python API resolves a stage's paths against the process's working directory, so stage commits run
the `dvc` command line in the project root instead of changing the process's directory (unsafe with task
threads and notebooks).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from textops.errors import StateError

if TYPE_CHECKING:
    from textops.config import Params

DVC_LOCK = "dvc.lock"
DVC_YAML = "dvc.yaml"


# --------------------------------------------------------------------------------------------------
# git


def git(root: Path, *args: str, check: bool = True) -> str:
    """`git ARGS` in ROOT; its stdout. With CHECK a failure raises StateError naming the command."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise StateError(f"git {' '.join(args)} failed in {root}: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def git_ok(root: Path, *args: str) -> str | None:
    """`git ARGS` in ROOT: its stripped stdout, or None when it fails (not a repository, no such revision)."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def show(root: Path, rev: str, path: str) -> str | None:
    """The content of PATH at REV, or None when it does not exist there."""
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def resolve_commit(root: Path, rev: str) -> str | None:
    """The full commit id REV names, or None."""
    return git_ok(root, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}") or None


def head(root: Path) -> str | None:
    return git_ok(root, "rev-parse", "HEAD")


def is_dirty(root: Path) -> bool | None:
    """Tracked files changed since HEAD (None outside a git repository)."""
    status = git_ok(root, "status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def commit_files(root: Path, paths: list[str], message: str) -> bool:
    """`git add` and commit PATHS (relative to ROOT) with MESSAGE; False when nothing changed in them."""
    present = [p for p in paths if (Path(root) / p).exists() or show(root, "HEAD", p) is not None]
    if not present:
        return False
    git(root, "add", "-A", "--", *present)
    proc = subprocess.run(
        ["git", "commit", "-q", "-m", message, "--", *present], cwd=root, capture_output=True, text=True
    )
    if proc.returncode == 0:
        return True
    if "nothing" in proc.stdout + proc.stderr and "commit" in proc.stdout + proc.stderr:
        return False
    raise StateError(f"git commit of {', '.join(present)} failed: {(proc.stderr or proc.stdout).strip()}")


def unstage(root: Path, paths: list[str]) -> None:
    """Put the index of PATHS back to HEAD's (DVC's autostage may have `git add`-ed them)."""
    git_ok(root, "reset", "-q", "--", *paths)


# --------------------------------------------------------------------------------------------------
# the raw-data pointer and dvc.lock


def tracked_dir(params: Params) -> str:
    """The directory data.dvc tracks (`data` for raw_dir `data/raw`)."""
    return Path(params.data.raw_dir).parts[0]


def raw_pointer(params: Params) -> str:
    """The .dvc file that versions the raw data (`data.dvc`), relative to the project root."""
    return f"{tracked_dir(params)}.dvc"


def pointer_md5(text: str | None) -> str | None:
    """The md5 DVC recorded for the single output of a .dvc file's TEXT (None when absent or unreadable)."""
    if not text:
        return None
    try:
        outs = (yaml.safe_load(text) or {}).get("outs") or [{}]
        return outs[0].get("md5")
    except (yaml.YAMLError, AttributeError, IndexError):
        return None


def raw_md5(root: Path, params: Params) -> str | None:
    """The raw data version in the working tree: data.dvc's md5."""
    path = Path(root) / raw_pointer(params)
    return pointer_md5(path.read_text(encoding="utf-8")) if path.exists() else None


def lock_out_md5(lock_text: str | None, stage: str, out: str) -> str | None:
    """The md5 dvc.lock's TEXT records for output OUT of STAGE (None when absent)."""
    if not lock_text:
        return None
    try:
        entry = ((yaml.safe_load(lock_text) or {}).get("stages") or {}).get(stage) or {}
    except yaml.YAMLError:
        return None
    for item in entry.get("outs") or []:
        if item.get("path") == out:
            return item.get("md5")
    return None


# --------------------------------------------------------------------------------------------------
# DVC


def dvc_repo(root: Path):
    """DVC's Repo for ROOT; StateError when ROOT is not a DVC repository."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Repo(str(root))
    except NotDvcRepoError as exc:
        raise StateError(f"{root} is not a DVC repository: run `git init && dvc init` there first.") from exc


def dvc_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    """The `dvc` command line in ROOT (this interpreter's DVC, offline), not checked."""
    from textops.env import child_env

    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, env=child_env()
    )


def stage_names(root: Path) -> set[str]:
    path = Path(root) / DVC_YAML
    return set((yaml.safe_load(path.read_text()) or {}).get("stages") or {}) if path.exists() else set()


def commit_stage(root: Path, stage: str) -> bool:
    """`dvc commit STAGE`: record the stage's current deps/outs hashes in dvc.lock (when dvc.yaml has it)."""
    if stage not in stage_names(root):
        return False
    proc = dvc_cli(root, "commit", "--force", "--quiet", stage)
    if proc.returncode != 0:
        raise StateError(f"`dvc commit {stage}` failed in {root}: {(proc.stderr or proc.stdout).strip()}")
    return True


def raw_targets(root: Path, params: Params, with_clean: bool) -> list[str]:
    """DVC targets of a data version, absolute (DVC resolves relative ones against the working directory)."""
    targets = [str(Path(root) / raw_pointer(params))]
    if with_clean:
        targets.append(f"{Path(root) / DVC_YAML}:preprocess")
    return targets


def dvc_checkout(root: Path, targets: list[str]) -> None:
    dvc_repo(root).checkout(targets=targets, force=True)


def dvc_fetch(root: Path, targets: list[str]) -> None:
    dvc_repo(root).fetch(targets=targets)
