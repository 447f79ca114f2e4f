"""A landing file's life: it lands in the landing directory and waits; the `monitor` flow announces it once
(`textops.data.landed`), and only once the Prefect server stored its event (flows/monitor.py marks it then, not
before; the record is `.textops/landed.json`: each file's name, size and mtime); whoever ingests it (the retrain
flow, or `textops ingest` of a file there) moves it to `ingested/`, or, refused for its data, to `held/` with the
reason beside it (`<name>.reason.txt`), so the landing directory holds only what is still waiting.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

from textops.core.artifacts import atomic_write_json
from textops.core.config import Params

LANDED_STATE = "landed.json"  # in .textops/: the landing files already announced (name, size, mtime)
INGESTED_DIR = "ingested"  # under the landing directory: files that went in
HELD_DIR = "held"  # under the landing directory: files refused for their data, each with <name>.reason.txt
REASON_SUFFIX = ".reason.txt"


def landing_keys(root: Path, params: Params) -> dict[str, Path]:
    """The files in the landing directory by what makes a file the same file here: name, size, mtime."""
    from textops.core.artifacts import landing_files

    return {f"{p.name}:{p.lstat().st_size}:{p.lstat().st_mtime_ns}": p for p in landing_files(root, params)}


def announced_keys(root: Path) -> set[str]:
    """The landing files a monitor run has announced, with confirmation that the event was stored."""
    from textops.adapters.locks import state_dir

    state = state_dir(root) / LANDED_STATE
    return set(json.loads(state.read_text(encoding="utf-8"))) if state.exists() else set()


def landed_files(root: Path, params: Params) -> dict[str, Path]:
    """Files in the landing directory not announced before, by their key (a file held for a person is announced
    once, not every hour). Reading them records nothing: `mark_announced` does, once their event is stored."""
    seen = announced_keys(root)
    return {key: p for key, p in landing_keys(root, params).items() if key not in seen}


def mark_announced(root: Path, params: Params, keys: list[str]) -> None:
    """Record the landing files of KEYS (`landed_files`) as announced. Files gone from the landing directory
    are forgotten, so one that lands again under the same name, size and time is announced again."""
    from textops.adapters.locks import state_dir

    current = set(landing_keys(root, params))
    state = state_dir(root) / LANDED_STATE
    state.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(state, sorted((announced_keys(root) & current) | set(keys)))


def in_landing(root: Path, params: Params, paths: list[Path]) -> list[Path]:
    """The PATHS that are files directly in the landing directory (not in ingested/ or held/)."""
    landing = (Path(root) / params.data.landing_dir).resolve()
    return [Path(p) for p in paths if Path(p).parent.resolve() == landing and Path(p).name != landing.name]


def _move(path: Path, folder: Path) -> Path:
    """PATH moved into FOLDER; a name already there gets the time appended (neither file is lost)."""
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists() or target.is_symlink():
        target = folder / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}"
    shutil.move(str(path), target)
    return target


def settle_ingested(root: Path, params: Params, paths: list[Path]) -> list[Path]:
    """Move those of PATHS that are landing files to the landing directory's ingested/ (after a successful ingest)."""
    folder = Path(root) / params.data.landing_dir / INGESTED_DIR
    return [_move(p, folder) for p in in_landing(root, params, paths)]


def named_in(path: Path, reason: str) -> bool:
    """Whether REASON names PATH (as given, or its name as a word when it has a suffix: a file called `data` is not
    named by every message about the data): only a file the refusal is about is held."""
    if str(path) in reason:
        return True
    return bool(path.suffix) and re.search(rf"(?<![\w./-]){re.escape(path.name)}(?![\w./-])", reason) is not None


def settle_refused(root: Path, params: Params, paths: list[Path], reason: str) -> list[Path]:
    """Move those of PATHS that are landing files and that REASON (an ingest's refusal) names to held/, with the
    reason beside each; the others stay waiting. Returns the moved files (their new paths)."""
    folder = Path(root) / params.data.landing_dir / HELD_DIR
    named = [p for p in in_landing(root, params, paths) if named_in(p, reason)]
    held = []
    for path in named:
        target = _move(path, folder)
        target.with_name(target.name + REASON_SUFFIX).write_text(reason + "\n", encoding="utf-8")
        held.append(target)
    return held
