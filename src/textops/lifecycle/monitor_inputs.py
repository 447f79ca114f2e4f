"""What a monitor compares with the champion's data: new labelled files, or a window of the request log."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from textops.core.config import Params
from textops.core.errors import DataError, StateError


def read_new_files(paths: list[Path], params: Params) -> pd.DataFrame:
    """The rows of PATHS: `text`, and `label` (strings) where every file has the label column; DataError naming
    a file that cannot be read."""
    from textops.data.readers import read_labelled_file
    from textops.data.texts import read_texts

    data = params.data
    frames = []
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError(
                f"{path}: no such file; give labelled or unlabelled files with a {data.text_column!r} "
                "column (CSV, TSV, JSONL or Parquet)."
            )
        try:
            frame = read_labelled_file(
                path, data.text_column, data.label_column, data.max_file_mb, params.validation.max_invalid_fraction
            )
        except DataError:
            frame = read_texts(path, data.text_column)  # unlabelled: a text column is enough
            if data.label_column in frame.columns:
                raise  # labelled, but the labels are bad: say so
            frame = frame.rename(columns={data.text_column: "text"})[["text"]].dropna()
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    if any("label" not in f.columns for f in frames):
        rows = rows[["text"]]
    return rows


def read_request_log(root: Path, params: Params, since: str | None = None, until: str | None = None) -> pd.DataFrame:
    """The serving request log's rows in the window SINCE < time <= UNTIL (`request_log_reader.read_window`): `chars`,
    the served `predicted` class, its `confidence`, and `text` where the log kept texts (serve.log_texts);
    StateError when there is no log, or none of it can be read yet."""
    from textops.live.request_log_reader import read_window

    directory = Path(root) / params.serve.request_log_dir
    rows, read = read_window(directory, since, until)
    if read["files"] == 0:
        raise StateError(
            f"no request log in {directory}: set serve.log_requests: true in params.yaml and restart "
            "`textops serve`, or give files to monitor."
        )
    if read["files"] == len(read["unreadable"]):
        raise StateError(
            f"no file of the request log in {directory} could be read ({', '.join(read['unreadable'][:3])}): "
            "damaged or not written by `textops serve`; move them aside and let the server log again."
        )
    rows.attrs["read"] = read
    return rows.drop(columns="time")


# --------------------------------------------------------------------------------------------------
# the champion: its data version, its encoder
