"""`sextant up --db-url URL`: the URL (with its password) reaches the DB manager through its
environment, so it is not in any stack process's command line (`ps`, /proc/<pid>/cmdline).

PostgreSQL with trust authentication accepts any password, so a made-up one can be checked for.
"""

from __future__ import annotations

import importlib.util
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.e2e.local_stack import cli_env, run_cli
from tests.integration.conftest import create_database

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sextant-stack-db-url")]


def sextant(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_cli(data_dir, *args, timeout=timeout, env=cli_env(drop=["SEXTANT_DB_URL"]))


def test_db_url_password_is_not_on_any_command_line(tmp_path):
    url, drop = create_database("postgresql", tmp_path)
    password = f"pw{secrets.token_hex(8)}"
    url = url.replace("postgres@", f"postgres:{password}@", 1)
    assert password in url
    data_dir = tmp_path / "stack"
    try:
        up = sextant(data_dir, "up", "--detach", "--port", "0", "--db-url", url)
        assert up.returncode == 0, up.stdout + up.stderr
        status = sextant(data_dir, "status")
        assert status.returncode == 0 and "SERVING" in status.stdout, status.stdout + status.stderr
        assert password not in status.stdout
        assert "(driver psycopg)" in status.stdout.splitlines()[0]
        run = data_dir / "run"
        pids = [int((run / f).read_text()) for f in ("supervisor.pid", "db-manager.pid")]
        for pid in pids:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            assert "services.db_manager" in cmdline or "sextant.stack" in cmdline
            assert password not in cmdline, cmdline
        # The DB manager did get the URL: it is serving from that PostgreSQL database.
        environ = Path(f"/proc/{pids[1]}/environ").read_bytes().split(b"\0")
        assert f"SEXTANT_DB_URL={url}".encode() in environ
        for log in (data_dir / "logs").glob("*.log"):
            assert password not in log.read_text(errors="replace"), log
        assert password not in (data_dir / "stack.json").read_text()
    finally:
        sextant(data_dir, "down")
        drop()


@pytest.mark.parametrize("scheme", ["mysql", "mysql+pymysql"])
def test_status_names_the_mariadb_driver_in_use(tmp_path, scheme):
    """A plain mysql:// URL gets mysqlclient where it is installed, else PyMySQL; a URL naming
    PyMySQL keeps it. `sextant status` says which one the DB manager talks to."""
    url, drop = create_database("mariadb", tmp_path)
    url = scheme + "://" + url.partition("://")[2]
    expected = "PyMySQL" if scheme.endswith("pymysql") or importlib.util.find_spec("MySQLdb") is None \
        else "mysqlclient"
    data_dir = tmp_path / "stack"
    try:
        up = sextant(data_dir, "up", "--detach", "--port", "0", "--db-url", url)
        assert up.returncode == 0, up.stdout + up.stderr
        status = sextant(data_dir, "status")
        assert status.returncode == 0 and "SERVING" in status.stdout, status.stdout + status.stderr
        assert f"(driver {expected})" in status.stdout.splitlines()[0], status.stdout
    finally:
        sextant(data_dir, "down")
        drop()
