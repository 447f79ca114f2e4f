"""`textops export --model N DIR`: a registered version as a folder anyone can load without textops, the Hugging Face
way: `transformers.pipeline("text-classification", model=DIR)` offline, with the same labels (config.json's
id2label) and the same probabilities as `textops predict` on the PyTorch runtime. Beside the weights and the tokenizer:
the model card (README.md, `registry.card`), the Croissant description of the data the version was trained on
(`croissant.json`, as its training run logged it), and with ONNX the graphs textops serves (`onnx/`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from textops.core import lineage
from textops.core.artifacts import CROISSANT_ARTIFACT, CROISSANT_FILE
from textops.core.config import Params
from textops.core.errors import StateError

HF_FILES = ("config.json", "model.safetensors")  # what a folder needs at least to be a transformers model


def export_version(root: Path, params: Params, version: str | None, out: Path, onnx: bool = False) -> dict:
    """Write model VERSION (default: the champion) to the new or empty folder OUT; returns the version, the folder
    and the files written. StateError when OUT holds files, or the version holds no transformers weights."""
    import mlflow.artifacts

    from textops.adapters.tracking import connect
    from textops.modeling import pyfunc
    from textops.registry.card import model_card
    from textops.registry.registry import champion, show_version

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StateError(f"{out}: exists and is not an empty folder; export into a new folder (nothing was written).")
    session = connect(root, params, experiment=False)
    if version is None:
        current = champion(session)
        if current is None:
            raise StateError(f"{session.model_name} has no champion: name a version (--model N, `textops model list`).")
        version = str(current.version)
    shown = show_version(root, params, version)
    uri = lineage.model_uri(session.model_name, shown["version"])
    with tempfile.TemporaryDirectory(prefix="textops-export-") as tmp, session.active():
        local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp))
        hf = local / "artifacts" / pyfunc.HF_ARTIFACT
        if not all((hf / name).exists() for name in HF_FILES):
            raise StateError(
                f"v{shown['version']} holds no transformers weights under artifacts/hf: nothing to export."
            )
        out.parent.mkdir(parents=True, exist_ok=True)  # staged beside OUT: the rename stays on one file system
        staged = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
        try:
            shutil.copytree(hf, staged, dirs_exist_ok=True)
            graphs = local / "artifacts" / pyfunc.ONNX_ARTIFACT
            if onnx and graphs.is_dir():
                shutil.copytree(graphs, staged / "onnx")
            (staged / "README.md").write_text(model_card(shown), encoding="utf-8")
            data_card = run_data_card(shown.get("run_id"), Path(tmp))
            if data_card is not None:
                shutil.copyfile(data_card, staged / CROISSANT_FILE)
            if out.exists():
                out.rmdir()
            staged.replace(out)  # the folder appears whole or not at all
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return {"version": shown["version"], "output": str(out), "files": files}


def run_data_card(run_id: str | None, tmp: Path) -> Path | None:
    """The Croissant file a training run logged of its data (inside an active session); None for a run from
    before runs logged one. Its file paths are the project's (`clean/train.parquet`): the export carries the
    description and the sha256 of each split, not the data."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"{CROISSANT_ARTIFACT}/{CROISSANT_FILE}", dst_path=str(tmp / "run")
            )
        )
    except (MlflowException, OSError):
        return None
