"""Data layer: params validation, reading files, ingest into DVC, preprocess and split, data versions."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from conftest import git, make_project, textops

from textops.config import ParamsError, load_params
from textops.data import assign_splits, clean_text, preprocess, read_labelled_file, split_position
from textops.errors import DataError
from textops.sample import make_sample

HEAVY = ("torch", "transformers", "mlflow", "prefect", "great_expectations", "dvc", "pandas", "sklearn")


def tree_digest(*paths: Path) -> dict[str, str]:
    """sha256 of every file under the given paths (missing paths map to nothing)."""
    out = {}
    for base in paths:
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def sample_rows(rows: int, seed: int) -> list[tuple[str, str]]:
    return list(make_sample(rows, seed).itertuples(index=False, name=None))


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    pd.DataFrame(rows, columns=list(header)).to_csv(path, index=False)
    return path


# -------------------------------------------------------------------------------------------------- params


def test_default_params_load():
    params = load_params(Path(__file__).parents[1] / "params.yaml")
    assert params.model.base == "tiny"
    assert params.validation.min_rows_per_class >= 1


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("train:\n  epochs: 3\n  lerning_rate: 0.1\n", "train.lerning_rate"),
        ("train:\n  batch_size: many\n", "train.batch_size"),
        ("data:\n  split:\n    val: 0.9\n", "data.split.val"),
        ("data:\n  clean_dir: ../outside\n", "data.clean_dir"),
        ("model:\n  tiny:\n    hidden_size: 65\n    num_heads: 2\n", "model.tiny"),
        ("bogus_section: {}\n", "bogus_section"),
    ],
)
def test_bad_params_name_the_key_and_file(tmp_path, yaml_text, named):
    path = tmp_path / "params.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert named in str(err.value) and str(path) in str(err.value)


def test_bad_params_exit_code_2(project):
    (project / "params.yaml").write_text("train:\n  epochs: -1\n")
    proc = textops(project, "preprocess", check=False)
    assert proc.returncode == 2
    assert "train.epochs" in proc.stderr and "params.yaml" in proc.stderr


def test_help_imports_nothing_heavy():
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom textops.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -------------------------------------------------------------------------------------------------- reading


def test_sample_is_deterministic_and_learnable():
    a, b = make_sample(500, 1), make_sample(500, 1)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(make_sample(500, 2))
    assert set(a["label"]) == {"negative", "positive"}
    assert a["text"].str.contains(" but ").any() and a["text"].str.contains(r"\bnot\b").any()
    # Learnable, but not trivially: a TF-IDF bigram model gets most of it right, not all of it.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    big = make_sample(2000, 13)
    features = TfidfVectorizer(ngram_range=(1, 2)).fit_transform(big["text"])
    accuracy = cross_val_score(LogisticRegression(max_iter=1000), features, big["label"], cv=5).mean()
    assert 0.75 <= accuracy <= 0.95, accuracy


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet", "csv.gz"])
def test_read_formats_with_non_latin_text(tmp_path, fmt):
    frame = pd.DataFrame(
        {"review": ["这部电影很好看", "Отличный фильм", "ひどい映画だった"], "topic": ["Sports", "World", "Sports"]}
    )
    path = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        path.write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False).encode())  # UTF-8 with BOM
    elif fmt == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif fmt == "parquet":
        frame.to_parquet(path)
    else:
        path.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    out = read_labelled_file(path, "review", "topic", max_file_mb=1)
    assert out["text"].tolist() == frame["review"].tolist()
    assert out["label"].tolist() == ["Sports", "World", "Sports"]


def test_line_endings_outside_quoted_fields():
    from textops.data import line_endings

    assert line_endings("a,b\n1,2\n") == {"LF": 1}
    assert line_endings("a,b\r\n1,2\r\n") == {"CRLF": 2}
    # Excel: CRLF rows, LF inside a quoted cell: consistent
    assert line_endings('text,label\r\n"two\nlines",pos\r\n') == {"CRLF": 2}
    assert line_endings("a,b\r\n1,2\n3,4\r5,6\r\n") == {"CRLF": 2, "LF": 1, "CR": 1}
    assert line_endings('{"text": "x"}\r\n{"text": "y"}\n', quoted=False) == {"CRLF": 1, "LF": 1}


def test_integer_labels_normalised(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "good one", "label": 1}\n{"text": "bad one", "label": 0}\n')
    assert read_labelled_file(path, "text", "label", 1)["label"].tolist() == ["1", "0"]


# -------------------------------------------------------------------------------------------------- bad input


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    cases = {}

    def put(name: str, content: bytes | str) -> None:
        path = tmp / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        cases[name] = path

    put("missing_text.csv", "review,label\nnice,positive\n")
    put("missing_label.csv", "text,sentiment\nnice,positive\n")
    put("empty.csv", b"")
    put("header_only.csv", "text,label\n")
    put("all_null_text.csv", "text,label\n,positive\n,negative\n")
    put("unknown_label.csv", "text,label\na fine film,positve\na dull film,negative\n")
    put("binary.csv", bytes(range(256)) * 40)
    put("latin1.csv", "text,label\ncaf\xe9 was great,positive\n".encode("latin-1"))
    put("ragged.csv", "text,label\nfine,positive\nbad,negative,extra,cols\n")
    put("repeated_header.csv", "text,label\nfine film,positive\ntext,label\ndull film,negative\n")
    put("huge_row.csv", "text,label\n" + "x" * 10_000_000 + ",positive\n")
    put("mixed_label_types.jsonl", '{"text": "fine film", "label": 1}\n{"text": "dull film", "label": "negative"}\n')
    put("float_labels.csv", "text,label\nfine film,0.5\ndull film,1.5\n")
    put("broken_line.jsonl", '{"text": "fine film", "label": "positive"}\n{"text": "dull\n')
    put("not_parquet.parquet", "text,label\nfine,positive\n")
    put("wrong_ext.xlsx", "text,label\nfine,positive\n")
    put("zip_bomb.csv.gz", gzip.compress(b"text,label\n" + b"a" * (3 * 2**20)))
    put("missing_labels.csv", "text,label\nfine film,positive\ndull film,\n")
    return cases


BAD_CASES = [
    "missing_text.csv", "missing_label.csv", "empty.csv", "header_only.csv", "all_null_text.csv",
    "unknown_label.csv", "binary.csv", "latin1.csv", "ragged.csv", "repeated_header.csv", "huge_row.csv",
    "mixed_label_types.jsonl", "float_labels.csv", "broken_line.jsonl", "not_parquet.parquet", "wrong_ext.xlsx",
    "zip_bomb.csv.gz", "missing_labels.csv",
]


@pytest.fixture(scope="module")
def ingested_template(tmp_path_factory):
    """A project with one good batch ingested and committed (labels negative/positive), made once."""
    root = make_project(tmp_path_factory.mktemp("template") / "proj")
    good = write_csv(root.parent / "good.csv", sample_rows(300, 5))
    textops(root, "ingest", str(good), "--commit")
    params = root / "params.yaml"
    params.write_text(params.read_text().replace("max_file_mb: 200", "max_file_mb: 2"))
    return root


@pytest.fixture
def ingested(ingested_template, tmp_path):
    """A private copy of the template project for one test."""
    root = tmp_path / "proj"
    shutil.copytree(ingested_template, root, symlinks=True)
    return root


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_input_is_refused_and_nothing_changes(ingested, tmp_path, name):
    bad = _bad_inputs(tmp_path)[name]
    before = tree_digest(ingested / "data", ingested / "data.dvc", ingested / ".dvc" / "cache")
    proc = textops(ingested, "ingest", str(bad), check=False)
    assert proc.returncode != 0, proc.stdout
    assert "error:" in proc.stderr and str(bad) in proc.stderr.replace("\n", "")
    assert "Traceback" not in proc.stderr
    assert tree_digest(ingested / "data", ingested / "data.dvc", ingested / ".dvc" / "cache") == before


# -------------------------------------------------------------------------------------------------- ingest


def test_ingest_versions_with_dvc_and_reingest_is_noop(project):
    src = write_csv(project.parent / "reviews.csv", sample_rows(200, 3))
    out = textops(project, "ingest", str(src), "--commit").stdout
    assert "ingested" in out and "200 rows" in out
    batches = list((project / "data" / "raw").glob("batch-*.jsonl"))
    assert len(batches) == 1
    assert "data: ingest reviews.csv" in git(project, "log", "--format=%s", "-1")
    md5 = json.dumps((project / "data.dvc").read_text())
    remote = project.parent / f"{project.name}-remote"
    assert any(remote.rglob("*")), "dvc push did not reach the local remote"

    again = textops(project, "ingest", str(src)).stdout
    assert "already ingested" in again
    assert json.dumps((project / "data.dvc").read_text()) == md5


def test_ingest_same_rows_in_another_format_is_noop(project):
    rows = sample_rows(120, 4)
    textops(project, "ingest", str(write_csv(project.parent / "a.csv", rows)))
    tsv = project.parent / "a.tsv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tsv, sep="\t", index=False)
    assert "already ingested" in textops(project, "ingest", str(tsv)).stdout


# -------------------------------------------------------------------------------------------------- preprocess


def test_clean_text_normalises():
    decomposed = unicodedata.normalize("NFD", "café")
    out = clean_text(pd.Series([f"  {decomposed}\t is \n\n GOOD  ", "a\x00b"]), lowercase=True)
    assert out.tolist() == ["café is good", "a b"]


def test_split_is_stable_as_data_grows():
    texts = pd.Series([f"text number {i}" for i in range(3000)])
    labels = pd.Series([i % 3 for i in range(3000)]).to_numpy()
    small = assign_splits(split_position(texts[:1000]), labels[:1000], 0.1, 0.1)
    large = assign_splits(split_position(texts), labels, 0.1, 0.1)
    assert (small == large[:1000]).all()
    share = pd.Series(large).value_counts(normalize=True)
    assert 0.07 < share["test"] < 0.13 and 0.07 < share["val"] < 0.13


def test_rare_class_reaches_every_split():
    texts = pd.Series([f"t{i}" for i in range(200)])
    labels = pd.Series([0] * 196 + [1] * 4).to_numpy()
    split = assign_splits(split_position(texts), labels, 0.1, 0.1)
    assert {s for s, y in zip(split, labels, strict=True) if y == 1} == {"train", "val", "test"}


def test_preprocess_cleans_dedupes_and_maps_labels(project):
    rows = [(f"Story number {i} about sport", "Sports") for i in range(60)]
    rows += [(f"Story number {i} about the world", "World") for i in range(60)]
    rows += [("Story number 0 about sport", "Sports")] * 3  # exact duplicates
    rows += [("a contested headline", "Sports"), ("a contested headline", "World")]  # conflicting labels
    rows += [("x", "World")]  # too short
    textops(project, "ingest", str(write_csv(project.parent / "news.csv", rows)))
    params = load_params(project / "params.yaml")
    stats = preprocess(project, params.data)
    assert stats["rows_in"] == len(rows)
    assert stats["dropped"] == {"empty": 0, "too_short": 1, "too_long": 0, "duplicate": 3, "conflicting_labels": 2}
    assert stats["labels"] == ["Sports", "World"] and stats["rows_out"] == 120
    clean = project / "artifacts" / "clean"
    splits = {s: pd.read_parquet(clean / f"{s}.parquet") for s in ("train", "val", "test")}
    assert sum(len(f) for f in splits.values()) == 120
    for frame in splits.values():
        assert set(frame["label"]) == {0, 1} and str(frame["label"].dtype) == "int64"
    all_texts = pd.concat(splits.values())["text"]
    assert all_texts.is_unique
    assert json.loads((clean / "labels.json").read_text())["labels"] == ["Sports", "World"]
    metrics = json.loads((project / "metrics" / "preprocess.json").read_text())
    assert metrics["splits"] == stats["splits"]


# -------------------------------------------------------------------------------------------------- versions


def dvc(cwd: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_data_checkout_restores_an_earlier_version_byte_exact(project):
    v1 = write_csv(project.parent / "v1.csv", sample_rows(300, 1))
    textops(project, "ingest", str(v1))
    dvc(project, "repro", "preprocess")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "data v1")
    dvc(project, "push")
    rev1 = git(project, "rev-parse", "HEAD").strip()
    state1 = tree_digest(project / "data", project / "artifacts" / "clean")

    v2 = write_csv(project.parent / "v2.csv", sample_rows(300, 2))
    textops(project, "ingest", str(v2))
    dvc(project, "repro", "preprocess")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "data v2")
    dvc(project, "push")
    assert tree_digest(project / "data", project / "artifacts" / "clean") != state1

    versions = textops(project, "data", "versions").stdout
    assert rev1[:8] in versions and versions.count("\n") >= 2

    # Empty the local cache: the data must come back from the remote.
    shutil.rmtree(project / ".dvc" / "cache")
    out = textops(project, "data", "checkout", rev1).stdout
    assert "restored" in out
    assert tree_digest(project / "data", project / "artifacts" / "clean") == state1
    assert git(project, "show", f"{rev1}:data.dvc") == (project / "data.dvc").read_text()


def test_data_checkout_of_unknown_rev_changes_nothing(project):
    textops(project, "sample")
    before = tree_digest(project / "data", project / "data.dvc")
    proc = textops(project, "data", "checkout", "no-such-rev", check=False)
    assert proc.returncode == 1 and "unknown revision" in proc.stderr
    assert tree_digest(project / "data", project / "data.dvc") == before


def test_read_refuses_directory(tmp_path):
    with pytest.raises(DataError, match="not a regular file"):
        read_labelled_file(tmp_path, "text", "label", 1)
