"""What `predict --engine ray` reads from a directory or a glob: its readable files, never through a symbolic
link (it can point outside the project); the rows Arrow reads there are the local reader's; and an output
directory it may write into."""

from __future__ import annotations

import pytest

from textops.core.errors import DataError
from textops.scale.batch_ray import check_output_directory
from textops.scale.ray_inputs import input_files


def test_a_link_in_the_input_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secrets.csv").write_text("text\nnot yours\n")
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "a.csv").write_text("text\nfine\n")
    (folder / "notes.txt.bak").write_text("skipped: not a readable kind")
    assert [p.name for p in input_files(str(folder))] == ["a.csv"]
    (folder / "b.csv").symlink_to(outside / "secrets.csv")
    for spec in (folder, folder / "*.csv"):  # refused with the link named, not skipped in silence
        with pytest.raises(DataError, match=r"symbolic links \(b.csv -> .*secrets.csv\), which predict does not"):
            input_files(str(spec))
    assert input_files(str(folder / "b.csv")) == [folder / "b.csv"]  # named on its own: the user's choice


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


def test_arrow_reads_the_rows_the_local_reader_reads_and_flags_the_same_blank_ones(tmp_path):
    """One rule on both engines: `NA`, `null`, `N/A`, `None` are texts; `""`, spaces and a blank line are rows of no
    text, left out and counted alike (Arrow with Ray's options here, without a cluster)."""
    import pyarrow.csv as pacsv

    from textops.data.texts import blank_texts, read_texts
    from textops.scale.ray_inputs import csv_options

    for name, body in (
        ("one.csv", 'text\nNA\nnull\nN/A\nNone\n""\n   \n\nhello\ngood movie\n'),
        ("two.tsv", "id\ttext\n1\tNA\n\n2\t   \n3\t\n4\tnull\n"),
    ):
        path = tmp_path / name
        path.write_text(body)
        arrow = pacsv.read_csv(path, **csv_options(path, 1 << 16)).to_pandas()
        blank = blank_texts(arrow["text"])
        local = read_texts(path)
        assert arrow["text"][~blank].tolist() == local["text"].tolist()
        assert int(blank.sum()) == local.attrs["blank_rows"] == 3
    assert local["text"].tolist() == ["NA", "null"] and local["id"].tolist() == ["1", "4"]
