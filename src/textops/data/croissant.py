"""The current data version described for machines: MLCommons Croissant 1.0 JSON-LD (`textops data card`), built and
checked with the `mlcroissant` package. The cleaned splits are its files (Parquet, with their sha256) and record sets
(text and label, the label a reference to the `labels` record set that names each class); the licences are those
the raw batches were ingested under (`landing.data_licenses`); the version is the raw data's DVC hash; the
description says how the rows were cleaned and split. `mlcroissant.Dataset(jsonld=FILE).records("train")` reads it.

`write_current` keeps it at its fixed place (`artifacts.croissant_path`, the `croissant` stage's output in dvc.yaml)
whenever the cleaned data changes: preprocess, a data checkout, a training (which logs it with the run). No time and
no machine-specific value goes in: the same data and params give the same bytes, so DVC's hash of it is stable.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from textops.adapters import dvc
from textops.core.artifacts import (
    CROISSANT_STAGE,
    SPLITS,
    atomic_write_text,
    croissant_path,
    read_labels,
    split_path,
)
from textops.core.config import Params
from textops.core.errors import StateError

DEFAULT_NAME = "textops-data"  # without `dataset.name`: a fixed name, not the folder's (the same data, the same file)


def sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def description(params: Params, labels: list[str]) -> str:
    """How the rows were made, in words: what preprocess did and how it split."""
    data, split = params.data, params.data.split
    cleaning = "lower-cased, " if data.lowercase else ""
    return (
        f"Labelled texts for text classification ({len(labels)} classes). Cleaned by textops' preprocess stage: "
        f"{cleaning}Unicode NFC, control characters and runs of whitespace removed, texts shorter than "
        f"{data.min_chars} or longer than {data.max_chars} characters dropped, exact duplicates and texts with "
        f"conflicting labels dropped; {split.val:.0%} to val and {split.test:.0%} to test by a hash of the text (a "
        f"text inside a train text stays in train: split.by {split.by}), so a text is in one split only. The label "
        "column holds the index of the class in the `labels` record set."
    )


def data_card(root: Path, params: Params, output: Path) -> dict:
    """Write the Croissant description of the current cleaned data to OUTPUT (its file paths relative to it);
    returns the JSON-LD. StateError when there are no cleaned splits (run preprocess) or it does not validate."""
    import mlcroissant as mlc

    from textops.data.landing import data_licenses

    root, output = Path(root), Path(output)
    paths = {split: split_path(root, params, split) for split in SPLITS}
    if not all(p.exists() for p in paths.values()):
        raise StateError("no cleaned splits to describe: run `textops preprocess` (or `dvc repro preprocess`) first.")
    labels = read_labels(root, params)
    raw_md5 = dvc.raw_md5(root, params)
    files = [
        mlc.FileObject(
            id=f"{split}.parquet",
            name=f"{split}.parquet",
            content_url=os.path.relpath(path, output.parent.resolve()),
            encoding_formats=["application/x-parquet"],
            sha256=sha256(path),
        )
        for split, path in paths.items()
    ]
    classes = mlc.RecordSet(
        id="labels",
        name="labels",
        key="labels/index",
        fields=[
            mlc.Field(id="labels/index", name="index", data_types=[mlc.DataType.INTEGER]),
            mlc.Field(id="labels/name", name="name", data_types=[mlc.DataType.TEXT]),
        ],
        data=[{"labels/index": i, "labels/name": name} for i, name in enumerate(labels)],
    )

    def rows(split: str):
        def column(name: str, kind):
            source = mlc.Source(file_object=f"{split}.parquet", extract=mlc.Extract(column=name))
            return mlc.Field(id=f"{split}/{name}", name=name, data_types=[kind], source=source)

        label = column("label", mlc.DataType.INTEGER)
        label.references = mlc.Source(field="labels/index")
        return mlc.RecordSet(id=split, name=split, fields=[column("text", mlc.DataType.TEXT), label])

    metadata = mlc.Metadata(
        name=params.dataset.name or DEFAULT_NAME,
        description=description(params, labels),
        url=params.dataset.source if (params.dataset.source or "").startswith("http") else None,
        license=data_licenses(root, raw_md5) or ["unknown"],
        version="1.0.0",
        cite_as=params.dataset.source or f"textops data version {raw_md5}",
        distribution=files,
        record_sets=[classes, *(rows(split) for split in SPLITS)],
    )
    errors = metadata.issues.errors
    if errors:
        raise StateError(f"the Croissant description does not validate: {'; '.join(sorted(errors))[:500]}")
    card = metadata.to_json()
    card["identifier"] = f"dvc-md5:{raw_md5}"  # the exact data version; `version` is Croissant's semantic one
    atomic_write_text(output, json.dumps(card, indent=1, ensure_ascii=False, default=str) + "\n")
    return card


def has_splits(root: Path, params: Params) -> bool:
    return all(split_path(root, params, split).exists() for split in SPLITS)


def write_current(root: Path, params: Params, record: bool = True) -> Path | None:
    """The card of the current cleaned splits at its fixed place, and (with RECORD) the `croissant` stage recorded
    in dvc.lock; None when there are no cleaned splits yet. The same splits and params write the same bytes."""
    if not has_splits(root, params):
        return None
    path = croissant_path(root, params)
    data_card(root, params, path)
    if record:
        dvc.record_stage(root, CROISSANT_STAGE)
    return path
