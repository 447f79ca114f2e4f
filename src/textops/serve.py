"""Serving: `mlflow models serve` of the champion, and batch scoring of a file.

The server is MLflow's own scoring server (FastAPI under uvicorn) started as
`mlflow models serve -m models:/NAME@champion --env-manager local`. The alias is resolved when the server
starts, so after a promotion or rollback the server must be restarted to serve the new champion.
It runs in its own process group because `mlflow models serve` starts uvicorn as a child: stopping only
the parent would leave the child holding the port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

from textops.config import Params
from textops.errors import DataError, StateError

READ_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}


def model_uri(params: Params, version: str | None = None) -> str:
    """`models:/NAME@champion`, or `models:/NAME/VERSION` for a pinned version."""
    name = params.mlflow.registered_model
    return f"models:/{name}/{version}" if version else f"models:/{name}@champion"


def serve_command(params: Params, host: str, port: int, version: str | None = None) -> list[str]:
    # `python -m mlflow`, not the `mlflow` script: the same interpreter (and virtualenv) as textops.
    return [
        sys.executable, "-m", "mlflow", "models", "serve",
        "-m", model_uri(params, version),
        "--env-manager", "local",
        "-h", host,
        "-p", str(port),
    ]  # fmt: skip


def _env(root: Path, params: Params) -> dict[str, str]:
    from textops.env import OFFLINE_ENV
    from textops.tracking import tracking_uri

    env = {**OFFLINE_ENV, **os.environ}
    # so `models:/` resolves in the server, and against this project's registry whatever the caller exported
    env["MLFLOW_TRACKING_URI"] = env["MLFLOW_REGISTRY_URI"] = tracking_uri(root, params)
    return env


def start_server(
    root: Path, params: Params, host: str | None = None, port: int | None = None, version: str | None = None, log=None
) -> subprocess.Popen:
    """Start the scoring server in a new process group; returns at once (see `wait_ready`)."""
    host = host or params.serve.host
    port = port or params.serve.port
    return subprocess.Popen(
        serve_command(params, host, port, version),
        cwd=root,
        env=_env(root, params),
        start_new_session=True,  # own process group: stop_server kills mlflow and its uvicorn child
        stdout=log if log is not None else None,
        stderr=subprocess.STDOUT if log is not None else None,
    )


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 180) -> float:
    """Poll GET /ping until the model is loaded; return seconds waited. Fails if the server exits."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise StateError(f"the model server exited with code {proc.returncode} before it was ready.")
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise StateError(f"the model server at {url} was not ready after {timeout:.0f}s.")


def stop_server(proc: subprocess.Popen, timeout: float = 15) -> None:
    """Stop the whole process group: SIGTERM, then SIGKILL if it does not exit in time."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def serve(
    root: Path, params: Params, host: str | None = None, port: int | None = None, version: str | None = None
) -> int:
    """Run the server in the foreground until Ctrl-C or SIGTERM, then stop its whole process group."""
    from textops.registry import _champion, client

    c = client(root, params)
    if version is None and _champion(c, params.mlflow.registered_model) is None:
        raise StateError(
            f"{params.mlflow.registered_model} has no champion: run `textops register` "
            "(or `textops model promote VERSION`) first."
        )
    proc = start_server(root, params, host, port, version)

    def _terminate(signum, frame):  # SIGTERM to textops: stop the group as for Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(proc)
        signal.signal(signal.SIGTERM, previous)


def read_texts(path: Path, text_column: str = "text") -> pd.DataFrame:
    """A CSV/TSV/Parquet/JSONL file with a text column."""
    path = Path(path)
    kind = READ_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use CSV, TSV, Parquet or JSONL.")
    if not path.exists():
        raise DataError(f"{path}: file not found.")
    try:
        if kind == "parquet":
            df = pd.read_parquet(path)
        elif kind == "jsonl":
            df = pd.read_json(path, lines=True)
        else:
            df = pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except Exception as exc:
        raise DataError(f"{path}: could not read it as {kind}: {exc}") from exc
    if text_column not in df.columns:
        raise DataError(f"{path}: no {text_column!r} column (columns: {', '.join(map(str, df.columns))}).")
    return df


def write_table(df: pd.DataFrame, path: Path) -> None:
    path = Path(path)
    kind = READ_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported output type {path.suffix!r}; use CSV, TSV, Parquet or JSONL.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        df.to_parquet(path, index=False)
    elif kind == "jsonl":
        df.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        df.to_csv(path, sep="\t" if kind == "tsv" else ",", index=False)


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
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException
    from rich.progress import Progress

    from textops.tracking import tracking_uri, use_store

    df = read_texts(input_path, text_column)
    texts = df[text_column].fillna("").astype(str).tolist()
    uri = tracking_uri(root, params)
    use_store(uri)
    try:
        model = mlflow.pyfunc.load_model(model_uri(params, version))
    except MlflowException as exc:
        raise StateError(
            f"cannot load {model_uri(params, version)}: {exc.message.splitlines()[0]} (see `textops model list`)."
        ) from exc
    batch_size = batch_size or params.evaluate.batch_size
    parts = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("scoring", total=len(texts))
        for i in range(0, len(texts), batch_size):
            parts.append(model.predict(pd.DataFrame({"text": texts[i : i + batch_size]})))
            bar.advance(task, len(texts[i : i + batch_size]))
    preds = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"label": []})
    preds = preds.rename(columns={"label": "pred"})
    out = pd.concat([df.reset_index(drop=True), preds], axis=1)
    write_table(out, output_path)
    return {"rows": len(out), "output": str(output_path), "model": model_uri(params, version)}
