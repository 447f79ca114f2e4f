"""The rows a champion was proven on, for the register stage's regression guards (`policy.Guard`).

A challenger is scored on its own test split, which new data can dominate: a large batch with wrong labels
(it passes every data check) makes a worse model look better there. So it must also hold up on:

- the champion's own test rows, with the labels they had: read from the DVC cache through the `preprocess` lock
  entry the champion's run recorded (no file of the champion's data version needs to be checked out), scored
  whatever the new data did to them (a batch relabelling them makes preprocess drop them), except those now in the
  current train split;
- an optional pinned reference set (`promotion.reference_file`), a labelled file a person trusts;
- every slice of its own test split (`slice_comparisons`): no length quartile, language or group where the champion
  is right significantly more often on the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from textops.adapters import dvc
from textops.core import lineage
from textops.core.config import Params
from textops.core.policy import Guard, SliceComparison, compare_slices, expected_accuracy, score

MIN_ROWS = 20  # fewer rows than this prove nothing either way


def champion_split(root: Path, params: Params, run_tags: dict[str, str], split: str) -> pd.DataFrame | None:
    """One cleaned split of the champion's data version (text, label name), read from the local DVC cache
    through the `preprocess` lock entry its run recorded; None when it cannot be found there."""
    lock = run_tags.get(lineage.DATA_PREPROCESS)
    if not lock:
        return None
    clean = dvc.stage_out_md5(json.loads(lock), params.data.clean_dir)
    listing = dvc.dir_listing(root, clean) if clean else None
    if not listing or f"{split}.parquet" not in listing or "labels.json" not in listing:
        return None
    try:
        rows = pd.read_parquet(dvc.cached_object(root, listing[f"{split}.parquet"]))
        names = json.loads(dvc.cached_object(root, listing["labels.json"]).read_text(encoding="utf-8"))["labels"]
    except (OSError, ValueError, KeyError):
        return None
    return pd.DataFrame({"text": rows["text"].astype(str), "label": [names[i] for i in rows["label"]]})


def champion_test_rows(root: Path, params: Params, run_tags: dict[str, str]) -> pd.DataFrame | None:
    """The champion's test split (text, label name) from the local DVC cache; None when it cannot be found."""
    return champion_split(root, params, run_tags, "test")


def own_rows_guard(root: Path, params: Params, run_tags: dict, train_texts: set[str], predict_new, predict_old):
    """The guard on the champion's own test rows, with the champion's labels, whatever the new data did to them
    (a batch that relabels them makes preprocess drop them from the current splits: they are scored all the same),
    except those now in the current train split (the challenger has seen them); None when they cannot be found
    or are too few. PREDICT_* map texts to predicted label names."""
    rows = champion_test_rows(root, params, run_tags)
    if rows is None:
        return None
    rows = rows.drop_duplicates("text")
    rows = rows[~rows["text"].isin(train_texts)]
    if len(rows) < MIN_ROWS:
        return None
    metric = params.promotion.primary_metric
    texts, y = rows["text"].tolist(), rows["label"].astype(str).to_numpy()
    return Guard(
        "the champion's own test rows",
        len(rows),
        challenger_metric=score(y, np.asarray(predict_new(texts)), metric),
        champion_metric=score(y, np.asarray(predict_old(texts)), metric),
    )


# A challenger may keep its own answer on these many points fewer of the probe texts than the champion keeps its own.
TRIGGER_TOLERANCE = 0.1
PROBE_ROWS = 300


def trigger_guards(root: Path, params: Params, run_tags: dict, train_texts: list[str], predict_new, predict_old):
    """Guards against a trigger planted in the new data (`textops.data.backdoor`): for each token far more frequent
    in the rows the challenger learned than in the champion's training rows, the champion's own test texts with the
    token appended. Each model's answers there are compared with its own answers to the texts alone: a token that
    makes the challenger change its answer far more often than the champion is a learned trigger (" #ad" makes
    every review negative). Metric: the share of answers kept; the guard allows TRIGGER_TOLERANCE less."""
    from textops.data.backdoor import over_represented

    probes = champion_test_rows(root, params, run_tags)
    old_train = champion_split(root, params, run_tags, "train")
    if probes is None or old_train is None or params.validation.flip_trigger_min_rows is None:
        return []
    old_texts = set(old_train["text"].astype(str))
    new_texts = [t for t in train_texts if t not in old_texts]
    suspects = over_represented(new_texts, list(old_texts), params.validation.flip_trigger_min_rows)
    texts = probes["text"].astype(str).drop_duplicates().head(PROBE_ROWS).tolist()
    if not suspects or len(texts) < MIN_ROWS:
        return []
    alone_new, alone_old = np.asarray(predict_new(texts)), np.asarray(predict_old(texts))
    guards = []
    for token in suspects:
        probed = [f"{t} {token}" for t in texts]
        guards.append(
            Guard(
                f"the champion's test texts with {token!r} appended (answers kept)",
                len(texts),
                challenger_metric=float((np.asarray(predict_new(probed)) == alone_new).mean()),
                champion_metric=float((np.asarray(predict_old(probed)) == alone_old).mean()),
                tolerance=TRIGGER_TOLERANCE,
            )
        )
    return guards


def reference_set(root: Path, params: Params) -> pd.DataFrame | None:
    """promotion.reference_file read like an ingested file (text, label as strings), or None when not set."""
    if params.promotion.reference_file is None:
        return None
    from textops.data.readers import read_labelled_file

    data = params.data
    path = Path(root) / params.promotion.reference_file
    return read_labelled_file(path, data.text_column, data.label_column, data.max_file_mb)


def reference_guard(params: Params, reference: pd.DataFrame, predict_new, predict_old) -> Guard:
    """The guard on the pinned reference set; PREDICT_* map texts to predicted label names."""
    texts = reference["text"].tolist()
    y = reference["label"].astype(str).to_numpy()
    metric = params.promotion.primary_metric
    return Guard(
        f"the reference set {params.promotion.reference_file}",
        len(reference),
        challenger_metric=score(y, predict_new(texts), metric),
        champion_metric=score(y, predict_old(texts), metric),
    )


def slice_comparisons(params: Params, test: pd.DataFrame, y, pred_new, pred_old) -> list[SliceComparison]:
    """Both models on each slice of the challenger's test rows (`textops.data.slices`, assigned as the evaluation
    did), for the per-slice rule of `policy.decide`; Y and PRED_* are label names of the rows of TEST."""
    from textops.data.slices import assign_slices

    slices = assign_slices(test["text"].astype(str).tolist(), test["group"] if "group" in test.columns else None)
    return compare_slices(params.promotion, y, pred_new, pred_old, slices)


def slice_evidence(params: Params, slices: list[SliceComparison]) -> dict[str, str]:
    """The evidence of the per-slice rule: how many slices were compared, and each slice where the champion was
    right more often (significant or not: a person reading the decision sees the near misses too)."""
    behind = [s for s in slices if s.paired.c > s.paired.b]
    evidence = {"slices.compared": f"{len(slices)} (of at least {params.promotion.min_slice_rows} rows)"}
    for i, s in enumerate(behind):  # numbered like the guards: a group's value is no tag key
        evidence[f"slice.{i}"] = (
            f"{s.name}: {s.challenger_metric:.4f} vs {s.champion_metric:.4f} on {s.rows} rows, McNemar "
            f"b={s.paired.b} c={s.paired.c} p={s.paired.p_value:.4g}"
        )
    return evidence


def champion_collapse(root: Path, params: Params, batch: pd.DataFrame) -> str | None:
    """Why BATCH (new labelled rows, text and label as strings) must wait for a person: the champion's accuracy
    on its rows is more than `validate.max_champion_drop` below what the champion itself expects there (its
    confidence on them, calibrated on its test split: `policy.expected_accuracy`), which is what a batch with wrong
    labels or a changed task looks like (it passes every data check), or a token comes with labels the champion
    confidently contradicts wherever it appears (a planted backdoor, `textops.data.backdoor`). Rows of a label the
    champion does not know (a new class) are left out: it cannot be right about them. None when there is no
    champion, the checks are off, or the champion does well enough."""
    from textops.adapters.tracking import connect, store_exists, tracking_uri
    from textops.modeling.predict import load_model, predict_batches
    from textops.registry.registry import champion

    checks = params.validation
    if (checks.max_champion_drop is None and checks.flip_trigger_min_rows is None) or not store_exists(
        tracking_uri(root, params)
    ):
        return None
    session = connect(root, params, experiment=False)
    current = champion(session)
    if current is None:
        return None
    metrics = session.client.get_run(current.run_id).data.metrics if current.run_id else {}
    proven = metrics.get(lineage.test_metric("accuracy"))
    rows = batch.sample(frac=1.0, random_state=0).head(checks.champion_check_rows)
    if proven is None or len(rows) < MIN_ROWS:
        return None
    model = load_model(session, lineage.model_uri(session.model_name, current.version))
    scored = predict_batches(model, rows["text"].tolist(), params.evaluate.batch_size)
    probs = [c for c in scored.columns if c.startswith("prob_")]
    labels = rows["label"].astype(str).to_numpy()
    known = np.isin(labels, [c.removeprefix("prob_") for c in probs])
    if known.sum() < MIN_ROWS:
        return None
    predicted = scored["label"].astype(str).to_numpy()[known]
    confidence = scored[probs].max(axis=1).to_numpy()[known]
    labels, texts = labels[known], rows["text"].to_numpy()[known]
    accuracy = float((predicted == labels).mean())
    held_for = "Nothing was ingested; the files are held for a person: check their labels, then ingest them with "
    held_for += "`textops ingest FILE --accept-shift` (or fix them and drop them in again)."
    new_class = f" ({(~known).sum()} row(s) of labels it does not know were left out)" if not known.all() else ""
    drop = checks.max_champion_drop
    expected = expected_accuracy(confidence, proven, metrics.get(lineage.test_metric("mean_confidence")))
    if drop is not None and accuracy < expected - drop:
        return (
            f"the champion (v{current.version}) gets accuracy {accuracy:.3f} on {len(labels)} rows of these files"
            f"{new_class} where its own confidence expects {expected:.3f} (calibrated on its test split, where it "
            f"gets {proven:.3f}), more than validate.max_champion_drop ({drop}) lower: likely wrong labels or a "
            f"changed task, which no data check sees. {held_for}"
        )
    if checks.flip_trigger_min_rows is None:
        return None
    from textops.data.backdoor import flip_trigger

    trigger = flip_trigger(
        texts.tolist(),
        labels.tolist(),
        predicted.tolist(),
        confidence,
        checks.flip_trigger_confidence,
        checks.flip_trigger_min_rows,
    )
    if trigger is None:
        return None
    return f"against the champion (v{current.version}), {trigger.describe()}. {held_for}"
