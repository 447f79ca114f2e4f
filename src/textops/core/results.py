"""What the stages' typed results share (`data.results`, `modeling.results`, `lifecycle.results`): built from the
dict a stage returns (`from_dict`), given back whole for `--json` and the flow's summary (`to_dict`), and one
`describe()`, the line a person reads: the CLI prints it, the flow logs it as its stage's note."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self


@dataclass(frozen=True)
class StageResult:
    # The stage's dict as it came: what `to_dict` gives back, so a program reading `--json` sees every key it saw.
    source: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, kw_only=True)

    @classmethod
    def from_dict(cls, result: Mapping[str, Any]) -> Self:
        """The typed view of a stage's RESULT dict (a key the class does not name stays in `to_dict`)."""
        named = {f.name for f in fields(cls) if f.init and f.name != "source"}
        return cls(**{k: v for k, v in result.items() if k in named}, source=dict(result))

    def to_dict(self) -> dict[str, Any]:
        """The stage's dict: as it came when built `from_dict`, else the named fields."""
        if self.source:
            return dict(self.source)
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "source"}

    def describe(self) -> str:
        """The line(s) a person reads about this result."""
        raise NotImplementedError


def figure(value: Any, digits: int = 4) -> str:
    """VALUE with DIGITS decimals, or `-` when it is no number (a figure a stage could not measure)."""
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return "-"
