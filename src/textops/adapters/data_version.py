"""The data version a training run is made from, read off the project (git, data.dvc, dvc.lock, the cleaned
splits) as the lineage tags textops.core.lineage names."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from textops.adapters import dvc, git
from textops.core import lineage
from textops.core.artifacts import LABELS_FILE, PREPROCESS_METRICS, SPLITS, clean_dir

if TYPE_CHECKING:
    from textops.core.config import Params


def clean_md5s(root: Path, params: Params) -> dict[str, str]:
    """MD5 of each cleaned split and of labels.json, and `combined` over all of them (sorted by name)."""
    directory = clean_dir(root, params)
    parts = {name: dvc.file_md5(directory / f"{name}.parquet") for name in SPLITS}
    parts["labels"] = dvc.file_md5(directory / LABELS_FILE)
    combined = hashlib.md5("".join(f"{k}:{v}\n" for k, v in sorted(parts.items())).encode()).hexdigest()
    return {**parts, "combined": combined}


def lineage_tags(root: Path, params: Params) -> dict[str, str]:
    """MLflow tags naming the data version, code and params of a training run."""
    md5s = clean_md5s(root, params)
    # What a run itself writes is not a change of the code: v1 of a fresh clone is not "dirty".
    dirty = git.is_dirty(root, (dvc.raw_pointer(params), dvc.DVC_LOCK, str(Path(PREPROCESS_METRICS).parent)))
    version = dvc.working_version(root, params)
    stats = Path(root) / PREPROCESS_METRICS
    tags = {
        lineage.RAW_MD5: dvc.raw_md5(root, params) or "untracked",
        lineage.CLEAN_MD5: md5s.pop("combined"),
        lineage.CLEAN_DVC_MD5: dvc.clean_dvc_md5(version, params) or "untracked",
        lineage.DATA_REV: dvc.data_rev(root, params, version) or "none",
        lineage.DATA_SPLITS: json.dumps(version["splits"]),
        lineage.GIT_COMMIT: git.head(root) or "none",
        lineage.GIT_DIRTY: "unknown" if dirty is None else str(dirty).lower(),
        lineage.PARAMS_MD5: lineage.training_fingerprint(params),
    }
    if version["pointer"]:
        tags[lineage.DATA_POINTER] = json.dumps(version["pointer"], sort_keys=True)
    if version["preprocess"]:
        tags[lineage.DATA_PREPROCESS] = json.dumps(version["preprocess"], sort_keys=True)
    if stats.exists() and len(text := stats.read_text(encoding="utf-8")) < lineage.MAX_TAG:
        tags[lineage.DATA_PREPROCESS_STATS] = text
    tags.update({lineage.CLEAN_MD5_PART + k: v for k, v in md5s.items()})
    return {k: v for k, v in tags.items() if len(v) < lineage.MAX_TAG}  # MLflow refuses longer tag values


def current_state(root: Path, params: Params) -> dict[str, str | None]:
    """What a training now would be made from: the raw data version and the params fingerprint."""
    return {"raw_md5": dvc.raw_md5(root, params), "params_md5": lineage.training_fingerprint(params)}
