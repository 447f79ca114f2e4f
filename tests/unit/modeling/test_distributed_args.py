"""The train stage's arguments under torchrun / accelerate launch: the global batch split among the processes,
and the CPU's gloo process group (without it every rank would train alone)."""

from __future__ import annotations

import pytest

from textops.core.config import Params
from textops.core.errors import ParamsError
from textops.modeling.train import per_device_batch, training_arguments, world

TINY = Params.model_validate({"model": {"base": "tiny"}})  # its presets filled (model.base auto leaves them null)


def test_the_global_batch_is_split_evenly_or_refused():
    assert per_device_batch(32, 1) == 32
    assert per_device_batch(32, 2) == 16
    with pytest.raises(ParamsError, match=r"multiple of 3 \(e\.g\. -S train\.batch_size=30\)"):
        per_device_batch(32, 3)


def test_world_comes_from_the_launcher(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert world() == (0, 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert world() == (1, 2)


def test_single_process_arguments(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    import torch

    args = training_arguments(TINY, tmp_path, 1000)
    assert args.use_cpu == (not torch.cuda.is_available())
    assert args.ddp_backend is None and args.world_size == 1
    assert args.per_device_train_batch_size == TINY.train.batch_size
    assert args.average_tokens_across_devices is False
