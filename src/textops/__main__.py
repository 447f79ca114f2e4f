"""`python -m textops ...` is the `textops` command (e.g. under `torchrun ... -m textops train`)."""

from textops.ui.cli import app

app()
