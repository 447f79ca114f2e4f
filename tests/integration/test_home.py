"""A first `textops run` (and a local Ray's batch scoring) writes nothing outside the project but what
docs/architecture.md lists: the textops cache (`~/.cache/textops/`: migrated empty Prefect and MLflow databases,
matplotlib's font cache). No library keeps a telemetry identifier (onnxruntime's device id, MLflow's telemetry.json,
DVC's, Prefect's, Ray's) or a token (Ray's ~/.ray/auth_token)."""

from __future__ import annotations

import pytest
from helpers import FAST, FLOW, make_project, set_params, textops

ALLOWED = (".cache/textops/prefect-", ".cache/textops/mlflow-", ".cache/textops/matplotlib/")


@pytest.mark.slow
def test_a_first_run_writes_only_the_textops_cache_outside_the_project(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    root = make_project(tmp_path / "proj")
    set_params(root, FAST, FLOW)
    for name in (
        "MPLCONFIGDIR",
        "XDG_CONFIG_HOME",
        "XDG_CACHE_HOME",
        "XDG_DATA_HOME",
        "MLFLOW_TRACKING_URI",
        "PREFECT_API_URL",
        "ORT_DISABLE_TELEMETRY",
        "MLFLOW_DISABLE_TELEMETRY",
        "DO_NOT_TRACK",
        "DVC_NO_ANALYTICS",
        "HF_HUB_DISABLE_TELEMETRY",
    ):
        monkeypatch.delenv(name, raising=False)  # textops must set what it needs itself
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))  # git's own file, not textops'
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_USAGE_STATS_ENABLED", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    out = textops(root, "run")
    assert "now the champion" in out.stdout, out.stdout
    try:  # a local Ray (the [ray] extra): token authentication without ~/.ray/auth_token, no usage statistics
        import ray  # noqa: F401

        (tmp_path / "in.csv").write_text("text\na fine film\na dull film\n")
        out = textops(
            root,
            "predict",
            str(tmp_path / "in.csv"),
            "-o",
            str(tmp_path / "out.csv"),
            "--engine",
            "ray",
            "-S",
            "ray.actors=1",
        )
        assert "2 rows scored" in out.stdout, out.stdout
    except ImportError:
        pass
    written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert written, "the textops cache was not written either: is HOME honoured?"
    assert [p for p in written if not p.startswith(ALLOWED)] == [], written
    assert not [p for p in written if "telemetry" in p.lower() or "deviceid" in p.lower()]


def test_prefect_run_by_hand_in_the_project_reads_its_offline_settings(tmp_path, monkeypatch):
    """The runbook's `prefect server start` / `prefect deploy` run without textops' environment: prefect.toml in
    the project root turns the server's analytics off for them."""
    import subprocess
    import sys
    from pathlib import Path

    from helpers import REPO

    for name in ("PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK", "PREFECT_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    prefect = str(Path(sys.executable).with_name("prefect"))

    def analytics(cwd: Path) -> str:
        out = subprocess.run(
            [prefect, "config", "view", "--show-defaults"], cwd=cwd, capture_output=True, text=True, timeout=300
        ).stdout
        return next(line for line in out.splitlines() if "PREFECT_SERVER_ANALYTICS_ENABLED" in line)

    assert "False" in analytics(REPO), analytics(REPO)
    assert "True" in analytics(tmp_path)  # elsewhere Prefect's default: the file is what turns it off
