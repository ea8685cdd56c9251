"""A throwaway PostgreSQL server for tests: `initdb` into a temporary folder, started on a free loopback port."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import free_port

_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a fresh server's `postgres` database. PostgreSQL refuses to run as root, so as root the server runs
    as the `postgres` user (or `nobody`). Its folder is a private one in the system's temporary folder, not pytest's:
    pytest's folders are closed to other users. It is removed when the server stops."""
    initdb, pg_ctl = (shutil.which(name) or _find(name) for name in ("initdb", "pg_ctl"))
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    run_as = _unprivileged_user() if os.geteuid() == 0 else None
    prefix = ["runuser", "-u", run_as.pw_name, "--"] if run_as else []
    root = Path(tempfile.mkdtemp(prefix="news-reader-postgres-"))
    data, port = root / "data", free_port()
    try:
        if run_as:
            os.chown(root, run_as.pw_uid, run_as.pw_gid)
        subprocess.run([*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-o", options, "-w",
                        "start"], check=True, capture_output=True)
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(server_url: str) -> str:
    """A new, empty database on the server; its URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def _find(name: str) -> str | None:
    return next((str(d / name) for d in _BIN_DIRS if (d / name).is_file()), None)


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.skip("running as root with neither a postgres nor a nobody user to run PostgreSQL as")
