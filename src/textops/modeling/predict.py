"""Scoring texts with a registered model: the one batched prediction over a loaded pyfunc, used by the
register stage (both models on the same test rows) and by `textops predict` (a file)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from textops.core.config import Params, ServeParams
from textops.core.errors import StateError
from textops.core.lineage import CHAMPION_ALIAS, model_uri

if TYPE_CHECKING:
    from textops.adapters.tracking import Session


def registered_uri(params: Params, version: str | None = None) -> str:
    """The project's champion (`models:/NAME@champion`), or its pinned VERSION."""
    name = params.mlflow.registered_model
    return model_uri(name, version) if version else model_uri(name, alias=CHAMPION_ALIAS)


def runtime_config(serve: ServeParams | None) -> dict:
    """The pyfunc's model_config for the serving runtime in SERVE (params.serve); None: PyTorch, what monitoring
    needs (the transformer's hidden states). onnxruntime gets as many threads as torch would (textops.core.env)."""
    from textops.core.env import usable_cpus

    omp = os.environ.get("OMP_NUM_THREADS", "")
    threads = int(omp) if omp.isdigit() and int(omp) > 0 else usable_cpus()
    if serve is None:
        return {"runtime": "torch", "quantize": False, "threads": threads}
    return {"runtime": serve.runtime, "quantize": serve.quantize, "threads": threads}


def load_model(session: Session, uri: str, serve: ServeParams | None = None):
    """The pyfunc at URI (`models:/...`) from SESSION's store, run by the runtime in SERVE (params.serve: what
    `textops serve` will run, for scoring that must match it) or by PyTorch (None); StateError when it cannot be
    loaded."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    try:
        with session.active():
            return mlflow.pyfunc.load_model(uri, model_config=runtime_config(serve))
    except MlflowException as exc:
        raise StateError(f"cannot load {uri}: {exc.message.splitlines()[0]} (see `textops model list`).") from exc


def predict_batches(model, texts: list[str], batch_size: int, progress: bool = False) -> pd.DataFrame:
    """The pyfunc's output (`label`, `prob_<class>`...) for TEXTS, BATCH_SIZE at a time (in order of length, so a
    batch pads little; the rows come back in the order of TEXTS), with a progress bar."""
    from rich.progress import Progress

    from textops.modeling.pyfunc import by_length

    parts, order = [], []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("scoring", total=len(texts))
        for rows, chunk in by_length(texts, batch_size):
            parts.append(model.predict(pd.DataFrame({"text": chunk})))
            order.extend(rows.tolist())
            bar.advance(task, len(chunk))
    if not parts:
        return pd.DataFrame({"label": []})
    frame = pd.concat(parts, ignore_index=True)
    frame.index = order
    return frame.sort_index().reset_index(drop=True)


def predict_file(
    root: Path,
    params: Params,
    input_path: Path,
    output_path: Path,
    version: str | None = None,
    batch_size: int | None = None,
    text_column: str = "text",
    progress: bool = True,
    header: bool = True,
) -> dict:
    """Score every row of INPUT with the champion (or VERSION) in batches; write rows + predictions (a row of no
    text is left out and counted: `blank_rows`, textops.data.texts has the rule both engines share). HEADER=False:
    a CSV/TSV without a header row, TEXT_COLUMN a 0-based position or, if not a number, the column with the longest
    values (the column taken is the result's `text_column`)."""
    from textops.adapters.tracking import connect
    from textops.data.readers import write_table
    from textops.data.texts import read_texts

    df = read_texts(input_path, text_column, header=header)  # rows of no text left out, counted
    column = df.attrs.get("columns", {}).get("text", text_column)  # without a header: the position taken
    texts = df[column].fillna("").astype(str).tolist()
    uri = registered_uri(params, version)
    model = load_model(connect(root, params, experiment=False), uri, params.serve)
    preds = predict_batches(model, texts, batch_size or params.evaluate.batch_size, progress)
    # The served answer's names (`label`, `prob_<class>`); an input column by one of those names (the true label of
    # a labelled file) stays, as NAME_input, so no column is lost or doubled.
    kept = {c: f"{c}_input" for c in df.columns if c in preds.columns}
    out = pd.concat([df.reset_index(drop=True).rename(columns=kept), preds], axis=1)
    write_table(out, output_path)
    return {
        "rows": len(out),
        "blank_rows": df.attrs.get("blank_rows", 0),
        "output": str(output_path),
        "model": uri,
        "text_column": column,
        "renamed": kept,
    }
