"""git: the one place that runs it (textops commits its pointers, reads files at a revision, finds the commit that
holds a data version)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from textops.core.errors import StateError


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
