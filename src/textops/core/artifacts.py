"""The files stages hand each other: where they live, how they are read, and how they are written.

Every stage writes its outputs aside and swaps them in when they are complete (`atomic_write_*`,
`staged_dir`): a crash, a kill or a full disk half way leaves the previous outputs as they were, and a
reader never sees half a file. Every reader of a hand-over file is here, with one strictness.

| file | written by | read by |
|---|---|---|
| `data/raw/batch-*.jsonl` | ingest | preprocess |
| `artifacts/clean/{train,val,test}.parquet`, `labels.json` | preprocess | validate, train, evaluate, register |
| `metrics/preprocess.json` | preprocess | data versions |
| `artifacts/croissant.json` (Croissant JSON-LD) | preprocess, train, checkout | train (logs it), export |
| `metrics/validate.json` | validate | register (the gate passed on these splits?) |
| `artifacts/model/hf/`, `run.json` | train | evaluate, register |
| `artifacts/eval/predictions.parquet`, `metrics/eval.json` | evaluate | register |
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textops.core.errors import StateError, ValidationFailed

if TYPE_CHECKING:
    import pandas as pd

    from textops.core.config import Params

# The names in the labelling config written beside Label Studio tasks (`tasks.xml`): the queue writes them, the
# export reader finds the choice under the first.
LABEL_STUDIO_FROM, LABEL_STUDIO_TO = "label", "text"


SPLITS = ("train", "val", "test")
LABELS_FILE = "labels.json"
RUN_FILE = "run.json"  # in train.output_dir: the MLflow run (and logged model) of the trained model
HF_DIR = "hf"  # in train.output_dir: the saved transformers model and tokenizer
TFIDF_DIR = "tfidf"  # in train.output_dir instead of hf/ for `model.base: tfidf` (pyfunc.TfidfScorer's files)
PREDICTIONS_FILE = "predictions.parquet"  # in evaluate.output_dir
# In evaluate.output_dir: the most confidently wrong test rows with their words' attributions (the run report's).
EXPLAINED_FILE = "explained_errors.json"
CROISSANT_FILE = "croissant.json"  # beside data.clean_dir: the `croissant` stage's output (dvc.yaml)
CROISSANT_STAGE = "croissant"
CROISSANT_ARTIFACT = "data"  # the folder of a training run's MLflow artifacts that holds CROISSANT_FILE

PREPROCESS_METRICS = "metrics/preprocess.json"
VALIDATE_METRICS = "metrics/validate.json"
TRAIN_METRICS = "metrics/train.json"
EVAL_METRICS = "metrics/eval.json"
TRAIN_LOSS_PLOT = "metrics/train_loss.csv"
VAL_CURVE_PLOT = "metrics/val_curve.csv"
CONFUSION_PLOT = "metrics/confusion.csv"


# --------------------------------------------------------------------------------------------------
# writing: aside, then swapped in


def atomic_write_bytes(path: Path, content: bytes) -> None:
    """Write CONTENT to PATH through a temporary file in the same directory, fsynced, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: Any) -> None:
    """VALUE as indented JSON (non-ASCII kept), written atomically."""
    atomic_write_text(path, json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def replace_dir(staged: Path, target: Path) -> None:
    """Swap a completely written directory in for TARGET (two renames: no copy, no space needed)."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """A fresh `TARGET.tmp` to write a stage's output directory into; swapped in for TARGET when the block
    ends normally, removed when it raises (the old TARGET stays)."""
    target = Path(target)
    staged = target.with_name(target.name + ".tmp")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    replace_dir(staged, target)


# --------------------------------------------------------------------------------------------------
# reading


def _missing(path: Path, stage: str) -> StateError:
    return StateError(f"{path} not found: run `textops {stage}` (or `dvc repro {stage}`) first.")


def read_json(path: Path, stage: str) -> dict:
    """A JSON hand-over file; StateError naming the stage that writes it when it is missing or unreadable."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise _missing(path, stage) from exc
    except ValueError as exc:
        raise StateError(f"{path} is not valid JSON ({exc}): run `textops {stage}` again.") from exc


def raw_batches(root: Path, params: Params) -> list[Path]:
    """The raw batches in data/raw, in name order."""
    return sorted((Path(root) / params.data.raw_dir).glob("batch-*.jsonl"))


def has_raw_data(root: Path, params: Params) -> bool:
    return bool(raw_batches(root, params))


def read_raw(root: Path, params: Params) -> pd.DataFrame:
    """All raw batches as one frame (text, label as strings), in batch-name order; with a `group` column (None
    where a row has none) when data.group_column is set and some batch has one."""
    import pyarrow as pa
    import pyarrow.json as paj

    files = raw_batches(root, params)
    if not files:
        raise StateError(
            f"no data in {params.data.raw_dir}: ingest labelled files with `textops ingest FILE`, or `textops sample` "
            "for the built-in sample."
        )
    schema = pa.schema([("text", pa.string()), ("label", pa.string()), ("group", pa.string())])
    options = paj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    read = paj.ReadOptions(block_size=64 << 20)
    tables = []
    for f in files:
        try:
            tables.append(paj.read_json(f, parse_options=options, read_options=read))
        except (pa.ArrowInvalid, OSError) as exc:
            raise StateError(
                f"{f} is damaged ({str(exc).splitlines()[0]}): it is not the batch ingest wrote. Put data/ back with "
                "`dvc checkout --force data.dvc` (or `dvc pull --force data.dvc`)."
            ) from exc
    table = pa.concat_tables(tables)
    if params.data.group_column is None or table.column("group").null_count == len(table):
        table = table.drop_columns(["group"])  # no group anywhere: the frame (and the splits) as before
    return table.to_pandas()


def clean_dir(root: Path, params: Params) -> Path:
    return Path(root) / params.data.clean_dir


def croissant_path(root: Path, params: Params) -> Path:
    """The Croissant description of the cleaned data: beside the cleaned splits' folder, not inside it, so that
    the dataset's name or licence (`dataset` in params, not a training input) never changes the splits' DVC hash."""
    return clean_dir(root, params).parent / CROISSANT_FILE


def split_path(root: Path, params: Params, split: str) -> Path:
    return clean_dir(root, params) / f"{split}.parquet"


def load_split(root: Path, params: Params, split: str) -> pd.DataFrame:
    """One cleaned split (text, label id)."""
    import pandas as pd

    path = split_path(root, params, split)
    if not path.exists():
        raise _missing(path, "preprocess")
    return pd.read_parquet(path)


def load_train_rows(root: Path, params: Params) -> pd.DataFrame:
    """The rows a model trains on: the train split, capped at train.max_train_samples by a seeded sample (CPU
    budgets). The evaluation's and the registry's TF-IDF baseline fit on exactly these rows too: a baseline fitted
    on more rows than the model saw would judge the model unfairly."""
    frame = load_split(root, params, "train")
    cap = params.train.max_train_samples
    if cap is not None and cap < len(frame):
        frame = frame.sample(n=cap, random_state=params.train.seed).reset_index(drop=True)
    return frame


def split_rows(root: Path, params: Params, split: str) -> int | None:
    """Rows in a cleaned split from the Parquet footer (no data read); None when the file is missing."""
    import pyarrow.parquet as pq

    path = split_path(root, params, split)
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else None


def read_labels(root: Path, params: Params) -> list[str]:
    """labels.json's class names in id order, checked to be a non-empty list of distinct non-empty strings."""
    path = clean_dir(root, params) / LABELS_FILE
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))["labels"]
    except FileNotFoundError as exc:
        raise _missing(path, "preprocess") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed(f'{path}: not of the form {{"labels": [names in id order]}} ({exc}).') from exc
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(x, str) and x.strip() for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ValidationFailed(f"{path}: 'labels' must be a non-empty list of distinct names, got {labels!r}.")
    return labels


def model_dir(root: Path, params: Params) -> Path:
    return Path(root) / params.train.output_dir


def read_run_info(root: Path, params: Params) -> dict:
    """run.json of the trained model: run_id, experiment_id, tracking_uri, model_uri."""
    path = model_dir(root, params) / RUN_FILE
    info = read_json(path, "train")
    if not isinstance(info.get("run_id"), str):
        raise StateError(f"{path} names no MLflow run: run `textops train` again.")
    return info


def predictions_path(root: Path, params: Params) -> Path:
    return Path(root) / params.evaluate.output_dir / PREDICTIONS_FILE


# the landing directory (the scheduled `retrain` flow ingests it; `textops status` lists it)

# Files still being written by whoever drops them in the landing directory (upload tools write aside, then rename).
IN_FLIGHT = (".part", ".tmp", ".crdownload")


def landing_files(root: Path, params: Params) -> list[Path]:
    """Files waiting in the landing directory, by name. Every file counts, whatever its type: one ingest cannot
    read (a spreadsheet, a link) fails the run and stays there for a person, instead of being skipped forever.
    Hidden files and files still being uploaded are left alone."""
    landing = Path(root) / params.data.landing_dir
    if not landing.is_dir():
        return []
    return sorted(
        p
        for p in landing.iterdir()
        if (p.is_file() or p.is_symlink()) and not p.name.startswith(".") and not p.name.endswith(IN_FLIGHT)
    )
