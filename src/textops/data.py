"""Data stage: read labelled files, ingest them as immutable DVC-tracked batches, preprocess and split.

Raw batches are JSON Lines written by this module (`data/raw/batch-<sha256 of content>.jsonl`, columns
`text` and `label` as strings): byte-stable across library versions, so the same rows always give the
same DVC hash. The cleaned splits are Parquet (`artifacts/clean/{train,val,test}.parquet`, label ids)
plus `labels.json`, outputs of the `preprocess` stage in dvc.yaml.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from textops.config import DataParams, Params
from textops.errors import DataError, StateError

SPLITS = ("train", "val", "test")
FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
PREPROCESS_METRICS = "metrics/preprocess.json"


# --------------------------------------------------------------------------------------------------
# Reading labelled files


def _format_of(path: Path) -> tuple[str, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1] if suffixes else "")
    if fmt is None:
        raise DataError(
            f"{path}: unsupported file type {''.join(path.suffixes) or '(no extension)'}; "
            f"ingest reads {', '.join(sorted(FORMATS))} (optionally .gz)."
        )
    return fmt, compressed


def _read_bytes(path: Path, max_bytes: int, compressed: bool) -> bytes:
    """The file's bytes, refusing files (or decompressed streams) larger than max_bytes."""
    size = path.stat().st_size
    limit_mb = max_bytes / 2**20
    if size > max_bytes:
        raise DataError(f"{path}: {size / 2**20:.1f} MB is over the limit of {limit_mb:g} MB (data.max_file_mb).")
    if size == 0:
        raise DataError(f"{path}: the file is empty.")
    if not compressed:
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)  # never inflate more than the limit: a zip bomb stops here
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc}).") from exc
    if len(data) > max_bytes:
        raise DataError(
            f"{path}: decompresses to more than the limit of {limit_mb:g} MB (data.max_file_mb); refused."
        )
    return data


def _decode(path: Path, raw: bytes, quoted: bool = True) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{path}: encoded as UTF-16 (Excel's 'Unicode text'); save it as UTF-8 and ingest it again.")
    if b"\x00" in raw[:8192]:
        raise DataError(f"{path}: contains NUL bytes; this looks like a binary file, not {path.suffix} text.")
    try:
        text = raw.decode("utf-8-sig")  # strips a leading BOM
    except UnicodeDecodeError as exc:
        snippet = raw[max(0, exc.start - 20) : exc.start + 20]
        raise DataError(
            f"{path}: not valid UTF-8 at byte {exc.start} (near {snippet!r}); save the file as UTF-8 "
            "(a latin-1/cp1252 export is the usual cause) and ingest it again."
        ) from exc
    if "\x00" in text:
        raise DataError(f"{path}: contains NUL characters; refusing a file that is partly binary.")
    if "\ufeff" in text:
        raise DataError(f"{path}: a byte-order mark (U+FEFF) inside the data: files were concatenated; fix the file.")
    endings = line_endings(text, quoted)
    if len(endings) > 1:
        counts = ", ".join(f"{n} {kind}" for kind, n in endings.items())
        raise DataError(
            f"{path}: mixed line endings between rows ({counts}): the file was stitched together from different "
            "sources and rows may be split or joined wrongly; normalise the line endings (e.g. `dos2unix`) and "
            "ingest it again."
        )
    return text


def line_endings(text: str, quoted: bool = True) -> dict[str, int]:
    """Row terminators by kind (CRLF, LF, CR); with QUOTED, outside double-quoted fields (a CSV cell may
    hold a newline; a JSON string may not)."""
    if "\r" not in text:
        return {"LF": 1} if "\n" in text else {}
    crlf = text.count("\r\n")
    if crlf == text.count("\r") == text.count("\n"):
        return {"CRLF": crlf}
    import re

    outside = re.sub(r'"(?:[^"]|"")*"', '""', text) if quoted else text  # a quoted field's newlines are data
    crlf = outside.count("\r\n")
    counts = {"CRLF": crlf, "LF": outside.count("\n") - crlf, "CR": outside.count("\r") - crlf}
    return {kind: n for kind, n in counts.items() if n}


def _parse(path: Path, fmt: str, raw: bytes) -> pd.DataFrame:
    if fmt == "parquet":
        if raw[:4] != b"PAR1":
            raise DataError(f"{path}: not a Parquet file (bad magic bytes).")
        try:
            return pd.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # pyarrow raises many types for corrupt files
            raise DataError(f"{path}: cannot read Parquet: {exc}") from exc
    text = _decode(path, raw, quoted=fmt != "jsonl")
    if fmt == "jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg}): {line[:80]!r}") from exc
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {number} is not a JSON object: {line[:80]!r}")
            rows.append(row)
        return pd.DataFrame(rows)
    sep = "," if fmt == "csv" else "\t"
    try:
        # dtype=object keeps labels as written ("1", "1.0", "Sports"); NA only for truly empty cells.
        return pd.read_csv(
            io.StringIO(text), sep=sep, dtype=object, keep_default_na=False, na_values=[""], on_bad_lines="error"
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: no header and no rows.") from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: malformed {fmt.upper()} (ragged rows or bad quoting): {exc}".strip()) from exc


def _labels_as_strings(path: Path, labels: pd.Series) -> pd.Series:
    """Labels as strings, refusing mixed kinds (ints with names) and non-integer numbers."""
    kinds = {type(v).__name__ for v in labels}
    values = labels.astype(str).str.strip()
    if kinds & {"float", "float64", "float32"}:
        numbers = pd.to_numeric(labels, errors="coerce")
        if (numbers != np.floor(numbers)).any():
            bad = labels[numbers != np.floor(numbers)].head(3).tolist()
            raise DataError(f"{path}: label values must be names or whole numbers, got {bad}.")
        values = numbers.astype("int64").astype(str)
    if kinds & {"bool", "bool_"}:
        raise DataError(f"{path}: boolean labels are ambiguous; write them as names (e.g. negative/positive).")
    if kinds - {"str", "int", "int64", "int32", "float", "float64", "float32"}:
        raise DataError(f"{path}: label column holds {sorted(kinds)} values; labels must be names or integers.")
    numeric = values.str.fullmatch(r"[+-]?\d+(\.0+)?")
    if numeric.any() and not numeric.all():
        examples = sorted(set(values[numeric].head(2)) | set(values[~numeric].head(2)))
        raise DataError(
            f"{path}: the label column mixes numbers and names ({examples}); use one kind of label."
        )
    if values.str.fullmatch(r"[+-]?\d+\.\d*").any():
        bad = values[values.str.fullmatch(r"[+-]?\d+\.\d*")].head(3).tolist()
        if any(not v.rstrip("0").endswith(".") for v in bad):
            raise DataError(f"{path}: label values must be names or whole numbers, got {bad}.")
    if numeric.all():
        values = values.str.replace(r"\.0+$", "", regex=True).astype("int64").astype(str)
    return values


def read_labelled_file(path: Path, text_column: str, label_column: str, max_file_mb: float) -> pd.DataFrame:
    """Read CSV/TSV/JSONL/Parquet (optionally gzipped) into a frame with string columns `text`, `label`.

    Raises DataError with a one-paragraph message for anything a person would have to fix in the file.
    """
    path = Path(path)
    if path.is_symlink():
        # A link could make ingest read (and version, and push) any file the process can see.
        raise DataError(
            f"{path}: a symbolic link (to {os.readlink(path)}); ingest reads regular files only: copy the file "
            "or pass its real path."
        )
    if not path.exists():
        raise DataError(f"{path}: no such file.")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file.")
    fmt, compressed = _format_of(path)
    raw = _read_bytes(path, int(max_file_mb * 2**20), compressed)
    frame = _parse(path, fmt, raw)
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns[:10])) or "none"
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {found}); pass --text-column/--label-column "
            "or set data.text_column/data.label_column in params.yaml."
        )
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows.")
    frame = frame[[text_column, label_column]].rename(columns={text_column: "text", label_column: "label"})
    header_again = (frame["text"].astype(str) == text_column) & (frame["label"].astype(str) == label_column)
    if header_again.any():
        rows = (np.flatnonzero(header_again.to_numpy()) + 2).tolist()[:5]
        raise DataError(
            f"{path}: the header row appears again inside the data (lines {rows}); files were concatenated."
        )
    nulls = frame["label"].isna()
    if nulls.all():
        raise DataError(f"{path}: every value in the label column '{label_column}' is empty.")
    if frame["text"].isna().all():
        raise DataError(f"{path}: every value in the text column '{text_column}' is empty.")
    non_string = frame["text"].dropna().map(lambda v: not isinstance(v, str))
    if non_string.any():
        examples = frame["text"][non_string.index[non_string]].head(3).tolist()
        raise DataError(f"{path}: text column '{text_column}' holds non-text values, e.g. {examples}.")
    if nulls.any():
        rows = (np.flatnonzero(nulls.to_numpy()) + 2).tolist()[:5]
        raise DataError(f"{path}: {int(nulls.sum())} row(s) have no label (e.g. data lines {rows}).")
    frame["label"] = _labels_as_strings(path, frame["label"])
    return frame.reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# Ingest: immutable batches under DVC


@dataclass
class IngestResult:
    source: str
    batch: str
    rows: int
    added: bool

    def describe(self) -> str:
        if self.added:
            return f"ingested {self.source}: {self.rows} rows -> {self.batch}"
        return f"already ingested {self.source} ({self.batch}); nothing to do"


def batch_bytes(frame: pd.DataFrame) -> bytes:
    """Canonical JSON Lines for a batch: the bytes, and so the hash, depend only on the rows."""
    lines = (
        json.dumps({"text": t, "label": lab}, ensure_ascii=False, separators=(",", ":"))
        for t, lab in zip(frame["text"].tolist(), frame["label"].tolist(), strict=True)
    )
    return ("\n".join(lines) + "\n").encode("utf-8")


def read_raw(raw_dir: Path) -> pd.DataFrame:
    """All raw batches as one frame (text, label as strings), in batch-name order."""
    import pyarrow as pa
    import pyarrow.json as paj

    files = sorted(Path(raw_dir).glob("batch-*.jsonl"))
    if not files:
        raise StateError(
            f"no data in {raw_dir}: ingest labelled files with `textops ingest FILE`, or `textops sample` for the "
            "built-in sample."
        )
    schema = pa.schema([("text", pa.string()), ("label", pa.string())])
    options = paj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    read = paj.ReadOptions(block_size=64 << 20)
    tables = [paj.read_json(f, parse_options=options, read_options=read) for f in files]
    return pa.concat_tables(tables).to_pandas()


class PushFailed(StateError):
    """`dvc push` failed after the batch was added to the local cache."""


def _dvc_repo(root: Path):
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Repo(str(root))
    except NotDvcRepoError as exc:
        raise StateError(f"{root} is not a DVC repository: run `git init && dvc init` there first.") from exc


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def pointer_of(params: DataParams) -> str:
    """The .dvc file that versions the raw data (`data.dvc` for raw_dir data/raw)."""
    return f"{Path(params.raw_dir).parts[0]}.dvc"


def push_raw(root: Path, params: DataParams) -> None:
    """`dvc push` data.dvc when a default remote is configured."""
    repo = _dvc_repo(root)
    if not repo.config["core"].get("remote") or not (root / pointer_of(params)).exists():
        return
    try:
        repo.push([str(root / pointer_of(params))])
    except Exception as exc:  # the batch is safe in the local cache; say so instead of failing ingest
        raise PushFailed(
            f"the data is versioned in the local DVC cache, but `dvc push` to the default remote failed: {exc}. "
            "Fix the remote (`dvc remote list`) and run `dvc push`, or ingest again: nothing was lost."
        ) from exc


def track_raw(root: Path, params: DataParams, message: str | None) -> None:
    """`dvc add data` and, with MESSAGE, a git commit of data.dvc."""
    data_dir = Path(params.raw_dir).parts[0]
    # Absolute target: DVC resolves relative ones against the process's cwd, not the repo.
    _dvc_repo(root).add([str(root / data_dir)])
    if message:
        _git(root, "add", pointer_of(params), ".gitignore")
        done = _git(root, "commit", "-q", "-m", message, "--", pointer_of(params), ".gitignore")
        if done.returncode != 0 and "nothing to commit" not in done.stdout + done.stderr:
            raise StateError(f"git commit of {pointer_of(params)} failed: {done.stderr.strip() or done.stdout.strip()}")


def batch_path(params: DataParams, content: bytes) -> str:
    """A batch's path relative to the project root: named by the hash of its content (immutable)."""
    return f"{params.raw_dir}/batch-{hashlib.sha256(content).hexdigest()[:20]}.jsonl"


def write_batch(root: Path, rel: str, content: bytes) -> None:
    """Write a batch file: staged outside data/, fsynced, read-only, then renamed into place."""
    from textops.recovery import staging_dir

    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="batch-", dir=staging_dir(root))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_candidate(root: Path, params: Params, existing: pd.DataFrame, new: list[pd.DataFrame]) -> None:
    """The clean suites on what preprocess would make of the raw data plus NEW: nothing that fails the data
    gate enters the versioned data (a scheduled retrain leaves the files in landing/ for a person instead)."""
    from textops.errors import ValidationFailed
    from textops.validation import check_clean, describe_failures

    splits, labels, _ = clean_and_split(pd.concat([existing, *new], ignore_index=True), params.data)
    summary = check_clean(splits, labels, params)
    if not summary["success"]:
        raise ValidationFailed(
            describe_failures(
                summary,
                "with these files the cleaned data would fail its checks, so nothing was ingested (fix the files, "
                "or ingest them with `textops ingest` without --gate and fix the data afterwards)",
                None,
            )
        )


def ingest(
    paths: list[Path],
    root: Path,
    params: Params,
    text_column: str | None = None,
    label_column: str | None = None,
    commit: bool = False,
    allow_new_labels: bool = False,
    gate: bool = True,
) -> list[IngestResult]:
    """Check every file, then add each as an immutable batch and version data/ with DVC (and push).

    Checks, all before anything is written: each file is readable and passes the raw suite; all files
    together pass the batch checks; no unknown label (unless ALLOW_NEW_LABELS); with GATE, the data with
    these files added still passes the clean suites. A bad file in a list leaves data/ as it was, and so
    does a killed ingest (see textops.recovery).
    """
    from textops.recovery import data_lock, journal, read_text
    from textops.validation import validate_raw

    root = Path(root)
    data = params.data
    text_column = text_column or data.text_column
    label_column = label_column or data.label_column
    with data_lock(root):
        files = [
            (str(path), read_labelled_file(Path(path), text_column, label_column, data.max_file_mb)) for path in paths
        ]
        validate_raw(files, params)
        has_data = has_raw_data(root, data)
        existing = read_raw(root / data.raw_dir) if has_data else pd.DataFrame({"text": [], "label": []})
        known = set(existing["label"].unique())
        for source, frame in files:
            new = sorted(set(frame["label"]) - known)
            if known and new and not allow_new_labels:
                raise DataError(
                    f"{source}: unknown label(s) {new}; the data so far has {sorted(known)}. A typo? To add a class on "
                    "purpose, pass --allow-new-labels."
                )

        results, planned = [], {}
        for source, frame in files:
            content = batch_bytes(frame)
            rel = batch_path(data, content)
            added = not (root / rel).exists() and rel not in planned
            if added:
                planned[rel] = content
            results.append(IngestResult(source, rel, len(frame), added))
        if not planned:
            # Nothing new, but an earlier ingest may have failed to push: push is a no-op when up to date.
            push_raw(root, data)
            return results
        if gate:
            check_candidate(root, params, existing, [f for (_, f), r in zip(files, results, strict=True) if r.added])

        pointer = pointer_of(data)
        added = [Path(r.source).name for r in results if r.added]
        with journal(root, "ingest", pointer=pointer, pointer_text=read_text(root / pointer), batches=list(planned),
                     sources=added):
            for rel, content in planned.items():
                write_batch(root, rel, content)
            track_raw(root, data, f"data: ingest {', '.join(added)}" if commit else None)
        # After the journal: a failed push keeps the batches (they are versioned in the local cache).
        push_raw(root, data)
    return results


def ingest_sample(root: Path, params: Params, output: Path | None = None, ingest_it: bool = True):
    """Write the built-in sample (see textops.sample) and ingest it; None when only written."""
    from textops.sample import make_sample

    frame = make_sample(params.sample.rows, params.sample.seed)
    if output is not None:
        frame.to_csv(output, index=False)
    if not ingest_it:
        return None
    root = Path(root)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"sample-{params.sample.rows}-seed{params.sample.seed}.csv"
        frame.to_csv(path, index=False)
        return ingest([path], root, params, text_column="text", label_column="label", gate=False)[0]


def has_raw_data(root: Path, params: DataParams) -> bool:
    return any((Path(root) / params.raw_dir).glob("batch-*.jsonl"))


# --------------------------------------------------------------------------------------------------
# Preprocess: clean, deduplicate, split


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


def assign_splits(position: np.ndarray, labels: np.ndarray, val: float, test: float) -> np.ndarray:
    """test below `test`, val below `test + val`, else train; then make sure each class is in each split.

    A class too small for the hash to reach a split gets its train rows with the lowest positions moved
    there (deterministic, and only ever for rare classes).
    """
    split = np.where(position < test, "test", np.where(position < test + val, "val", "train")).astype(object)
    for label in np.unique(labels):
        for target in ("val", "test"):
            members = labels == label
            if (members & (split == target)).any():
                continue
            donors = np.flatnonzero(members & (split == "train"))
            if len(donors) >= 2:
                split[donors[np.argmin(position[donors])]] = target
    return split


def _label_order(labels: pd.Series) -> list[str]:
    names = sorted(labels.unique())
    if all(n.lstrip("+-").isdigit() for n in names):
        return sorted(names, key=int)
    return names


def dvc_md5(pointer: Path) -> str | None:
    """The md5 DVC recorded for the single output of a .dvc file (None when absent)."""
    import yaml

    if not pointer.exists():
        return None
    outs = (yaml.safe_load(pointer.read_text()) or {}).get("outs") or [{}]
    return outs[0].get("md5")


def clean_and_split(frame: pd.DataFrame, params: DataParams) -> tuple[dict[str, pd.DataFrame], list[str], dict]:
    """Clean, filter, deduplicate and split raw rows (text, label as strings), in memory.

    Returns the splits (text, label id), the label names in id order, and the stats (rows in/out, drops by
    reason, conflicting examples, rows and class balance per split).
    """
    rows_in = len(frame)
    frame = frame[["text", "label"]].copy()
    frame["text"] = clean_text(frame["text"], params.lowercase)
    lengths = frame["text"].str.len().fillna(0)
    reasons = {
        "empty": lengths == 0,
        "too_short": (lengths > 0) & (lengths < params.min_chars),
        "too_long": lengths > params.max_chars,
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
    position = split_position(frame["text"])
    frame = frame.assign(label=frame["label"].map(label_ids).astype("int64"), _pos=position)
    frame["split"] = assign_splits(position, frame["label"].to_numpy(), params.split.val, params.split.test)
    frame = frame.sort_values("_pos", kind="stable")

    splits, balance = {}, {}
    for name in SPLITS:
        part = frame[frame["split"] == name][["text", "label"]].reset_index(drop=True)
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
    }
    return splits, labels, stats


def preprocess(root: Path, params: DataParams) -> dict:
    """The `preprocess` stage: every raw batch cleaned and split into artifacts/clean (Parquet + labels.json),
    stats to metrics/preprocess.json. The old outputs stay as they were until the new ones are complete
    (a full disk or a kill half way changes nothing)."""
    from textops.recovery import data_lock

    root = Path(root)
    # Not while an ingest or checkout changes data/ or the cleaned splits (and repair a killed one first).
    with data_lock(root):
        splits, labels, stats = clean_and_split(read_raw(root / params.raw_dir), params)
        stats["raw_md5"] = dvc_md5(root / pointer_of(params))

        out_dir = root / params.clean_dir
        tmp_dir = out_dir.with_name(out_dir.name + ".tmp")
        metrics = root / PREPROCESS_METRICS
        metrics_tmp = metrics.with_name(metrics.name + ".tmp")
        try:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            tmp_dir.mkdir(parents=True)
            for name, part in splits.items():
                part.to_parquet(tmp_dir / f"{name}.parquet", index=False)
            (tmp_dir / "labels.json").write_text(json.dumps({"labels": labels}, ensure_ascii=False, indent=2) + "\n")
            metrics.parent.mkdir(parents=True, exist_ok=True)
            metrics_tmp.write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n")
        except BaseException:  # a full disk, an error: the old outputs stay; the CLI says what happened
            shutil.rmtree(tmp_dir, ignore_errors=True)
            metrics_tmp.unlink(missing_ok=True)
            raise
        replace_dir(tmp_dir, out_dir)
        os.replace(metrics_tmp, metrics)
    return stats


def replace_dir(staged: Path, target: Path) -> None:
    """Swap a completely written directory in for TARGET (two renames: no copy, no space needed)."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


def load_split(root: Path, params: DataParams, split: str) -> pd.DataFrame:
    path = Path(root) / params.clean_dir / f"{split}.parquet"
    if not path.exists():
        raise StateError(f"{path} not found: run `textops preprocess` (or `dvc repro preprocess`) first.")
    return pd.read_parquet(path)


def load_labels(root: Path, params: DataParams) -> list[str]:
    path = Path(root) / params.clean_dir / "labels.json"
    if not path.exists():
        raise StateError(f"{path} not found: run `textops preprocess` (or `dvc repro preprocess`) first.")
    return json.loads(path.read_text(encoding="utf-8"))["labels"]
