"""PostgreSQL for the production shape (`postgres`: a throwaway cluster on 127.0.0.1, one database per server).

PostgreSQL's `initdb` and `postgres` refuse to run as root: as root they run as an unprivileged user
(TEXTOPS_PG_USER, default `nobody`), with the data directory handed over to it.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support import free_port, wait_for
from support.services import Service

PG_USER_VARIABLE = "TEXTOPS_PG_USER"


def pg_bindir() -> Path | None:
    """The newest PostgreSQL server binaries (Debian's /usr/lib/postgresql/N/bin), or where `initdb` is on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


@dataclass(frozen=True)
class Database:
    name: str
    user: str
    password: str
    host: str
    port: int

    def url(self, driver: str = "postgresql") -> str:
        """e.g. `postgresql+psycopg2://...` for MLflow, `postgresql+asyncpg://...` for Prefect."""
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{self.name}"


@dataclass
class Postgres:
    """A running PostgreSQL cluster: superuser `postgres` with PASSWORD, on HOST:PORT."""

    host: str
    port: int
    password: str
    service: Service

    def admin(self):
        import psycopg2

        con = psycopg2.connect(
            host=self.host,
            port=self.port,
            user="postgres",
            password=self.password,
            dbname="postgres",
            connect_timeout=5,
        )
        con.autocommit = True
        return con

    @contextmanager
    def database(self, name: str) -> Iterator[Database]:
        """A new role NAME owning a new database NAME (password auth); both dropped afterwards, connections and
        all."""
        password = secrets.token_hex(12)
        con = self.admin()
        try:
            with con.cursor() as cur:
                cur.execute(f'CREATE ROLE "{name}" LOGIN PASSWORD %s', (password,))
                cur.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
            yield Database(name, name, password, self.host, self.port)
        finally:
            with con.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                cur.execute(f'DROP ROLE IF EXISTS "{name}"')
            con.close()

    def databases(self) -> set[str]:
        con = self.admin()
        try:
            with con.cursor() as cur:
                cur.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")
                return {row[0] for row in cur.fetchall()}
        finally:
            con.close()


def _as_postgres_user(directory: Path) -> dict:
    """Popen arguments that run a PostgreSQL binary as an unprivileged user when we are root (it refuses root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(os.environ.get(PG_USER_VARIABLE, "nobody"))
    for path in [directory, *directory.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


@contextmanager
def postgres(log: Path | None = None, bindir: Path | None = None) -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster (initdb in a new temporary directory, password auth over TCP on 127.0.0.1,
    a free port), removed afterwards; its server log goes to LOG (kept) or into that directory. fsync is off: a
    test cluster trades durability for speed."""
    bindir = bindir or pg_bindir()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL's initdb was not found (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="textops-pg-"))  # under /tmp: reachable by the unprivileged user
    data, pwfile = base / "data", base / "pw"
    password = secrets.token_hex(12)
    pwfile.write_text(password + "\n")
    port = free_port()
    try:
        data.mkdir()
        user = _as_postgres_user(base)
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "HOME": str(base)}
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}", "-E", "UTF8"]
        initdb += ["--no-locale", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256"]
        subprocess.run(initdb, env=env, check=True, capture_output=True, **user)
        argv = [str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(base)]
        argv += ["-c", "fsync=off", "-c", "max_connections=200"]
        service = Service("PostgreSQL", argv, env, log or base / "postgres.log")
        with open(service.log, "ab") as out:  # as the unprivileged user: Service.start runs as us
            service.proc = proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **user
            )
        server = Postgres("127.0.0.1", port, password, service)

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"postgres exited:\n{service.tail()}")
            try:
                server.admin().close()
                return True
            except Exception:
                return False

        wait_for(ready, 60, "PostgreSQL", interval=0.3)
        try:
            yield server
        finally:
            service.stop(signal.SIGINT)  # a fast shutdown
    finally:
        shutil.rmtree(base, ignore_errors=True)
