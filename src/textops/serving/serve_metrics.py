"""The server's Prometheus metrics (`GET /metrics`, text format): requests and errors by status and model
version, request latency, texts per request, reloads and failed reloads, and which version each worker serves.

One worker keeps them in a private registry. With `--workers N` every worker writes them to files in one
directory, `.textops/serve-metrics-PID` (prometheus_client's multiprocess mode: `PROMETHEUS_MULTIPROC_DIR`, set
by the worker for itself before prometheus_client is imported), and `/metrics` from any worker adds up all of them.
"""

from __future__ import annotations

import os

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TEXT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self, multiprocess_dir: str | None = None):
        if multiprocess_dir:
            # prometheus_client picks its value class from the environment when first imported: a worker of
            # `textops serve --workers N` (a process of its own) sets it before that.
            os.environ.setdefault(MULTIPROC_ENV, multiprocess_dir)
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        own = None if multiprocess_dir else self.registry  # in multiprocess mode the collector reads the files
        if multiprocess_dir:
            from prometheus_client.multiprocess import MultiProcessCollector

            MultiProcessCollector(self.registry, path=multiprocess_dir)
        by = ("status", "model_version")
        self.requests = Counter("textops_requests", "Scoring requests by status and model version.", by, registry=own)
        self.errors = Counter(
            "textops_request_errors", "Scoring requests answered 4xx/5xx, or dropped (499).", by, registry=own
        )
        self.latency = Histogram(
            "textops_request_seconds",
            "Time to answer a scoring request.",
            ["model_version"],
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.texts = Histogram(
            "textops_texts_per_request", "Texts in a scoring request.", buckets=TEXT_BUCKETS, registry=own
        )
        self.reloads = Counter("textops_model_reloads", "New model versions swapped in.", registry=own)
        self.failed_reloads = Counter(
            "textops_model_reload_failures",
            "Checks of the registry or loads of a new version that failed.",
            registry=own,
        )
        self.model = Gauge(
            "textops_model_info",
            "1 for the version this worker serves, 0 for versions it served.",
            ["model_name", "model_version"],
            multiprocess_mode="liveall",
            registry=own,
        )
        self.feedback = Counter("textops_feedback_labels", "Labels accepted by POST /feedback.", registry=own)
        self.dropped = Counter(
            "textops_requests_dropped",
            "Requests whose client disconnected before the answer; their work was dropped.",
            registry=own,
        )
        self._shadow_metrics(own)

    def _shadow_metrics(self, own) -> None:
        """The shadow challenger's: texts scored, disagreements with the answer, requests skipped, failed loads."""
        from prometheus_client import Counter

        pair = ["model_version", "shadow_version"]
        self.shadow_texts = Counter(
            "textops_shadow_texts", "Texts the shadow challenger scored after the answer.", pair, registry=own
        )
        self.shadow_disagreements = Counter(
            "textops_shadow_disagreements",
            "Texts on which the shadow challenger's label differs from the answer's.",
            pair,
            registry=own,
        )
        self.shadow_scored = Counter(
            "textops_shadow_scored", "Requests the shadow challenger scored after the answer.", registry=own
        )
        self.shadow_skipped = Counter(
            "textops_shadow_skipped",
            "Requests not shadowed, by reason: sampled_out (serve.shadow_fraction), busy (other requests in "
            "flight), backlog (too many waiting), failed (the shadow model failed).",
            ["reason"],
            registry=own,
        )
        self.shadow_load_failures = Counter(
            "textops_shadow_load_failures",
            "Checks of the challenger alias or loads of the shadow that failed.",
            registry=own,
        )

    def request(self, status: int, version: str, seconds: float, texts: int | None) -> None:
        self.requests.labels(str(status), version).inc()
        if status >= 400:
            self.errors.labels(str(status), version).inc()
        self.latency.labels(version).observe(seconds)
        if texts:
            self.texts.observe(texts)

    def serving(self, name: str, version: str, previous: str | None = None) -> None:
        if previous is not None:
            self.model.labels(name, previous).set(0)
        self.model.labels(name, version).set(1)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def worker_exited(multiprocess_dir: str, pid: int) -> None:
    """Forget a dead worker's live gauges (its counters still count)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, multiprocess_dir)
