"""Lineage: what a model was made from, as MLflow tags, and the one list of those tag keys.

A training run is tagged with its complete data version: what DVC records of it (the raw pointer's output and
the `preprocess` entry of dvc.lock, enough to restore both byte-exact from the DVC cache or remote with
`textops data checkout --model N`), the cleaned splits' own md5s, the newest commit holding that data, the code
commit, whether the tree was dirty, and the fingerprint of the params training depends on
(`training_fingerprint`). The registry copies the data tags onto each model version with the
`textops.challenger.` / `textops.champion.` prefixes of its evidence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textops.core.config import Params

PREFIX = "textops."
MAX_TAG = 8000  # MLflow's limit on a tag value
# What a trained model depends on besides the raw data: the sections the `preprocess` and `train` stages of
# dvc.yaml list under `params:` (a unit test holds the two together). "Nothing to retrain", the lineage tag
# `textops.params_md5` and the checkpoints' fingerprint all hash these sections only, so changing
# `serve.port` or `promotion.min_delta` retrains nothing, as with `dvc repro`.
TRAINING_SECTIONS = ("data", "model", "train")
RAW_MD5 = "textops.data.raw_md5"
CLEAN_MD5 = "textops.data.clean_md5"  # one hash over every cleaned split and labels.json
CLEAN_MD5_PART = "textops.data.clean_md5."  # + train / val / test / labels
DATA_REV = "textops.data.rev"  # the newest commit holding this data version ("none": not committed)
DATA_POINTER = "textops.data.pointer"  # JSON: data.dvc's output (md5, size, nfiles, path)
DATA_PREPROCESS = "textops.data.preprocess_lock"  # JSON: dvc.lock's entry for the preprocess stage
DATA_PREPROCESS_STATS = "textops.data.preprocess_stats"  # metrics/preprocess.json as it was
CLEAN_DVC_MD5 = "textops.data.clean_dvc_md5"  # DVC's hash of the cleaned splits' directory
DATA_SPLITS = "textops.data.splits"  # JSON: rows per split
DATA_PUSHED = "textops.data.pushed"  # "true" once the data version is on the DVC remote
# "true" when the run trained on the embedded demo alone (`data.landing.demo_files`): a champion the user's own
# data replaces rather than has to beat (see `register.compare_with_champion`).
DEMO_DATA = "textops.data.demo"
GIT_COMMIT = "textops.git.commit"  # the code: HEAD when the model was trained
GIT_DIRTY = "textops.git.dirty"
PARAMS_MD5 = "textops.params_md5"
OVERRIDES = "textops.params.overrides"  # the -S key=value given on the command line, if any
# What a model version carries of its run's data version (enough to restore it without the run).
DATA_VERSION_TAGS = (
    RAW_MD5,
    CLEAN_MD5,
    CLEAN_DVC_MD5,
    DATA_REV,
    DATA_POINTER,
    DATA_PREPROCESS,
    DATA_SPLITS,
    DATA_PUSHED,
    GIT_COMMIT,
)
STAGE = "textops.stage"
# `textops distill`'s student (modeling.distill): the champion version it learned from, the softmax temperature, its
# encoder layers (and the teacher's), how many texts it was trained on, how many of them came from the request log,
# and an MD5 over those texts in order.
DISTILL_TEACHER, DISTILL_TEMPERATURE = "textops.distill.teacher_version", "textops.distill.temperature"
DISTILL_LAYERS, DISTILL_TEACHER_LAYERS = "textops.distill.layers", "textops.distill.teacher_layers"
DISTILL_TEXTS, DISTILL_LOG_TEXTS = "textops.distill.texts", "textops.distill.log_texts"
DISTILL_TEXTS_MD5 = "textops.distill.texts_md5"
EVALUATED = "textops.evaluated"
BASE_MODEL = "textops.model.base"  # the base model trained (model.base, with `auto` resolved)
BASE_REASON = "textops.model.base_reason"  # why that base (what `auto` measured and chose)
MODEL_FAMILY = "textops.model.family"  # `transformer` or `tfidf` (modeling.model.family_of)
# Why `auto` registered the TF-IDF model instead of the transformer it trained (the transformer lost to it).
FALLBACK = "textops.model.fallback"
# What `auto` measured of the pretrained tokenizer on the train split: tokens it cannot read, texts it cuts.
BASE_UNKNOWN_SHARE = "textops.model.pretrained_unknown_share"
BASE_TRUNCATED_SHARE = "textops.model.pretrained_truncated_share"
BASELINE = "textops.baseline"  # what the evaluation's bag-of-words baseline was (its figures: baseline_test_*)
RESUMED_FROM = "textops.resumed_from"
RESUMED_FROM_RUN = "textops.resumed_from_run"
KILLED = "textops.killed"
# The process that has a run open (a run whose owner is gone on this machine is marked KILLED).
OWNER_HOST, OWNER_PID, OWNER_START = "textops.owner.host", "textops.owner.pid", "textops.owner.start"
# What a training ran on.
DEVICE, CPU_THREADS, WORLD_SIZE = "textops.device", "textops.cpu_threads", "textops.world_size"
GPU, GPU_COUNT = "textops.gpu", "textops.gpu_count"
# A monitoring run: what it read and the champion it judged.
MONITOR_SOURCE, MONITOR_CHAMPION_VERSION = "textops.monitor.source", "textops.monitor.champion_version"
# `textops tune`'s runs: a trial's id, its params, the Ray node that trained it, whether ASHA stopped it; the best.
TUNE_TRIAL, TUNE_CONFIG, TUNE_NODE = "textops.tune.trial", "textops.tune.config", "textops.tune.node"
TUNE_STOPPED_EARLY, TUNE_BEST_TRIAL = "textops.tune.stopped_early", "textops.tune.best_trial"

# Tags on a model version (the registry's evidence): `textops.` + these.
DECISION = "textops.decision"
# The decisions a version's DECISION tag holds: AWAITING_LIVE passed offline and waits, as challenger, for labelled
# live answers in shadow (promotion.live_min_labels; textops.lifecycle.live_promotion.live_check decides then).
PROMOTED, REJECTED, AWAITING_LIVE = "promoted", "rejected", "awaiting-live"
REASON = "textops.reason"
MANUAL_PROMOTION = "textops.manual_promotion"
# The registry's aliases: the one spelling, for the registry, the no-op check, status, serving and predict.
CHAMPION_ALIAS, CHALLENGER_ALIAS = "champion", "challenger"
ALIASES = (CHAMPION_ALIAS, CHALLENGER_ALIAS)
# Tag on the registered model: every champion change, replayed by rollback.
CHAMPION_HISTORY = "textops.champion_history"

# MLflow metric keys of an evaluation run: the model's test figures and the baseline's on the same rows; a slice's
# figures (`slice_metric`). A training run's figures on the val split (`val_metric`): what the train stage returns,
# its checkpoints' history, the curves and `textops tune` compare.
TEST_METRIC_PREFIX, BASELINE_METRIC_PREFIX, SLICE_METRIC_PREFIX = "test_", "baseline_test_", "slice."
VAL_METRIC_PREFIX = "val_"
# The p50 latency of one text in the serving runtime (serve.runtime), measured by `textops distill` for the student
# (`test_metric(LATENCY_P50)`) and its teacher in the same process: what promotion.max_distill_drop trades against.
LATENCY_P50, TEACHER_LATENCY_P50 = "latency_p50_ms", "teacher_latency_p50_ms"

# Prefect events the monitor flow emits and prefect.yaml's retrain trigger matches (resources `textops.landing`,
# `textops.monitor`, labelled with the project).
EVENT_LANDED, EVENT_DRIFT = "textops.data.landed", "textops.drift.detected"
EVENT_PROJECT_LABEL = "textops.project"


def version_tag(library: str) -> str:
    """The tag holding the version of LIBRARY a training ran with."""
    return f"{PREFIX}version.{library}"


def model_uri(name: str, version: str | int | None = None, alias: str | None = None) -> str:
    """The registry's URI of model NAME: `models:/NAME/VERSION` for one version, `models:/NAME@ALIAS` for the version
    an alias points at (one of the two)."""
    if (version is None) == (alias is None):
        raise ValueError(f"model_uri({name!r}): give a version or an alias, not {'both' if alias else 'neither'}")
    return f"models:/{name}/{version}" if alias is None else f"models:/{name}@{alias}"


def evidence_tag(key: str) -> str:
    """A model version's evidence tag for KEY (what register decided with: `decision`, `challenger.accuracy`)."""
    return PREFIX + key


# The evidence KEYS register decides with (unprefixed: `textops.` + a key is its tag, `evidence_tag`), one helper per
# side; `champion_key("")` is a side's prefix, what a reader matches a whole side by.
def challenger_key(key: str) -> str:
    """The challenger's evidence key for KEY (`run_id`, `version`, a metric, `data.raw_md5`)."""
    return f"challenger.{key}"


def champion_key(key: str) -> str:
    """The champion's evidence key for KEY (`version`, a metric, `demo`, `broken`, `rescored`, `data.raw_md5`)."""
    return f"champion.{key}"


def baseline_key(metric: str) -> str:
    """The TF-IDF baseline's figure METRIC on the challenger's test rows."""
    return f"baseline.{metric}"


def mcnemar_key(key: str) -> str:
    """McNemar's paired test of the two models (`b`, `c`, `p_value`)."""
    return f"mcnemar.{key}"


def guard_key(index: int | str) -> str:
    """The promotion guard number INDEX (`registry.guards`)."""
    return f"guard.{index}"


def runtime_key(key: str) -> str:
    """What the serving runtime's scoring of the challenger adds (`agreement_with_torch`)."""
    return f"runtime.{key}"


def challenger_evidence(key: str) -> str:
    """The challenger's figure or data fact KEY (`accuracy`, `data.raw_md5`) as its version records it."""
    return evidence_tag(challenger_key(key))


def champion_evidence(key: str) -> str:
    """The champion's figure KEY that the challenger was compared with, as the challenger's version records it."""
    return evidence_tag(champion_key(key))


def live_tag(key: str) -> str:
    """A version's figure KEY measured on labelled live answers (promote-check)."""
    return evidence_tag(f"live.{key}")


def event_resource(what: str) -> str:
    """The Prefect resource id of an event about WHAT (`landing`, `monitor`)."""
    return f"{PREFIX}{what}"


def test_metric(name: str) -> str:
    """The MLflow metric key of the model's test figure NAME (`accuracy` -> `test_accuracy`)."""
    return TEST_METRIC_PREFIX + name


def val_metric(name: str) -> str:
    """The key of a training run's val-split figure NAME (`macro_f1` -> `val_macro_f1`)."""
    return VAL_METRIC_PREFIX + name


def best_val_metrics(metrics: dict) -> dict[str, float]:
    """A training's val figures in METRICS (its summary: the kept checkpoint's) as the run's `best_val_*` metrics."""
    return {f"best_{k}": float(v) for k, v in metrics.items() if k.startswith(VAL_METRIC_PREFIX)}


def baseline_metric(name: str) -> str:
    """The MLflow metric key of the baseline's test figure NAME on the same rows."""
    return BASELINE_METRIC_PREFIX + name


def slice_metric(kind: str, value: str, name: str) -> str:
    """The MLflow metric key of figure NAME on the test rows of one slice (`slice.language.fr.macro_f1`): characters
    MLflow refuses in a key become `_` and a long value is cut (metrics/eval.json keeps the values as they are)."""
    import re

    safe = re.sub(r"[^\w\-]", "_", value)[:60] or "_"  # no dots: a value cannot pose as a deeper key
    return f"{SLICE_METRIC_PREFIX}{kind}.{safe}.{name}"


def run_state(tags: dict[str, str]) -> dict[str, str | None]:
    """The same two facts as `current_state`, read from a training run's tags."""
    return {"raw_md5": tags.get(RAW_MD5), "params_md5": tags.get(PARAMS_MD5)}


def base_model_tags(base: str, reason: str, unknown_share: float | None, truncated_share: float | None) -> dict:
    """The tags of the base model a run trained (what `model.base: auto` chose, why, and what it measured)."""
    tags = {
        BASE_MODEL: base,
        BASE_REASON: reason[:MAX_TAG],
        MODEL_FAMILY: "tfidf" if base == "tfidf" else "transformer",
    }
    for key, share in ((BASE_UNKNOWN_SHARE, unknown_share), (BASE_TRUNCATED_SHARE, truncated_share)):
        if share is not None:
            tags[key] = str(share)
    return tags


def training_fingerprint(params: Params) -> str:
    """MD5 of the params a trained model depends on (TRAINING_SECTIONS), key order independent."""
    import hashlib
    import json

    dumped = params.model_dump(by_alias=True)
    wanted = {section: dumped[section] for section in TRAINING_SECTIONS}
    return hashlib.md5(json.dumps(wanted, sort_keys=True).encode()).hexdigest()
