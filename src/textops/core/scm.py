"""git and DVC: the one place that runs them, and the one owner of the raw-data pointer.

The raw data lives in `data.raw_dir` (default `data/raw`) inside the directory that `data.dvc` tracks
(`data/`); the cleaned splits are the `preprocess` stage's output, pinned in `dvc.lock`. `raw_pointer` and
`lock_out_md5` are the only code that knows those file names and formats.

DVC's Python API resolves a stage's paths against the process's working directory, so stage commits run
the `dvc` command line in the project root instead of changing the process's directory (unsafe with task
threads and notebooks).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from textops.core.artifacts import split_rows
from textops.core.errors import PushFailed, StateError

if TYPE_CHECKING:
    from textops.core.config import Params

log = logging.getLogger(__name__)

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


def is_dirty(root: Path, outputs: tuple[str, ...] = ()) -> bool | None:
    """Tracked files changed since HEAD, other than OUTPUTS (paths or folders the pipeline itself writes, whose
    content the lineage records apart: data.dvc, dvc.lock, metrics/, DVC's .gitignore entries). None outside a
    git repository."""
    names = git_ok(root, "diff", "HEAD", "--name-only", "--no-renames")  # staged or not; None before a first commit
    if names is None:
        status = git_ok(root, "status", "--porcelain", "--untracked-files=no")
        return None if status is None else bool(status)
    prefix = git_ok(root, "rev-parse", "--show-prefix") or ""  # the paths are relative to the repository
    changed = [p.removeprefix(prefix) for p in names.splitlines() if p]
    ours = [p for p in changed if Path(p).name == ".gitignore" or any(p == o or p.startswith(f"{o}/") for o in outputs)]
    return len(ours) < len(changed)


def can_commit(root: Path) -> bool:
    """ROOT is a git work tree whose commits have an author and a committer (git config or GIT_* variables)."""
    if git_ok(root, "rev-parse", "--is-inside-work-tree") != "true":
        return False
    return all(git_ok(root, "var", ident) is not None for ident in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"))


def require_commit(root: Path) -> None:
    """Refuse --commit before anything is written when git could not make the commit (git's own message is 12
    lines about --global, after the work was done)."""
    if git_ok(root, "rev-parse", "--is-inside-work-tree") != "true":
        raise StateError(f"--commit needs a git repository and {root} is not in one: `git init` it, or drop --commit.")
    if not can_commit(root):
        raise StateError(
            '--commit needs a git identity and git has none here: set one with `git config user.name "Your Name"` '
            "and `git config user.email you@example.com` (add --global for every repository), or drop --commit. "
            "Nothing was changed."
        )


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
    git_ok(root, "reset", "-q", "--", *present)  # nothing left staged by a commit that did not happen
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
    """The raw data version in the working tree: data.dvc's md5 (None without data.dvc; StateError when it
    cannot be read, e.g. a merge left conflict markers in it)."""
    path = Path(root) / raw_pointer(params)
    if not path.exists():
        return None
    md5 = pointer_md5(path.read_text(encoding="utf-8", errors="replace"))
    if md5 is None:
        raise StateError(
            f"{path} is not a DVC file textops can read (a merge conflict left in it?): resolve it, e.g. `git "
            f"checkout --theirs {raw_pointer(params)}` or `git checkout HEAD -- {raw_pointer(params)}`, then `dvc "
            f"checkout {raw_pointer(params)}`."
        )
    return md5


def lock_out_md5(lock_text: str | None, stage: str, out: str) -> str | None:
    """The md5 dvc.lock's TEXT records for output OUT of STAGE (None when absent)."""
    if not lock_text:
        return None
    try:
        entry = ((yaml.safe_load(lock_text) or {}).get("stages") or {}).get(stage) or {}
    except yaml.YAMLError:
        return None
    return stage_out_md5(entry, out)


def stage_out_md5(entry: dict, out: str) -> str | None:
    """The md5 of output OUT in one stage's dvc.lock ENTRY (as a run's lineage tag keeps it)."""
    return next((item.get("md5") for item in entry.get("outs") or [] if item.get("path") == out), None)


def pointer_text(out: dict) -> str:
    """A .dvc file whose single output is OUT (md5, size, nfiles, path), as `dvc add` writes it."""
    return yaml.safe_dump({"outs": [out]}, sort_keys=False)


def lock_with_stage(lock_text: str | None, stage: str, entry: dict) -> str:
    """dvc.lock's TEXT with STAGE's entry replaced by ENTRY (a new lock file when there is none)."""
    lock = yaml.safe_load(lock_text or "") or {"schema": "2.0", "stages": {}}
    lock.setdefault("stages", {})[stage] = entry
    return yaml.safe_dump(lock, sort_keys=False)


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def working_version(root: Path, params: Params) -> dict:
    """The working tree's data version as DVC records it: `pointer` (data.dvc's output: md5, size, nfiles) and
    `preprocess` (dvc.lock's entry for the stage: cmd, deps, params, outs), each None when absent, plus the
    rows per split."""
    root = Path(root)
    pointer_text = _read(root / raw_pointer(params))
    lock_text = _read(root / DVC_LOCK)
    pointer = (yaml.safe_load(pointer_text) or {}).get("outs", [None])[0] if pointer_text else None
    lock = ((yaml.safe_load(lock_text) or {}).get("stages") or {}).get("preprocess") if lock_text else None
    splits = {name: split_rows(root, params, name) for name in ("train", "val", "test")}
    return {"pointer": pointer, "preprocess": lock, "splits": splits}


def clean_dvc_md5(version: dict, params: Params) -> str | None:
    """The DVC hash of the cleaned splits' directory in a version's preprocess entry."""
    for out in (version.get("preprocess") or {}).get("outs") or []:
        if out.get("path") == params.data.clean_dir:
            return out.get("md5")
    return None


def data_rev(root: Path, params: Params, version: dict, limit: int = 200) -> str | None:
    """The newest git commit that holds VERSION (its data.dvc, and its preprocess outputs when dvc.lock is
    there), or None: a params-only commit on top does not name the data."""
    md5 = (version.get("pointer") or {}).get("md5")
    if not md5 or head(root) is None:
        return None
    clean = clean_dvc_md5(version, params)
    log_text = git(root, "log", f"-{limit}", "--format=%H", "--", raw_pointer(params), DVC_LOCK)
    for rev in log_text.split():
        if pointer_md5(show(root, rev, raw_pointer(params))) != md5:
            continue
        lock = show(root, rev, DVC_LOCK)
        if clean is None or lock is None or lock_out_md5(lock, "preprocess", params.data.clean_dir) == clean:
            return rev
    return None


# --------------------------------------------------------------------------------------------------
# DVC


def dvc_repo(root: Path):
    """DVC's Repo for ROOT; StateError when ROOT is not a DVC repository inside a git repository."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    if git_ok(root, "rev-parse", "--git-dir") is None:
        raise StateError(
            f"{root} is not a git repository (its .git is missing?): textops versions data with DVC inside git, so "
            "nothing was changed. Restore .git (or clone the project again), or start one with `git init && dvc init "
            "--force`."
        )
    try:
        return Repo(str(root))
    except NotDvcRepoError as exc:
        raise StateError(f"{root} is not a DVC repository: run `git init && dvc init` there first.") from exc


def dvc_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    """The `dvc` command line in ROOT (this interpreter's DVC, offline), not checked."""
    from textops.core.env import child_env

    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True, env=child_env()
    )


def stage_names(root: Path) -> set[str]:
    path = Path(root) / DVC_YAML
    return set((yaml.safe_load(path.read_text()) or {}).get("stages") or {}) if path.exists() else set()


def stage_paths(root: Path, stage: str) -> list[str]:
    """The dependencies and outputs STAGE declares in dvc.yaml (params files aside)."""
    spec = (yaml.safe_load((Path(root) / DVC_YAML).read_text()) or {}).get("stages", {}).get(stage) or {}
    paths = []
    for key in ("deps", "outs", "metrics", "plots"):
        for entry in spec.get(key) or []:
            paths.append(next(iter(entry)) if isinstance(entry, dict) else str(entry))
    return paths


def under_dvc() -> bool:
    """True inside `dvc repro` / `dvc exp run`: DVC records the stage itself and holds its lock meanwhile."""
    return bool(os.environ.get("DVC_STAGE"))


def record_stage(root: Path, *stages: str) -> bool:
    """Record what STAGES just produced in dvc.lock (one `dvc commit`), so that `dvc status` and `dvc repro` agree
    with a stage run outside DVC (the CLI, a Prefect flow, a notebook); nothing inside `dvc repro`, which
    records it itself, or for a stage dvc.yaml does not have."""
    if under_dvc():
        return False
    names = stage_names(root)
    ready = []
    for stage in (s for s in stages if s in names):
        missing = [p for p in stage_paths(root, stage) if not (Path(root) / p).exists()]
        if missing:
            # e.g. `textops train` before any `textops validate`: dvc.lock cannot name a file that does not exist,
            # and the stage's own result (the model, the run) stands; `dvc status` keeps showing it as changed.
            log.warning("dvc.lock not updated for %s: %s missing", stage, ", ".join(missing))
        else:
            ready.append(stage)
    if not ready:
        return False
    proc = dvc_cli(root, "commit", "--force", *ready)
    if proc.returncode != 0:
        raise StateError(f"`dvc commit {' '.join(ready)}` failed in {root}: {(proc.stderr or proc.stdout).strip()}")
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


def push_data(root: Path, params: Params) -> bool:
    """`dvc push` a whole data version (the raw batches and the cleaned splits) to the default remote.

    False when there is nothing to push to (no remote) or when running inside `dvc repro`/`dvc exp run`, which
    hold DVC's lock (push with `dvc push` afterwards); raises PushFailed when the remote refuses.
    """
    if under_dvc():
        return False
    repo = dvc_repo(root)
    if not repo.config["core"].get("remote") or not (Path(root) / raw_pointer(params)).exists():
        return False
    with_clean = "preprocess" in stage_names(root) and (Path(root) / DVC_LOCK).exists()
    try:
        repo.push(raw_targets(root, params, with_clean=with_clean))
    except Exception as exc:
        raise PushFailed(
            f"`dvc push` of the data version to the default remote failed: {exc}. The data is in the local DVC "
            "cache; fix the remote (`dvc remote list`) and run `dvc push`."
        ) from exc
    return True


def publish_data(root: Path, params: Params) -> bool:
    """Push the data version being trained on to the DVC remote, so the model's data can be restored anywhere;
    a remote that refuses is a warning, not a failed training (the data is in the local cache)."""
    try:
        return push_data(root, params)
    except PushFailed as exc:
        logging.getLogger("textops").warning(str(exc))
        return False
