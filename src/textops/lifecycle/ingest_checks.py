"""What files must pass before they become batches (`textops.lifecycle.ingest`): read, with the few rows a check
refuses set aside; labels the data has (or --allow-new-labels); no relabelling of texts already in the data (or
--allow-relabel); texts a file gives two labels named; and with --gate, the clean suites on what preprocess would
make of the data with them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from textops.core.artifacts import has_raw_data, read_raw
from textops.core.config import Params
from textops.core.errors import DataError, ValidationFailed
from textops.data.readers import read_labelled_file

log = logging.getLogger("textops")


def check_files(
    files: list[tuple[str, pd.DataFrame]],
    existing: pd.DataFrame,
    params: Params,
    allow_new_labels: bool,
    allow_relabel: bool,
) -> None:
    """The checks of FILES against the EXISTING rows: labels, relabelling (both refuse), conflicts (a warning)."""
    _check_labels(files, set(existing["label"].unique()), allow_new_labels)
    _check_relabels(files, existing, params, allow_relabel)
    _warn_conflicts(files, params.data.lowercase)


def check_candidate(
    root: Path, params: Params, existing: pd.DataFrame, new: list[pd.DataFrame], names: list[str]
) -> None:
    """The clean suites on what preprocess would make of the raw data plus NEW: nothing that fails the data
    gate enters the versioned data (a scheduled retrain leaves the files in landing/ for a person instead)."""
    from textops.data.preprocess import clean_and_split
    from textops.data.validate import check_clean, describe_failures

    # Split by hash alone: what the suites check (rows and classes per split, no text in two splits) does not hinge
    # on which split a contained text lands in, and the containment search is most of preprocess's time at 1M rows.
    splits, labels, _ = clean_and_split(pd.concat([existing, *new], ignore_index=True), params, containment=False)
    summary = check_clean(splits, labels, params)
    if not summary["success"]:
        raise ValidationFailed(
            describe_failures(
                summary,
                f"with {', '.join(names)} the cleaned data would fail its checks, so nothing was ingested (fix them, "
                "or ingest them with `textops ingest` without --gate and fix the data afterwards)",
                None,
            )
        )


def relabelled(existing: pd.DataFrame, frame: pd.DataFrame, lowercase: bool) -> pd.DataFrame:
    """The rows of FRAME whose text (as preprocess cleans it) is already in EXISTING with another label: text,
    label (the new one) and `was` (the labels the data has for it)."""
    from textops.data.preprocess import clean_text

    if existing.empty or frame.empty:
        return pd.DataFrame({"text": [], "label": [], "was": []})
    new = frame.assign(key=clean_text(frame["text"], lowercase).to_numpy())
    old = existing.assign(key=clean_text(existing["text"], lowercase).to_numpy())
    labels_of = old[old["key"].isin(set(new["key"]))].groupby("key")["label"].agg(set)  # the texts both have
    known = new[new["key"].isin(labels_of.index)]
    was = known["key"].map(labels_of)
    clash = np.array([label not in labels for label, labels in zip(known["label"], was, strict=True)], dtype=bool)
    out = known[clash].assign(was=was[clash].map(lambda v: ", ".join(sorted(v))))
    return out[["text", "label", "was"]].reset_index(drop=True)


def _check_relabels(
    files: list[tuple[str, pd.DataFrame]], existing: pd.DataFrame, params: Params, allow_relabel: bool
) -> None:
    """Hold a file that gives texts already in the data other labels (more than validate.max_relabel_fraction of
    its rows): preprocess drops a text with two labels, so such a batch would erase the rows it contradicts (the
    champion's proven test rows among them) instead of adding to them. A few are reported and let through."""
    for source, frame in files:
        clash = relabelled(existing, frame, params.data.lowercase)
        if clash.empty:
            continue
        examples = "; ".join(
            f"{t[:60]!r}: {w} in the data, {lab} here" for t, lab, w in clash.head(3).itertuples(index=False, name=None)
        )
        if allow_relabel or len(clash) <= params.validation.max_relabel_fraction * len(frame):
            log.warning(
                "%s: %d row(s) give texts already in the data another label (%s); preprocess drops such "
                "texts as conflicting",
                source,
                len(clash),
                examples,
            )
            continue
        raise ValidationFailed(
            f"{source}: {len(clash)} of {len(frame)} rows give texts already in the data another label (e.g. "
            f"{examples}): a label conflict, held for a person, nothing was ingested. Preprocess drops a text with two "
            "labels, so this batch would erase the rows it contradicts instead of adding to them. If the new labels "
            "are corrections, pass --allow-relabel (both labels then stay in the raw data and the texts leave "
            "training until one batch is rolled back); if they are wrong, fix the file."
        )


def _warn_conflicts(files: list[tuple[str, pd.DataFrame]], lowercase: bool) -> None:
    """Say which texts a file gives two labels (two annotators of a Label Studio export who disagree, a task
    imported twice): preprocess drops every row of such a text, so they teach nothing until one label is fixed."""
    from textops.data.preprocess import clean_text

    for source, frame in files:
        labels = frame.assign(key=clean_text(frame["text"], lowercase).to_numpy()).groupby("key")["label"].agg(set)
        clash = labels[labels.map(len) > 1]
        if clash.empty:
            continue
        examples = "; ".join(f"{str(text)[:60]!r}: {', '.join(sorted(v))}" for text, v in clash.head(3).items())
        dropped = "preprocess drops every row of such a text as conflicting, so fix their labels to keep them"
        log.warning("%s: %d text(s) come with two or more labels (%s); %s", source, len(clash), examples, dropped)


def shown(labels, most: int = 10) -> str:
    """LABELS for a message: at most MOST of them, each cut to 60 characters (a label can be a whole paragraph)."""
    cut = [repr(v if len(v) <= 60 else v[:57] + "...") for v in sorted(labels)[:most]]
    return "[" + ", ".join(cut) + (f", ... ({len(labels)} in all)" if len(labels) > most else "") + "]"


def _whole_numbers(labels: set[str]) -> bool:
    return all(label.lstrip("-").isdigit() for label in labels)


def _check_labels(files: list[tuple[str, pd.DataFrame]], known: set[str], allow_new_labels: bool) -> None:
    for source, frame in files:
        labels = set(frame["label"])
        new = labels - known
        if not known or not new or allow_new_labels:
            continue
        if _whole_numbers(labels) != _whole_numbers(known) and not labels & known:
            # 0/1 against positive/negative: the same classes written another way, most likely; --allow-new-labels
            # would make them classes of their own, so it is not the advice here.
            raise DataError(
                f"{source}: its labels {shown(labels)} are {'numbers' if _whole_numbers(labels) else 'names'} and "
                f"share none with the data's {shown(known)}: the same classes written another way? Write them as "
                "the data does (a column mapping in the file), or take the old batches out first (`textops data "
                "remove`); --allow-new-labels would make every one of them a class of its own."
            )
        raise DataError(
            f"{source}: unknown label(s) {shown(new)}; the data so far has {shown(known)}. A typo? To add a "
            "class on purpose, pass --allow-new-labels."
        )


def existing_rows(root: Path, params: Params, replacing: list[str]) -> pd.DataFrame:
    """The raw rows new files are checked against: none when there are none, or when they replace the demo."""
    if has_raw_data(root, params) and not replacing:
        return read_raw(root, params)
    return pd.DataFrame({"text": [], "label": []})


def read_files(paths: list[Path], params: Params, columns: tuple[str, str], header: bool):
    """(source, rows) of each file (`readers.read_labelled_file`), in order; DataError naming the first bad one."""
    limit, most = params.validation.max_invalid_fraction, params.data.max_file_mb
    group = params.data.group_column
    return [
        (str(p), read_labelled_file(Path(p), *columns, most, limit, header=header, group_column=group)) for p in paths
    ]


def set_aside_rows(root: Path, params: Params, files: list[tuple[str, pd.DataFrame]]):
    """FILES without the few rows that hold a spreadsheet formula (`textops.data.set_aside`; a landing file's go
    to held/), and for each file that had some, (rows, the file they were written to)."""
    from textops.data.set_aside import set_aside_formulas
    from textops.lifecycle.landed import HELD_DIR, in_landing

    if not params.validation.refuse_formulas:
        return files, {}
    held = Path(root) / params.data.landing_dir / HELD_DIR
    kept, aside = [], {}
    for source, frame in files:
        folder = held if in_landing(root, params, [Path(source)]) else None
        frame, path, count = set_aside_formulas(source, frame, params.validation.max_invalid_fraction, folder)
        kept.append((source, frame))
        if count:
            aside[source] = (count, str(path) if path else None)
    return kept, aside
