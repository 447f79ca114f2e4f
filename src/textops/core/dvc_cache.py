"""What the local DVC cache holds of a data version, read without checking anything out, and whether data/ is
the version its pointer names (a hand edit of a batch is refused before it slips into the next data version).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textops.core.errors import DataError
from textops.core.scm import dvc_repo, raw_md5, raw_pointer, tracked_dir

if TYPE_CHECKING:
    from textops.core.config import Params


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
