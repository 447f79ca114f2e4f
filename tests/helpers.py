"""Helpers of the test suite (a module, not conftest.py: tests import it by name, `from helpers import ...`).

The generic ones (a throwaway project, running `textops`/`dvc` in it, serving and load) are `support` (tests/support),
shared with the benchmarks; here are the test-only ones: the one set of FAST params and its variants, data
and models for the registry and serving tests, snapshots of what must not change, fault injection.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from support import (  # noqa: F401  (re-exported for the tests)
    FAST,
    REPO,
    TEXTS,
    background_load,
    champion_project,
    copy_project,
    dvc,
    free_port,
    git,
    load,
    make_project,
    merge,
    post_raw,
    request,
    serving,
    set_params,
    textops,
    wait_for,
)

TESTS = Path(__file__).resolve().parent  # on sys.path: `helpers`, `support` (the helpers shared with benchmarks/)

# GLUE SST-2 (train.tsv, dev.tsv): TEXTOPS_SST2, or ../shared/datasets/sst2 beside the checkout (README, Tests).
SST2 = Path(os.environ.get("TEXTOPS_SST2") or REPO.parent / "shared" / "datasets" / "sst2")

# The flow tests: a few hundred rows and one epoch; they check the flow's wiring, not the model, so neither the
# floor nor the TF-IDF baseline (which such a model may lose to) stands in the way of a promotion.
FLOW = {
    "sample": {"rows": 400},
    "train": {"epochs": 1, "batch_size": 32, "save_steps": 1000},
    "promotion": {"floor": 0.0, "beat_baseline": False},
}
# The registry and serving tests: tiny models trained on two data versions and registered through the CLI; the
# first champion is deliberately weak (floor 0, no baseline rule: the registry's mechanics are under test).
TINY = {
    "sample": {"rows": 1500, "seed": 13},
    "train": {"epochs": 4, "batch_size": 32, "save_steps": 1000, "logging_steps": 20},
    "promotion": {"floor": 0.0, "min_delta": 0.01, "max_p_value": 0.05, "beat_baseline": False},
}
# A model that learns nothing: one step at a vanishing learning rate.
WEAK = {"train": {"epochs": 1, "learning_rate": 1e-9, "max_train_samples": 32, "warmup_ratio": 0.0}}


# --------------------------------------------------------------------------------------------------
# a project and the commands in it


@contextmanager
def sampled_project(factory: pytest.TempPathFactory, name: str, params: dict) -> Iterator[Path]:
    """For module fixtures: a new project with PARAMS and the sample ingested, the current directory while the
    block runs, on its own MLflow store whatever the caller's environment says."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        root = make_project(factory.mktemp(name) / "proj")
        mp.chdir(root)
        set_params(root, params, commit=False)
        textops(root, "sample")
        yield root


# --------------------------------------------------------------------------------------------------
# data and models for the registry, serving and training tests


def easy_reviews(rows: int = 480, seed: int = 0) -> pd.DataFrame:
    """Reviews whose label a few hundred rows can teach (the built-in sample needs thousands)."""
    import random

    rng = random.Random(seed)
    good = ["great", "wonderful", "superb", "lovely", "brilliant", "delightful"]
    bad = ["awful", "terrible", "boring", "dreadful", "clumsy", "tedious"]
    things = ["film", "plot", "cast", "story", "ending", "script", "score", "pacing"]
    fillers = ["the", "honestly", "really", "this", "overall", "quite", "i think", "frankly"]
    out = []
    for i in range(rows):
        label = "positive" if i % 2 else "negative"
        words = good if label == "positive" else bad
        text = " ".join(
            [
                rng.choice(fillers),
                rng.choice(things),
                "was",
                rng.choice(words),
                "and",
                rng.choice(fillers),
                rng.choice(things),
                "felt",
                rng.choice(words),
                f"#{i}",
            ]
        )
        out.append({"text": text, "label": label})
    return pd.DataFrame(out)


def commit_all(root: Path, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", message], cwd=root, check=True)


def prepare_data(root: Path) -> None:
    textops(root, "preprocess")
    textops(root, "validate")
    commit_all(root, "data version")


def train_and_register(root: Path, *overrides: dict) -> str:
    """Train and evaluate with OVERRIDES on top of FAST and TINY, register; return the register command's output."""
    set_params(root, FAST, TINY, *overrides, commit=False)
    textops(root, "train")
    textops(root, "evaluate")
    out = textops(root, "register").stdout
    set_params(
        root,
        FAST,
        TINY,
        {"train": {"epochs": 4, "learning_rate": 0.002, "max_train_samples": None, "warmup_ratio": 0.1}},
        commit=False,
    )
    return out


def second_data_version(root: Path) -> None:
    """Ingest another batch of the sample generator (another seed): a new raw and cleaned data version."""
    extra = root.parent / "extra.csv"
    set_params(root, {"sample": {"seed": 99, "rows": 600}}, commit=False)
    textops(root, "sample", "--no-ingest", "--output", str(extra))
    set_params(root, {"sample": {"seed": 13, "rows": 1500}}, commit=False)
    textops(root, "ingest", str(extra))
    prepare_data(root)


def in_process(root: Path, code: str) -> dict:
    """Run CODE in a fresh interpreter in ROOT with flows importable; it must print one JSON line last."""
    script = "import sys, json\nfrom textops.flows import configure_prefect\n"
    script += f"configure_prefect(__import__('pathlib').Path({str(root)!r}))\n" + code
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def registry(root: Path) -> dict:
    """Champion version and every version's test metrics (not throughput), read from the project's store."""
    return in_process(
        root,
        "from mlflow import MlflowClient\n"
        "from textops.core.config import load_params\n"
        "from textops.adapters.tracking import connect\n"
        "p = load_params('params.yaml'); c = connect(__import__('pathlib').Path('.').resolve(), p).client\n"
        "name = p.mlflow.registered_model\n"
        "vs = c.search_model_versions(f\"name='{name}'\")\n"
        "out = {'champion': str(c.get_model_version_by_alias(name, 'champion').version),\n"
        "       'metrics': {v.version: {k: m for k, m in c.get_run(v.run_id).data.metrics.items()\n"
        "                               if k.startswith('test_') and 'second' not in k} for v in vs}}\n"
        "print(json.dumps(out))\n",
    )


@contextmanager
def active_store(root: Path) -> Iterator[None]:
    """MLflow's fluent API pointed at ROOT's store for the block (`mlflow.pyfunc.load_model("models:/...")`)."""
    from textops.adapters.tracking import connect
    from textops.core.config import load_params

    with connect(root, load_params(root / "params.yaml"), experiment=False).active():
        yield


# --------------------------------------------------------------------------------------------------
# snapshots and faults


# Secret-looking environment values: the champion project is built with them set; none may be written anywhere.
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "aws-secret-7f3c9a1e5b",
    "MLFLOW_TRACKING_PASSWORD": "mlflow-password-2d8e4b",
    "HF_TOKEN": "hf_token_9c1a7e3f5d",
    "GITHUB_TOKEN": "ghp_token_4b6d8f0a2c",
    "DATABASE_PASSWORD": "db-password-6e2a9c4f",
    "OPENAI_API_KEY": "sk-apikey-1f5b3d7e9a",
}


def digest(*paths: Path) -> dict[str, str]:
    """sha256 of every file under PATHS (a missing path contributes nothing), keyed by path."""
    out = {}
    for base in paths:
        if base.is_file():
            files = [base]
        else:
            files = sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def data_state(root: Path) -> dict[str, str]:
    """data/, data.dvc and the DVC cache: what a refused input must leave byte-identical."""
    return digest(root / "data", root / "data.dvc", root / ".dvc" / "cache")


def mlflow_client(root: Path):
    """(an MlflowClient on ROOT's store, tracking and registry; the registered model's name)."""
    from mlflow import MlflowClient

    from textops.adapters.tracking import tracking_uri
    from textops.core.config import load_params

    params = load_params(root / "params.yaml")
    uri = tracking_uri(root, params)
    return MlflowClient(tracking_uri=uri, registry_uri=uri), params.mlflow.registered_model


def registry_state(root: Path) -> dict:
    """Every registered version with its decision tag, the aliases and the champion history."""
    client, name = mlflow_client(root)
    versions = client.search_model_versions(f"name='{name}'")
    model = client.get_registered_model(name) if versions else None
    return {
        "versions": sorted((str(v.version), v.run_id, v.tags.get("textops.decision")) for v in versions),
        "aliases": {k: str(v) for k, v in sorted(model.aliases.items())} if model else {},
        "history": json.loads(model.tags.get("textops.champion_history", "[]")) if model else [],
    }


def run_status(root: Path, run_id: str) -> str:
    return mlflow_client(root)[0].get_run(run_id).info.status


def textops_python(cwd: Path, code: str, *args: str) -> subprocess.Popen:
    """Start `textops ARGS` in a fresh interpreter after running CODE (fault injection: CODE can wrap a library
    function so that the process SIGKILLs itself at an exact point). Output goes to cwd/../proc-<pid>.log."""
    script = (
        "import os, signal, sys\n"
        "def die():\n    os.kill(os.getpid(), signal.SIGKILL)\n"
        f"{code}\n"
        "from textops.ui.cli import app\n"
        f"sys.exit(app({list(args)!r}, standalone_mode=True))\n"
    )
    log = open(Path(cwd).parent / f"proc-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-c", script], cwd=cwd, stdout=log, stderr=subprocess.STDOUT)


def killed(proc: subprocess.Popen, timeout: float = 600) -> bool:
    """Wait for PROC; True when it died of SIGKILL."""
    proc.wait(timeout=timeout)
    return proc.returncode == -signal.SIGKILL


def two_sample_files(tmp_path: Path) -> Path:
    """A new project in TMP_PATH/proj with FAST params, and two labelled files of the built-in sample next to it
    (v1.csv: 1,000 rows, seed 13; v2.csv: 300 rows, seed 99), not ingested."""
    root = make_project(tmp_path / "proj")
    set_params(root, FAST)
    textops(root, "sample", "--no-ingest", "--output", str(tmp_path / "v1.csv"))
    set_params(root, {"sample": {"seed": 99, "rows": 300}})
    textops(root, "sample", "--no-ingest", "--output", str(tmp_path / "v2.csv"))
    return root


# What the export and pyfunc tests fit a tiny classifier to (random weights: the export, not the model, is tested).
EXPORT_TEXTS = [f"the {w} was {'not ' * (i % 2)}good, really {w}" for i, w in enumerate(["film", "plot", "cast"] * 12)]


def tiny_classifier(path: Path) -> Path:
    """A tiny classifier with random weights fitted to EXPORT_TEXTS, saved in PATH as the train stage saves it."""
    import torch

    from textops.core.config import ModelParams
    from textops.modeling.model import load_base

    torch.manual_seed(0)
    tok, model = load_base(ModelParams(base="tiny", max_length=32), ["neg", "pos"], EXPORT_TEXTS)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


# --------------------------------------------------------------------------------------------------
# the deploy files


DEPLOYED_UNIT = REPO / "deploy/systemd/textops-worker.service"


def deployments() -> dict[str, dict]:
    """prefect.yaml's deployments by name."""
    import yaml

    return {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}


# --------------------------------------------------------------------------------------------------
# HTTP against the scoring server


def listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a socket LISTENing on PORT (from /proc/net/tcp*)."""
    import ipaddress

    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local_addr, state = line.split()[1], line.split()[3]
            address, port_hex = local_addr.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(address)
            if width == 8:
                found.add(str(ipaddress.IPv4Address(raw[::-1])))
            else:  # four little-endian 32-bit words
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(str(ipaddress.IPv6Address(words)))
    return found


# --------------------------------------------------------------------------------------------------
# a stand-in registry for the serving unit tests (the integration tests use the real one)


class StandInModel:
    """Answers like the logged pyfunc (`label`, `prob_negative`, `prob_positive`): positive iff 'good' is in the
    text, with a probability that names the version, so a test can tell which version answered."""

    def __init__(self, version: str, delay: float = 0.0):
        self.version, self.delay, self.calls = version, delay, 0

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        texts = frame["text"].tolist()
        p = [0.5 + int(self.version) / 100 if "good" in t else 0.5 - int(self.version) / 100 for t in texts]
        labels = ["positive" if x > 0.5 else "negative" for x in p]
        return pd.DataFrame({"label": labels, "prob_negative": [1 - x for x in p], "prob_positive": p})


class StandInSource:
    """A registry of stand-in versions: `target` is where the alias points; `broken` versions fail to load;
    `gate` (a threading.Event), when set up, holds every load until it is set."""

    alias = "champion"

    def __init__(self, target: str = "1", broken: tuple[str, ...] = ()):
        self.version, self.broken, self.gate, self.loads, self.down = target, set(broken), None, [], False

    def target(self) -> str:
        if self.down:
            raise ConnectionError("registry unreachable")
        return self.version

    def load(self, version: str):
        from textops.serving.follow import Loaded

        self.loads.append(version)
        if self.gate is not None:
            self.gate.wait(30)
        if version in self.broken:
            raise OSError(f"No such file or directory: 'artifacts/{version}/model.safetensors'")
        return Loaded(
            StandInModel(version),
            "stand-in",
            version,
            self.alias,
            time.time(),
            0.0,
            {"raw_md5": f"md5-{version}", "rev": f"rev-{version}"},
            f"run-{version}",
        )


def registry_problems(client, name: str) -> list[str]:
    """What is wrong with the registry of NAME ([] when it is sound): every version READY, from a FINISHED run,
    with its whole evidence (decision, challenger run); aliases and the champion history name existing versions."""
    problems = []
    versions = {str(v.version): v for v in client.search_model_versions(f"name='{name}'")}
    for number, mv in versions.items():
        if mv.status != "READY":
            problems.append(f"v{number} is {mv.status}")
        if mv.tags.get("textops.decision") not in ("promoted", "rejected"):
            problems.append(f"v{number} has no decision tag: {mv.tags}")
        if mv.tags.get("textops.challenger.run_id") != mv.run_id:
            problems.append(f"v{number} lacks its evidence (challenger.run_id)")
        status = client.get_run(mv.run_id).info.status
        if status != "FINISHED":
            problems.append(f"v{number}'s run {mv.run_id} is {status}")
    if not versions:
        return problems
    model = client.get_registered_model(name)
    for alias, number in model.aliases.items():
        if str(number) not in versions:
            problems.append(f"alias {alias} names v{number}, which does not exist")
    promoted = any(mv.tags.get("textops.decision") == "promoted" for mv in versions.values())
    if promoted and "champion" not in model.aliases:
        problems.append("a version was promoted but there is no champion")
    for entry in json.loads(model.tags.get("textops.champion_history", "[]")):
        if str(entry["version"]) not in versions:
            problems.append(f"the champion history names v{entry['version']}, which does not exist")
    return problems


# --------------------------------------------------------------------------------------------------
# How often a command opens the MLflow store (issue 34: one session per command)

STORE_AUDIT = TESTS / "store_audit"  # its sitecustomize.py logs a process's opens


def audited(log: Path) -> dict[str, str]:
    """The environment under which a `textops` command logs every open of its mlflow.db to LOG, a line each with
    the textops frames that opened it (tests/store_audit/sitecustomize.py)."""
    path = os.pathsep.join(p for p in (str(STORE_AUDIT), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "STORE_AUDIT_LOG": str(log)}


def logged_opens(log: Path) -> list[str]:
    """The opens an `audited` command logged (none when it opened nothing), LOG removed for the next command."""
    if not log.exists():
        return []
    lines = log.read_text().splitlines()
    log.unlink()
    return lines


_COUNTERS: list[list[str]] = []


def _count_store_opens(event: str, args: tuple) -> None:
    if event == "sqlite3.connect" and _COUNTERS and args and "mlflow.db" in str(args[0]):
        for opens in _COUNTERS:
            opens.append(str(args[0]))


@contextmanager
def store_opens() -> Iterator[list[str]]:
    """The SQLite connections to an mlflow.db this process opens in the block (an audit hook: installed once, it
    stays for the process's life, and counts only inside such a block)."""
    if not getattr(sys, "_textops_store_audit", False):
        sys.addaudithook(_count_store_opens)
        sys._textops_store_audit = True  # type: ignore[attr-defined]
    opens: list[str] = []
    _COUNTERS.append(opens)
    try:
        yield opens
    finally:
        _COUNTERS.remove(opens)


def dvc_cached(root: Path, data: bytes, suffix: str = "") -> str:
    """Put DATA in ROOT's local DVC cache under its md5, where DVC 3 keeps it by default; the md5 (with SUFFIX:
    `.dir` for a directory's listing). For unit tests that read a data version without running DVC."""
    md5 = hashlib.md5(data).hexdigest() + suffix
    path = root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return md5
