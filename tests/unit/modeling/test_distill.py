"""Distillation's parts, in memory: the student's layers, the loss, the texts it learns from, the latency."""

from __future__ import annotations

import math

import pytest

from textops.core.errors import ParamsError
from textops.modeling.distill import (
    SoftEncoded,
    distill_texts,
    distillation_loss,
    layer_mapping,
    make_student,
    texts_md5,
)


def small_bert(layers: int):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=3,
    )
    return BertForSequenceClassification(config).eval()


def test_every_other_layer_for_half_the_depth_and_spread_for_another():
    assert layer_mapping(6, None) == [0, 2, 4]
    assert layer_mapping(6, 3) == [0, 2, 4]
    assert layer_mapping(4, None) == [0, 2]
    assert layer_mapping(6, 2) == [0, 3]
    assert layer_mapping(12, 4) == [0, 3, 6, 9]


def test_a_one_layer_champion_or_a_student_no_smaller_is_a_clear_error():
    with pytest.raises(ParamsError, match="1 layer.*cannot be distilled"):
        layer_mapping(1, None)
    for layers in (0, 6, 7):
        with pytest.raises(ParamsError, match=f"--layers {layers}.*fewer than the champion's 6"):
            layer_mapping(6, layers)


def test_the_student_of_4_layers_has_2_equal_to_the_teachers_layers_0_and_2():
    import torch

    teacher = small_bert(4)
    student, mapping = make_student(teacher, None)
    assert mapping == [0, 2]
    assert student.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4  # the teacher untouched
    assert type(student) is type(teacher)
    t, s = teacher.state_dict(), student.state_dict()
    for i, source in enumerate(mapping):
        layer = [k for k in s if k.startswith(f"bert.encoder.layer.{i}.")]
        assert layer
        for key in layer:
            assert torch.equal(s[key], t[key.replace(f"layer.{i}.", f"layer.{source}.")]), key
    for key in [k for k in s if ".encoder.layer." not in k]:  # embeddings, pooler, classifier head
        assert torch.equal(s[key], t[key]), key
    assert not torch.equal(s["bert.encoder.layer.1.output.dense.weight"], t["bert.encoder.layer.1.output.dense.weight"])
    s["bert.embeddings.word_embeddings.weight"].add_(1)  # copies, not shared tensors
    assert not torch.equal(s["bert.embeddings.word_embeddings.weight"], t["bert.embeddings.word_embeddings.weight"])
    ids = torch.tensor([[1, 5, 7, 2]])
    assert student(input_ids=ids).logits.shape == (1, 3)


def test_the_loss_is_zero_on_the_teachers_answers_and_scaled_by_t_squared():
    import torch
    import torch.nn.functional as F

    teacher = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.5]])
    assert distillation_loss(teacher, teacher, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    # log-probabilities are the same soft labels as the logits they come from
    log_probs = torch.log_softmax(teacher, dim=-1)
    student = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert distillation_loss(student, log_probs, 3.0).item() == pytest.approx(
        distillation_loss(student, teacher, 3.0).item(), rel=1e-5
    )
    for t in (1.0, 2.0, 4.0):
        p = F.softmax(teacher / t, dim=-1)
        q = F.log_softmax(student / t, dim=-1)
        expected = (p * (p.log() - q)).sum(dim=-1).mean().item() * t * t
        assert distillation_loss(student, teacher, t).item() == pytest.approx(expected, rel=1e-5)
    assert distillation_loss(student, teacher, 2.0).item() > 0
    # the gradient pulls the student towards the teacher
    s = student.clone().requires_grad_(True)
    distillation_loss(s, teacher, 2.0).backward()
    assert s.grad[1, 1] < 0 and s.grad[1, 0] > 0


def test_texts_are_the_train_split_then_the_logs_new_ones_once_without_test_texts():
    train = ["a good film", "a bad film", "a good film", "shared with test", ""]
    logged = ["from the log", "a bad film", "from the log", "shared with test", "  ", "another <EMAIL> text"]
    test = ["shared with test", "only in test"]
    texts, from_log = distill_texts(train, logged, test)
    assert texts == ["a good film", "a bad film", "from the log", "another <EMAIL> text"]
    assert from_log == 2
    assert distill_texts([], [], ["x"]) == ([], 0)
    assert texts_md5(texts) == texts_md5(list(texts)) != texts_md5(texts[::-1])
    assert texts_md5(["ab", "c"]) != texts_md5(["a", "bc"])


def test_the_trainers_rows_carry_the_teachers_soft_labels_beside_the_label():
    from transformers import BertTokenizerFast

    from textops.modeling.model import SPECIAL_TOKENS

    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, "good", "bad", "film"])}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    rows = SoftEncoded(tokenizer, ["good film", "bad"], [0, 1], 16, [[math.log(0.9), math.log(0.1)], [-2.0, -0.1]])
    assert rows[0]["labels"] == 0 and rows[0]["teacher_logits"] == pytest.approx([math.log(0.9), math.log(0.1)])
    assert rows[1]["teacher_logits"] == [-2.0, -0.1] and len(rows) == 2


def test_the_distilling_trainer_trains_on_soft_labels_and_evaluates_on_the_labels(tmp_path):
    import torch
    from transformers import BertTokenizerFast, DataCollatorWithPadding, Trainer, TrainingArguments

    from textops.modeling.distill import distilling
    from textops.modeling.model import SPECIAL_TOKENS
    from textops.modeling.train import compute_metrics

    vocab = {t: i for i, t in enumerate([*SPECIAL_TOKENS, "good", "bad", "film", "very"])}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True)
    teacher = small_bert(4)
    student, _ = make_student(teacher, 2)
    texts = ["good film", "bad film", "very good", "very bad"] * 4
    soft = [[0.0, -3.0, -3.0] if "good" in t else [-3.0, 0.0, -3.0] for t in texts]
    rows = SoftEncoded(tokenizer, texts, [0 if "good" in t else 1 for t in texts], 16, soft)
    args = TrainingArguments(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_train_epochs=20,
        learning_rate=1e-2,
        report_to="none",
        remove_unused_columns=False,
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        logging_strategy="no",
    )
    trainer = distilling(Trainer, 2.0)(
        model=student,
        args=args,
        train_dataset=rows,
        eval_dataset=rows,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
    )
    before = trainer.evaluate()["eval_loss"]
    trainer.train()
    after = trainer.evaluate()
    assert after["eval_loss"] < before and after["eval_accuracy"] == 1.0
    assert isinstance(after["eval_loss"], float) and torch.is_tensor(student.classifier.weight)


def test_latency_is_the_median_of_calls_taken_in_turns_after_a_warm_up():
    from textops.modeling import distill

    calls: list[str] = []

    class Model:
        def __init__(self, name: str) -> None:
            self.name = name

        def predict(self, frame):
            assert frame["text"].tolist() == ["one text"]
            calls.append(self.name)

    p50 = distill.p50_latencies({"student": Model("s"), "teacher": Model("t")}, "one text")
    assert set(p50) == {"student", "teacher"} and all(v >= 0 for v in p50.values())
    warm = distill.LATENCY_WARMUP
    assert calls[:warm] == ["s"] * warm and calls[warm : 2 * warm] == ["t"] * warm
    assert calls[2 * warm :] == ["s", "t"] * distill.LATENCY_REPETITIONS  # in turns
