"""The command line in-process: the same project options on every command, errors as exit codes, the run summary
and status. Its start-up and exit codes in a fresh interpreter are tests/integration/test_fresh_interpreter.py."""

from __future__ import annotations

import pytest


def test_every_command_takes_the_params_file_and_overrides():
    from typer.main import get_command

    from textops.ui.cli import app

    def leaves(cmd, path=()):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from leaves(sub, (*path, name))
        else:
            yield " ".join(path), cmd

    found = dict(leaves(get_command(app)))
    assert {"run", "train", "data checkout", "model list", "rollback", "serve"} <= set(found)
    for name, cmd in found.items():
        options = {opt for param in cmd.params for opt in param.opts}
        assert {"--params", "--set", "-S"} <= options, name


# Each command with the arguments it needs to get as far as reading its params.
COMMANDS = [
    ["ingest", "x.csv"],
    ["sample"],
    ["preprocess"],
    ["validate"],
    ["train"],
    ["evaluate"],
    ["register"],
    ["serve"],
    ["predict", "x.csv", "-o", "y.csv"],
    ["explain", "a text"],
    ["run"],
    ["rollback", "--data", "HEAD"],
    ["data", "versions"],
    ["data", "checkout", "HEAD"],
    ["data", "remove", "batch-x"],
    ["data", "card"],
    ["model", "list"],
    ["model", "show", "1"],
    ["model", "promote", "1", "--reason", "r"],
    ["model", "rollback"],
    ["model", "promote-check"],
    ["monitor", "x.csv"],
    ["status"],
    ["export", "out"],
    ["feedback", "export"],
    ["label", "queue"],
    ["forget", "--request-id", "r"],
    ["tune"],
    ["distill"],
]


def test_the_command_list_is_complete():
    from typer.main import get_command

    from textops.ui.cli import app

    group = get_command(app)
    names = {" ".join(c[:2]) if c[0] in ("data", "model", "feedback", "label") else c[0] for c in COMMANDS}
    leaves = {
        f"{n} {s}" if hasattr(cmd, "commands") else n
        for n, cmd in group.commands.items()
        for s in getattr(cmd, "commands", {None: None})
    }
    assert leaves == names


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_every_command_reads_the_params_file_it_is_given(tmp_path, monkeypatch, args):
    from typer.testing import CliRunner

    from textops.ui.cli import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("train:\n  epochs: 3\n")  # valid: a command that read it goes on
    (tmp_path / "strict.yaml").write_text("train:\n  epochs: 3\n  warmup: 0.1\n")  # only this one is bad
    result = CliRunner().invoke(app, [*args, "--params", "strict.yaml"])
    assert result.exit_code == 2, result.output
    assert "strict.yaml" in result.output and "train.warmup" in result.output
    overridden = CliRunner().invoke(app, [*args, "-S", "train.epochs=0"])
    assert overridden.exit_code == 2 and "-S train.epochs=0" in overridden.output, overridden.output


def test_the_run_summary_names_the_baseline_beside_the_model():
    from textops.ui.console import run_summary

    summary = {
        "evaluate": {
            "accuracy": 0.8,
            "macro_f1": 0.7996,
            "baseline": {"model": "TF-IDF + logistic regression", "accuracy": 0.7647, "macro_f1": 0.7647},
        },
        "register": {"name": "m", "version": "2", "promote": False, "reason": "loses to the baseline"},
    }
    table = run_summary(summary)
    rows = {line.split("  ")[0].strip(): line.split()[-2:] for line in table.splitlines() if line.strip()}
    assert rows["challenger v2"] == ["0.8000", "0.7996"], table
    assert rows["baseline (TF-IDF)"] == ["0.7647", "0.7647"], table
    assert "registered m v2 (challenger): not promoted: loses to the baseline" in table
    # With the champion it was compared with (its primary metric from the registry's evidence).
    evidence = {"challenger.macro_f1": 0.7996, "champion.version": "1", "champion.macro_f1": 0.81}
    summary["register"]["evidence"] = evidence
    assert run_summary(summary).splitlines()[2].split()[-3:] == ["v1", "-", "0.8100"], run_summary(summary)
    del summary["evaluate"]["baseline"]  # evaluate.baseline off
    assert "baseline" not in run_summary(summary).split("\n\n")[0]
    # `auto`'s transformer that lost to the baseline and was set aside for the tfidf model (flows.pipeline).
    summary["transformer"] = {"base_model": "tiny", "accuracy": 0.848, "macro_f1": 0.817}
    assert "tiny (set aside)              0.8480        0.8170" in run_summary(summary), run_summary(summary)


@pytest.mark.parametrize("command", ["ingest", "predict"])
def test_headerless_files_have_an_option(command):
    from typer.testing import CliRunner

    from textops.ui.cli import app

    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--no-header" in result.output, result.output


def test_status_says_where_nothing_answers():
    from textops.ui.status import format_status

    st = {
        "aliases": {},
        "runs": [],
        "data": {"raw_md5": None},
        "landing": [],
        "schedules": [],
        "serving": None,
        "serving_checked": ["http://127.0.0.1:5005", "http://127.0.0.1:5001"],
        "online": {},
    }
    assert "nothing answers at http://127.0.0.1:5005, http://127.0.0.1:5001" in format_status(st, "macro_f1")


def test_status_says_data_edited_by_hand_is_nobodys_and_how_to_put_it_back(tmp_path):
    """data/ edited outside textops: status says so (not "the champion's") and advises the checkout that works."""
    import json

    from textops.adapters.dvc import file_md5
    from textops.core import lineage
    from textops.core.config import Params
    from textops.ui.status import data_state, format_status

    batch = tmp_path / "data" / "raw" / "batch-1.jsonl"
    batch.parent.mkdir(parents=True)
    batch.write_text('{"text": "a good film", "label": "positive"}\n')
    listing = json.dumps([{"md5": file_md5(batch), "relpath": "raw/batch-1.jsonl"}])
    dir_md5 = "0" * 30 + "ab.dir"
    cached = tmp_path / ".dvc" / "cache" / "files" / "md5" / dir_md5[:2] / dir_md5[2:]
    cached.parent.mkdir(parents=True)
    cached.write_text(listing)
    (tmp_path / "data.dvc").write_text(f"outs:\n- md5: {dir_md5}\n  path: data\n")
    params = Params()
    champion = {"version": "1", "metric": "0.9", "raw_md5": dir_md5, "data_rev": "", "created": 0, "decision": ""}
    st = {"aliases": {lineage.CHAMPION_ALIAS: champion}, "runs": [], "landing": [], "schedules": [], "online": {}}
    st.update(serving=None, serving_checked=[])

    st["data"] = data_state(tmp_path, params) | {"champion_trained_on_it": True}
    assert st["data"]["edited"] == [] and "the champion's" in format_status(st, "macro_f1")

    batch.write_text('{"text": "a good film", "label": "negative"}\n')  # a hand edit
    st["data"] = data_state(tmp_path, params) | {"champion_trained_on_it": False}
    shown = format_status(st, "macro_f1")
    assert "edited outside textops (changed: raw/batch-1.jsonl)" in shown and "the champion's" not in shown
    assert "dvc checkout --force data.dvc" in shown


@pytest.mark.parametrize(
    "sqlite_says, expected",
    [
        ("database or disk is full", "no space left on the device (SQLite: database or disk is full)"),
        ("disk I/O error", "the disk could not be written (full, failing, or unmounted) (SQLite: disk I/O error)"),
        ("database disk image is malformed", "is damaged (database disk image is malformed)"),
        ("file is not a database", "is damaged (file is not a database)"),
    ],
)
def test_sqlite_disk_faults_and_damage_are_one_paragraph_not_a_bug_report(tmp_path, capsys, sqlite_says, expected):
    """SQLite says a full disk and a damaged file in words (the MLflow store, the answers index), wrapped by
    SQLAlchemy and MLflow: the command names the disk or the store file, never "likely a bug"."""
    import sqlite3

    import typer

    from textops.ui.command import Project, user_errors

    (tmp_path / "params.yaml").write_text("{}\n")
    project = Project(tmp_path / "params.yaml")
    with pytest.raises(typer.Exit) as ended, user_errors("run", project):
        try:
            raise sqlite3.OperationalError(sqlite_says)
        except sqlite3.Error as exc:
            raise RuntimeError(f"(sqlite3.OperationalError) {sqlite_says} [SQL: INSERT INTO runs ...]") from exc
    said = " ".join(capsys.readouterr().err.split())
    assert ended.value.exit_code == 1 and expected in said, said
    assert "likely a bug" not in said and "another process" not in said
    if "damaged" in expected:
        assert f"{tmp_path / 'mlruns' / 'mlflow.db'}" in said and "move it aside" in said
