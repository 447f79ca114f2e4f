"""What every params.yaml section shares: unknown keys and non-finite numbers refused, paths kept inside the project."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    # allow_inf_nan: `epochs: .inf` or `learning_rate: .nan` in params.yaml is a mistake to name, not a crash later.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def inside_project(value: str) -> str:
    path = Path(value)
    if path.is_absolute() or ".." in path.parts:
        raise ValueError(f"must be a relative path inside the project, got {value!r}")
    return value
