"""A real Label Studio server for the tests, from its own virtualenv (`.labelstudio-venv`, which .ci/run makes:
Label Studio's pins clash with textops' own, so it is never installed beside them), or the `label-studio`
executable TEXTOPS_LABEL_STUDIO names. A test that needs it is skipped, saying why, where it is not installed.

The server listens on 127.0.0.1 on a free port, keeps its database and media in a temporary directory, reports
nothing anywhere (no Sentry, no analytics, no version check against PyPI), and has one user created at start whose
token authenticates the API calls. Label Studio 1.23 issues personal access tokens (JWT) by default; the legacy
token (`Authorization: Token ...`, the `--user-token` given at start) works only where the organisation allows it,
which `--enable-legacy-api-token` does as the organisation is created.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support import REPO, free_port, wait_for
from support.services import Service

VERSION = "1.23.2"  # the release .ci/run installs and the tests were written against
VENV = REPO / ".labelstudio-venv"
# Beside the executable's bin/: a database .ci/run migrated once. The server starts on a copy in 10 s; a new one
# takes a minute to migrate on a busy machine (Label Studio applies some 300 migrations to it).
MIGRATED = Path("textops-migrated") / "label_studio.sqlite3"
USER, PASSWORD, TOKEN = "tests@textops.invalid", "textops-tests-password", "textops-tests-token"
QUIET = {  # nothing leaves the machine
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "COLLECT_ANALYTICS": "false",
    "LATEST_VERSION_CHECK": "false",
}


def executable() -> Path:
    """The `label-studio` executable: TEXTOPS_LABEL_STUDIO, else the repository's `.labelstudio-venv`; the test is
    skipped, saying why, where there is none."""
    named = os.environ.get("TEXTOPS_LABEL_STUDIO")
    path = Path(named) if named else VENV / "bin" / "label-studio"
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"TEXTOPS_LABEL_STUDIO={named}" if named else f"{path}"
        pytest.skip(
            f"Label Studio is not installed ({where} is not an executable): .ci/run installs label-studio=={VERSION} "
            "into .labelstudio-venv (python3 -m venv .labelstudio-venv && .labelstudio-venv/bin/pip install "
            f"label-studio=={VERSION} 'sentry-sdk<3'), or point TEXTOPS_LABEL_STUDIO at a label-studio executable."
        )
    return path


@dataclass
class LabelStudio:
    """A started Label Studio (`ready()` waits until it answers) and the API calls the tests make, as its user."""

    service: Service
    url: str

    def ready(self, timeout: float = 300) -> LabelStudio:
        """Wait for /health (its first start migrates a new database: half a minute on a busy machine)."""
        self.service.health = f"{self.url}/health"
        wait_for(self.service.healthy, timeout, f"Label Studio at {self.url}", interval=0.5)
        return self

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Token {TOKEN}"}
        response = httpx.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text[:2000]}"
        return response

    def create_project(self, title: str, label_config: str) -> int:
        return self.call("POST", "/api/projects", json={"title": title, "label_config": label_config}).json()["id"]

    def import_tasks(self, project: int, tasks: list[dict]) -> int:
        return self.call("POST", f"/api/projects/{project}/import", json=tasks).json()["task_count"]

    def tasks(self, project: int) -> list[dict]:
        return self.call("GET", "/api/tasks", params={"project": project, "page_size": 1000}).json()["tasks"]

    def annotate(self, task: int, choice: str, cancelled: bool = False) -> dict:
        """An annotation of TASK choosing CHOICE; CANCELLED: the task skipped (its result is then not data)."""
        body = {"result": choice_result(choice), "was_cancelled": cancelled}
        return self.call("POST", f"/api/tasks/{task}/annotations/", json=body).json()

    def relabel(self, annotation: int, choice: str) -> dict:
        """An annotation edited: its choice changed, its `updated_at` now."""
        return self.call("PATCH", f"/api/annotations/{annotation}/", json={"result": choice_result(choice)}).json()

    def export(self, project: int, fmt: str) -> tuple[str, bytes]:
        """The project exported as FMT (JSON, JSON_MIN, CSV, TSV): (the file name Label Studio gives it, content)."""
        response = self.call("GET", f"/api/projects/{project}/export", params={"exportType": fmt})
        disposition = response.headers.get("content-disposition", "")
        return disposition.partition("filename=")[2].strip('"; '), response.content


def choice_result(choice: str) -> list[dict]:
    """An annotation's result in the labelling config `textops label queue` writes (textops.live.labelstudio)."""
    from textops.core.artifacts import LABEL_STUDIO_FROM as FROM_NAME
    from textops.core.artifacts import LABEL_STUDIO_TO as TO_NAME

    return [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": [choice]}}]


@contextmanager
def label_studio(workdir: Path, exe: Path | None = None) -> Iterator[LabelStudio]:
    """`label-studio start` (EXE, else `executable()`) in WORKDIR, started and not waited for (`ready()` waits: the
    caller can work meanwhile); stopped afterwards (SIGTERM to its process group, then SIGKILL)."""
    from support.servers import server_env

    exe = exe or executable()
    port = free_port()
    migrated = exe.parent.parent / MIGRATED
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    if migrated.is_file():
        shutil.copy(migrated, workdir / "data" / migrated.name)
    env = server_env(workdir / "home", LABEL_STUDIO_BASE_DATA_DIR=str(workdir / "data"), **QUIET)
    for name in ("PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE", "USERNAME", "PASSWORD", "USER_TOKEN"):
        env.pop(name, None)  # Label Studio's own interpreter and settings only; its user is the one given here
    argv = [str(exe), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)]
    argv += ["--username", USER, "--password", PASSWORD, "--user-token", TOKEN, "--enable-legacy-api-token"]
    service = Service("label-studio", argv, env, workdir / "label-studio.log", cwd=workdir)
    service.start()
    try:
        yield LabelStudio(service, f"http://127.0.0.1:{port}")
    finally:
        service.stop()
