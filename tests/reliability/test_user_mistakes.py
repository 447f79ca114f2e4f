"""Mistakes a careless user makes, and files an attacker plants: each is one clear message and a non-zero exit,
never a traceback, and nothing outside the project is written."""

from __future__ import annotations

import json

import pytest
from helpers import data_state, digest, git, textops, two_sample_files

pytestmark = pytest.mark.reliability


def ingested_project(tmp_path):
    root = two_sample_files(tmp_path)
    textops(root, "ingest", str(tmp_path / "v1.csv"), "--commit")
    (tmp_path / "texts.csv").write_text("text\nfine\n")
    return root


@pytest.fixture
def ingested(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return ingested_project(tmp_path)


@pytest.fixture(scope="module")
def ingested_once(tmp_path_factory):
    """One project for the refused command lines: a refused command changes nothing (checked by digest)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        return ingested_project(tmp_path_factory.mktemp("mistakes"))


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["predict", "{texts}", "-o", "out.csv", "--batch-size", "0"], "--batch-size"),
        (["predict", "{texts}", "-o", "out.csv", "--batch-size", "-3"], "--batch-size"),
        (["serve", "--port", "70000"], "--port"),
        (["serve", "--port", "-1"], "--port"),
        (["ingest", "{v2}", "--text-column", "label", "--label-column", "label"], "two different columns"),
        (["data", "checkout"], "name one data version"),
        (["data", "checkout", "HEAD", "--model", "1"], "name one data version"),
        (["rollback"], "name one data version"),
        (["rollback", "--data", "nosuchrev"], "unknown revision 'nosuchrev'"),
        (["model", "show", "99"], "no version"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_wrong_command_line_is_one_message(ingested_once, args, said):
    root = ingested_once
    args = [a.format(texts=root.parent / "texts.csv", v2=root.parent / "v2.csv") for a in args]
    before = digest(root / "data"), (root / "data.dvc").read_bytes()
    proc = textops(root, *args, check=False)
    assert (digest(root / "data"), (root / "data.dvc").read_bytes()) == before
    assert proc.returncode in (1, 2), proc.stdout
    assert said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.lower().count("error") == 1 and "unexpected" not in proc.stderr, proc.stderr  # once


def test_an_output_path_that_is_a_directory(champion_template, tmp_path):
    (tmp_path / "texts.csv").write_text("text\nfine\n")
    (tmp_path / "outdir").mkdir()
    texts, out = str(tmp_path / "texts.csv"), str(tmp_path / "outdir")
    proc = textops(champion_template, "predict", texts, "-o", out, check=False)
    assert proc.returncode == 1 and "is a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_a_planted_journal_cannot_write_outside_the_project(ingested, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    journal = ingested / ".textops" / "journal.json"
    journal.parent.mkdir(exist_ok=True)
    journal.write_text(json.dumps({"op": "checkout", "pointers": {str(victim): "owned\n", "../x.txt": "owned"}}))
    proc = textops(ingested, "preprocess", check=False)
    assert proc.returncode == 1 and "outside the project" in proc.stderr and "Traceback" not in proc.stderr
    assert victim.read_text() == "precious\n" and not (tmp_path / "x.txt").exists()
    journal.write_text("{not json")  # a damaged journal is reported, not a crash
    assert textops(ingested, "preprocess", check=False).returncode == 0


def test_a_merge_conflict_in_the_pointer(ingested):
    pointer = ingested / "data.dvc"
    pointer.write_text("<<<<<<< HEAD\n" + pointer.read_text() + "=======\nouts: []\n>>>>>>> other\n")
    before = digest(ingested / "data")
    for command in (["preprocess"], ["run"], ["data", "versions"]):
        proc = textops(ingested, *command, check=False)
        assert "Traceback" not in proc.stderr, (command, proc.stderr)
        if proc.returncode:
            assert "merge conflict" in proc.stderr, (command, proc.stderr)
    assert digest(ingested / "data") == before


def test_commit_without_a_git_identity_is_refused_before_anything_is_written(ingested, tmp_path, monkeypatch):
    """`--commit` needs a git identity the user may not have set: said first, in one paragraph, with nothing
    ingested (not git's 12 lines after the batch was written), and the run is not started."""
    for name in ("GIT_AUTHOR_EMAIL", "GIT_AUTHOR_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_NAME", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    git(ingested, "config", "--unset", "user.email")
    git(ingested, "config", "--unset", "user.name")
    git(ingested, "config", "user.useConfigOnly", "true")  # no identity guessed from the host name either
    before = data_state(ingested), git(ingested, "status", "--porcelain")
    ingest = ["ingest", str(tmp_path / "v2.csv"), "--commit"]
    commands = (ingest, ["run", "--commit"], ["data", "checkout", "HEAD", "--commit"])
    for command in commands:
        proc = textops(ingested, *command, check=False)
        assert proc.returncode != 0 and "git config user.email" in proc.stderr, (command, proc.stderr)
        assert "Please tell me who you are" not in proc.stderr and "Traceback" not in proc.stderr
        assert (data_state(ingested), git(ingested, "status", "--porcelain")) == before
