"""Security: params cannot make the pipeline write outside the project, secrets in the environment never reach
MLflow, Prefect or any file the pipeline writes, and loading or serving a model unpickles nothing.
(The servers' loopback binding is checked on the real server in test_serving.py.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, SECRETS, digest, git, make_project, mlflow_client, registry_state, textops

pytestmark = pytest.mark.reliability


# --------------------------------------------------------------------------------------------------
# paths


def _symlinked_artifacts(root: Path, outside: Path) -> str:
    shutil.rmtree(root / "artifacts", ignore_errors=True)  # the project ships artifacts/.gitignore
    (root / "artifacts").symlink_to(outside, target_is_directory=True)
    return "data:\n  clean_dir: artifacts/clean\n"


ESCAPES = {
    "absolute": ("data:\n  clean_dir: {outside}/clean\n", "data.clean_dir"),
    "dot-dot": ("train:\n  output_dir: ../../escaped\n", "train.output_dir"),
    "dot-dot-inside": ("evaluate:\n  output_dir: artifacts/../../escaped\n", "evaluate.output_dir"),
    "report-dir": ("validate:\n  report_dir: /tmp/textops-docs\n", "validate.report_dir"),
    "artifact-location": ("mlflow:\n  artifact_location: ../mlartifacts\n", "mlflow.artifact_location"),
    "sqlite-store": ("mlflow:\n  tracking_uri: sqlite:///../outside.db\n", "mlflow.tracking_uri"),
    "symlink": (_symlinked_artifacts, "data.clean_dir"),
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_params_cannot_point_outside_the_project(case, tmp_path):
    root = make_project(tmp_path / "proj")
    outside = tmp_path / "outside"
    outside.mkdir()
    template, key = ESCAPES[case]
    text = template(root, outside) if callable(template) else template.format(outside=outside)
    (root / "params.yaml").write_text(text)
    for command in (["preprocess"], ["train"], ["run"]):
        proc = textops(root, *command, check=False)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert key in proc.stderr and "params.yaml" in proc.stderr, proc.stderr
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "outside.db").exists()


# --------------------------------------------------------------------------------------------------
# secrets


PLANTED = {  # textops' own state paths a link could be planted at, and the command that would follow it
    "staging": (".textops/staging", ["ingest", "{new}"]),
    "checkout-backup": (".textops/checkout-backup", ["data", "checkout", "HEAD~1"]),
    "lock-holder": (".textops/data.lock.holder", ["ingest", "{new}"]),
    "state-dir": (".textops", ["ingest", "{new}"]),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_links_planted_in_textops_state_are_refused(case, tmp_path):
    """A symbolic link at the staging folder, the checkout backup, a lock's holder file or .textops itself would
    make the next command delete, write or move files outside the project: refused, nothing outside touched."""
    root = make_project(tmp_path / "proj")
    for seed in (1, 2):
        sample = tmp_path / f"v{seed}.csv"
        textops(
            root, "sample", "--no-ingest", "-S", f"sample.seed={seed}", "-S", "sample.rows=150", "--output", str(sample)
        )
        textops(root, "ingest", str(sample), "--commit")
    outside = tmp_path / "outside"
    (outside / "data" / "raw").mkdir(parents=True)
    (outside / "keep.txt").write_text("not textops' to delete\n")
    (outside / "data" / "raw" / "batch-x.jsonl").write_text('{"text": "planted", "label": "positive"}\n')
    rel, args = PLANTED[case]
    target = root / rel
    if target.is_dir() and not target.is_symlink():
        import shutil

        shutil.rmtree(target)
    target.unlink(missing_ok=True)
    target.symlink_to(outside / "keep.txt" if case == "lock-holder" else outside)
    before = {**digest(outside), **digest(root / "data", root / "data.dvc")}
    new = tmp_path / "new.csv"
    textops(root, "sample", "--no-ingest", "-S", "sample.seed=3", "-S", "sample.rows=150", "--output", str(new))
    proc = textops(root, *[a.format(new=new) for a in args], check=False)
    assert proc.returncode != 0 and "symbolic link" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert {**digest(outside), **digest(root / "data", root / "data.dvc")} == before


def test_secrets_in_the_environment_are_never_written(champion_template):
    """The champion project was built (`textops run`: Prefect flow, DVC, GX, training, MLflow registry) with
    SECRETS in its environment; none of them may appear in any file it wrote, Prefect's and MLflow's
    databases included."""
    root = champion_template
    hits = []
    for path in root.rglob("*"):
        if not path.is_file() or ".git" in path.relative_to(root).parts:
            continue  # git objects are compressed; what git tracks is checked in the working tree itself
        content = path.read_bytes()
        hits += [f"{path}: {name}" for name, value in SECRETS.items() if value.encode() in content]
    assert hits == []
    # and the run's params and tags, as MLflow returns them
    c = mlflow_client(root)[0]
    run_id = registry_state(root)["versions"][0][1]
    run = c.get_run(run_id)
    logged = json.dumps({**run.data.params, **run.data.tags})
    assert not [name for name, value in SECRETS.items() if value in logged]
    assert run.data.tags["textops.owner.pid"]  # the run's tags were there to look at


def test_credentials_in_a_tracking_uri_are_masked():
    from textops.core.config import Params
    from textops.core.params_file import flatten, redact

    assert redact("https://alice:s3cr3t@mlflow.example.com/") == "https://alice:***@mlflow.example.com/"
    assert redact("postgresql://u:p%40ss@db:5432/mlflow") == "postgresql://u:***@db:5432/mlflow"
    assert redact("sqlite:///mlruns/mlflow.db") == "sqlite:///mlruns/mlflow.db"
    params = Params.model_validate({"mlflow": {"tracking_uri": "https://alice:s3cr3t@mlflow.example.com"}})
    assert "s3cr3t" not in json.dumps(flatten(params))


# --------------------------------------------------------------------------------------------------
# pickles

NO_PICKLE = """
import pickle, os
marker = os.environ["PICKLE_MARKER"]
def refuse(*a, **k):
    open(marker, "a").write("unpickled\\n")
    raise RuntimeError("textops tried to unpickle something")
pickle.load = pickle.loads = refuse
class _Refuse(pickle.Unpickler):
    def load(self):
        refuse()
pickle.Unpickler = _Refuse
import cloudpickle
cloudpickle.load = cloudpickle.loads = refuse
"""


def test_loading_and_serving_a_model_unpickles_nothing(champion_template, tmp_path):
    root = champion_template
    # A booby-trapped pickle in the data directory: whoever unpickles it writes the marker.
    marker = tmp_path / "unpickled"
    trap = root / "data" / "raw" / "model.pkl"
    trap.write_bytes(b"cos\nsystem\n(S'echo trapped >> " + str(marker).encode() + b"'\ntR.")
    try:
        # The logged models contain no pickle at all.
        models = [p for p in (root / "mlruns").rglob("*") if p.is_file() and "models" in p.parts]
        assert models and not [p for p in models if p.read_bytes()[:2] in (b"\x80\x04", b"\x80\x05", b"\x80\x02")]
        texts = tmp_path / "in.csv"
        texts.write_text("text\nthe movie was wonderful\nthe battery was awful\n")
        script = NO_PICKLE + (
            "from textops.ui.cli import app\n"
            "import sys\n"
            f"sys.argv = ['textops', 'predict', {str(texts)!r}, '--output', {str(tmp_path / 'out.csv')!r}]\n"
            "app()\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", script],
            cwd=root,
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "PICKLE_MARKER": str(marker)},
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        assert "2 rows scored" in proc.stdout
        assert not marker.exists(), marker.read_text()
    finally:
        trap.unlink()
    assert git(root, "status", "--porcelain", "data.dvc") == ""


def test_model_code_is_the_shipped_pyfunc(champion_template):
    """The model is logged as code: the file MLflow runs on load is textops' own pyfunc.py, byte for byte."""
    root = champion_template
    shipped = digest(REPO / "src" / "textops" / "modeling" / "pyfunc.py")
    logged = [p for p in (root / "mlruns").rglob("pyfunc.py")]
    assert logged
    assert {digest(p)[str(p)] for p in logged} == set(shipped.values())
