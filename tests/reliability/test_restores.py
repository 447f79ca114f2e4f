"""Restores and the data they protect: a damaged object in the DVC cache is caught and fetched again (or the
restore fails and changes nothing); a checkout does not silently drop an uncommitted ingest; a hand edit of
data/ is refused instead of being trained on under the old data version's name."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from helpers import digest, dvc, git, textops, two_sample_files

pytestmark = pytest.mark.reliability


@pytest.fixture
def two_versions(tmp_path, monkeypatch):
    """A project with two committed data versions, both preprocessed, pushed to the DVC remote; at v2."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = two_sample_files(tmp_path)
    revs = []
    for name in ("v1.csv", "v2.csv"):
        textops(root, "ingest", str(tmp_path / name))
        textops(root, "preprocess")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"data {name}")
        dvc(root, "push", check=True)
        revs.append(git(root, "rev-parse", "HEAD").strip())
    return root, revs


def data_bytes(root: Path) -> dict[str, str]:
    return digest(root / "data", root / "artifacts" / "clean")


def cached_objects(root: Path) -> list[Path]:
    return [p for p in (root / ".dvc" / "cache" / "files" / "md5").rglob("*") if p.is_file() and p.suffix != ".dir"]


def damage(path: Path) -> None:
    path.chmod(path.stat().st_mode | stat.S_IWUSR)
    path.write_bytes(b"{}\n" + path.read_bytes()[3:])


def test_a_damaged_cache_object_is_fetched_again_from_the_remote(two_versions):
    root, (v1, v2) = two_versions
    textops(root, "data", "checkout", v1)
    expected = data_bytes(root)
    textops(root, "data", "checkout", v2)
    for obj in cached_objects(root):  # every object of every version, v1's included
        damage(obj)
    out = textops(root, "data", "checkout", v1)
    assert "after fetching damaged files again from the DVC remote" in out.stdout, out.stdout + out.stderr
    assert data_bytes(root) == expected


@pytest.mark.extended
def test_a_restore_that_cannot_be_verified_fails_and_changes_nothing(two_versions):
    root, (v1, _) = two_versions
    before = {**data_bytes(root), **digest(root / "data.dvc", root / "dvc.lock")}
    shutil.rmtree(root.parent / f"{root.name}-remote")  # no good copy anywhere
    for obj in cached_objects(root):
        damage(obj)
    proc = textops(root, "data", "checkout", v1, check=False)
    assert proc.returncode == 1 and "could not restore the data" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert {**data_bytes(root), **digest(root / "data.dvc", root / "dvc.lock")} == before


def test_a_checkout_does_not_drop_an_uncommitted_ingest(two_versions, tmp_path):
    root, (v1, _) = two_versions
    rows = [
        f"a new review number {i} that was {['awful', 'great'][i % 2]},{['negative', 'positive'][i % 2]}\n"
        for i in range(60)
    ]
    (tmp_path / "v3.csv").write_text("text,label\n" + "".join(rows))
    textops(root, "ingest", str(tmp_path / "v3.csv"))  # not committed
    before = {**data_bytes(root), **digest(root / "data.dvc")}
    refused = textops(root, "data", "checkout", v1, check=False)
    assert refused.returncode == 1 and "neither committed nor trained on" in refused.stderr, refused.stderr
    assert "--discard" in refused.stderr and {**data_bytes(root), **digest(root / "data.dvc")} == before
    assert "restored" in textops(root, "data", "checkout", v1, "--discard").stdout


@pytest.mark.parametrize(
    "edit", ["change-a-batch", *(pytest.param(e, marks=pytest.mark.extended) for e in ("add-a-file", "delete-a-batch"))]
)
def test_a_hand_edit_of_the_raw_data_is_refused(two_versions, edit):
    root, _ = two_versions
    batch = sorted((root / "data" / "raw").glob("batch-*.jsonl"))[0]
    if edit == "change-a-batch":
        batch.chmod(batch.stat().st_mode | stat.S_IWUSR)
        with open(batch, "a", encoding="utf-8") as fh:
            fh.write('{"text":"typed in by hand","label":"positive"}\n')
    elif edit == "add-a-file":
        (root / "data" / "raw" / "extra.csv").write_text("text,label\nhand made,positive\n")
    else:
        os.remove(batch)
    for command in (["preprocess"], ["run"]):
        proc = textops(root, *command, check=False)
        assert proc.returncode == 1, (command, proc.stdout)
        assert "changed outside `textops ingest`" in proc.stderr and "dvc checkout --force data.dvc" in proc.stderr
        assert "Traceback" not in proc.stderr
    dvc(root, "checkout", "--force", "data.dvc", check=True)
    (root / "data" / "raw" / "extra.csv").unlink(missing_ok=True)
    textops(root, "preprocess")  # put back, it works again
