"""Data versions: git commits that changed data.dvc or the cleaned outputs in dvc.lock, and restoring one.

A data version is named by a git commit: data.dvc pins the raw batches and dvc.lock the cleaned
splits, so `git show REV:data.dvc` plus the DVC cache (or remote) is enough to rebuild either byte-exact.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from textops.config import Params
from textops.data import PREPROCESS_METRICS, _dvc_repo
from textops.errors import StateError

POINTERS = ("data.dvc", "dvc.lock", PREPROCESS_METRICS)


def _git(root: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise StateError(f"git {' '.join(args)} failed in {root}: {proc.stderr.strip()}")
    return proc.stdout


def _show(root: Path, rev: str, path: str) -> str | None:
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def _clean_md5(lock_text: str | None, clean_dir: str) -> str | None:
    if not lock_text:
        return None
    stage = ((yaml.safe_load(lock_text) or {}).get("stages") or {}).get("preprocess") or {}
    for out in stage.get("outs") or []:
        if out.get("path") == clean_dir:
            return out.get("md5")
    return None


def version_at(root: Path, rev: str, params: Params) -> dict:
    """The data version recorded at REV: raw md5 (data.dvc), cleaned md5 (dvc.lock), rows per split."""
    raw = _show(root, rev, "data.dvc")
    stats_text = _show(root, rev, PREPROCESS_METRICS)
    stats = json.loads(stats_text) if stats_text else {}
    return {
        "raw_md5": (((yaml.safe_load(raw) or {}).get("outs") or [{}])[0].get("md5")) if raw else None,
        "clean_md5": _clean_md5(_show(root, rev, "dvc.lock"), params.data.clean_dir),
        "splits": stats.get("splits", {}),
    }


def data_versions(root: Path, params: Params) -> list[dict]:
    """Newest first: one entry per commit that changed data.dvc or dvc.lock's preprocess output."""
    root = Path(root)
    if _git(root, "rev-parse", "--verify", "-q", "HEAD", check=False) == "":
        return []
    log = _git(root, "log", "--format=%H%x09%cI%x09%s", "--", "data.dvc", "dvc.lock")
    versions, seen = [], set()
    for line in log.splitlines():
        rev, date, subject = line.split("\t", 2)
        version = version_at(root, rev, params)
        key = (version["raw_md5"], version["clean_md5"])
        if version["raw_md5"] is None or key in seen:
            continue  # dvc.lock changed for train/evaluate only, or the same data committed again
        seen.add(key)
        versions.append({"rev": rev, "date": date, "subject": subject, **version})
    return versions


def format_versions(versions: list[dict]) -> str:
    if not versions:
        return "no data versions yet: ingest data and commit data.dvc (`textops ingest FILE --commit`)."
    lines = [f"{'rev':<10} {'date':<25} {'raw md5':<14} {'clean md5':<14} {'train':>8} {'val':>7} {'test':>7}  models"]
    for v in versions:
        s = v["splits"]
        models = ",".join(str(m) for m in v.get("models", [])) or "-"
        lines.append(
            f"{v['rev'][:8]:<10} {v['date']:<25} {(v['raw_md5'] or '-')[:12]:<14} {(v['clean_md5'] or '-')[:12]:<14} "
            f"{s.get('train', '-'):>8} {s.get('val', '-'):>7} {s.get('test', '-'):>7}  {models}"
        )
    return "\n".join(lines)


def checkout_data(root: Path, rev: str, params: Params) -> str:
    """Restore data/ and the cleaned splits as they were at REV, from the DVC cache or the remote.

    Only the pointer files (data.dvc, dvc.lock, the preprocess metric) and the data they name change.
    If the data cannot be restored, or the process is killed half way, the pointer files and the data are
    put back (at once, or by the next textops command), so nothing stays half-switched.
    """
    from textops.recovery import backup_dirs, data_lock, drop_backup, journal, read_text

    root = Path(root)
    commit = _git(root, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", check=False).strip()
    if not commit:
        raise StateError(f"unknown revision {rev!r}: see `textops data versions` for the data versions.")
    if _show(root, commit, "data.dvc") is None:
        raise StateError(f"{rev} has no data.dvc: there is no data version at that revision.")

    present = [p for p in POINTERS if _show(root, commit, p) is not None]
    # Absolute targets: DVC resolves relative ones against the process's cwd, not the repo.
    targets = [str(root / "data.dvc")] + ([f"{root / 'dvc.yaml'}:preprocess"] if "dvc.lock" in present else [])
    outs = [d for d in (Path(params.data.raw_dir).parts[0], params.data.clean_dir) if (root / d).exists()]
    with data_lock(root):
        saved = {p: read_text(root / p) for p in POINTERS}
        try:
            # The journal puts the pointers and data back if this raises, and the next command does it if
            # the process is killed half way (textops.recovery). The data comes back from a hard-linked copy
            # taken first, not from the DVC cache, which need not hold it (a wiped or shared cache).
            with journal(root, "checkout", rev=rev, pointers=saved, backup=backup_dirs(root, outs)):
                _git(root, "checkout", commit, "--", *present)
                repo = _dvc_repo(root)
                try:
                    repo.checkout(targets=targets, force=True)
                    how = "from the local DVC cache"
                except Exception:  # objects not in the local cache: fetch them from the remote first
                    repo.fetch(targets=targets)
                    repo.checkout(targets=targets, force=True)
                    how = "fetched from the DVC remote"
        except Exception as exc:
            raise StateError(
                f"could not restore the data of {rev}: {exc}. data/, data.dvc and dvc.lock are back as they were; "
                "check the DVC remote (`dvc remote list`) and try again."
            ) from exc
        drop_backup(root)
    return f"data at {commit[:8]} ({rev}) restored {how}: data/ and the cleaned splits"
