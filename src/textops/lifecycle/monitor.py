"""The monitor stage: does what arrives still look like what the champion was trained on, and does the champion
still do well on it?

New texts (labelled or unlabelled files, the landing directory, or the serving request log) are compared with
the champion's own data version: its cleaned splits, read from the DVC cache through the `preprocess` lock entry
its training run recorded (`guards.champion_split`), so the comparison holds whatever data is checked out now.
The train split is the reference for text lengths, vocabulary and labels; its val and test splits (texts the
model never learned from) for what the model makes of texts: embeddings, predicted classes and confidence, since
a model's view of its own training texts is not what it sees of any new text. Labelled rows also give the
champion's accuracy and macro-F1 against its recorded test figures. The statistics are in `textops.live.drift`.

Results: `metrics/monitor.json`, a self-contained HTML report (`monitor.report_dir`), and a run in the MLflow
experiment `monitor.experiment` with the figures as metrics and both files as artifacts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from textops.core import lineage
from textops.core.artifacts import atomic_write_json, atomic_write_text
from textops.core.config import Params
from textops.core.errors import DataError, StateError
from textops.lifecycle.monitor_inputs import read_new_files, read_request_log
from textops.live import drift

if TYPE_CHECKING:
    from textops.adapters.tracking import Session

MONITOR_METRICS = "metrics/monitor.json"
REPORT_FILE = "index.html"


def no_champion(model_name: str) -> StateError:
    return StateError(
        f"{model_name} has no champion yet: there is nothing to compare new data with. Train one first (`textops run`)."
    )


def champion_reference(root: Path, params: Params, session: Session) -> dict:
    """The champion's version, recorded test figures and data version (train and held-out rows, sampled)."""
    from textops.registry.guards import champion_split
    from textops.registry.registry import champion

    current = champion(session)
    if current is None:
        raise no_champion(session.model_name)
    run = session.client.get_run(current.run_id)
    found = {s: champion_split(root, params, run.data.tags, s) for s in ("train", "val", "test")}
    splits = {s: frame for s, frame in found.items() if frame is not None}
    if len(splits) < len(found):
        raise StateError(
            f"the training data of the champion (v{current.version}) is not in the local DVC cache, so there is "
            f"nothing to compare with: restore it with `textops data checkout --model {current.version}` (from the "
            "DVC remote), or run monitor where that model was trained."
        )
    m, size, seed = run.data.metrics, params.monitor.sample_size, params.monitor.seed
    holdout = pd.concat([splits["val"], splits["test"]], ignore_index=True)
    return {
        "version": str(current.version),
        "run_id": current.run_id,
        "proven": {k: m.get(lineage.test_metric(k)) for k in ("accuracy", "macro_f1")},
        "train": splits["train"].sample(n=min(size, len(splits["train"])), random_state=seed),
        "holdout": holdout.sample(n=min(size, len(holdout)), random_state=seed),
    }


def encode(classifier, texts: list[str], batch_size: int) -> tuple[np.ndarray | None, np.ndarray]:
    """(mean-pooled last hidden states, class probabilities) of TEXTS from the champion's own transformer, in the
    order of TEXTS; a tfidf champion has no encoder: (None, its probabilities)."""
    if getattr(classifier, "scorer", None) is not None:
        return None, classifier.probabilities(texts)
    import torch

    from textops.modeling.pyfunc import CHARS_PER_TOKEN, by_length

    model, tokenizer = classifier.model, classifier.tokenizer
    device, limit = next(model.parameters()).device, tokenizer.model_max_length
    embeddings: np.ndarray | None = None
    probs: np.ndarray | None = None
    model.eval()
    with torch.inference_mode():
        for rows, batch in by_length([t[: limit * CHARS_PER_TOKEN] for t in texts], batch_size):
            inputs = tokenizer(batch, truncation=True, max_length=limit, padding=True, return_tensors="pt").to(device)
            out = model(**inputs, output_hidden_states=True)
            mask = inputs["attention_mask"].unsqueeze(-1).float()
            pooled = ((out.hidden_states[-1].float() * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy()
            if embeddings is None or probs is None:  # both, at the first batch
                embeddings = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
                probs = np.zeros((len(texts), out.logits.shape[1]), dtype=np.float32)
            embeddings[rows] = pooled
            probs[rows] = torch.softmax(out.logits.float(), dim=-1).cpu().numpy()
    assert embeddings is not None and probs is not None  # TEXTS is never empty (monitor.min_rows, held-out rows)
    return embeddings, probs


def load_classifier(session: Session, version: str):
    """The champion's pyfunc unwrapped: the transformers model, its tokenizer and label names."""
    from textops.modeling.predict import load_model

    return load_model(session, lineage.model_uri(session.model_name, version)).unwrap_python_model()


# --------------------------------------------------------------------------------------------------
# the checks


def input_checks(params: Params, ref: dict, new: pd.DataFrame, emb: tuple | None) -> list[dict]:
    """Text length (KS), out-of-vocabulary words and the embedding domain classifier."""
    p = params.monitor
    lengths = new["text"].str.len() if "text" in new.columns else new["chars"]
    checks = [
        drift.ks_shift(
            "input", "text length (characters)", ref["train"]["text"].str.len(), lengths, p.p_value, p.max_ks
        )
    ]
    if "text" not in new.columns:
        why = "the request log has no texts (serve.log_texts is off)"
        return checks + [
            drift.skipped("input", "out-of-vocabulary words", why),
            drift.skipped("input", "embeddings (domain classifier)", why),
        ]
    checks.append(
        drift.vocabulary_shift(
            ref["train"]["text"].tolist(), ref["holdout"]["text"].tolist(), new["text"].tolist(), p.max_oov_increase
        )
    )
    if emb is None:  # run_checks encodes whenever there are texts: a model without an encoder
        return checks + [drift.skipped("input", "embeddings (domain classifier)", "a TF-IDF champion has no encoder")]
    checks.append(drift.embedding_shift(emb[0], emb[1], p.p_value, p.max_domain_auc, p.cv_folds, p.seed))
    return checks


def output_checks(params: Params, ref_probs: np.ndarray, labels: list[str], new: pd.DataFrame) -> list[dict]:
    """The predicted-class shares (chi-square) and the confidence (top probability, KS) against the champion's
    own on its held-out rows."""
    p = params.monitor
    ref_pred = [labels[i] for i in ref_probs.argmax(axis=1)]
    return [
        drift.distribution_shift(
            "input", "predicted classes", ref_pred, new["predicted"].tolist(), p.p_value, p.max_label_shift
        ),
        drift.ks_shift(
            "input",
            "confidence (top probability)",
            ref_probs.max(axis=1),
            new["confidence"].dropna().to_numpy(),
            p.p_value,
            p.max_ks,
        ),
    ]


def label_checks(params: Params, ref: dict, new: pd.DataFrame) -> list[dict]:
    """For labelled rows: the label shares (chi-square) and the champion's accuracy / macro-F1 on them."""
    p = params.monitor
    if "label" not in new.columns:
        why = "the new data has no labels"
        return [drift.skipped("label", "label shares", why), drift.skipped("performance", "accuracy", why)]
    checks = [
        drift.distribution_shift(
            "label", "label shares", ref["train"]["label"].tolist(), new["label"].tolist(), p.p_value, p.max_label_shift
        )
    ]
    return checks + drift.performance_decay(
        new["label"].tolist(), new["predicted"].tolist(), ref["proven"], p.max_performance_drop
    )


def prepare(params: Params, new: pd.DataFrame) -> pd.DataFrame:
    """NEW's texts cleaned as preprocess cleans them (so lengths and words compare), empty ones dropped,
    sampled down to monitor.sample_size."""
    from textops.data.preprocess import clean_text

    if "text" in new.columns:
        new = new.assign(text=clean_text(new["text"].astype(str), params.data.lowercase))
        new = new[new["text"].str.len() > 0]
    size = params.monitor.sample_size
    return new.sample(n=size, random_state=params.monitor.seed) if len(new) > size else new


def run_checks(session: Session, params: Params, ref: dict, new: pd.DataFrame) -> list[dict]:
    """Every check of NEW against the champion's reference REF; the champion scores both sides."""
    classifier = load_classifier(session, ref["version"])
    batch = params.evaluate.batch_size
    ref_emb, ref_probs = encode(classifier, ref["holdout"]["text"].tolist(), batch)
    emb = None
    if "text" in new.columns:
        new_emb, probs = encode(classifier, new["text"].tolist(), batch)
        new = new.assign(predicted=[classifier.labels[i] for i in probs.argmax(axis=1)], confidence=probs.max(1))
        emb = None if ref_emb is None or new_emb is None else (ref_emb, new_emb)
    checks = input_checks(params, ref, new, emb) + output_checks(params, ref_probs, classifier.labels, new)
    return checks + label_checks(params, ref, new)


def nothing_new(source: str, window: dict, min_rows: int) -> dict:
    """The result of a `since_last` monitor of the request log that found fewer answers than it needs: not an
    error (nothing was wrong; the next monitor looks at these answers and the ones after them)."""
    message = (
        f"nothing new to monitor in the {source}: {window['rows']} answer(s) since {window['since']}, fewer than "
        f"monitor.min_rows ({min_rows}); the next monitor looks at them with the ones that come after"
    )
    return {
        "drift": False,
        "kinds": [],
        "checks": [],
        "rows": window["rows"],
        "source": source,
        "window": window,
        "nothing_new": message,
    }


def monitor(root: Path, params: Params, files: list[Path] | None = None, requests: bool = False) -> dict:
    """Compare FILES (default: the landing directory's files) or, with REQUESTS, the serving request log with
    the champion's training data; write metrics/monitor.json, the HTML report and an MLflow run. Returns the
    result: `drift`, `kinds` (input / label / performance), every check, the champion and the source."""
    from textops.adapters.tracking import connect, store_exists, tracking_uri
    from textops.core.artifacts import landing_files

    root = Path(root)
    if requests and files:
        raise StateError("monitor either files or the request log (--requests), not both at once.")
    window: dict | None = None
    if requests:
        from textops.live.monitor_window import remember_window, window_bounds

        since, until, how = window_bounds(root, params.monitor.window)
        new, source = read_request_log(root, params, since, until), f"request log {params.serve.request_log_dir}"
        window = {"since": since, "until": until, "chosen": how, "rows": len(new)}
        source += f", {how}"
        if since is not None and len(new) < params.monitor.min_rows:  # the window stays open: answers add up
            return nothing_new(source, window, params.monitor.min_rows)
    else:
        files = list(files or landing_files(root, params))
        if not files:
            raise StateError(
                f"nothing to monitor: no files given and none in {params.data.landing_dir}/ (give "
                "files, or --requests for the serving request log)."
            )
        new, source = read_new_files(files, params), ", ".join(Path(f).name for f in files)
    started = time.monotonic()
    if not store_exists(tracking_uri(root, params)):  # no store, no champion: and nothing created by asking
        raise no_champion(params.mlflow.registered_model)
    session = connect(root, params, experiment=False)
    ref = champion_reference(root, params, session)
    new = prepare(params, new)
    if len(new) < params.monitor.min_rows:
        raise DataError(
            f"{source}: {len(new)} usable rows; monitoring needs at least monitor.min_rows "
            f"({params.monitor.min_rows}) to tell a shift from chance."
        )
    checks = run_checks(session, params, ref, new)
    result = {
        **drift.summarize(checks),
        "source": source,
        "rows": len(new),
        "labelled": "label" in new.columns,
        "champion": {"name": session.model_name, "version": ref["version"], "run_id": ref["run_id"]},
        "reference_rows": {"train": len(ref["train"]), "holdout": len(ref["holdout"])},
        "checks": checks,
        "seconds": round(time.monotonic() - started, 3),
    }
    if window is not None:
        from textops.live.feedback import online_figures, shadow_figures

        result["window"] = window
        # What the served versions got right, by the labels people gave their answers (POST /feedback), and how the
        # shadow challenger did on the same texts (serve.shadow).
        result["online"] = online_figures(root / params.serve.request_log_dir)
        result["shadow"] = shadow_figures(root / params.serve.request_log_dir)
    out = record(root, params, session, result)
    if window is not None:
        remember_window(root, window["until"])
    return out


# --------------------------------------------------------------------------------------------------
# where the result goes


def flat_metrics(result: dict) -> dict[str, float]:
    """The figures as MLflow metrics: `<kind>.<check>.statistic` / `.p_value` / `.drifted`, and `drift`."""
    import re

    out = {"drift": float(result["drift"]), "rows": float(result["rows"])}
    for c in result["checks"]:
        key = f"{c['kind']}.{re.sub(r'[^0-9A-Za-z_]+', '_', c['name']).strip('_')}"
        for field in ("statistic", "p_value"):
            if isinstance(c.get(field), int | float):
                out[f"{key}.{field}"] = float(c[field])
        if "skipped" not in c:
            out[f"{key}.drifted"] = float(c["drifted"])
    for version, figures in (result.get("online") or {}).items():  # live labels, per served version
        out.update({f"online.v{version}.{name}": float(value) for name, value in figures.items()})
    for f in (result.get("shadow") or {}).values():
        key = f"shadow.v{f['served_version']}_v{f['shadow_version']}"
        out.update({f"{key}.{k}": float(v) for k, v in f.items() if isinstance(v, int | float)})
    return out


def record(root: Path, params: Params, session: Session, result: dict) -> dict:
    """Write metrics/monitor.json and the report page, and log both with the figures to an MLflow run in the
    experiment monitor.experiment; RESULT with `report` and `mlflow_run_id` added."""
    from textops.adapters.tracking import ensure_experiment
    from textops.data.reports import monitor_page

    report = Path(root) / params.monitor.report_dir / REPORT_FILE
    report.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report, monitor_page(result))
    experiment = ensure_experiment(session.client, root, params, session.uri, params.monitor.experiment)
    run = session.client.create_run(
        experiment,
        run_name=f"monitor v{result['champion']['version']}",
        tags={
            lineage.STAGE: "monitor",
            lineage.MONITOR_SOURCE: result["source"][:500],
            lineage.MONITOR_CHAMPION_VERSION: result["champion"]["version"],
        },
    )
    result = {**result, "report": str(report.relative_to(root)), "mlflow_run_id": run.info.run_id}
    metrics_path = Path(root) / MONITOR_METRICS
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(metrics_path, result)
    try:
        now = int(time.time() * 1000)
        from mlflow.entities import Metric

        metrics = [Metric(k, v, now, 0) for k, v in flat_metrics(result).items()]
        session.client.log_batch(run.info.run_id, metrics=metrics)
        session.client.log_artifact(run.info.run_id, str(report), "monitor")
        session.client.log_artifact(run.info.run_id, str(metrics_path), "monitor")
        session.client.set_terminated(run.info.run_id, "FINISHED")
    except BaseException:
        session.client.set_terminated(run.info.run_id, "FAILED")
        raise
    return result
