"""The train stage: fine-tune a transformers classifier with `Trainer`, tracked in MLflow.

`train(root, params)` is the one implementation; DVC (`textops train`), the Prefect flow and the tests
call it. It resumes from the last complete checkpoint in params.train.checkpoint_dir when one exists
for the same data and params, so a killed run (SIGKILL, preempted GPU worker) continues where it
stopped and ends with the metrics an uninterrupted run would have.

Distributed (DDP): launch the same command under `torchrun --nproc_per_node=N -m textops train` or
`accelerate launch --multi_gpu --num_processes N -m textops train` (GPUs, or CPU processes with gloo);
Trainer joins the process group, every rank trains and evaluates in lockstep, and only rank 0 talks to
MLflow and writes files. train.batch_size is the global batch (each of N processes takes 1/N of it), so a
run on N processes takes the same steps with the same schedule as one process and its metrics differ only
by the order in which the rows are drawn.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

from textops.adapters import data_version
from textops.adapters.dvc import publish_data, record_stage
from textops.adapters.tracking import Session
from textops.core import lineage
from textops.core.artifacts import (
    CROISSANT_ARTIFACT,
    CROISSANT_STAGE,
    HF_DIR,
    RUN_FILE,
    TRAIN_METRICS,
    atomic_write_json,
    load_split,
    load_train_rows,
    model_dir,
    read_labels,
    staged_dir,
)
from textops.core.config import Params
from textops.core.errors import ParamsError
from textops.core.params_file import flatten, redact
from textops.data.croissant import write_current
from textops.data.landing import demo_tag
from textops.modeling.batches import Encoded, length_grouped_trainer
from textops.modeling.checkpoints import (
    MLFLOW_RUN,
    complete_checkpoint,
    interrupted_run_id,
    mark_finished,
    mlflow_metrics,
    prepare_checkpoints,
    replay_history,
)
from textops.modeling.logged_model import log_model
from textops.modeling.model import BaseChoice, choose_base, resolved
from textops.modeling.plots import write_curves
from textops.modeling.progress import training_progress
from textops.modeling.train_tfidf import train_tfidf

log = logging.getLogger("textops")


def world() -> tuple[int, int]:
    """(this process's global rank, number of processes): set by torchrun and accelerate launch; (0, 1) alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def per_device_batch(batch_size: int, processes: int) -> int:
    """Each process's share of the global batch train.batch_size; it must divide evenly."""
    if batch_size % processes:
        lower = max(processes, batch_size - batch_size % processes)
        raise ParamsError(
            f"train.batch_size {batch_size} is the global batch and must divide evenly among the {processes} "
            f"training processes: use a multiple of {processes} (e.g. -S train.batch_size={lower})."
        )
    return batch_size // processes


def environment() -> dict[str, str]:
    """Device and library versions, logged as tags so a run says what it ran on."""
    import mlflow
    import tokenizers
    import torch
    import transformers

    info = {
        lineage.DEVICE: "cuda" if torch.cuda.is_available() else "cpu",
        **{lineage.version_tag(lib.__name__): lib.__version__ for lib in (torch, transformers, tokenizers, mlflow)},
        lineage.CPU_THREADS: str(torch.get_num_threads()),
        lineage.WORLD_SIZE: str(world()[1]),
    }
    if torch.cuda.is_available():
        info[lineage.GPU] = torch.cuda.get_device_name(0)
        info[lineage.GPU_COUNT] = str(torch.cuda.device_count())
    return info


# --------------------------------------------------------------------------------------------------
# data and model


def compute_metrics(eval_pred) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = eval_pred
    preds = logits.argmax(axis=-1)
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "macro_f1": float(f1_score(labels, preds, average="macro")),
        # 1 while the model answers one class for every text: it has not started to learn (modeling.stopping)
        "predicted_classes": float(len(set(preds.tolist()))),
    }


def precision() -> dict[str, bool]:
    """bf16 on GPUs that support it, else fp16 (with loss scaling); fp32 on the CPU."""
    import torch

    if not torch.cuda.is_available():
        return {"bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": not bf16}


def eval_steps(params: Params, train_rows: int) -> int:
    """Steps between evaluations (and checkpoints): train.save_steps, else train.evals_per_epoch per epoch."""
    t = params.train
    if t.save_steps is not None:
        return t.save_steps
    world = int(os.environ.get("WORLD_SIZE", "1"))
    assert t.batch_size is not None  # resolved params (model.resolved): the preset filled it
    steps_per_epoch = max(1, math.ceil(train_rows / (t.batch_size * world)))
    return max(1, math.ceil(steps_per_epoch / t.evals_per_epoch))


def training_arguments(params: Params, checkpoint_dir: Path, train_rows: int):
    import torch
    from transformers import TrainingArguments

    t = params.train
    assert t.batch_size is not None  # resolved params (model.resolved): the preset filled it
    every = eval_steps(params, train_rows)
    cuda = torch.cuda.is_available()
    processes = world()[1]
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=t.epochs,
        per_device_train_batch_size=per_device_batch(t.batch_size, processes),
        per_device_eval_batch_size=t.eval_batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=float(t.warmup_ratio),  # a float in [0, 1) is a ratio of the total steps (transformers 5)
        lr_scheduler_type=t.lr_scheduler,
        # Evaluate where we checkpoint: early stopping and "best model" need both on the same steps.
        eval_strategy="steps",
        eval_steps=every,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=2,  # the best and the last are kept whatever this says
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        seed=t.seed,
        data_seed=t.seed,
        # Deterministic kernels cost speed on a GPU; on the CPU they are what makes reruns identical.
        full_determinism=not cuda,
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        # Without a GPU, say so: under torchrun Trainer then joins a gloo process group (it would otherwise
        # find no accelerator, skip the process group and let every rank train alone).
        use_cpu=not cuda,
        ddp_backend="gloo" if processes > 1 and not cuda else None,
        # A classifier's loss is the mean over its batch (one label a row) and DDP averages the gradients: that is
        # the global batch's mean already. Trainer's token averaging would multiply the loss (and so the gradient
        # and the clipping) by the number of processes, because the model ignores the item count it is given.
        average_tokens_across_devices=False,
        report_to="none",  # MLflow logging is ours (MlflowLogger): one run across resumes and stages
        disable_tqdm=False,
        optim=t.optimizer,
        **precision(),
    )


def mlflow_logger():
    from transformers import TrainerCallback

    class MlflowLogger(TrainerCallback):
        """Per-step loss/learning rate and per-evaluation validation metrics into the active run."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            import mlflow

            if not state.is_world_process_zero or not logs:
                return
            mlflow.log_metrics(mlflow_metrics(logs, state.epoch or 0), step=state.global_step)

    return MlflowLogger()


# --------------------------------------------------------------------------------------------------
# the stage


def build_trainer(
    root: Path, params: Params, frame, labels: list[str], resume_from: Path | None, args, extra_callbacks: tuple = ()
):
    """The Trainer for params.model.base on FRAME (the train split) and the val split, with MLflow logging, early
    stopping and EXTRA_CALLBACKS (`textops tune` reports each evaluation to Ray Tune with one)."""
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, set_seed
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from textops.modeling.model import load_base
    from textops.modeling.stopping import EarlyStoppingOnMetricAndLoss

    val = load_split(root, params, "val")
    # In order of length: evaluation pads each batch to its longest row too (the metrics ignore the order).
    val = val.iloc[val["text"].str.len().argsort(kind="stable")]
    set_seed(params.train.seed)  # before the model is built: the random init is part of the result
    tokenizer, model = load_base(params.model, labels, frame["text"].tolist())
    if resume_from is not None and params.model.base == "tiny":
        # The checkpoint holds the tokenizer the weights were trained with; reuse it rather than
        # relying on retraining giving the same vocabulary.
        tokenizer = AutoTokenizer.from_pretrained(resume_from, local_files_only=True)

    max_length = tokenizer.model_max_length  # params.model.max_length or less (model.fitted_length)
    callbacks = [mlflow_logger(), training_progress(), *extra_callbacks]
    if params.train.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingOnMetricAndLoss(early_stopping_patience=params.train.early_stopping_patience))
    trainer_class = length_grouped_trainer(params.train.seed) if params.train.group_by_length else Trainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=Encoded(tokenizer, frame["text"].tolist(), frame["label"].tolist(), max_length),
        eval_dataset=Encoded(tokenizer, val["text"].tolist(), val["label"].tolist(), max_length),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    if os.environ.get(
        "TQDM_DISABLE"
    ):  # a quiet console (textops.adapters.logs): no metric dicts printed to stdout either
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)  # tqdm.write prints its metric dicts even with the bar off
    return trainer


def summary_metrics(trainer, result, best: dict, resume_from: Path | None) -> dict:
    """metrics/train.json: the kept (best) checkpoint's val metrics and how the training went."""
    state = trainer.state
    return {
        **{lineage.val_metric(k): best[f"eval_{k}"] for k in ("accuracy", "macro_f1", "loss")},
        "train_loss": result.training_loss,
        "global_step": state.global_step,
        "best_step": int(Path(state.best_model_checkpoint).name.split("-")[-1])
        if state.best_model_checkpoint
        else state.global_step,
        "epochs": state.epoch,
        "train_rows": len(trainer.train_dataset),
        "max_length": trainer.processing_class.model_max_length,
        "train_samples_per_second": result.metrics.get("train_samples_per_second"),
        "train_runtime_s": result.metrics.get("train_runtime"),
        "device": environment()[lineage.DEVICE],
        "resumed_from_step": int(resume_from.name.split("-")[-1]) if resume_from else 0,
    }


def save_outputs(root: Path, params: Params, trainer, run, metrics: dict, labels: list[str]) -> dict:
    """Log the model to RUN and write artifacts/model (hf/, run.json, the curve) and metrics/train.json, aside
    and swapped in at the end: a full disk or a kill leaves the previous model in place."""
    import mlflow

    with staged_dir(model_dir(root, params)) as staged:
        hf_dir = staged / HF_DIR
        trainer.save_model(str(hf_dir))
        trainer.processing_class.save_pretrained(str(hf_dir))
        write_curves(root, trainer.state.log_history, staged / "training_curve.png")
        mlflow.log_artifact(str(staged / "training_curve.png"), "plots")
        texts = trainer.eval_dataset.texts  # sorted by length: a spread of 64 checks the ONNX export
        logged = log_model(hf_dir, labels, texts[:: max(1, len(texts) // 64)][:64], params.serve)
        run_info = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "tracking_uri": redact(mlflow.get_tracking_uri()),
            # MLflow 3 keeps a logged model apart from the run's artifacts: `models:/<model id>` names it.
            "model_uri": logged.model_uri,
            "base_model": params.model.base,  # `auto` resolved: what the console's train line names
        }
        atomic_write_json(staged / RUN_FILE, run_info)
        atomic_write_json(root / TRAIN_METRICS, metrics)
    return run_info


def base_and_tags(root: Path, params: Params, fallback: str | None) -> tuple[Params, dict]:
    """(PARAMS resolved for the base model to train, the run's lineage tags: the params as written, `auto` stays
    auto, and the base chosen with why); FALLBACK: the tfidf model, with that reason."""
    tags = data_version.lineage_tags(root, params) | demo_tag(root, params)
    choice = BaseChoice("tfidf", fallback) if fallback else choose_base(root, params)
    params = resolved(root, params, choice)
    tags.update(lineage.base_model_tags(choice.base, choice.reason, choice.unknown_share, choice.truncated_share))
    log.info("train: base model %s (%s)", params.model.base, choice.reason)
    return params, tags


def train(root: Path, params: Params, fallback: str | None = None, session: Session | None = None) -> dict:
    """Fine-tune params.model.base on the cleaned train split; log the run and model to MLflow. FALLBACK (why):
    fit the tfidf model instead, `auto`'s answer to a transformer that lost to the baseline. SESSION: the
    command's store (`tracking.session_for`), else one opened here.

    Writes artifacts/model/{hf/, run.json, training_curve.png}, metrics/train.json and the curve CSVs.
    Returns the train metrics (also in metrics/train.json) with the run's ids; {} on DDP ranks other than 0.
    """
    import mlflow

    from textops.adapters.tracking import owner_tags, session_for
    from textops.core.env import set_torch_threads

    root = Path(root)
    set_torch_threads(params.train.threads)
    labels = read_labels(root, params)
    rank0 = world()[0] == 0
    params, tags = base_and_tags(root, params, fallback)
    if params.model.base == "tfidf":  # no Trainer: fitted in seconds (modeling.train_tfidf)
        return train_tfidf(root, params, tags, fallback, session)

    checkpoint_dir = root / params.train.checkpoint_dir
    fingerprint = {"params_md5": tags[lineage.PARAMS_MD5], "clean_md5": tags[lineage.CLEAN_MD5]}
    frame = load_train_rows(root, params)
    args = training_arguments(params, checkpoint_dir, len(frame))  # under torchrun this joins the process group
    # Rank 0 prunes or discards stale checkpoints first; the other DDP ranks then read what is left. Every rank
    # reads the checkpoints rank 0 wrote (to resume, and the best one at the end): on several machines they share
    # one checkout (transformers 5 writes a checkpoint's weights on global rank 0 only, save_on_each_node or not).
    with args.main_process_first(local=False, desc="checkpoints"):
        if rank0:
            resume_from = prepare_checkpoints(checkpoint_dir, fingerprint)
        else:
            resume_from = complete_checkpoint(checkpoint_dir, prune=False)
    trainer = build_trainer(root, params, frame, labels, resume_from, args)
    resume = str(resume_from) if resume_from else None
    if not rank0:  # other DDP ranks train and evaluate in lockstep; rank 0 owns MLflow and the outputs
        trainer.train(resume_from_checkpoint=resume)
        trainer.evaluate()  # a collective under DDP: every rank takes part
        return {}

    session = session_for(root, params, session)  # a new one marks KILLED the run of a SIGKILLed training
    tags[lineage.DATA_PUSHED] = str(publish_data(root, params)).lower()
    if params.overrides:
        tags[lineage.OVERRIDES] = " ".join(params.overrides)
    interrupted = interrupted_run_id(checkpoint_dir, resume_from)
    # A new run every time: a killed run stays KILLED (a crashed one FAILED) and the resumed one links to it.
    # `with` ends the run FAILED when anything below raises (KILLED on Ctrl-C), never left RUNNING.
    with session.active(), mlflow.start_run(experiment_id=session.experiment_id) as run:
        atomic_write_json(checkpoint_dir / MLFLOW_RUN, {"run_id": run.info.run_id})
        log_inputs(params, {**tags, **owner_tags()}, trainer, labels, card=write_current(root, params, record=False))
        if resume_from is not None:
            mlflow.set_tags({lineage.RESUMED_FROM: resume_from.name, lineage.RESUMED_FROM_RUN: interrupted or ""})
            replay_history(resume_from)

        result = trainer.train(resume_from_checkpoint=resume)
        best = trainer.evaluate()  # the best checkpoint's weights are loaded at the end
        metrics = summary_metrics(trainer, result, best, resume_from)
        mlflow.log_metrics(
            lineage.best_val_metrics(metrics)
            | {"train_samples_per_second": float(metrics["train_samples_per_second"] or 0)}
        )
        run_info = save_outputs(root, params, trainer, run, metrics, labels)
    mark_finished(checkpoint_dir, run_info["run_id"])  # the next training of this data starts afresh
    record_stage(root, "train", CROISSANT_STAGE)
    return {**metrics, **run_info}


def log_inputs(
    params: Params, tags: dict, trainer, labels: list[str], stage: str = "train", card: Path | None = None
) -> None:
    """The active run's params (as trained: `auto` resolved, presets filled) and tags, what the data gave, and the
    data's Croissant file CARD (`data.croissant.write_current`) as the artifact `data/croissant.json`."""
    import mlflow

    if card is not None:
        mlflow.log_artifact(str(card), CROISSANT_ARTIFACT)

    mlflow.log_params(flatten(params))
    mlflow.set_tags({**tags, **environment(), lineage.STAGE: stage})
    # MLflow keeps a param value to 6,000 characters: the label names in full are in labels.json (a DVC out).
    mlflow.log_params(
        {
            "train_rows": len(trainer.train_dataset),
            "val_rows": len(trainer.eval_dataset),
            "num_labels": len(labels),
            "labels": json.dumps(labels, ensure_ascii=False)[:500],
            "max_length_used": trainer.processing_class.model_max_length,
        }
    )
