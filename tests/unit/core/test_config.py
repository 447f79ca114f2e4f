"""params.yaml: validation names the key and the file; -S overrides; the training fingerprint."""

from __future__ import annotations

import pytest
from helpers import REPO

from textops.core.config import load_params
from textops.core.errors import ParamsError
from textops.core.lineage import training_fingerprint


def test_default_params_load():
    params = load_params(REPO / "params.yaml")
    assert params.model.base == "auto"  # minilm for a user's data, tiny on the built-in sample alone
    assert params.serve.runtime == "onnx" and params.serve.quantize is False
    assert params.validation.min_rows_per_class >= 1


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("train:\n  epochs: 3\n  lerning_rate: 0.1\n", "train.lerning_rate"),
        ("train:\n  batch_size: many\n", "train.batch_size"),
        ("data:\n  split:\n    val: 0.9\n", "data.split.val"),
        ("data:\n  clean_dir: ../outside\n", "data.clean_dir"),
        ("model:\n  tiny:\n    hidden_size: 65\n    num_heads: 2\n", "model.tiny"),
        ("bogus_section: {}\n", "bogus_section"),
        ("tune:\n  space:\n    lr: {loguniform: [1.0e-5, 1.0e-3]}\n", "lr: tune one of learning_rate"),
        ("tune:\n  space:\n    learning_rate: {loguniform: [0, 1.0e-3]}\n", "0 is not a train.learning_rate"),
        ("tune:\n  space:\n    epochs: {int: [3, 1]}\n", "low < high"),
        ("tune:\n  space:\n    batch_size: {choice: [16, 0]}\n", "0 is not a train.batch_size"),
        ("tune:\n  space:\n    epochs: {normal: [1, 3]}\n", "tune.space"),
    ],
)
def test_bad_params_name_the_key_and_file(tmp_path, yaml_text, named):
    path = tmp_path / "params.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert named in str(err.value) and str(path) in str(err.value)


def test_overrides_are_validated_like_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((REPO / "params.yaml").read_text())
    params = load_params(
        path, ["train.epochs=1", "model.base=minilm", "train.learning_rate=1e-4", "train.max_train_samples=null"]
    )
    assert params.train.epochs == 1 and params.model.base == "minilm"
    assert params.train.learning_rate == 1e-4 and params.train.max_train_samples is None
    with pytest.raises(ParamsError, match="train.epochs") as err:
        load_params(path, ["train.epochs=-1"])
    assert "-S train.epochs=-1" in str(err.value)
    with pytest.raises(ParamsError, match=r"unknown key \(did you mean train.epochs\?\)"):
        load_params(path, ["train.epohcs=1"])
    with pytest.raises(ParamsError, match=r"did you mean validate.max_relabel_fraction"):  # an aliased section
        load_params(path, ["validate.max_relabel_fractoin=0.1"])
    with pytest.raises(ParamsError, match=r"the keys here: .*learning_rate"):  # nothing near: what there is
        load_params(path, ["train.zzzzqq=1"])
    with pytest.raises(ParamsError, match="section.key=value"):
        load_params(path, ["train.epochs"])


def test_training_fingerprint_ignores_what_training_does_not_depend_on():
    base = load_params(REPO / "params.yaml")
    same = load_params(REPO / "params.yaml", ["serve.port=6000", "promotion.min_delta=0.1", "evaluate.batch_size=8"])
    assert training_fingerprint(same) == training_fingerprint(base)
    for override in ("train.epochs=1", "model.max_length=64", "data.lowercase=true"):
        assert training_fingerprint(load_params(REPO / "params.yaml", [override])) != training_fingerprint(base)


def test_training_presets_follow_the_base_model():
    tiny = load_params(REPO / "params.yaml", ["model.base=tiny"])
    assert (tiny.train.learning_rate, tiny.train.epochs) == (5e-4, 3)
    auto = load_params(REPO / "params.yaml")  # filled by the train stage once it knows the base (model.resolved)
    assert (auto.train.learning_rate, auto.train.epochs, auto.train.batch_size) == (None, None, None)
    pretrained = load_params(REPO / "params.yaml", ["model.base=minilm"])
    assert pretrained.train.learning_rate == 1e-4 and pretrained.train.epochs == 2
    chosen = load_params(REPO / "params.yaml", ["model.base=minilm", "train.learning_rate=3e-5"])
    assert chosen.train.learning_rate == 3e-5


def test_evaluations_per_epoch_set_the_checkpoint_interval():
    from textops.modeling.train import eval_steps

    params = load_params(REPO / "params.yaml", ["model.base=tiny"])  # batch 32, 2 evaluations per epoch
    assert eval_steps(params, 10_000) == 157  # 313 steps an epoch: patience 2 is a whole epoch, not 100 steps
    assert eval_steps(load_params(REPO / "params.yaml", ["model.base=tiny", "train.save_steps=25"]), 10_000) == 25
    assert eval_steps(params, 10) == 1


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a: &a [x, x, x]\nb: [*a, *a, *a]\n", "aliases"),  # "billion laughs" grows from this
        ("train:\n  epochs: .inf\n", "finite number"),
        ("train:\n  learning_rate: .nan\n", "finite number"),
        ("<<<<<<< HEAD\ntrain: {}\n=======\n", "not valid YAML"),
    ],
)
def test_params_that_would_hang_or_crash_later_are_refused_at_once(tmp_path, text, named):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError, match=named):
        load_params(path)


def test_quantize_needs_the_onnx_runtime():
    with pytest.raises(ParamsError, match="quantize: true needs runtime: onnx"):
        load_params(REPO / "params.yaml", ["serve.runtime=torch", "serve.quantize=true"])
    assert load_params(REPO / "params.yaml", ["serve.quantize=true"]).serve.quantize


def test_tune_apply_edits_only_the_train_values_and_keeps_the_comments():
    import yaml

    from textops.core.params_file import set_section_values

    text = (REPO / "params.yaml").read_text()
    edited = set_section_values(text, "train", {"learning_rate": 0.000312, "epochs": 3, "batch_size": 16})
    changed = [(a, b) for a, b in zip(text.splitlines(), edited.splitlines(), strict=True) if a != b]
    assert [b.split(":")[0].strip() for _, b in changed] == ["epochs", "batch_size", "learning_rate"], changed
    before, after = yaml.safe_load(text), yaml.safe_load(edited)
    assert after["train"] == {**before["train"], "learning_rate": 0.000312, "epochs": 3, "batch_size": 16}
    assert {k: v for k, v in after.items() if k != "train"} == {k: v for k, v in before.items() if k != "train"}
    assert text.count("#") == edited.count("#")
    # a key the section lacks is added to it
    added = yaml.safe_load(set_section_values("train:\n  epochs: 1\nserve:\n  port: 1\n", "train", {"seed": 3}))
    assert added == {"train": {"epochs": 1, "seed": 3}, "serve": {"port": 1}}
    # a section indented by four spaces, with a nested mapping whose keys are not the section's
    four = "train:\n    epochs: 1   # one\n    nested:\n        epochs: 9\n"
    edited = set_section_values(four, "train", {"epochs": 2, "seed": 3})
    assert yaml.safe_load(edited) == {"train": {"epochs": 2, "nested": {"epochs": 9}, "seed": 3}}, edited
    assert "# one" in edited
