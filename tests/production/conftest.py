"""Fixtures of the production tests: one throwaway PostgreSQL cluster per test process (each test module creates
its own databases on it and drops them afterwards). The servers themselves are `support.servers` (tests/support)."""

from __future__ import annotations

import pytest
from support.postgres import pg_bindir, postgres


@pytest.fixture(scope="session")
def pg(tmp_path_factory):
    """A running PostgreSQL cluster on 127.0.0.1 (skipped, with the reason, where PostgreSQL is not installed)."""
    if pg_bindir() is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin nor on PATH): "
            "`apt-get install -y postgresql` (.ci/run does it)"
        )
    with postgres(log=tmp_path_factory.mktemp("postgres") / "postgres.log") as server:
        yield server
