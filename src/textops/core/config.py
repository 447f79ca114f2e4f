"""The one configuration: `params.yaml`, validated into pydantic models.

DVC reads the same file through `params:` in dvc.yaml, so a key that moves here moves there too.
Every path in the file is relative to the project root and must stay inside it: params cannot make
the pipeline write elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from textops.core.config_base import Section, inside_project
from textops.core.config_live import MonitorParams, RayParams, ServeParams
from textops.core.errors import ParamsError
from textops.core.params_file import apply_overrides, check_paths, describe, read_yaml, relative_sqlite_path

PARAMS_FILE = "params.yaml"


# `model.base: auto` does not pick a pretrained base whose tokenizer maps more than this share of the train split's
# tokens to its unknown token: it cannot read the data (MiniLM's English vocabulary on Chinese reviews: 64.6%).
MAX_UNKNOWN_SHARE = 0.05


class SplitParams(Section):
    val: float = Field(0.1, gt=0, lt=0.5)
    test: float = Field(0.1, gt=0, lt=0.5)
    # containment: a text inside a train text is in train (no test text seen in training; textops.data.overlap);
    # text: each text by its own hash alone (the leak is still measured and reported)
    by: Literal["containment", "text"] = "containment"


class DataParams(Section):
    raw_dir: str = "data/raw"
    clean_dir: str = "artifacts/clean"
    landing_dir: str = "landing"
    text_column: str = "text"
    label_column: str = "label"
    # A column of ingested files kept as each row's `group` (a source, a customer, a domain): never a model input,
    # evaluation reports its slices (`textops.data.slices`); null: no such column is read.
    group_column: str | None = "group"
    lowercase: bool = False
    min_chars: int = Field(2, ge=1)
    max_chars: int = Field(5000, ge=1)
    max_file_mb: float = Field(200, gt=0)
    split: SplitParams = SplitParams()

    _paths = field_validator("raw_dir", "clean_dir", "landing_dir")(inside_project)

    @model_validator(mode="after")
    def _bounds(self) -> DataParams:
        if self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) is larger than max_chars ({self.max_chars})")
        if not self.raw_dir.startswith("data/") and self.raw_dir != "data":
            raise ValueError(f"raw_dir must live under data/ (tracked by data.dvc), got {self.raw_dir!r}")
        return self


class SampleParams(Section):
    rows: int = Field(4000, ge=100)
    seed: int = 13


class DatasetParams(Section):
    """What the data is, for people and for the model card: not a training input (no retrain when it changes)."""

    name: str | None = None
    license: str | None = None  # an SPDX identifier (CC-BY-4.0) or words; `ingest --license` for one file
    source: str | None = None  # where the data comes from (a URL or words); `ingest --source` for one file


class ValidateParams(Section):
    min_rows_per_class: int = Field(20, ge=1)
    max_class_ratio: float = Field(20.0, ge=1)
    min_rows: int = Field(100, ge=1)
    report_dir: str = "reports/validation"
    # Checks on each ingest (all files of one `textops ingest` or one landing pick-up, together):
    min_batch_classes: int = Field(2, ge=1)
    max_duplicate_fraction: float = Field(0.5, ge=0, le=1)
    refuse_formulas: bool = True
    # Rows with an empty text or label are dropped from a file (and reported with their line numbers) up to this
    # share of its rows; above it the file is refused.
    max_invalid_fraction: float = Field(0.01, ge=0, le=1)
    # A file that gives texts already in the data another label on more than this share of its rows is held
    # (`textops ingest --allow-relabel` lets it in): preprocess would drop the contradicted rows, champion's included.
    max_relabel_fraction: float = Field(0.01, ge=0, le=1)
    # A gated ingest (the scheduled retrain) holds files on which the champion's accuracy is this much below its
    # test accuracy (wrong labels or a changed task pass every data check); null turns the check off.
    max_champion_drop: float | None = Field(0.25, gt=0, le=1)
    champion_check_rows: int = Field(2000, ge=20)
    # ... and files where a token comes with labels the champion confidently disagrees with wherever it appears (a
    # planted backdoor, textops.data.backdoor): at least this many such rows hold it; null turns the check off.
    flip_trigger_min_rows: int | None = Field(20, ge=5)
    flip_trigger_confidence: float = Field(0.8, gt=0.5, lt=1)  # a disagreement counts from this confidence up

    _paths = field_validator("report_dir")(inside_project)


class TinyModelParams(Section):
    vocab_size: int = Field(4000, ge=200)
    hidden_size: int = Field(64, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(2, ge=1)
    intermediate_size: int = Field(128, ge=8)

    @model_validator(mode="after")
    def _heads_divide(self) -> TinyModelParams:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of num_heads ({self.num_heads})")
        return self


class ModelParams(Section):
    # auto (textops.modeling.model.resolve_base), tiny, minilm, a local directory, or a hub id (local cache unless
    # allowed)
    base: str = "auto"
    max_length: int = Field(128, ge=8, le=4096)  # the longest input in tokens, or less (model.fitted_length)
    length_percentile: float | None = Field(99.0, gt=0, le=100)
    allow_download: bool = False
    tiny: TinyModelParams = TinyModelParams()


# train.learning_rate / epochs / batch_size where params leave them null: a randomly initialised `tiny` model needs
# ten times a pretrained one's learning rate, which would wreck the pretrained (BENCHMARKS.md, Training).
PRESETS = {
    "tiny": {"learning_rate": 5e-4, "epochs": 3, "batch_size": 32},
    "pretrained": {"learning_rate": 1e-4, "epochs": 2, "batch_size": 32},
}


def preset_of(base: str) -> str:
    return "tiny" if base == "tiny" else "pretrained"


def with_preset(train: dict, base: str) -> dict:
    """TRAIN (the train section) with the keys left out or null filled from the preset of BASE."""
    preset = PRESETS[preset_of(base)]
    return {**train, **{k: v for k, v in preset.items() if train.get(k) is None}}


class TrainParams(Section):
    # null: the preset for model.base (PRESETS); for `auto`, filled by the train stage (textops.modeling.model.resolved)
    epochs: float | None = Field(None, gt=0)
    batch_size: int | None = Field(None, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    learning_rate: float | None = Field(None, gt=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    max_train_samples: int | None = Field(None, ge=1)
    group_by_length: bool = True  # batches of similar lengths (train.length_grouped_trainer)
    optimizer: Literal["adamw_torch_fused", "adamw_torch"] = "adamw_torch_fused"
    threads: int | None = Field(None, ge=1, le=256)  # null: textops.core.env.set_torch_threads decides
    # Evaluations (each with a checkpoint) per epoch; patience counts them, so 2 and 2 stop after one whole epoch
    # without a better val macro-F1 or a lower val loss (modeling.stopping). save_steps, when set, evaluates every
    # that many steps instead.
    early_stopping_patience: int = Field(2, ge=0)
    evals_per_epoch: int = Field(2, ge=1)
    save_steps: int | None = Field(None, ge=1)
    logging_steps: int = Field(10, ge=1)
    seed: int = 42
    output_dir: str = "artifacts/model"
    checkpoint_dir: str = "artifacts/checkpoints"

    _paths = field_validator("output_dir", "checkpoint_dir")(inside_project)


class EvaluateParams(Section):
    output_dir: str = "artifacts/eval"
    batch_size: int = Field(64, ge=1)
    calibration_bins: int = Field(10, ge=2)
    # Also fit TF-IDF + logistic regression on the train split and score it on the test split (textops.baseline).
    baseline: bool = True
    baseline_max_features: int = Field(100_000, ge=100)
    # The run report's most confidently wrong test rows, explained (textops.modeling.explain): how many, and the
    # steps of each.
    explain_rows: int = Field(5, ge=0, le=100)
    explain_steps: int = Field(32, ge=2, le=1000)

    _paths = field_validator("output_dir")(inside_project)


class MlflowParams(Section):
    # Default store; the MLFLOW_TRACKING_URI environment variable (a tracking server) wins.
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    artifact_location: str = "mlruns/artifacts"
    experiment: str = "textops"
    registered_model: str = "textops-classifier"

    _paths = field_validator("artifact_location")(inside_project)

    @field_validator("tracking_uri")
    @classmethod
    def _store(cls, value: str) -> str:
        # A relative SQLite path is a file in the project; an absolute one or a server is a store you chose.
        db = relative_sqlite_path(value)
        if db is not None:
            inside_project(db)
        return value


class PromotionParams(Section):
    primary_metric: Literal["accuracy", "macro_f1"] = "macro_f1"
    min_delta: float = Field(0.0, ge=0, lt=1)
    max_p_value: float = Field(0.05, gt=0, le=1)
    floor: float = Field(0.6, ge=0, le=1)
    # On the rows the champion was proven on (its own test rows that still exist, and reference_file) the
    # challenger may not score more than this below the champion.
    max_regression: float = Field(0.01, ge=0, le=1)
    # A slice of the test split (text length quartile, language, group) with at least this many rows where the
    # challenger loses to the champion on the same rows (McNemar p < max_p_value) holds the challenger.
    min_slice_rows: int = Field(30, ge=1)
    reference_file: str | None = None  # a pinned labelled file (text/label columns as data.*), inside the project
    # A model that scores below the evaluation's TF-IDF baseline (evaluate.baseline) by more than baseline_margin
    # on the primary metric is never promoted automatically.
    beat_baseline: bool = True
    baseline_margin: float = Field(0.0, ge=0, lt=1)
    # > 0: a challenger that passes offline stays challenger until this many of its answers in shadow (serve.shadow)
    # got a label (POST /feedback) and it does not lose to the champion on them; `textops model promote-check` or the
    # monitor flow promotes it then.
    live_min_labels: int = Field(0, ge=0)
    # A distilled student (`textops distill`) whose primary metric is at most max_distill_drop below the champion's
    # (its teacher) on the same test rows and whose p50 latency of one text is at least min_distill_speedup times
    # lower passes the comparison with the champion (the other rules still apply).
    max_distill_drop: float = Field(0.01, ge=0, lt=1)
    min_distill_speedup: float = Field(1.5, ge=1)

    @field_validator("reference_file")
    @classmethod
    def _reference_inside(cls, value: str | None) -> str | None:
        return None if value is None else inside_project(value)


TUNABLE = ("learning_rate", "epochs", "batch_size", "warmup_ratio", "weight_decay")  # train.* keys `tune` searches


def _check_space(space: dict) -> dict:
    """Each key one of TUNABLE with one kind: loguniform/uniform/int [low, high] or choice [values], all valid."""
    for key, spec in space.items():
        if key not in TUNABLE or not isinstance(spec, dict) or len(spec) != 1:
            raise ValueError(
                f"{key}: tune one of {', '.join(TUNABLE)} as {{loguniform|uniform|int: [low, high]}} "
                "or {choice: [values]}"
            )
        ((kind, values),) = spec.items()
        ranged = kind in ("loguniform", "uniform", "int")
        a_range = ranged and len(values) == 2 and values[0] < values[1]
        if not values or not (a_range or kind == "choice"):
            raise ValueError(f"{key}: {kind} {values}: a range is [low, high] with low < high, a choice a list")
        for value in values:
            try:
                TrainParams.model_validate({key: value})
            except ValidationError as exc:
                raise ValueError(f"{key}: {value!r} is not a train.{key} ({exc.errors()[0]['msg']})") from None
    return space


class TuneParams(Section):
    # `textops tune` (the [ray] extra): Optuna's TPE through Ray Tune, trials stopped early by ASHA on the val split.
    space: dict[str, dict[Literal["loguniform", "uniform", "int", "choice"], list[float | int]]] = {
        "learning_rate": {"loguniform": [1e-5, 3e-3]},
        "epochs": {"int": [1, 4]},
        "batch_size": {"choice": [16, 32, 64]},
        "warmup_ratio": {"uniform": [0.0, 0.2]},
        "weight_decay": {"uniform": [0.0, 0.1]},
    }
    trials: int = Field(8, ge=1, le=10_000)
    metric: Literal["macro_f1", "accuracy"] = "macro_f1"  # on the val split
    max_concurrent: int = Field(2, ge=1)  # trials at once (each takes cpus_per_trial / gpus_per_trial)
    cpus_per_trial: float = Field(1, gt=0)
    gpus_per_trial: float | None = Field(None, ge=0)  # None: 1 where the cluster has GPUs, else 0
    seed: int = 0

    _space = field_validator("space")(_check_space)


class Params(Section):
    data: DataParams = DataParams()
    sample: SampleParams = SampleParams()
    dataset: DatasetParams = DatasetParams()
    validate_: ValidateParams = Field(ValidateParams(), alias="validate")
    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    mlflow: MlflowParams = MlflowParams()
    promotion: PromotionParams = PromotionParams()
    serve: ServeParams = ServeParams()
    monitor: MonitorParams = MonitorParams()
    ray: RayParams = RayParams()
    tune: TuneParams = TuneParams()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)
    # The `-S key=value` overrides these params were loaded with (recorded with a training run).
    _overrides: tuple[str, ...] = PrivateAttr(default=())

    @property
    def overrides(self) -> tuple[str, ...]:
        return self._overrides

    @model_validator(mode="before")
    @classmethod
    def _presets(cls, raw: object) -> object:
        """Fill train.learning_rate / epochs / batch_size left out or null from the preset for model.base."""
        if not isinstance(raw, dict):
            return raw
        model, train = raw.get("model") or {}, raw.get("train") or {}
        if not isinstance(model, dict) or not isinstance(train, dict):
            return raw  # the field validation says what is wrong
        base = str(model.get("base", "auto"))
        if base == "auto":  # resolved with the data, by the train stage
            return raw
        return {**raw, "train": with_preset(train, base)}

    @property
    def validation(self) -> ValidateParams:
        return self.validate_


def load_params(path: str | Path = PARAMS_FILE, overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """Read and validate params.yaml with OVERRIDES (`section.key=value`) applied; raise ParamsError naming
    the file and each bad key."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: parameters file not found (run from the project root or pass --params)")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    where = f"{path} with {' '.join(f'-S {o}' for o in overrides)}" if overrides else str(path)
    raw = apply_overrides(raw, overrides, path)
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(describe(exc, where, Params)) from exc
    check_paths(params, path.parent, path)
    params._overrides = tuple(overrides)
    return params
