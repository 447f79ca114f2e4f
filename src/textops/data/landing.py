"""The raw data's layout: batches named by their content under data.raw_dir, and which batch the built-in sample
ingests as. Shared by ingest and the train stage (is this the demo?), so it sits in the data layer. (The landing
directory's files are `artifacts.landing_files`: status lists them without importing pandas.)
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import pandas as pd

from textops.core.config import Params
from textops.data.readers import read_labelled_file


def batch_bytes(frame: pd.DataFrame) -> bytes:
    """Canonical JSON Lines for a batch: the bytes, and so the hash, depend only on the rows."""
    lines = (
        json.dumps({"text": t, "label": lab}, ensure_ascii=False, separators=(",", ":"))
        for t, lab in zip(frame["text"].tolist(), frame["label"].tolist(), strict=True)
    )
    return ("\n".join(lines) + "\n").encode("utf-8")


def batch_path(params: Params, content: bytes) -> str:
    """A batch's path relative to the project root: named by the hash of its content (immutable)."""
    return f"{params.data.raw_dir}/batch-{hashlib.sha256(content).hexdigest()[:20]}.jsonl"


def only_the_sample(root: Path, params: Params) -> bool:
    """True when data/raw holds exactly one batch, the one the built-in sample (params.sample) ingests as: the
    embedded demo, not a user's data. Known by content (batches are named by their hash), not by a file name."""
    from textops.data.sample import make_sample

    raw = Path(root) / params.data.raw_dir
    batches = sorted(p.name for p in raw.glob("batch-*.jsonl")) if raw.is_dir() else []
    if len(batches) != 1:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.csv"
        make_sample(params.sample.rows, params.sample.seed).to_csv(path, index=False)
        frame = read_labelled_file(path, "text", "label", params.data.max_file_mb,
                                   params.validation.max_invalid_fraction)  # fmt: skip
    return batches == [Path(batch_path(params, batch_bytes(frame))).name]
