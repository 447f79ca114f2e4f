"""The preprocess stage: clean, deduplicate and split the raw batches.

The cleaned splits are Parquet (`artifacts/clean/{train,val,test}.parquet`, text and label id, and each row's
`group` when the raw data has one: evaluation's slices, never a model input) plus
`labels.json` (the label names in id order), outputs of the `preprocess` stage in dvc.yaml; the stats go to
the metric `metrics/preprocess.json`; the splits' Croissant description to `artifacts/croissant.json` (the
`croissant` stage's output).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from textops.adapters import dvc
from textops.core.artifacts import (
    CROISSANT_STAGE,
    LABELS_FILE,
    PREPROCESS_METRICS,
    SPLITS,
    atomic_write_json,
    clean_dir,
    read_raw,
    staged_dir,
)
from textops.core.config import Params
from textops.core.errors import DataError
from textops.data.croissant import write_current
from textops.data.recovery import data_lock

log = logging.getLogger("textops")


def clean_text(texts: pd.Series, lowercase: bool) -> pd.Series:
    """Unicode NFC, control characters to spaces, runs of (Unicode) whitespace collapsed, trimmed.

    Arrow's RE2 kernels do this about 3x faster than pandas' per-row `re` on 1M rows (see BENCHMARKS.md).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    # Python's unicodedata for NFC: pyarrow 25's utf8_normalize left decomposed text unchanged here.
    nfc = texts.astype(object).str.normalize("NFC")
    arr = pa.array(nfc.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    arr = pc.replace_substring_regex(arr, pattern=r"[\x00-\x08\x0b-\x1f\x7f\x{200b}]", replacement=" ")
    arr = pc.replace_substring_regex(arr, pattern=r"[\s\p{Z}]+", replacement=" ")  # RE2's \s is ASCII only
    arr = pc.utf8_trim_whitespace(arr)
    if lowercase:
        arr = pc.utf8_lower(arr)
    return pd.Series(arr.to_pandas(), index=texts.index, dtype=object)


def split_position(texts: pd.Series) -> np.ndarray:
    """A stable number in [0, 1) per text from its MD5: a text keeps its split as the data grows."""
    digests = [hashlib.md5(t.encode("utf-8")).digest()[:8] for t in texts.tolist()]
    return np.frombuffer(b"".join(digests), dtype=">u8").astype(np.float64) / 2.0**64


def hash_splits(position: np.ndarray, val: float, test: float) -> np.ndarray:
    """test below `test`, val below `test + val`, else train: each text's own split, from its hash position."""
    return np.where(position < test, "test", np.where(position < test + val, "val", "train")).astype(object)


def assign_splits(
    position: np.ndarray,
    labels: np.ndarray,
    val: float,
    test: float,
    split: np.ndarray | None = None,
    movable: np.ndarray | None = None,
) -> np.ndarray:
    """SPLIT (default: `hash_splits`), then make sure each class is in each split.

    A class too small for the hash to reach a split gets its train rows with the lowest positions moved
    there (deterministic, and only ever for rare classes), the MOVABLE ones (texts inside no train text) first.
    """
    split = (hash_splits(position, val, test) if split is None else split).copy()
    movable = np.ones(len(position), dtype=bool) if movable is None else movable
    for label in np.unique(labels):
        for target in ("val", "test"):
            members = labels == label
            if (members & (split == target)).any():
                continue
            donors = np.flatnonzero(members & (split == "train"))
            if len(donors) >= 2:
                free = donors[movable[donors]]
                pool = free if len(free) else donors
                split[pool[np.argmin(position[pool])]] = target
    return split


def split_rows(
    texts: pd.Series, labels: np.ndarray, params: Params, containment: bool = True
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(positions, the split of each text, the leak report): by hash, and with data.split.by `containment` (the
    default) no val or test text inside a train text (`textops.data.overlap`). CONTAINMENT=False: by hash alone, the
    leak not measured (the ingest gate's quick look at what the splits would be)."""
    from textops.data.overlap import leak_report, split_by_containment

    cfg = params.data.split
    position = split_position(texts)
    by_hash = hash_splits(position, cfg.val, cfg.test)
    if not containment:
        split = assign_splits(position, labels, cfg.val, cfg.test, by_hash)
        return position, split, {"split_by": "text (not measured)"}
    by_containment, inside, inside_by_hash = split_by_containment(texts.tolist(), by_hash)
    if cfg.by == "containment":
        split = assign_splits(position, labels, cfg.val, cfg.test, by_containment, movable=(inside & 1) == 0)
        report = leak_report(texts.to_numpy(), split, inside)
    else:
        split = assign_splits(position, labels, cfg.val, cfg.test, by_hash)
        report = leak_report(texts.to_numpy(), split, inside_by_hash)
    by_text = leak_report(texts.to_numpy(), by_hash, inside_by_hash)
    report = {
        "split_by": cfg.by,
        **report,
        "test_inside_train_share_if_split_by_text": by_text["test_inside_train_share"],
    }
    if by_text["test_inside_train_share"] > 0.01:
        log.warning(
            "preprocess: %.1f%% of the test texts occur inside train texts when split by text (the data holds pieces "
            "of its own texts, like SST-2's phrases); %s",
            100 * by_text["test_inside_train_share"],
            "split by containment: no test text is seen in training"
            if cfg.by == "containment"
            else "data.split.by is `text`, so the test figures are inflated: set data.split.by: containment",
        )
    return position, split, report


def _label_order(labels: pd.Series) -> list[str]:
    names = sorted(labels.unique())
    if all(n.lstrip("+-").isdigit() for n in names):
        return sorted(names, key=int)
    return names


def clean_and_split(
    frame: pd.DataFrame, params: Params, containment: bool = True
) -> tuple[dict[str, pd.DataFrame], list[str], dict]:
    """Clean, filter, deduplicate and split raw rows (text, label as strings), in memory.

    Returns the splits (text, label id), the label names in id order, and the stats (rows in/out, drops by
    reason, conflicting examples, rows and class balance per split).
    """
    data = params.data
    rows_in = len(frame)
    kept = ["text", "label", "group"] if "group" in frame.columns else ["text", "label"]  # group: slices only
    frame = frame[kept].copy()
    frame["text"] = clean_text(frame["text"], data.lowercase)
    lengths = frame["text"].str.len().fillna(0)
    reasons = {
        "empty": lengths == 0,
        "too_short": (lengths > 0) & (lengths < data.min_chars),
        "too_long": lengths > data.max_chars,
    }
    dropped = {name: int(mask.sum()) for name, mask in reasons.items()}
    frame = frame[~(reasons["empty"] | reasons["too_short"] | reasons["too_long"])]
    frame["text"] = frame["text"].astype(str)

    before = len(frame)
    frame = frame.drop_duplicates(["text", "label"])
    dropped["duplicate"] = before - len(frame)
    # After exact duplicates are gone, a text that still appears twice has two labels.
    conflicted = frame["text"].duplicated(keep=False)
    conflicting = frame[conflicted]
    dropped["conflicting_labels"] = len(conflicting)
    conflict_examples = (
        conflicting.groupby("text")["label"].apply(lambda s: sorted(s)).head(5).reset_index().to_dict("records")
    )
    frame = frame[~conflicted]
    if frame.empty:
        raise DataError(f"preprocess: no rows left after cleaning {rows_in} raw rows (dropped: {dropped}).")

    labels = _label_order(frame["label"])
    label_ids = {name: i for i, name in enumerate(labels)}
    frame = frame.assign(label=frame["label"].map(label_ids).astype("int64"))
    position, split, leak = split_rows(frame["text"], frame["label"].to_numpy(), params, containment)
    frame = frame.assign(_pos=position, split=split)
    frame = frame.sort_values("_pos", kind="stable")

    splits, balance = {}, {}
    for name in SPLITS:
        part = frame[frame["split"] == name][kept].reset_index(drop=True)
        splits[name] = part
        per_class = part["label"].value_counts()
        balance[name] = {labels[i]: int(per_class.get(i, 0)) for i in range(len(labels))}
    stats = {
        "rows_in": rows_in,
        "rows_out": int(sum(len(p) for p in splits.values())),
        "dropped": dropped,
        "conflicting_examples": conflict_examples,
        "splits": {name: len(part) for name, part in splits.items()},
        "class_balance": balance,
        "labels": labels,
        "leak": leak,
    }
    return splits, labels, stats


def preprocess(root: Path, params: Params) -> dict:
    """The `preprocess` stage: every raw batch cleaned and split into artifacts/clean (Parquet + labels.json),
    stats to metrics/preprocess.json. The old outputs stay as they were until the new ones are complete
    (a full disk or a kill half way changes nothing)."""
    root = Path(root)
    # Not while an ingest or checkout changes data/ or the cleaned splits (and repair a killed one first).
    with data_lock(root):
        dvc.require_untouched_raw(root, params)
        splits, labels, stats = clean_and_split(read_raw(root, params), params)
        stats["raw_md5"] = dvc.raw_md5(root, params)
        with staged_dir(clean_dir(root, params)) as staged:
            for name, part in splits.items():
                part.to_parquet(staged / f"{name}.parquet", index=False)
            (staged / LABELS_FILE).write_text(json.dumps({"labels": labels}, ensure_ascii=False, indent=2) + "\n")
            atomic_write_json(root / PREPROCESS_METRICS, stats)  # last: after every split is written
        # The data's Croissant description follows every new cleaned version (its sha256s name these splits).
        write_current(root, params, record=False)
        dvc.record_stage(root, "preprocess", CROISSANT_STAGE)  # after the swap: dvc.lock names the new outputs
    return stats
