"""Settings shared by every Sextant process: flags > ``SEXTANT_*`` environment > defaults.

Each service builds an ``argparse`` parser with ``add_server_arguments`` (plus its own
flags) and turns the parsed namespace into ``ServerSettings``. ``describe()`` renders the
settings for the start-up log with secrets masked.
"""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import overload

DEFAULT_DB_MANAGER_PORT = 6789
DEFAULT_SUGGESTION_PORT = 6789
DEFAULT_EARLY_STOPPING_PORT = 6788
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SECRET_FIELDS = {"token", "db_password", "db_url"}


def mysql_driver() -> str:
    """The SQLAlchemy dialect+driver for MariaDB/MySQL: mysqlclient when it is installed (several
    times faster, but it compiles against libmariadb: the ``mysqlclient`` extra), else PyMySQL
    (pure Python, always installed)."""
    import importlib.util

    return "mysql+mysqldb" if importlib.util.find_spec("MySQLdb") else "mysql+pymysql"


def database_driver(url: str) -> str:
    """The Python driver module the DB manager talks to ``url``'s database with."""
    scheme, _, driver = url.partition("://")[0].partition("+")
    if scheme in ("mysql", "mariadb"):
        # A URL naming PyMySQL keeps it; any other MySQL URL gets the faster driver when installed.
        return "mysqlclient" if driver != "pymysql" and mysql_driver().endswith("mysqldb") else "PyMySQL"
    return {"sqlite": "sqlite3", "postgresql": "psycopg", "postgres": "psycopg"}.get(scheme, scheme)


@overload
def env(name: str, default: str) -> str: ...
@overload
def env(name: str, default: None = None) -> str | None: ...
def env(name: str, default: str | None = None) -> str | None:
    """``SEXTANT_<NAME>`` from the environment, else ``default``."""
    return os.environ.get(f"SEXTANT_{name.upper()}", default)


def user_data_dir() -> Path:
    """The per-user data directory: ``$XDG_STATE_HOME/sextant``, else ``~/.local/state/sextant``
    (the XDG base-directory rules: a relative ``XDG_STATE_HOME`` is ignored)."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "sextant"


def data_dir(explicit: str | None = None) -> Path:
    """The data directory: ``--data-dir`` > ``SEXTANT_HOME`` > the per-user one, so the CLI and
    the SDK find the user's running stack from any directory."""
    return Path(explicit or os.environ.get("SEXTANT_HOME") or user_data_dir()).resolve()


def read_token(explicit: str | None = None, token_file: str | None = None) -> str | None:
    """The bearer token: explicit value > ``SEXTANT_TOKEN`` > a token file, if any."""
    if explicit:
        return explicit
    if env("token"):
        return env("token")
    path = token_file or env("token_file")
    if path and Path(path).is_file():
        return Path(path).read_text().strip() or None
    return None


def ensure_token(directory: Path) -> str:
    """Returns the local stack's token, generating it (mode 0600) on first use."""
    path = directory / "token"
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    directory.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


@dataclass
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = DEFAULT_DB_MANAGER_PORT
    metrics_port: int | None = None  # Prometheus /metrics; None = off, 0 = any free port
    max_workers: int = 16
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None  # require client certificates signed by this CA
    token: str | None = None
    data_dir: str | None = None
    log_level: str = "INFO"
    grace_seconds: float = 1.0  # SIGTERM → calls still running after this are cancelled

    def describe(self) -> dict[str, object]:
        out = asdict(self)
        for key in SECRET_FIELDS & out.keys():
            if out[key]:
                out[key] = "***"
        return out


def add_server_arguments(parser: argparse.ArgumentParser, default_port: int) -> None:
    g = parser.add_argument_group("server")
    g.add_argument("--host", default=env("host", "127.0.0.1"), help="address to bind (default 127.0.0.1)")
    g.add_argument("--port", type=int, default=int(env("port", str(default_port))), help="gRPC port")
    g.add_argument("--metrics-port", type=int, default=optional_int(env("metrics_port")),
                   help="serve Prometheus /metrics on this port (0 = any free port)")
    g.add_argument("--max-workers", type=int, default=int(env("max_workers", "16")))
    g.add_argument("--max-message-bytes", type=int,
                   default=int(env("max_message_bytes", str(DEFAULT_MAX_MESSAGE_BYTES))))
    g.add_argument("--tls-cert", default=env("tls_cert"), help="PEM certificate: serve TLS")
    g.add_argument("--tls-key", default=env("tls_key"), help="PEM private key for --tls-cert")
    g.add_argument("--tls-client-ca", default=env("tls_client_ca"), help="require client certs from this CA")
    g.add_argument("--token-file", default=env("token_file"),
                   help="require this bearer token (file content); SEXTANT_TOKEN sets it directly")
    g.add_argument("--data-dir", default=None, help="data directory (default $SEXTANT_HOME, else ~/.local/state/sextant)")
    g.add_argument("--log-level", default=env("log_level", "INFO"))


def server_settings(ns: argparse.Namespace) -> ServerSettings:
    known = {f.name for f in fields(ServerSettings)}
    values = {k: v for k, v in vars(ns).items() if k in known and v is not None}
    values["token"] = read_token(None, getattr(ns, "token_file", None))
    return ServerSettings(**values)


def optional_int(value: str | None) -> int | None:
    return int(value) if value is not None and value != "" else None
