"""The raw data's layout: batches named by their content under data.raw_dir, the marker of the embedded demo, and
which batch the built-in sample ingests as. Shared by ingest and the train stage (is this the demo?), so it sits in
the data layer. (The landing directory's files are `artifacts.landing_files`: status lists them without importing
pandas.)
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
    """Canonical JSON Lines for a batch: the bytes, and so the hash, depend only on the rows. A row's `group` is
    written only where it has one, so a file without a group column gives the batch it always gave."""
    groups = [g if isinstance(g, str) else None for g in frame["group"]] if "group" in frame else [None] * len(frame)
    lines = (
        json.dumps(
            {"text": t, "label": lab} if g is None else {"text": t, "label": lab, "group": g},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for t, lab, g in zip(frame["text"].tolist(), frame["label"].tolist(), groups, strict=True)
    )
    return ("\n".join(lines) + "\n").encode("utf-8")


def batch_path(params: Params, content: bytes) -> str:
    """A batch's path relative to the project root: named by the hash of its content (immutable)."""
    return f"{params.data.raw_dir}/batch-{hashlib.sha256(content).hexdigest()[:20]}.jsonl"


SOURCE_SUFFIX = ".source.json"  # beside each batch: where its rows came from (`source_record`)


def source_path(batch_rel: str) -> str:
    """The provenance file of the batch BATCH_REL (`batch-<hash>.source.json`, not read as data)."""
    return batch_rel.removesuffix(".jsonl") + SOURCE_SUFFIX


def source_record(source: str, frame: pd.DataFrame, license: str | None = None, origin: str | None = None) -> bytes:
    """Where a batch's rows came from: the file's name (not its path: a home directory names a person), its format,
    the columns taken, its LICENSE and ORIGIN (`ingest --license/--source`, or params' `dataset`), and for a Label
    Studio export each task's id, annotator id and the request id of the served
    answer it was queued from. No time (git and DVC keep when): the same file gives the same bytes, so the same
    data version."""
    record = {
        "source": Path(source).name,
        "format": frame.attrs.get("format"),
        "rows": len(frame),
        "columns": frame.attrs.get("columns"),
        "license": license,  # None: not recorded (shown as unknown)
        "origin": origin,
        **({"tasks": frame.attrs["tasks"]} if frame.attrs.get("tasks") else {}),
    }
    return (json.dumps(record, ensure_ascii=False, indent=1, default=str) + "\n").encode("utf-8")


def batch_sources(root: Path, params: Params) -> dict[str, str]:
    """Batch file name -> the name of the file it was ingested from, for the batches that record one."""
    out = {}
    for path in (Path(root) / params.data.raw_dir).glob(f"batch-*{SOURCE_SUFFIX}"):
        try:
            out[path.name.removesuffix(SOURCE_SUFFIX) + ".jsonl"] = str(json.loads(path.read_text("utf-8"))["source"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


# Written beside the built-in sample's batch when `textops run` ingests it into an empty project (the embedded demo,
# not data the user chose): the first ingest of the user's own files replaces both. Inside data/, so it is part of the
# data version and a checkout of the demo's version brings it back with it.
DEMO_MARKER = "demo.json"


def demo_marker(params: Params, content: bytes) -> tuple[str, bytes]:
    """The demo marker's path and bytes for the sample batch CONTENT."""
    marker = {
        "batch": Path(batch_path(params, content)).name,
        "rows": params.sample.rows,
        "seed": params.sample.seed,
        "note": "the built-in demo sample, ingested by `textops run` into an empty project; the first "
        "`textops ingest` of other files replaces it (unless --keep-demo)",
    }
    return f"{params.data.raw_dir}/{DEMO_MARKER}", (json.dumps(marker, indent=1) + "\n").encode("utf-8")


def demo_files(root: Path, params: Params) -> list[str]:
    """The demo's batch and marker (paths relative to ROOT) when data/raw holds the demo alone; else []."""
    raw = Path(root) / params.data.raw_dir
    try:
        marker = json.loads((raw / DEMO_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    batches = sorted(p.name for p in raw.glob("batch-*.jsonl"))
    if not isinstance(marker, dict) or batches != [marker.get("batch")]:
        return []
    batch = f"{params.data.raw_dir}/{batches[0]}"
    sidecar = [source_path(batch)] if (Path(root) / source_path(batch)).exists() else []
    return [batch, *sidecar, f"{params.data.raw_dir}/{DEMO_MARKER}"]


def demo_tag(root: Path, params: Params) -> dict[str, str]:
    """The run tag saying whether the data is the demo alone (`lineage.DEMO_DATA`)."""
    from textops.core.lineage import DEMO_DATA

    return {DEMO_DATA: str(bool(demo_files(root, params))).lower()}


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
        frame = read_labelled_file(
            path, "text", "label", params.data.max_file_mb, params.validation.max_invalid_fraction
        )
    return batches == [Path(batch_path(params, batch_bytes(frame))).name]


def data_licenses(root: Path, raw_md5: str | None) -> list[str]:
    """The licences the batches of data version RAW_MD5 were ingested under (from their provenance files in the
    local DVC cache), "unknown" for a batch that records none; [] when the cache cannot tell."""
    from textops.adapters.dvc import cached_object, dir_listing

    listing = dir_listing(root, raw_md5) if raw_md5 else None
    if not listing:
        return []
    found = set()
    for rel in listing:
        if Path(rel).name.startswith("batch-") and rel.endswith(".jsonl"):
            record = listing.get(rel.removesuffix(".jsonl") + SOURCE_SUFFIX)
            try:
                licence = json.loads(cached_object(root, record).read_text("utf-8")).get("license") if record else None
            except (OSError, ValueError, AttributeError):
                licence = None
            found.add(str(licence) if licence else "unknown")
    return sorted(found)
