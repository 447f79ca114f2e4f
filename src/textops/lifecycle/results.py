"""The register stage's result, and `textops distill`'s, as a person reads them (`core.results`): `textops register`,
`textops distill`, the run summary and the flows print or log the same `describe()`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textops.core import lineage
from textops.core.results import StageResult, figure


@dataclass(frozen=True)
class RegisterResult(StageResult):
    # The version registered as challenger, the decision (policy.Decision) and the evidence it was taken on (keys:
    # lineage.champion_key and the others); FORCED: promoted by a person's --force against the policy's decision.
    version: str
    promote: bool
    reason: str
    name: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    registered_before: bool = False
    forced: bool = False

    def describe(self) -> str:
        again = ", its run's version decided again" if self.registered_before else ""
        verdict = "PROMOTED, now the champion" if self.promote else "not promoted"
        forced = " (forced)" if self.forced else ""
        return f"{self.name} v{self.version} (challenger{again}): {verdict}{forced}: {self.reason}".lstrip()

    @property
    def compared_with(self) -> str | None:
        """The champion version the challenger was compared with, if any."""
        return self.evidence.get(lineage.champion_key("version"))


@dataclass(frozen=True)
class DistillResult(StageResult):
    # `lifecycle.distill.distill`'s: the student (its run, layers, texts), the p50 latencies of a text (student and
    # teacher, in the serving RUNTIME) and the registration of the student.
    student: dict[str, Any]
    latency: dict[str, float]
    registered: dict[str, Any]
    runtime: str = "torch"

    def describe(self) -> str:
        s = self.student
        mapping = s.get("mapping") or []
        line = (
            f"v{s.get('teacher_version')}'s {s.get('teacher_layers')} layers -> {len(mapping)} (teacher layers "
            f"{', '.join(map(str, mapping))}), T={s.get('temperature')}, {s.get('texts')} texts ({s.get('log_texts')} "
            f"from the request log); val macro-F1 {figure(s.get(lineage.val_metric('macro_f1')))}; p50 "
            f"{figure(self.latency.get('student'), 2)} ms vs the teacher's {figure(self.latency.get('teacher'), 2)} "
            f"ms a text ({self.runtime})"
        )
        return f"{line}\n{RegisterResult.from_dict(self.registered).describe()}"
