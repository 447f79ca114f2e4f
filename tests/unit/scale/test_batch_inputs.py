"""What `predict --engine ray` reads from a directory or a glob: its readable files, never through a symbolic
link (it can point outside the project), and an output directory it may write into."""

from __future__ import annotations

import pytest

from textops.core.errors import DataError
from textops.scale.batch_ray import check_output_directory, input_files


def test_a_link_in_the_input_folder_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secrets.csv").write_text("text\nnot yours\n")
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "a.csv").write_text("text\nfine\n")
    (folder / "notes.txt.bak").write_text("skipped: not a readable kind")
    (folder / "b.csv").symlink_to(outside / "secrets.csv")
    assert [p.name for p in input_files(str(folder))] == ["a.csv"]
    assert [p.name for p in input_files(str(folder / "*.csv"))] == ["a.csv"]
    (folder / "a.csv").unlink()
    with pytest.raises(DataError, match="symbolic links are not followed: b.csv"):
        input_files(str(folder))


def test_an_output_directory_that_holds_anything_needs_overwrite(tmp_path):
    check_output_directory(tmp_path / "new", overwrite=False)  # new: fine
    (tmp_path / "empty").mkdir()
    check_output_directory(tmp_path / "empty", overwrite=False)
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "results.csv").write_text("mine")
    with pytest.raises(DataError, match="is not empty"):
        check_output_directory(tmp_path / "kept", overwrite=False)
    check_output_directory(tmp_path / "kept", overwrite=True)
    (tmp_path / "file.parquet").write_text("x")
    with pytest.raises(DataError, match="name a directory"):
        check_output_directory(tmp_path / "file.parquet", overwrite=True)
