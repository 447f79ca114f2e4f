"""Scoring texts with a registered model: the one batched prediction over a loaded pyfunc, used by the
register stage (both models on the same test rows) and by `textops predict` (a file)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from textops.config import Params
from textops.errors import StateError

if TYPE_CHECKING:
    from textops.tracking import Session


def model_uri(params: Params, version: str | None = None) -> str:
    """`models:/NAME@champion`, or `models:/NAME/VERSION` for a pinned version."""
    name = params.mlflow.registered_model
    return f"models:/{name}/{version}" if version else f"models:/{name}@champion"


def load_model(session: Session, uri: str):
    """The pyfunc at URI (`models:/...`) from SESSION's store; StateError when it cannot be loaded."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        with session.active():
            return mlflow.pyfunc.load_model(uri)
    except MlflowException as exc:
        raise StateError(f"cannot load {uri}: {exc.message.splitlines()[0]} (see `textops model list`).") from exc


def predict_batches(model, texts: list[str], batch_size: int, progress: bool = False) -> pd.DataFrame:
    """The pyfunc's output (`label`, `prob_<class>`...) for TEXTS, BATCH_SIZE at a time, with a progress bar."""
    from rich.progress import Progress

    parts = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("scoring", total=len(texts))
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            parts.append(model.predict(pd.DataFrame({"text": chunk})))
            bar.advance(task, len(chunk))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"label": []})


def predict_file(
    root: Path,
    params: Params,
    input_path: Path,
    output_path: Path,
    version: str | None = None,
    batch_size: int | None = None,
    text_column: str = "text",
    progress: bool = True,
) -> dict:
    """Score every row of INPUT with the champion (or VERSION) in batches; write rows + predictions."""
    from textops.readers import read_texts, write_table
    from textops.tracking import connect

    df = read_texts(input_path, text_column)
    texts = df[text_column].fillna("").astype(str).tolist()
    uri = model_uri(params, version)
    model = load_model(connect(root, params, experiment=False), uri)
    preds = predict_batches(model, texts, batch_size or params.evaluate.batch_size, progress)
    out = pd.concat([df.reset_index(drop=True), preds.rename(columns={"label": "pred"})], axis=1)
    write_table(out, output_path)
    return {"rows": len(out), "output": str(output_path), "model": uri}
