"""The CLI and the package in a fresh interpreter: `textops --help` imports nothing heavy, importing the package
changes no environment variable, bad params and a bad override are exit code 2 from the real console script. The
command line's options and messages in-process are tests/unit/ui/test_cli.py."""

from __future__ import annotations

import subprocess
import sys

from helpers import textops

HEAVY = ("torch", "transformers", "mlflow", "prefect", "great_expectations", "dvc", "pandas", "sklearn")


def test_help_imports_nothing_heavy():
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom textops.ui.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0, r.output\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bad_params_exit_code_2(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  epochs: -1\n")
    proc = textops(tmp_path, "preprocess", check=False)
    assert proc.returncode == 2
    assert "train.epochs" in proc.stderr and "params.yaml" in proc.stderr


def test_an_override_reaches_the_command(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  epochs: 3\n")
    proc = textops(tmp_path, "preprocess", "-S", "train.epochs=-2", check=False)
    assert proc.returncode == 2 and "-S train.epochs=-2" in proc.stderr


def test_importing_the_package_changes_no_environment():
    code = "import os; before = dict(os.environ); import textops, textops.ui.cli; print(dict(os.environ) == before)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
