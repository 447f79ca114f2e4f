"""`textops distill`: the champion's encoder at half its depth, registered as the challenger.

The student (`modeling.distill`) learns the champion's soft labels on the train split and on the request log's
texts (serve.log_texts; redacted where serve.redact is on), never the test split's. It is then an ordinary model of
the project: its run is trained, evaluated and registered like the train stage's (artifacts/model is the student's
afterwards), with lineage tags naming its teacher, and the p50 latency of one text in the serving runtime, its own
and the teacher's measured in this process, lets the promotion rules trade a bounded loss for speed
(promotion.max_distill_drop, promotion.min_distill_speedup).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from textops.adapters import data_version
from textops.adapters.logs import stage
from textops.adapters.tracking import Session, connect
from textops.core import lineage
from textops.core.artifacts import load_split, read_labels
from textops.core.config import Params
from textops.core.errors import ModelError, ParamsError, StateError

log = logging.getLogger("textops")


def logged_texts(root: Path, params: Params) -> list[str]:
    """The texts the request log kept (serve.log_texts), oldest first; none when it kept none."""
    from textops.live.request_log_reader import read_rows

    return [t for row in read_rows(Path(root) / params.serve.request_log_dir) if isinstance(t := row.get("text"), str)]


def teacher_of(session: Session):
    """(the champion's version, its pyfunc's inner model loaded for PyTorch: `.model`, `.tokenizer`); StateError
    without a champion, ModelError when it is not a transformer."""
    from textops.modeling.predict import load_model
    from textops.registry.registry import champion

    current = champion(session)
    if current is None:
        raise StateError(
            "there is no champion to distill: train and register one first (`textops run`), then `textops distill`."
        )
    inner = load_model(session, lineage.model_uri(session.model_name, current.version)).unwrap_python_model()
    if getattr(inner, "model", None) is None:
        raise ModelError(
            f"champion v{current.version} is not a transformer (the tfidf family): there are no encoder layers to "
            "distill, and it already scores a text in well under a millisecond."
        )
    return current, inner


def distill_tags(root: Path, params: Params, teacher_version: str, teacher_run, distilled: dict) -> dict[str, str]:
    """The student run's tags: the data version and params as a training's, the teacher's base model, and what the
    distillation was (DISTILLED: mapping, temperature, texts, log texts, texts' MD5)."""
    from textops.data.landing import demo_tag

    base = teacher_run.data.tags.get(lineage.BASE_MODEL, "unknown") if teacher_run else "unknown"
    tags = data_version.lineage_tags(root, params) | demo_tag(root, params)
    tags.update(lineage.base_model_tags(base, f"distilled from v{teacher_version} ({base})", None, None))
    tags.update(
        {
            lineage.DISTILL_TEACHER: str(teacher_version),
            lineage.DISTILL_TEMPERATURE: str(distilled["temperature"]),
            lineage.DISTILL_LAYERS: str(len(distilled["mapping"])),
            lineage.DISTILL_TEACHER_LAYERS: str(distilled["teacher_layers"]),
            lineage.DISTILL_TEXTS: str(distilled["texts"]),
            lineage.DISTILL_LOG_TEXTS: str(distilled["log_texts"]),
            lineage.DISTILL_TEXTS_MD5: distilled["texts_md5"],
        }
    )
    if params.overrides:
        tags[lineage.OVERRIDES] = " ".join(params.overrides)
    return tags


def train_student(root: Path, params: Params, session: Session, layers: int | None, temperature: float) -> dict:
    """Train and log the student of the champion (one MLflow run, artifacts/model written as the train stage
    writes it); returns what the distillation was, the train metrics and run.json's ids."""
    import mlflow

    from textops.adapters.tracking import owner_tags
    from textops.modeling import distill
    from textops.modeling.model import BaseChoice, resolved
    from textops.modeling.train import log_inputs, save_outputs, summary_metrics, training_arguments

    current, inner = teacher_of(session)
    distill.layer_mapping(inner.model.config.num_hidden_layers, layers)  # a depth it cannot have: said before any work
    teacher_run = session.client.get_run(current.run_id) if current.run_id else None
    base = teacher_run.data.tags.get(lineage.BASE_MODEL, "minilm") if teacher_run else "minilm"
    written = params  # the lineage hashes the params as written, as the train stage's does
    # The teacher's base's train presets (learning rate, batch) where params leave them null.
    params = resolved(root, params, BaseChoice(base if base in ("tiny", "minilm") else "minilm", "distill"))
    labels = read_labels(root, params)
    if [str(v) for v in inner.labels] != [str(v) for v in labels]:
        raise StateError(
            f"champion v{current.version} predicts {inner.labels} but the cleaned data has labels {labels}: a student "
            "learns its teacher's labels, so distill a champion of this data (`textops run` first)."
        )
    train_texts = load_split(root, params, "train")["text"].astype(str).tolist()
    test_texts = load_split(root, params, "test")["text"].astype(str).tolist()
    texts, from_log = distill.distill_texts(train_texts, logged_texts(root, params), test_texts)
    if not texts:
        raise StateError("no texts to distill on: the train split is empty and the request log kept no texts.")
    workdir = Path(tempfile.mkdtemp(prefix="textops-distill-"))
    try:
        args = training_arguments(params, workdir, len(texts))
        trainer, mapping = distill.student_trainer(
            root, params, inner.model, inner.tokenizer, texts, layers, temperature, args
        )
        distilled = {
            "teacher_version": str(current.version),
            "temperature": temperature,
            "mapping": mapping,
            "teacher_layers": inner.model.config.num_hidden_layers,
            "texts": len(texts),
            "log_texts": from_log,
            "texts_md5": distill.texts_md5(texts),
        }
        tags = distill_tags(root, written, str(current.version), teacher_run, distilled)
        with session.active(), mlflow.start_run(experiment_id=session.experiment_id) as run:
            log_inputs(params, {**tags, **owner_tags()}, trainer, labels, stage="distill")
            mlflow.log_params({"distill_layer_mapping": ",".join(map(str, mapping))})
            result = trainer.train()
            best = trainer.evaluate()
            metrics = summary_metrics(trainer, result, best, None)
            mlflow.log_metrics(lineage.best_val_metrics(metrics))
            run_info = save_outputs(root, params, trainer, run, metrics, labels)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {**distilled, **metrics, **run_info}


def measure_latency(session: Session, params: Params, student: dict) -> dict[str, float]:
    """The p50 ms of one text (the test split's median-length one) in serve.runtime for the student and its
    teacher, measured here in turns; logged on the student's run."""
    from textops.modeling.distill import p50_latencies
    from textops.modeling.predict import load_model

    teacher_uri = lineage.model_uri(session.model_name, student["teacher_version"])
    models = {
        "student": load_model(session, student["model_uri"], params.serve),
        "teacher": load_model(session, teacher_uri, params.serve),
    }
    return p50_latencies(models, student["latency_text"])


def distill(root: Path, params: Params, layers: int | None = None, temperature: float = 2.0) -> dict:
    """Distill the champion into a student of LAYERS encoder layers (default: half) at TEMPERATURE, evaluate it,
    measure both latencies and register it as the challenger (the promotion rules decide). Returns what was done:
    the distillation, the latencies and the registration."""
    from textops.adapters.dvc import record_stage
    from textops.lifecycle.register import register
    from textops.modeling.evaluate import evaluate

    if temperature <= 0:
        raise ParamsError(f"--temperature {temperature}: the softmax temperature must be above 0 (1 to 4 is usual).")
    from textops.core.env import set_torch_threads

    root = Path(root)
    set_torch_threads(params.train.threads)
    session = connect(root, params)
    with stage("distill"):
        student = train_student(root, params, session, layers, temperature)
    record_stage(root, "train")  # dvc.lock names the student as the model artifacts/model now holds
    with stage("evaluate"):
        evaluated = evaluate(root, params)
    with stage("latency"):
        test = load_split(root, params, "test")["text"].astype(str)
        student["latency_text"] = test.iloc[test.str.len().argsort(kind="stable")].iloc[len(test) // 2]
        p50 = measure_latency(session, params, student)
        session.client.log_metric(student["run_id"], lineage.test_metric(lineage.LATENCY_P50), p50["student"])
        session.client.log_metric(student["run_id"], lineage.TEACHER_LATENCY_P50, p50["teacher"])
    with stage("register"):
        registered = register(root, params)
    runtime = params.serve.runtime  # what the latencies were measured in
    return {"student": student, "evaluated": evaluated, "latency": p50, "registered": registered, "runtime": runtime}
