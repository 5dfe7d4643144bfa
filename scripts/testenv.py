#!/usr/bin/env python3
"""Set up what Sextant's tests need, then run them: ``make test`` calls this.

    python3 scripts/testenv.py packages [--extras mysqlclient]   # system packages (before the venv)
    .venv/bin/python scripts/testenv.py run -- pytest ...          # databases, then the command
    python3 scripts/testenv.py build-deps --extras mysqlclient      # what `make install` compiles with

``packages`` installs the Debian packages the tests use (database servers, Chromium for the UI
tests, docker-compose, openssl; the headers mysqlclient compiles against when that extra is
asked for) when it runs as root on a Debian-like system. Otherwise it prints the one command
that installs them and exits 2.

``run`` makes sure MariaDB and PostgreSQL answer on 127.0.0.1: a server already listening is
used; an installed one that is stopped is started (as root, the system's own instance; as
another user, a throwaway instance in a temporary directory on a free port, removed afterwards).
It then runs the command with ``SEXTANT_TEST_MARIADB``/``SEXTANT_TEST_POSTGRES`` pointing at
them and ``.venv/bin`` first on ``PATH`` (the tests use the venv's ``kubectl``).

Standard library only: ``packages`` runs before the virtual environment exists.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARIADB_PORT, POSTGRES_PORT = 3306, 5432
# A login the tests can use on a system server whose root/postgres accounts only allow local
# socket logins (Debian's default): created once, as root, through the socket.
TEST_USER, TEST_PASSWORD = "sextant_test", "sextant_test"


def log(message: str) -> None:
    print(f"testenv: {message}", flush=True)


# --- system packages ---------------------------------------------------------------------

def _postgres_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _mariadbd() -> str | None:
    return shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/libexec") \
        or shutil.which("mysqld", path="/usr/sbin")


def missing_packages(extras: list[str], containers: bool = False) -> list[str]:
    """Debian packages whose programs the tests need and this machine lacks (with
    ``containers``, also what `make test-containers` builds and runs images with)."""
    wanted = {
        "mariadb-server": _mariadbd() is not None or _answers(MARIADB_PORT),
        "mariadb-client": shutil.which("mariadb") is not None or shutil.which("mysql") is not None,
        "postgresql": _postgres_bin("postgres") is not None or _answers(POSTGRES_PORT),
        "chromium": shutil.which("chromium") is not None or shutil.which("chromium-browser") is not None,
        "docker-compose": shutil.which("docker-compose") is not None,
        "openssl": shutil.which("openssl") is not None,
    }
    if containers:
        wanted["docker.io"] = shutil.which("dockerd") is not None
        wanted["debootstrap"] = shutil.which("debootstrap") is not None
    return [name for name, present in wanted.items() if not present] + missing_build_packages(extras)


def missing_build_packages(extras: list[str]) -> list[str]:
    """Debian packages the venv's ``extras`` compile against and this machine lacks (mysqlclient
    builds a C extension: a compiler, pkg-config, MariaDB's and Python's headers)."""
    if "mysqlclient" not in extras:
        return []
    wanted = {
        "pkg-config": shutil.which("pkg-config") is not None,
        "gcc": shutil.which("gcc") is not None or shutil.which("cc") is not None,
        "libmariadb-dev": _has_pkgconfig("libmariadb") or _has_pkgconfig("mysqlclient"),
        f"python{sys.version_info[0]}.{sys.version_info[1]}-dev":
            Path(sysconfig.get_path("include"), "Python.h").is_file(),
    }
    return [name for name, present in wanted.items() if not present]


def install_hint(missing: list[str], *, apt: bool, root: bool) -> str:
    """The one command that installs ``missing``, for a user to run."""
    if not apt:
        return f"install these with your package manager: {' '.join(missing)}"
    return " ".join([*([] if root else ["sudo"]), "apt-get", "install", "-y", *missing])


def _has_pkgconfig(name: str) -> bool:
    if not shutil.which("pkg-config"):
        return False
    return subprocess.run(["pkg-config", "--exists", name], check=False).returncode == 0


def install_packages(extras: list[str], containers: bool = False) -> int:
    missing = missing_packages(extras, containers)
    if not missing:
        return 0
    command = ["apt-get", "install", "-y", "-qq", *missing]
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        hint = install_hint(missing, apt=shutil.which("apt-get") is not None, root=False)
        log(f"the tests need {', '.join(missing)}; run:\n\n    {hint}\n\nthen `make test` again")
        return 2
    log(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return 0


def check_build_packages(extras: list[str]) -> int:
    """`make install EXTRAS=...`: 2, after printing the command that installs what the extras
    compile against, when some of it is missing (instead of pip's pkg-config traceback)."""
    missing = missing_build_packages(extras)
    if not missing:
        return 0
    hint = install_hint(missing, apt=shutil.which("apt-get") is not None, root=os.geteuid() == 0)
    print(f"make: EXTRAS={','.join(extras)} compiles against {', '.join(missing)}, which this machine lacks; "
          f"run:\n\n    {hint}\n\nthen `make install EXTRAS={','.join(extras)}` again "
          "(or leave EXTRAS out: the default install compiles nothing)", file=sys.stderr)
    return 2


# --- databases ---------------------------------------------------------------------------

def _answers(port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=timeout):
        return True
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers(port):
            return True
        time.sleep(0.3)
    return False


def _can_login(url: str) -> bool:
    import sqlalchemy as sa  # only in `run`, which runs in the venv

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable as is"
        return False
    finally:
        engine.dispose()


def admin_urls(kind: str, driver: str, port: int) -> tuple[str, str]:
    """The logins to try on a server answering on ``port``, in order: the superuser without a
    password (a fresh private instance, or a server with trust/no-password root), then the test
    login this script creates on a system server."""
    if kind == "mariadb":
        return (f"{driver}://root@127.0.0.1:{port}/?charset=utf8mb4",
                f"{driver}://{TEST_USER}:{TEST_PASSWORD}@127.0.0.1:{port}/?charset=utf8mb4")
    return (f"{driver}://postgres@127.0.0.1:{port}/postgres",
            f"{driver}://{TEST_USER}:{TEST_PASSWORD}@127.0.0.1:{port}/postgres")


def first_login(urls: list[str], can_login: Callable[[str], bool]) -> str | None:
    """The first of ``urls`` that logs in, else None."""
    return next((url for url in urls if can_login(url)), None)


def _mysql_driver() -> str:
    sys.path.insert(0, str(ROOT))
    from services.db_manager.database import mysql_driver

    return mysql_driver()


def _as_postgres_user(argv: list[str]) -> list[str]:
    """Run a PostgreSQL program as the `postgres` account when we are root (it refuses root)."""
    if os.geteuid() == 0 and shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


class Databases:
    """MariaDB and PostgreSQL answering on loopback, and the admin URLs the tests use."""

    def __init__(self) -> None:
        self.stack = contextlib.ExitStack()
        self.env: dict[str, str] = {}

    def close(self) -> None:
        self.stack.close()

    # MariaDB ------------------------------------------------------------------------------
    def mariadb(self) -> None:
        driver = _mysql_driver()
        if not _answers(MARIADB_PORT) and os.geteuid() == 0 and _mariadbd():
            log("starting the installed MariaDB server")
            _start_system_mariadb()
        if _answers(MARIADB_PORT):
            urls = admin_urls("mariadb", driver, MARIADB_PORT)
            url = first_login(list(urls), _can_login)
            if url is None and os.geteuid() == 0:
                _create_mariadb_test_user()
                url = first_login([urls[1]], _can_login)
            if url:
                self.env["SEXTANT_TEST_MARIADB"] = url
                return
            log(f"MariaDB answers on {MARIADB_PORT} but neither root nor {TEST_USER} can log in "
                "without a password; starting a private instance")
        if not _mariadbd():
            log("MariaDB is not installed (`python3 scripts/testenv.py packages` installs it)")
            return
        port = self.stack.enter_context(_throwaway_mariadb())
        self.env["SEXTANT_TEST_MARIADB"] = admin_urls("mariadb", driver, port)[0]

    # PostgreSQL ---------------------------------------------------------------------------
    def postgres(self) -> None:
        if not _answers(POSTGRES_PORT) and os.geteuid() == 0 and shutil.which("pg_ctlcluster"):
            log("starting the installed PostgreSQL cluster")
            for version in sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []:
                subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                               check=False)
            _wait_for(POSTGRES_PORT, 30)
        if _answers(POSTGRES_PORT):
            urls = admin_urls("postgresql", "postgresql+psycopg", POSTGRES_PORT)
            url = first_login(list(urls), _can_login)
            if url is None and os.geteuid() == 0:
                _create_postgres_test_user()
                url = first_login([urls[1]], _can_login)
            if url:
                self.env["SEXTANT_TEST_POSTGRES"] = url
                return
            log(f"PostgreSQL answers on {POSTGRES_PORT} but no test login works; starting a private instance")
        if not _postgres_bin("postgres"):
            log("PostgreSQL is not installed (`python3 scripts/testenv.py packages` installs it)")
            return
        port = self.stack.enter_context(_throwaway_postgres())
        self.env["SEXTANT_TEST_POSTGRES"] = admin_urls("postgresql", "postgresql+psycopg", port)[0]


def _start_system_mariadb() -> None:
    subprocess.run(["start-stop-daemon", "--start", "--oknodo", "--background", "--exec",
                    _mariadbd() or "/usr/sbin/mariadbd", "--", "--user=mysql"], check=False)
    _wait_for(MARIADB_PORT, 60)


def _create_mariadb_test_user() -> None:
    client = shutil.which("mariadb") or shutil.which("mysql")
    if not client:
        return
    sql = (f"CREATE USER IF NOT EXISTS '{TEST_USER}'@'127.0.0.1' IDENTIFIED BY '{TEST_PASSWORD}';"
           f"CREATE USER IF NOT EXISTS '{TEST_USER}'@'localhost' IDENTIFIED BY '{TEST_PASSWORD}';"
           f"GRANT ALL PRIVILEGES ON *.* TO '{TEST_USER}'@'127.0.0.1';"
           f"GRANT ALL PRIVILEGES ON *.* TO '{TEST_USER}'@'localhost';")
    log(f"creating the MariaDB login {TEST_USER} for the tests (root logs in through the socket only)")
    subprocess.run([client, "-uroot", "-e", sql], check=False)


def _create_postgres_test_user() -> None:
    psql = _postgres_bin("psql") or shutil.which("psql")
    if not psql:
        return
    sql = (f"DO $$BEGIN CREATE ROLE {TEST_USER} LOGIN SUPERUSER PASSWORD '{TEST_PASSWORD}'; "
           "EXCEPTION WHEN duplicate_object THEN NULL; END$$;")
    log(f"creating the PostgreSQL login {TEST_USER} for the tests (local trust is not configured)")
    subprocess.run(_as_postgres_user([psql, "-q", "-c", sql]), check=False, cwd="/")


@contextlib.contextmanager
def _throwaway_dir(prefix: str, owner: str | None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if owner and os.geteuid() == 0:
        shutil.chown(path, owner, owner)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _throwaway_mariadb() -> Iterator[int]:
    port = _free_port()
    user = "mysql" if os.geteuid() == 0 else None
    with _throwaway_dir("sextant-mariadb-", user) as data:
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        user_flag = [f"--user={user}"] if user else []
        subprocess.run([install, "--no-defaults", f"--datadir={data}", "--auth-root-authentication-method=normal",
                        "--skip-test-db", *user_flag], check=True, stdout=subprocess.DEVNULL)
        proc = subprocess.Popen([_mariadbd(), "--no-defaults", f"--datadir={data}", f"--port={port}",
                                 "--bind-address=127.0.0.1", f"--socket={data}/mysqld.sock",
                                 f"--pid-file={data}/mysqld.pid", *user_flag],
                                stdout=subprocess.DEVNULL, stderr=open(data / "error.log", "w"))  # noqa: SIM115
        log(f"private MariaDB on 127.0.0.1:{port} ({data})")
        try:
            if not _wait_for(port, 60):
                raise RuntimeError(f"MariaDB did not start: {(data / 'error.log').read_text()[-2000:]}")
            yield port
        finally:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            proc.kill()


@contextlib.contextmanager
def _throwaway_postgres() -> Iterator[int]:
    port = _free_port()
    user = "postgres" if os.geteuid() == 0 else None
    with _throwaway_dir("sextant-postgres-", user) as data:
        pgdata = data / "data"
        subprocess.run(_as_postgres_user([_postgres_bin("initdb"), "-D", str(pgdata), "-A", "trust", "-U", "postgres"]),
                       check=True, stdout=subprocess.DEVNULL, cwd="/")
        subprocess.run(_as_postgres_user([_postgres_bin("pg_ctl"), "-D", str(pgdata), "-l", str(data / "log"), "-w",
                                          "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"]),
                       check=True, stdout=subprocess.DEVNULL, cwd="/")
        log(f"private PostgreSQL on 127.0.0.1:{port} ({data})")
        try:
            yield port
        finally:
            subprocess.run(_as_postgres_user([_postgres_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "stop"]),
                           check=False, stdout=subprocess.DEVNULL, cwd="/")


def run(command: list[str]) -> int:
    databases = Databases()
    try:
        databases.mariadb()
        databases.postgres()
        env = {**os.environ, **databases.env}
        env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        for name, url in sorted(databases.env.items()):
            log(f"{name}={url.split('@')[-1]}")
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        databases.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    packages = sub.add_parser("packages", help="install the system packages the tests use")
    packages.add_argument("--extras", default="", help="comma-separated extras of the venv (mysqlclient)")
    packages.add_argument("--containers", action="store_true", help="also Docker's engine and debootstrap")
    build = sub.add_parser("build-deps", help="check what the venv's extras compile against (make install)")
    build.add_argument("--extras", default="", help="comma-separated extras of the venv (mysqlclient)")
    runner = sub.add_parser("run", help="make the databases answer, then run the command")
    runner.add_argument("command", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    if ns.step == "packages":
        return install_packages([e for e in ns.extras.split(",") if e], ns.containers)
    if ns.step == "build-deps":
        return check_build_packages([e for e in ns.extras.split(",") if e])
    command = ns.command[1:] if ns.command[:1] == ["--"] else ns.command
    if not command:
        parser.error("run needs a command after --")
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
