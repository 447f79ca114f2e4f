"""The temporary Prefect server's database: a new project's starts from the migrated template (runtime/)."""

from __future__ import annotations


def test_a_new_projects_prefect_database_starts_from_the_migrated_template(tmp_path, monkeypatch):
    import sqlite3

    from textops.runtime import prefect_server as server

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first, second = tmp_path / "first" / ".prefect", tmp_path / "second" / ".prefect"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    assert not server.seed_database(second)  # no template yet: the first project migrates its own
    con = sqlite3.connect(first / server.DB)
    con.execute("PRAGMA journal_mode=WAL")  # as Prefect's server keeps it, with writes still in the WAL
    con.execute("CREATE TABLE alembic_version (version_num TEXT)")
    con.execute("INSERT INTO alembic_version VALUES ('head')")
    con.commit()
    server.save_template(first)
    con.close()
    assert server.template_dir("prefect", "prefect").parent == tmp_path / "cache" / "textops"
    assert server.seed_database(second)
    rows = sqlite3.connect(second / server.DB).execute("SELECT version_num FROM alembic_version").fetchall()
    assert rows == [("head",)]
    # The template is written once; a project that has a database keeps it.
    stamp = (server.template_dir("prefect", "prefect") / server.DB).stat().st_mtime_ns
    server.save_template(second)
    assert (server.template_dir("prefect", "prefect") / server.DB).stat().st_mtime_ns == stamp
