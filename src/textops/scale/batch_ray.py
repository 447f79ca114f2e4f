"""Batch scoring on Ray (`textops predict --engine ray`, the `[ray]` extra): Ray Data reads the input in blocks and
streams them through a pool of actors that each load the model once, on a local Ray started with the command or
on an existing cluster (`--address`, `ray.address`, `RAY_ADDRESS`).

The model travels through Ray's object store (its files, packed once by the driver), so the nodes need neither
the project nor the MLflow store. Every column is read as text, as `textops predict` reads it, and each actor
scores with the same code (`predict.predict_batches`, the serving runtime in params), so the labels and
probabilities are the in-process path's. Output: one file in, one file out in the same order, written by the
driver a block at a time (memory stays bounded); a directory or a glob in, a directory of Parquet files out
(`part-NNNNN.parquet`). Either is written aside and moved into place only when complete. A directory output is
new or empty: one that holds anything is refused, and with `overwrite` only the part files of an earlier run are
replaced there; textops never deletes what it did not write.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import secrets
import shutil
import tarfile
import tempfile
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from textops.core.config import Params
from textops.core.errors import DataError, StateError
from textops.core.formulas import neutralized_table
from textops.scale.ray_inputs import (
    BLANK_COLUMN,
    block_bytes,
    check_text_columns,
    input_files,
    read_dataset,
    scored_block,
)

PART_GLOB = "part-[0-9][0-9][0-9][0-9][0-9].parquet"  # the files write_directory writes, and the only ones it removes
NODE_COLUMN = "__textops_node"  # which node scored a row: counted by the driver, never written


def packed_model(session, uri: str) -> bytes:
    """The model's files at URI as a tar archive (what the actors unpack and load)."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="textops-ray-model-") as tmp, session.active():
        local = mlflow.artifacts.download_artifacts(uri, dst_path=tmp)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(local, arcname="model")
        return buffer.getvalue()


def unpack(tar: tarfile.TarFile, into: str) -> None:
    """Extract TAR into INTO, refusing links and paths that would land outside it (tarfile's "data" filter where
    this Python has it: 3.11.4 and later; the same checks by hand before)."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(into, filter="data")
        return
    base = os.path.realpath(into)
    for member in tar.getmembers():
        target = os.path.realpath(os.path.join(into, member.name))
        if not (member.isfile() or member.isdir()) or os.path.commonpath([base, target]) != base:
            raise DataError(f"the model archive holds {member.name!r}, which is not a plain file inside it")
    tar.extractall(into)


ACTOR_START_S = 900  # how long the actors may take to start and load the model


class Scorer:
    """A Ray actor's work: unpack and load the model once, then score blocks of rows."""

    def __init__(self, model: list, model_config: dict, text_column: str, batch_size: int, temp: str | None):
        import mlflow.pyfunc
        import ray

        from textops.core.env import set_offline_env

        set_offline_env()
        # In the local Ray's folder (removed with it); on a cluster, the node's temp folder, removed when the actor
        # ends normally.
        self.dir = tempfile.mkdtemp(prefix="textops-ray-actor-", dir=temp if temp and os.path.isdir(temp) else None)
        weakref.finalize(self, shutil.rmtree, self.dir, True)
        with tarfile.open(fileobj=io.BytesIO(ray.get(model[0]))) as tar:
            unpack(tar, self.dir)
        self.model = mlflow.pyfunc.load_model(os.path.join(self.dir, "model"), model_config=model_config)
        self.text_column, self.batch_size = text_column, batch_size
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        out = scored_block(self.model, batch, self.text_column, self.batch_size)
        out[NODE_COLUMN] = self.node
        return out


def check_reachable(address: str, timeout: float = 10) -> None:
    """A `host:port` cluster address must accept a connection: `ray.init` would otherwise retry for many minutes
    before saying anything (other forms, `ray://...` or `auto`, are left to Ray)."""
    import socket

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in host:
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {address} ({exc.strerror or exc})") from exc


def connect(params: Params, address: str | None, cpus: int | None = None) -> str | None:
    """Join the cluster ADDRESS, params' or RAY_ADDRESS names, else start a local Ray with CPUS (default: the
    actors' and one more) in a temporary folder (its path, removed after `ray.shutdown()`); None when joined."""
    import ray

    target = address or params.ray.address or os.environ.get("RAY_ADDRESS")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        if target:
            check_reachable(target)
            ray.init(address=target, log_to_driver=False, configure_logging=False)
            return None
        # A new local Ray turns on token authentication and saves a token in ~/.ray/auth_token, a file in the
        # user's home that outlives it: the same protection with a token that lives in this process's environment
        # (the raylet and the workers inherit it), unless the user chose Ray's authentication themselves.
        if not any(os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        # CPUS, by default the actors' and one more for the tasks that read the files: with only the actors' they
        # would wait for each other for ever. A short path of its own: Ray's sockets live there (not /tmp/ray).
        temp = tempfile.mkdtemp(prefix="textops-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
        cpus = cpus or int(math.ceil(params.ray.actors * params.ray.cpus_per_actor)) + 1
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False, _temp_dir=temp)
        return temp
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise StateError(
            f"cannot reach the Ray cluster at {target or 'a local Ray'}: {exc}. Start one with "
            "`ray start --head` (it prints the address), or leave --address out for a local one."
        ) from exc


@contextlib.contextmanager
def ray_session(params: Params, address: str | None, what: str, cpus: int | None = None) -> Iterator[str | None]:
    """`connect` for the block (yields the local Ray's folder, None on a cluster); Ray's own errors become a
    StateError saying it could not WHAT; a local Ray is stopped and its folder removed however the block ends."""
    import ray

    local = connect(params, address, cpus)
    try:
        yield local
    except ray.exceptions.RayError as exc:
        raise StateError(f"Ray could not {what}: {str(exc).strip().splitlines()[-1][:500]}") from exc
    finally:
        if local:
            ray.shutdown()
            shutil.rmtree(local, ignore_errors=True)


def check_output_directory(output: Path, overwrite: bool) -> None:
    """DataError unless OUTPUT can take a directory of part files: new, empty, or (OVERWRITE) holding nothing but
    an earlier run's part files and whatever else the user keeps there, which stays."""
    if output.exists() and not output.is_dir():
        raise DataError(f"{output}: a directory or glob input writes a directory of Parquet files; name a directory.")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise DataError(
            f"{output} is not empty: a directory or glob input writes its Parquet part files into a directory of "
            "their own, and textops never deletes what it did not write. Name a new or empty directory, or pass "
            f"--overwrite to replace the part files ({PART_GLOB}) of an earlier run there; nothing else in it is "
            "touched."
        )


def check_inputs(files: list[Path], output: Path, one: bool, text_column: str, overwrite: bool) -> None:
    """Before Ray starts: OUTPUT is a table file for ONE input file, else a directory it may write its parts to;
    every CSV/TSV input has TEXT_COLUMN."""
    from textops.data.readers import TEXT_FORMATS

    if one and TEXT_FORMATS.get(output.suffix.lower()) is None:
        raise DataError(f"{output}: unsupported output type {output.suffix!r}; use CSV, TSV, Parquet or JSONL.")
    if not one:
        check_output_directory(output, overwrite)
    check_text_columns(files, text_column)


def actor_resources(params: Params) -> float:
    """GPUs per scoring actor (ray.gpus_per_actor; by default one where the cluster has one); StateError when the
    actors would leave no CPU for reading the files (the reads would wait for ever)."""
    import ray

    need, cpus = params.ray.actors * params.ray.cpus_per_actor, ray.cluster_resources().get("CPU", 0)
    if cpus < need + 1:
        raise StateError(
            f"the Ray cluster has {cpus:g} CPUs: ray.actors x ray.cpus_per_actor = {need:g}, and "
            "reading the files needs one more. Lower ray.actors (-S ray.actors=N) or add nodes."
        )
    gpus = params.ray.gpus_per_actor
    return gpus if gpus is not None else (1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0)


def predict_on_ray(
    root: Path,
    params: Params,
    spec: str,
    output: Path,
    version: str | None = None,
    text_column: str = "text",
    address: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Score every row of the files SPEC names with the champion (or VERSION) on Ray; write OUTPUT (see the module
    docstring; OVERWRITE: a directory output may hold an earlier run's part files, which are replaced). Returns
    rows, blank_rows (rows of no text, left out: textops.data.texts' rule), output, model, nodes (rows per node) and
    seconds."""
    import ray

    from textops.adapters.tracking import connect as open_store
    from textops.modeling.predict import registered_uri, runtime_config

    files = input_files(spec)
    output = Path(output)
    one = len(files) == 1 and Path(spec).is_file()
    check_inputs(files, output, one, text_column, overwrite)
    uri = registered_uri(params, version)
    model = packed_model(open_store(root, params, experiment=False), uri)
    started = time.monotonic()
    with ray_session(params, address, f"score {spec}") as local:
        gpus = actor_resources(params)
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = one  # one file in: its rows in order
        ctx.target_max_block_size = block_bytes(files, params.ray.actors)  # blocks of the read size
        # Every actor holds its model before the first block goes out: otherwise the first one up takes the blocks
        # while the others still load. Past the ceiling, a cluster that cannot place them is an error, not a hang.
        ctx.wait_for_min_actors_s = ACTOR_START_S
        scored = read_dataset(files, params.ray.actors).map_batches(
            Scorer,
            batch_size=params.ray.batch_size,
            batch_format="pandas",
            concurrency=params.ray.actors,
            num_cpus=params.ray.cpus_per_actor,
            num_gpus=gpus,
            scheduling_strategy="SPREAD",  # actors over nodes
            fn_constructor_kwargs={
                "model": [ray.put(model)],
                "model_config": runtime_config(params.serve),
                "text_column": text_column,
                "batch_size": params.serve.batch_size,
                "temp": local,
            },
        )
        rows, nodes = write_one(scored, output) if one else write_directory(scored, output, overwrite)
    blank = nodes.pop(BLANK_COLUMN, 0)  # counted beside the nodes' rows by _count
    return {
        "rows": rows,
        "blank_rows": blank,
        "output": str(output),
        "model": uri,
        "nodes": nodes,
        "seconds": round(time.monotonic() - started, 1),
    }


def _count(nodes: dict, table) -> pd.DataFrame:
    """A scored block (an Arrow table) as a frame of its scored rows: its rows of no text left out and counted under
    BLANK_COLUMN, the rows per node counted in NODES. Arrow does the filtering: Ray's pandas batches are views of
    Arrow memory that pandas' own filtering can leave unwritable as CSV."""
    import pyarrow.compute as pc

    blank = table.column(BLANK_COLUMN)
    nodes[BLANK_COLUMN] = nodes.get(BLANK_COLUMN, 0) + int(pc.sum(blank).as_py() or 0)
    table = table.filter(pc.invert(blank))
    for item in pc.value_counts(table.column(NODE_COLUMN)).to_pylist():
        nodes[item["values"]] = nodes.get(item["values"], 0) + int(item["counts"])
    return table.drop_columns([NODE_COLUMN, BLANK_COLUMN]).to_pandas()


def write_one(scored, output: Path) -> tuple[int, dict]:
    """The scored rows into one file like OUTPUT's kind, a block at a time, written aside then moved into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kind = output.suffix.lower()
    output.parent.mkdir(parents=True, exist_ok=True)
    aside = output.with_name(f".{output.name}.part")
    nodes: dict[str, int] = {}  # rows per node
    rows, writer = 0, None
    try:
        with open(aside, "wb") as f:
            for batch in scored.iter_batches(batch_format="pyarrow", batch_size=None):
                frame = _count(nodes, batch)
                if frame.empty:  # a block of blank rows alone: its columns may lack the answers' types
                    continue
                if kind == ".parquet":
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    writer = writer or pq.ParquetWriter(f, table.schema)
                    writer.write_table(table)
                elif kind in (".jsonl", ".json"):
                    f.write(frame.to_json(orient="records", lines=True, force_ascii=False).encode())
                else:
                    sep = "\t" if kind == ".tsv" else ","  # a formula text is shown, not run (core.formulas)
                    f.write(neutralized_table(frame).to_csv(sep=sep, index=False, header=rows == 0).encode())
                rows += len(frame)
            if writer is not None:
                writer.close()
        os.replace(aside, output)
    finally:
        Path(aside).unlink(missing_ok=True)
    return rows, nodes


def write_directory(scored, output: Path, overwrite: bool = False) -> tuple[int, dict]:
    """The scored rows as Parquet files (`part-00000.parquet`, ...) in the directory OUTPUT, a block at a time into
    a fresh folder beside it. Complete, the folder becomes OUTPUT when there is none; else its files move into
    OUTPUT (empty, or with OVERWRITE an earlier run's part files, which are removed first: nothing else is)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_output_directory(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    aside = Path(tempfile.mkdtemp(prefix=f".{output.name}.part-", dir=output.parent))
    nodes: dict[str, int] = {}  # rows per node
    rows = 0
    try:
        for batch in scored.iter_batches(batch_format="pyarrow", batch_size=None):
            frame = _count(nodes, batch)
            if not frame.empty:  # a block of blank rows alone writes no part
                part = aside / f"part-{len(list(aside.iterdir())):05d}.parquet"
                pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), part)
            rows += len(frame)
        check_output_directory(output, overwrite)  # again: something may have landed there while Ray scored
        if not output.exists():
            os.replace(aside, output)
        else:
            for old in output.glob(PART_GLOB):
                old.unlink()
            for part in sorted(aside.iterdir()):
                os.replace(part, output / part.name)
    finally:
        shutil.rmtree(aside, ignore_errors=True)  # our own folder: a fresh name no one else writes to
    return rows, nodes
