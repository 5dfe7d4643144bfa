"""scripts/testenv.py's decisions, without touching the machine: which packages a machine lacks
and the one command printed for them, and which database login the tests are given."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def testenv():
    spec = importlib.util.spec_from_file_location("testenv_under_test", ROOT / "scripts" / "testenv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bare_machine(testenv, monkeypatch, tmp_path):
    """No program on PATH but apt-get, no database server, no Python headers."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/usr/bin/apt-get" if name == "apt-get" else None)
    monkeypatch.setattr(testenv, "_answers", lambda port, timeout=0.5: False)
    monkeypatch.setattr(testenv.glob, "glob", lambda pattern: [])  # no /usr/lib/postgresql/*/bin
    monkeypatch.setattr(testenv.sysconfig, "get_path", lambda name: str(tmp_path))
    return testenv


def test_a_bare_machine_lacks_every_build_package_of_mysqlclient(bare_machine):
    dev = f"python{sys.version_info[0]}.{sys.version_info[1]}-dev"
    assert bare_machine.missing_build_packages(["mysqlclient"]) == ["pkg-config", "gcc", "libmariadb-dev", dev]
    assert bare_machine.missing_build_packages([]) == []  # the default install compiles nothing
    assert bare_machine.missing_packages([]) == ["mariadb-server", "mariadb-client", "postgresql", "chromium",
                                                  "docker-compose", "openssl"]


def test_make_install_prints_the_one_apt_get_command_and_exits_2(bare_machine, monkeypatch, capsys):
    monkeypatch.setattr(bare_machine.os, "geteuid", lambda: 1000)
    assert bare_machine.main(["build-deps", "--extras", "mysqlclient"]) == 2
    err = capsys.readouterr().err
    dev = f"python{sys.version_info[0]}.{sys.version_info[1]}-dev"
    assert f"\n    sudo apt-get install -y pkg-config gcc libmariadb-dev {dev}\n" in err
    assert "make install EXTRAS=mysqlclient" in err


def test_nothing_missing_is_silent(testenv, monkeypatch, capsys):
    monkeypatch.setattr(testenv, "missing_build_packages", lambda extras: [])
    assert testenv.main(["build-deps", "--extras", "mysqlclient"]) == 0
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("apt, root, expected", [
    (True, False, "sudo apt-get install -y gcc pkg-config"),
    (True, True, "apt-get install -y gcc pkg-config"),
    (False, False, "install these with your package manager: gcc pkg-config"),
])
def test_install_hint(testenv, apt, root, expected):
    assert testenv.install_hint(["gcc", "pkg-config"], apt=apt, root=root) == expected


def test_make_test_as_a_user_prints_the_command_for_every_missing_package(bare_machine, monkeypatch, capsys):
    monkeypatch.setattr(bare_machine.os, "geteuid", lambda: 1000)
    assert bare_machine.install_packages([]) == 2
    assert ("sudo apt-get install -y mariadb-server mariadb-client postgresql chromium docker-compose openssl"
            in capsys.readouterr().out)


@pytest.mark.parametrize("works, expected", [
    ({"root"}, "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4"),
    ({"root", "sextant_test"}, "mysql+pymysql://root@127.0.0.1:3306/?charset=utf8mb4"),
    ({"sextant_test"}, "mysql+pymysql://sextant_test:sextant_test@127.0.0.1:3306/?charset=utf8mb4"),
    (set(), None),
])
def test_mariadb_login_prefers_root_then_the_test_user(testenv, works, expected):
    urls = testenv.admin_urls("mariadb", "mysql+pymysql", 3306)
    assert testenv.first_login(list(urls), lambda url: url.split("://")[1].split("@")[0].split(":")[0] in works) \
        == expected


def test_postgres_logins_and_a_private_instance_port(testenv):
    assert testenv.admin_urls("postgresql", "postgresql+psycopg", 5432) == (
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        "postgresql+psycopg://sextant_test:sextant_test@127.0.0.1:5432/postgres")
    # a throwaway instance on a free port: the superuser, no password
    assert testenv.admin_urls("postgresql", "postgresql+psycopg", 40123)[0] == \
        "postgresql+psycopg://postgres@127.0.0.1:40123/postgres"
    assert testenv.admin_urls("mariadb", "mysql+mysqldb", 40124)[0] == "mysql+mysqldb://root@127.0.0.1:40124/?charset=utf8mb4"
