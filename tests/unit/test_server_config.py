"""Server settings: flags > SEXTANT_* environment > defaults; secrets masked; the local token."""

from __future__ import annotations

import argparse
import stat

import pytest

from sextant.config import (
    DEFAULT_MAX_MESSAGE_BYTES,
    ServerSettings,
    add_server_arguments,
    data_dir,
    ensure_token,
    read_token,
    server_settings,
)


def parse(argv: list[str], default_port: int = 6789) -> ServerSettings:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser, default_port)
    return server_settings(parser.parse_args(argv))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("HOST", "PORT", "METRICS_PORT", "MAX_WORKERS", "TOKEN", "TOKEN_FILE", "TLS_CERT", "TLS_KEY",
                 "LOG_LEVEL", "MAX_MESSAGE_BYTES", "TLS_CLIENT_CA"):
        monkeypatch.delenv(f"SEXTANT_{name}", raising=False)
    monkeypatch.delenv("SEXTANT_HOME", raising=False)


def test_defaults():
    settings = parse([], default_port=6788)
    assert (settings.host, settings.port, settings.metrics_port) == ("127.0.0.1", 6788, None)
    assert settings.max_message_bytes == DEFAULT_MAX_MESSAGE_BYTES
    assert settings.token is None and settings.tls_cert is None


def test_environment_then_flags(monkeypatch):
    monkeypatch.setenv("SEXTANT_PORT", "7000")
    monkeypatch.setenv("SEXTANT_METRICS_PORT", "0")
    monkeypatch.setenv("SEXTANT_HOST", "0.0.0.0")
    settings = parse([])
    assert (settings.port, settings.metrics_port, settings.host) == (7000, 0, "0.0.0.0")
    settings = parse(["--port", "7001", "--host", "::1"])
    assert (settings.port, settings.host) == (7001, "::1")


def test_token_sources(monkeypatch, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    assert parse(["--token-file", str(token_file)]).token == "from-file"
    monkeypatch.setenv("SEXTANT_TOKEN", "from-env")
    assert parse(["--token-file", str(token_file)]).token == "from-env"
    assert read_token("explicit") == "explicit"


def test_describe_masks_secrets():
    described = ServerSettings(token="secret", tls_cert="/c.pem").describe()
    assert described["token"] == "***"
    assert described["tls_cert"] == "/c.pem"
    assert "secret" not in repr(described)


def test_ensure_token_is_private_and_stable(tmp_path):
    first = ensure_token(tmp_path / "home")
    assert len(first) >= 32
    mode = stat.S_IMODE((tmp_path / "home" / "token").stat().st_mode)
    assert mode == 0o600
    assert ensure_token(tmp_path / "home") == first


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path / "..")  # the working directory no longer matters
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert data_dir() == tmp_path / "state" / "sextant"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # ignored, as the XDG rules say
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert data_dir() == tmp_path / "user" / ".local" / "state" / "sextant"
    monkeypatch.setenv("SEXTANT_HOME", str(tmp_path / "h"))
    assert data_dir() == tmp_path / "h"
    assert data_dir(str(tmp_path / "x")) == tmp_path / "x"
