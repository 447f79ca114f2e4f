"""Distillation (`textops distill`): a student encoder with every other layer of the champion's, trained on the
champion's soft labels with the train stage's Trainer, logged as an ordinary model of the project.

The loss is pure soft labels, KL(teacher/T || student/T) x T² (Hinton et al.): the request log's texts have no
labels, and on the train split the teacher's answers carry what its hard labels say plus how sure it is. The val
split (labelled) picks the best checkpoint by macro-F1 as in the train stage. The student keeps the teacher's
tokenizer, embeddings and classifier head; its layer i starts from the teacher's layer `mapping[i]`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import statistics
import time

from textops.core.errors import ModelError, ParamsError
from textops.modeling.batches import Encoded

log = logging.getLogger("textops")

LAYER_KEY = re.compile(r"^(.*\bencoder\.layer\.)(\d+)(\..*)$")  # BERT-style encoders (MiniLM, the tiny model)
LATENCY_WARMUP, LATENCY_REPETITIONS = 20, 200


def layer_mapping(teacher_layers: int, layers: int | None) -> list[int]:
    """The teacher layer each student layer starts from: every other one for half the depth (0, 2, 4 of 6); for
    another depth LAYERS, spread evenly from the first. ParamsError when the student would not be smaller."""
    if teacher_layers < 2:
        raise ParamsError(
            f"the champion's encoder has {teacher_layers} layer: a student with fewer layers would have none, so "
            "it cannot be distilled. Distillation halves a deeper model (MiniLM's 6 layers to 3); train the champion "
            "with a deeper base first (-S model.base=minilm), or keep serving this one: it is as small as it gets."
        )
    n = teacher_layers // 2 if layers is None else layers
    if not 1 <= n < teacher_layers:
        raise ParamsError(
            f"--layers {n}: the student needs at least 1 and fewer than the champion's {teacher_layers} encoder "
            f"layers (the default, {teacher_layers // 2}, keeps every other one)."
        )
    return [i * teacher_layers // n for i in range(n)]


def make_student(teacher, layers: int | None):
    """(a copy of TEACHER's architecture with fewer encoder layers, initialised from TEACHER: embeddings, pooler and
    classifier head as they are, layer i from the teacher's layer `layer_mapping(...)[i]`, the mapping)."""
    import copy

    total = getattr(teacher.config, "num_hidden_layers", None)
    if total is None:
        raise ModelError(f"the champion ({type(teacher).__name__}) has no num_hidden_layers: it cannot be distilled.")
    mapping = layer_mapping(total, layers)
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(mapping)
    student = type(teacher)(config)
    source = {t: i for i, t in enumerate(mapping)}
    state = {}
    for key, value in teacher.state_dict().items():
        match = LAYER_KEY.match(key)
        if match is None:
            state[key] = value.clone()
        elif int(match.group(2)) in source:
            state[f"{match.group(1)}{source[int(match.group(2))]}{match.group(3)}"] = value.clone()
    missing, unexpected = student.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(
            f"the champion's {type(teacher).__name__} does not lay out its encoder layers as encoder.layer.N "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}): only BERT-style encoders are distilled."
        )
    return student, mapping


def distillation_loss(student_logits, teacher_logits, temperature: float):
    """KL(softmax(teacher/T) || softmax(student/T)) x T², the batch's mean: T² keeps the gradients' scale as T
    changes. TEACHER_LOGITS may be log-probabilities (a constant a row apart from the logits: the same softmax)."""
    import torch.nn.functional as F

    t = float(temperature)
    student = F.log_softmax(student_logits.float() / t, dim=-1)
    teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * t * t


def distill_texts(train: list[str], logged: list[str], test: list[str]) -> tuple[list[str], int]:
    """(the texts the student learns from: the train split's, then the request log's new ones; each once, none of
    the test split's; how many came from the log). Blank texts are left out."""
    seen = {t for t in test}
    out: list[str] = []
    from_log = 0
    for source, texts in (("train", train), ("log", logged)):
        for text in texts:
            if not isinstance(text, str) or not text.strip() or text in seen:
                continue
            seen.add(text)
            out.append(text)
            from_log += source == "log"
    return out, from_log


def texts_md5(texts: list[str]) -> str:
    """One MD5 over TEXTS in order (each followed by a NUL): which texts a student learned from."""
    digest = hashlib.md5()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


class SoftEncoded(Encoded):
    """Encoded rows with the teacher's log-probabilities (`teacher_logits`) beside the hard label."""

    def __init__(self, tokenizer, texts: list[str], labels: list[int], max_length: int, teacher_logits) -> None:
        super().__init__(tokenizer, texts, labels, max_length)
        for row, logits in zip(self.rows, teacher_logits, strict=True):
            row["teacher_logits"] = [float(v) for v in logits]


def distilling(trainer_class, temperature: float):
    """TRAINER_CLASS whose loss is `distillation_loss` against each row's `teacher_logits`; the hard `labels` stay
    in the batch for the val metrics only."""

    class DistillingTrainer(trainer_class):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            teacher = inputs.pop("teacher_logits")
            inputs.pop("labels", None)
            outputs = model(**inputs)
            loss = distillation_loss(outputs.logits, teacher, temperature)
            return (loss, outputs) if return_outputs else loss

    return DistillingTrainer


def soft_labels(model, tokenizer, texts: list[str], batch_size: int):
    """The teacher's log-probabilities for TEXTS (rows x classes)."""
    import numpy as np

    from textops.modeling.pyfunc import predict_texts

    probs = predict_texts(model, tokenizer, texts, batch_size)
    return np.log(np.clip(probs, 1e-12, 1.0))


def p50_latencies(models: dict, text: str) -> dict[str, float]:
    """The median milliseconds each of MODELS (name -> loaded pyfunc) takes to score TEXT alone: after a warm-up,
    LATENCY_REPETITIONS calls each, taken in turns so that whatever else the machine does weighs on all alike."""
    import pandas as pd

    frame = pd.DataFrame({"text": [text]})
    for model in models.values():
        for _ in range(LATENCY_WARMUP):
            model.predict(frame)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(LATENCY_REPETITIONS):
        for name, model in models.items():
            start = time.perf_counter()
            model.predict(frame)
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def student_trainer(root, params, teacher, tokenizer, texts: list[str], layers: int | None, temperature: float, args):
    """(the Trainer of a student of TEACHER on TEXTS, with the train stage's arguments ARGS, logging and early
    stopping; the teacher-to-student layer mapping). Train rows carry the teacher's answer as their label."""
    import numpy as np
    from transformers import DataCollatorWithPadding, Trainer, set_seed

    from textops.core.artifacts import load_split
    from textops.modeling.batches import length_grouped_trainer
    from textops.modeling.progress import training_progress
    from textops.modeling.stopping import EarlyStoppingOnMetricAndLoss
    from textops.modeling.train import compute_metrics, mlflow_logger

    batch = params.evaluate.batch_size
    args.remove_unused_columns = False  # else Trainer drops `teacher_logits`, which the model's forward does not take
    val = load_split(root, params, "val")
    val = val.iloc[val["text"].str.len().argsort(kind="stable")]
    val_texts = val["text"].astype(str).tolist()
    train_logits, val_logits = (
        soft_labels(teacher, tokenizer, texts, batch),
        soft_labels(teacher, tokenizer, val_texts, batch),
    )
    set_seed(params.train.seed)
    student, mapping = make_student(teacher, layers)
    max_length = tokenizer.model_max_length
    callbacks = [mlflow_logger(), training_progress()]
    if params.train.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingOnMetricAndLoss(early_stopping_patience=params.train.early_stopping_patience))
    base = length_grouped_trainer(params.train.seed) if params.train.group_by_length else Trainer
    trainer = distilling(base, temperature)(
        model=student,
        args=args,
        train_dataset=SoftEncoded(tokenizer, texts, np.argmax(train_logits, 1).tolist(), max_length, train_logits),
        eval_dataset=SoftEncoded(tokenizer, val_texts, val["label"].tolist(), max_length, val_logits),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    if os.environ.get("TQDM_DISABLE"):  # a quiet console, as the train stage's (`train.build_trainer`)
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)
    return trainer, mapping
