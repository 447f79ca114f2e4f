"""What makes training and scoring fast without changing results: the length-grouped batch order (seeded by the
epoch, so a resume and every DDP rank draw the same batches), the max length fitted to the data, predictions in
length order put back in the caller's order, the CPU threads a process may use."""

from __future__ import annotations

import os

import numpy as np

from textops.core.config import ModelParams
from textops.core.env import set_torch_threads, usable_cpus
from textops.modeling.batches import length_grouped_sampler
from textops.modeling.model import fitted_length, load_base, train_tokenizer

TEXTS = [("word " * n).strip() for n in [3, 40, 5, 7, 90, 2, 12, 4, 6, 33, 8, 9, 10, 11, 3, 2] * 8]


def sampler_of(seed: int, lengths: list[int], batch: int = 4):
    return length_grouped_sampler(batch, lengths, seed)


def test_length_grouped_order_is_a_function_of_seed_and_epoch_and_pads_less():
    lengths = [len(t.split()) + 2 for t in TEXTS]
    a, b = sampler_of(42, lengths), sampler_of(42, lengths)
    a.set_epoch(0), b.set_epoch(0)
    first = list(a)
    assert first == list(b) == list(a)  # a fresh sampler (a resumed run, another rank) draws the same order
    assert sorted(first) == list(range(len(lengths)))  # every row once
    a.set_epoch(1)
    assert list(a) != first  # another epoch, another order
    other = sampler_of(7, lengths)
    other.set_epoch(0)
    assert list(other) != first

    def padded(order: list[int]) -> int:
        return sum(max(lengths[i] for i in order[k : k + 4]) * len(order[k : k + 4]) for k in range(0, len(order), 4))

    shuffled = np.random.default_rng(0).permutation(len(lengths)).tolist()
    assert padded(first) < 0.6 * padded(shuffled)


def test_fitted_length_is_the_percentile_rounded_up_and_capped():
    tok = train_tokenizer(TEXTS, ModelParams(base="tiny", max_length=128))
    lengths = [len(ids) for ids in tok(TEXTS)["input_ids"]]
    p99 = np.percentile(lengths, 99)
    fitted = fitted_length(tok, TEXTS, ModelParams(base="tiny", max_length=128))
    assert fitted % 8 == 0 and p99 <= fitted < p99 + 8
    assert fitted_length(tok, TEXTS, ModelParams(base="tiny", max_length=32)) == 32  # max_length caps it
    assert fitted_length(tok, TEXTS, ModelParams(base="tiny", max_length=128, length_percentile=None)) == 128
    assert fitted_length(tok, TEXTS, ModelParams(base="tiny", max_length=128), limit=64) == 64  # model positions
    short = fitted_length(tok, TEXTS, ModelParams(base="tiny", max_length=128, length_percentile=50))
    assert short < fitted


def test_predictions_in_length_order_come_back_in_the_callers_order():
    from textops.modeling.pyfunc import predict_texts

    tok, model = load_base(ModelParams(base="tiny", max_length=64), ["a", "b", "c"], TEXTS)
    together = predict_texts(model, tok, TEXTS[:40], batch_size=8)
    one_by_one = np.concatenate([predict_texts(model, tok, [t], batch_size=1) for t in TEXTS[:40]])
    assert together.shape == (40, 3)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_threads_follow_the_request_then_omp_num_threads_then_the_usable_cpus(monkeypatch):
    import torch

    before = torch.get_num_threads()
    try:
        assert 1 <= usable_cpus() <= (os.cpu_count() or 1)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert set_torch_threads(None) == usable_cpus() == torch.get_num_threads()
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_torch_threads(None) == 1 == torch.get_num_threads()
        assert set_torch_threads(2) == 2 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_the_project_env_makes_openmp_threads_wait_passively(monkeypatch):
    from textops.core.env import child_env

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert child_env()["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # a user's own choice wins
    assert child_env()["OMP_WAIT_POLICY"] == "ACTIVE"
