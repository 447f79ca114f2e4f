"""Which files in the landing directory the `monitor` flow has announced (`textops.data.landed`): a file is
announced once, not every hour while it waits for a person, and only once the Prefect server stored its event
(flows/monitor.py marks it then, not before). The record is `.textops/landed.json`: each file's name, size and mtime.
"""

from __future__ import annotations

import json
from pathlib import Path

from textops.core.artifacts import atomic_write_json
from textops.core.config import Params

LANDED_STATE = "landed.json"  # in .textops/: the landing files already announced (name, size, mtime)


def landing_keys(root: Path, params: Params) -> dict[str, Path]:
    """The files in the landing directory by what makes a file the same file here: name, size, mtime."""
    from textops.core.artifacts import landing_files

    return {f"{p.name}:{p.lstat().st_size}:{p.lstat().st_mtime_ns}": p for p in landing_files(root, params)}


def announced_keys(root: Path) -> set[str]:
    """The landing files a monitor run has announced, with confirmation that the event was stored."""
    from textops.core.locks import state_dir

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
    from textops.core.locks import state_dir

    current = set(landing_keys(root, params))
    state = state_dir(root) / LANDED_STATE
    state.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(state, sorted((announced_keys(root) & current) | set(keys)))
