"""The params.yaml sections of the live side: `serve`, `monitor` and `ray` (batch scoring on a cluster)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from textops.core.config_base import Section, inside_project


class ServeParams(Section):
    host: str = "127.0.0.1"
    port: int = Field(5001, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    poll_seconds: float = Field(10, ge=0)  # 0: follow the alias only on POST /reload or SIGHUP
    batch_size: int = Field(64, ge=1)
    threads: int = Field(1, ge=1, le=64)
    # What serves, predicts and scores before a promotion: onnxruntime on the logged ONNX graph (int8 with quantize)
    runtime: Literal["torch", "onnx"] = "onnx"
    quantize: bool = False
    max_body_bytes: int = Field(10_000_000, ge=1024)
    max_texts: int = Field(1000, ge=1)
    max_chars_per_text: int = Field(100_000, ge=1)
    # POST /explain: texts per request (413 above; each costs about explain_steps forward and backward passes).
    max_explain_texts: int = Field(8, ge=1, le=1000)
    explain_steps: int = Field(32, ge=2, le=1000)
    log_requests: bool = False
    log_texts: bool = False
    # With log_texts: e-mail addresses, phone numbers, cards, IBANs, IPs, URL credentials -> <EMAIL>... before
    # any file is written (textops.core.redact; docs/privacy.md)
    redact: bool = True
    request_log_dir: str = "logs/requests"
    request_log_format: Literal["jsonl", "parquet"] = "jsonl"
    request_log_rotate_mb: float = Field(64, gt=0)
    request_log_keep: int = Field(20, ge=1)
    request_log_days: float = Field(30, gt=0)  # rows of the request log and feedback older than this are deleted
    feedback_max_age_days: float = Field(30, gt=0)
    shadow: bool = False  # also score requests with the challenger, after the answer is sent
    # The share of requests the shadow scores (by a hash of the request id), and never one answered while another
    # request is in flight: the shadow must not raise the champion's latency under load (BENCHMARKS.md).
    shadow_fraction: float = Field(0.25, ge=0, le=1)
    # The environment variable holding the token POST /feedback requires (Authorization: Bearer TOKEN), for
    # deployments whose clients are not all trusted; the token itself never goes into params (they are logged).
    feedback_token_env: str | None = None

    _paths = field_validator("request_log_dir")(inside_project)

    @model_validator(mode="after")
    def _quantize_onnx(self) -> ServeParams:
        if self.quantize and self.runtime != "onnx":
            raise ValueError("quantize: true needs runtime: onnx (the int8 graph is an ONNX one)")
        return self


class MonitorParams(Section):
    # `textops monitor` and the `monitor` flow: new texts against the champion's own data version.
    experiment: str = "textops-monitoring"  # the MLflow experiment of the monitoring runs
    report_dir: str = "reports/monitoring"  # the self-contained HTML report (index.html)
    sample_size: int = Field(2000, ge=50)  # rows of each side compared (a seeded sample of larger sets)
    min_rows: int = Field(30, ge=5)  # fewer new rows than this prove nothing: no test is run on them
    p_value: float = Field(0.01, gt=0, lt=1)  # a test's shift counts only below this p-value...
    max_ks: float = Field(0.15, gt=0, le=1)  # ...and, for the KS tests (length, confidence), above this statistic
    max_oov_increase: float = Field(0.05, gt=0, le=1)  # out-of-vocabulary word share above the reference's by this
    max_domain_auc: float = Field(0.7, gt=0.5, le=1)  # ROC-AUC of a classifier telling new from reference embeddings
    cv_folds: int = Field(5, ge=2, le=20)  # cross-validation folds of that classifier
    max_label_shift: float = Field(0.1, gt=0, le=1)  # total variation distance of label / predicted-class shares
    max_performance_drop: float = Field(0.1, gt=0, le=1)  # accuracy or macro-F1 below the champion's test figure
    # The request log's rows `monitor --requests` compares: since_last (after the last monitor of it), all, or a
    # duration (90m, 24h, 7d). A whole log at once would dilute what is new (1,000 odd texts after 20,000).
    window: str = Field("since_last", pattern=r"^(since_last|all|[1-9]\d*[mhd])$")
    seed: int = 0

    _paths = field_validator("report_dir")(inside_project)


class RayParams(Section):
    # `textops predict --engine ray` (pip install -e ".[ray]"): Ray Data streams the input through actors that
    # each load the model once.
    address: str | None = None  # an existing cluster (`ray start --head` prints it); None: RAY_ADDRESS, else local
    actors: int = Field(2, ge=1, le=1024)  # model-holding actors scoring at once
    cpus_per_actor: float = Field(1, gt=0)
    gpus_per_actor: float | None = Field(None, ge=0)  # None: 1 where the cluster has GPUs, else 0
    batch_size: int = Field(256, ge=1)  # rows an actor scores per call (in serve.batch_size chunks by length)
