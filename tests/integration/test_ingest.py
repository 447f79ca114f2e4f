"""Ingest into DVC (a bad file changes nothing; the same rows again are a no-op), preprocess in a project, and
data versions restored byte-exact from the DVC remote."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import digest, dvc, git, make_project, textops

from textops.core.config import load_params
from textops.data.preprocess import preprocess
from textops.data.sample import make_sample


def sample_rows(rows: int, seed: int) -> list[tuple[str, str]]:
    return list(make_sample(rows, seed).itertuples(index=False, name=None))


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    pd.DataFrame(rows, columns=list(header)).to_csv(path, index=False)
    return path


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
    put("headerless.csv", "a fine film,positive\na dull film,negative\n")
    return cases


BAD_CASES = [
    "missing_text.csv",
    "missing_label.csv",
    "empty.csv",
    "header_only.csv",
    "all_null_text.csv",
    "unknown_label.csv",
    "binary.csv",
    "latin1.csv",
    "ragged.csv",
    "repeated_header.csv",
    "huge_row.csv",
    "mixed_label_types.jsonl",
    "float_labels.csv",
    "broken_line.jsonl",
    "not_parquet.parquet",
    "wrong_ext.xlsx",
    "zip_bomb.csv.gz",
    "missing_labels.csv",
    "headerless.csv",
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


def status(root: Path) -> dict:
    """`textops status --json`: what a program reads of the project."""
    return json.loads(textops(root, "status", "--json").stdout)


@pytest.fixture
def ingested(ingested_template, tmp_path):
    """A private copy of the template project for one test."""
    root = tmp_path / "proj"
    shutil.copytree(ingested_template, root, symlinks=True)
    return root


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_input_is_refused_and_nothing_changes(ingested, tmp_path, name):
    bad = _bad_inputs(tmp_path)[name]
    before = digest(ingested / "data", ingested / "data.dvc", ingested / ".dvc" / "cache")
    proc = textops(ingested, "ingest", str(bad), check=False)
    assert proc.returncode != 0, proc.stdout
    assert "error:" in proc.stderr and str(bad) in proc.stderr.replace("\n", "")
    assert "Traceback" not in proc.stderr
    assert digest(ingested / "data", ingested / "data.dvc", ingested / ".dvc" / "cache") == before


def test_a_headerless_file_is_named_and_ingests_with_no_header(ingested, tmp_path):
    """Without a header row the first row is data: the message says so and offers --no-header, which reads the
    columns by position (here label first, as many public CSV files have it) and keeps `NA` and `null` as texts."""
    rows = [(label, text) for text, label in sample_rows(120, 9)] + [("positive", "NA"), ("negative", "null")]
    path = tmp_path / "headerless.csv"
    pd.DataFrame(rows).to_csv(path, index=False, header=False)
    refused = textops(ingested, "ingest", str(path), check=False)
    assert refused.returncode != 0 and "looks like data, not a header" in refused.stderr
    assert "--no-header" in refused.stderr and "Traceback" not in refused.stderr
    out = textops(ingested, "ingest", str(path), "--no-header").stdout
    assert "ingested" in out and "122 rows" in out
    from textops.core.artifacts import read_raw

    raw = read_raw(ingested, load_params(ingested / "params.yaml"))
    assert {"NA", "null"} <= set(raw["text"]) and set(raw["label"]) == {"negative", "positive"}
    assert set(raw["text"]) >= {text for _, text in rows}


def test_a_batch_that_relabels_texts_in_the_data_is_held(ingested, tmp_path):
    """Flipped labels on copies of texts already in the data (plus new rows): preprocess would drop every
    contradicted row as a conflicting duplicate, champion's test rows included. The batch is named and held."""
    flipped = [(text, "negative" if label == "positive" else "positive") for text, label in sample_rows(300, 5)]
    path = write_csv(tmp_path / "flipped.csv", flipped[:200] + sample_rows(100, 31))
    before = digest(ingested / "data", ingested / "data.dvc", ingested / ".dvc" / "cache")
    held = textops(ingested, "ingest", str(path), check=False)
    assert held.returncode != 0 and "200 of 300 rows give texts already in the data another label" in held.stderr
    assert "held for a person" in held.stderr and "--allow-relabel" in held.stderr
    assert "Traceback" not in held.stderr
    assert digest(ingested / "data", ingested / "data.dvc", ingested / ".dvc" / "cache") == before
    # A few corrections among many new rows pass with a warning; a person can let the whole batch in.
    few = write_csv(tmp_path / "few.csv", flipped[:1] + sample_rows(200, 32))
    assert "ingested" in textops(ingested, "ingest", str(few)).stdout
    assert "ingested" in textops(ingested, "ingest", str(path), "--allow-relabel").stdout


@pytest.mark.parametrize("edit", ["truncate", "relabel"])
def test_ingest_refuses_to_version_a_hand_edited_batch(ingested, tmp_path, edit):
    """A batch in data/raw changed by hand would become part of the next data version, unseen: refused first."""
    batch = next((ingested / "data" / "raw").glob("batch-*.jsonl"))
    batch.chmod(0o644)
    lines = batch.read_text().splitlines()
    changed = lines[:10] if edit == "truncate" else [line.replace('"positive"', '"negative"') for line in lines]
    batch.write_text("\n".join(changed) + "\n")
    before = digest(ingested / "data", ingested / "data.dvc", ingested / ".dvc" / "cache")
    new = write_csv(tmp_path / "new.csv", sample_rows(150, 41))
    proc = textops(ingested, "ingest", str(new), "--commit", check=False)
    assert proc.returncode != 0 and "changed outside `textops ingest`" in proc.stderr, proc.stderr
    assert "dvc checkout --force data.dvc" in proc.stderr and "Traceback" not in proc.stderr
    assert digest(ingested / "data", ingested / "data.dvc", ingested / ".dvc" / "cache") == before


def test_ingest_without_git_is_a_message_and_changes_nothing(ingested, tmp_path):
    import shutil as sh

    sh.rmtree(ingested / ".git")
    before = digest(ingested / "data", ingested / "data.dvc", ingested / ".dvc" / "cache")
    proc = textops(ingested, "ingest", str(write_csv(tmp_path / "n.csv", sample_rows(150, 43))), check=False)
    assert proc.returncode != 0 and "is not a git repository" in proc.stderr, proc.stderr
    assert "likely a bug" not in proc.stderr and "Traceback" not in proc.stderr
    assert digest(ingested / "data", ingested / "data.dvc", ingested / ".dvc" / "cache") == before


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


def test_preprocess_cleans_dedupes_and_maps_labels(project):
    rows = [(f"Story number {i} about sport", "Sports") for i in range(60)]
    rows += [(f"Story number {i} about the world", "World") for i in range(60)]
    rows += [("Story number 0 about sport", "Sports")] * 3  # exact duplicates
    rows += [("a contested headline", "Sports"), ("a contested headline", "World")]  # conflicting labels
    rows += [("x", "World")]  # too short
    textops(project, "ingest", str(write_csv(project.parent / "news.csv", rows)))
    params = load_params(project / "params.yaml")
    stats = preprocess(project, params)
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


def test_data_checkout_restores_an_earlier_version_byte_exact(project):
    v1 = write_csv(project.parent / "v1.csv", sample_rows(300, 1))
    textops(project, "ingest", str(v1))
    dvc(project, "repro", "preprocess", check=True)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "data v1")
    dvc(project, "push", check=True)
    rev1 = git(project, "rev-parse", "HEAD").strip()
    state1 = digest(project / "data", project / "artifacts" / "clean")
    card1 = (project / "artifacts" / "croissant.json").read_bytes()  # preprocess wrote it, even under dvc repro

    v2 = write_csv(project.parent / "v2.csv", sample_rows(300, 2))
    textops(project, "ingest", str(v2))
    dvc(project, "repro", "preprocess", check=True)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "data v2")
    dvc(project, "push", check=True)
    assert digest(project / "data", project / "artifacts" / "clean") != state1

    versions = textops(project, "data", "versions").stdout
    assert rev1[:8] in versions and versions.count("\n") >= 2

    # Empty the local cache: the data must come back from the remote.
    shutil.rmtree(project / ".dvc" / "cache")
    out = textops(project, "data", "checkout", rev1).stdout
    assert "restored" in out
    assert digest(project / "data", project / "artifacts" / "clean") == state1
    assert git(project, "show", f"{rev1}:data.dvc") == (project / "data.dvc").read_text()
    # The checkout wrote the restored version's Croissant file (byte-exact: no time in it) and recorded it.
    assert (project / "artifacts" / "croissant.json").read_bytes() == card1
    assert "up to date" in dvc(project, "status", "dvc.yaml:croissant", check=True).stdout


def test_data_checkout_of_unknown_rev_changes_nothing(project):
    textops(project, "sample")
    before = digest(project / "data", project / "data.dvc")
    proc = textops(project, "data", "checkout", "no-such-rev", check=False)
    assert proc.returncode == 1 and "unknown revision" in proc.stderr
    assert digest(project / "data", project / "data.dvc") == before


def test_a_landing_file_ingested_by_hand_leaves_the_waiting_list_either_way(ingested):
    """`textops ingest landing/FILE` settles the file as the retrain flow does: in, to landing/ingested/; refused for
    its data, to landing/held/ with the reason beside it; `status` then counts neither as waiting."""
    landing = ingested / "landing"
    landing.mkdir()
    write_csv(landing / "more.csv", sample_rows(200, 6))
    write_csv(landing / "typo.csv", [(t, "positve" if lab == "positive" else lab) for t, lab in sample_rows(60, 7)])
    assert sorted(status(ingested)["landing"]) == ["more.csv", "typo.csv"]

    textops(ingested, "ingest", "landing/more.csv")
    assert (landing / "ingested" / "more.csv").exists() and not (landing / "more.csv").exists()
    refused = textops(ingested, "ingest", str(landing / "typo.csv"), check=False)
    assert refused.returncode == 1 and "landing/held/" in refused.stderr, refused.stderr
    assert "'positve'" in (landing / "held" / "typo.csv.reason.txt").read_text()
    settled = status(ingested)
    assert settled["landing"] == [] and settled["landing_held"] == ["typo.csv"], settled


def test_texts_a_file_gives_two_labels_are_named_when_it_goes_in(ingested):
    rows = sample_rows(100, 8) + [
        ("two annotators disagreed here", "positive"),
        ("two annotators disagreed here ", "negative"),
    ]
    out = textops(ingested, "ingest", str(write_csv(ingested.parent / "disagree.csv", rows)))
    assert "1 text(s) come with two or more labels" in out.stderr and "disagreed" in out.stderr, out.stderr


def test_batches_are_removed_as_a_new_data_version_and_come_back_with_a_checkout(ingested):
    first = sorted(p.name for p in (ingested / "data" / "raw").glob("batch-*.jsonl"))
    textops(ingested, "ingest", str(write_csv(ingested.parent / "more.csv", sample_rows(200, 6))), "--commit")
    added = sorted(set(p.name for p in (ingested / "data" / "raw").glob("batch-*.jsonl")) - set(first))
    before = git(ingested, "rev-parse", "HEAD").strip()

    # A name that matches nothing, and removing every batch, are refused and change nothing.
    state = digest(ingested / "data", ingested / "data.dvc")
    unknown = textops(ingested, "data", "remove", "batch-nothing", check=False)
    assert unknown.returncode == 1 and first[0] in unknown.stderr, unknown.stderr
    everything = textops(ingested, "data", "remove", *first, *added, check=False)
    assert everything.returncode == 1 and "would leave no data" in everything.stderr, everything.stderr
    assert digest(ingested / "data", ingested / "data.dvc") == state

    out = textops(ingested, "data", "remove", added[0][:14], "--commit").stdout
    assert "removed 1 batch(es), 200 rows" in out, out
    assert sorted(p.name for p in (ingested / "data" / "raw").glob("batch-*.jsonl")) == first
    assert "remove" in git(ingested, "log", "-1", "--format=%s")
    textops(ingested, "data", "checkout", before)
    assert added[0] in [p.name for p in (ingested / "data" / "raw").glob("batch-*.jsonl")]


def test_one_formula_among_many_rows_is_set_aside_and_the_rest_go_in(ingested):
    landing = ingested / "landing"
    landing.mkdir()
    rows = sample_rows(150, 9) + [('=HYPERLINK("http://evil.example/x","click")', "positive")]
    write_csv(landing / "feedback-1.csv", rows)
    out = textops(ingested, "ingest", "landing/feedback-1.csv").stdout
    assert "151 rows" not in out and "150 rows" in out and "set aside 1 row(s) holding a spreadsheet formula" in out
    aside = pd.read_csv(landing / "held" / "feedback-1.csv.set-aside.csv")
    assert aside["text"].tolist() == ['\'=HYPERLINK("http://evil.example/x","click")'], aside
    assert (landing / "ingested" / "feedback-1.csv").exists()
    assert status(ingested)["landing"] == []


def test_the_data_version_is_described_in_croissant_which_mlcroissant_reads(ingested):
    import mlcroissant as mlc

    more = write_csv(ingested.parent / "more.csv", sample_rows(200, 11))
    textops(ingested, "ingest", str(more), "--license", "CC-BY-4.0", "--source", "https://example.org/reviews")
    path = ingested / "artifacts" / "croissant.json"
    textops(ingested, "preprocess")  # writes the Croissant file of the new data version and records it in dvc.lock
    written = path.read_bytes()
    out = textops(ingested, "data", "card").stdout
    assert "data card: dvc-md5:" in out and path.read_bytes() == written, out  # the same data, the same bytes
    lock = yaml.safe_load((ingested / "dvc.lock").read_text())["stages"]["croissant"]
    assert lock["outs"][0] == {
        **lock["outs"][0],
        "path": "artifacts/croissant.json",
        "md5": hashlib.md5(written).hexdigest(),
    }
    card = json.loads(path.read_text())
    assert sorted(card["license"]) == ["CC-BY-4.0", "unknown"]  # the first batch recorded none

    dataset = mlc.Dataset(jsonld=str(path))
    clean = ingested / "artifacts" / "clean"
    train = pd.read_parquet(clean / "train.parquet")
    records = list(dataset.records("train"))
    assert len(records) == len(train)
    assert records[0]["train/text"].decode() == train["text"].iloc[0]
    names = [r["labels/name"] for r in dataset.records("labels")]
    assert [n.decode() if isinstance(n, bytes) else n for n in names] == json.loads(
        (clean / "labels.json").read_text()
    )["labels"]
