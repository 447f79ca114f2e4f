"""DVC: the one place that runs it, the one owner of the raw-data pointer and dvc.lock, and what the local DVC
cache holds of a data version.

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

from textops.adapters.git import git, git_ok, head, show
from textops.core.artifacts import split_rows
from textops.core.errors import DataError, PushFailed, StateError

if TYPE_CHECKING:
    from textops.core.config import Params

log = logging.getLogger(__name__)

DVC_LOCK = "dvc.lock"
DVC_YAML = "dvc.yaml"


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


# --------------------------------------------------------------------------------------------------
# the local cache: what it holds of a data version, read without checking anything out


def cache_path(root: Path, md5: str) -> Path:
    """Where the local DVC cache keeps the object MD5 (a file, or a directory's `.dir` listing)."""
    return Path(dvc_repo(root).cache.local.oid_to_path(md5))


def cached_object(root: Path, md5: str) -> Path:
    """An object of the local DVC cache, to read: at DVC 3's default place (`.dvc/cache/files/md5/ab/cdef..`) when
    it is there, so the common case imports no DVC (objects are named by their content: any copy is the right
    one); where the project's DVC configuration puts the cache otherwise."""
    default = Path(root) / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    return default if len(md5) > 2 and default.is_file() else cache_path(root, md5)


def dir_listing(root: Path, dir_md5: str) -> dict[str, str] | None:
    """relpath -> md5 of the files of a directory version, from its `.dir` object in the local DVC cache; None
    when the cache does not hold it."""
    import json

    try:
        entries = json.loads(cached_object(root, dir_md5).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {e["relpath"]: e["md5"] for e in entries if "relpath" in e and "md5" in e}


def file_md5(path: Path) -> str:
    """DVC's hash of a file (MD5 of its bytes)."""
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def dir_differences(root: Path, rel_dir: str, dir_md5: str) -> list[str] | None:
    """How the files under ROOT/REL_DIR differ from the directory version DIR_MD5 ("changed: x", "missing: y",
    "added: z"), [] when they are that version byte for byte, None when the local cache cannot tell."""
    listing = dir_listing(root, dir_md5)
    if listing is None:
        return None
    base = Path(root) / rel_dir
    present = {p.relative_to(base).as_posix(): p for p in base.rglob("*") if p.is_file()} if base.is_dir() else {}
    present = {k: v for k, v in present.items() if Path(k).name != ".gitignore"}
    found = [f"changed: {rel}" for rel, md5 in listing.items() if rel in present and file_md5(present[rel]) != md5]
    found += [f"missing: {rel}" for rel in listing if rel not in present]
    found += [f"added: {rel}" for rel in present if rel not in listing]
    return sorted(found)


def raw_changes(root: Path, params: Params) -> list[str] | None:
    """How data/ differs from the version data.dvc names (an edit outside `textops ingest`); see dir_differences."""
    md5 = raw_md5(root, params)
    return None if md5 is None else dir_differences(root, tracked_dir(params), md5)


def restore_advice(params: Params) -> str:
    """The command that puts data/ back as data.dvc names it: `--force`, since DVC will not overwrite a changed file
    without it (the plain `dvc checkout` fails on exactly the files edited)."""
    return (
        f"Put it back with `dvc checkout --force {raw_pointer(params)}` (the edits are lost: to keep new rows, save "
        "them to a file first and add it with `textops ingest FILE`, so that it becomes a versioned batch)"
    )


def edited_message(params: Params, changes: list[str]) -> str:
    """How data/ was changed outside textops (CHANGES, from `raw_changes`) and what to do."""
    shown = "; ".join(changes[:5]) + ("; ..." if len(changes) > 5 else "")
    return (
        f"{tracked_dir(params)}/ differs from the data version {raw_pointer(params)} names ({shown}): it was "
        f"changed outside `textops ingest`. {restore_advice(params)}."
    )


def require_untouched_raw(root: Path, params: Params) -> None:
    """DataError when data/ was changed outside `textops ingest`: its version would not be the one data.dvc names,
    so "nothing to retrain" and every lineage tag would be wrong."""
    changes = raw_changes(root, params)
    if changes:
        raise DataError(edited_message(params, changes))
