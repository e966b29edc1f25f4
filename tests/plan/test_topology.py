"""Where each host finds its peers: split across three hosts, or all on one."""

import json
import re

import pytest

from .conftest import ALL_ROLES

pytestmark = pytest.mark.plan

DB, SERVER, WEB = "10.0.0.11", "10.0.0.12", "10.0.0.13"
PG_CONF = "/etc/postgresql/16/main"  # Ubuntu 24.04


@pytest.fixture(scope="module")
def split(deploy):
    return deploy({
        "db": (("omero_database",), {"omero_address": DB}),
        "server": (("omero_server",), {"omero_address": SERVER}),
        "web": (("omero_web",), {"omero_address": WEB}),
    })


@pytest.fixture(scope="module")
def allinone(deploy):
    # An address is given, yet the host must talk to itself over localhost.
    return deploy({"aio": (ALL_ROLES, {"omero_address": "omero.lab.example"})})["aio"]


def server_list(run) -> list:
    config = run.uploads["/opt/omero/web/config/01-omero-web.omero"]
    return json.loads(re.search(r"omero\.web\.server_list '(.+)'", config).group(1))


def test_database_host_gets_only_postgresql(split):
    db = split["db"]
    assert set(db.uploads) == {f"{PG_CONF}/conf.d/omero.conf", f"{PG_CONF}/pg_hba.conf",
                               "/etc/systemd/system/postgresql@16-main.service.d/omero-restart.conf"}
    assert not [op for op in db.ops if re.search(r"OMERO|Java|Ice|nginx|venv|user", op)]
    for unwanted in ("openjdk", "pip install", "nginx", "useradd", "omero-server", "omero-web"):
        assert not [command for command in db.commands if unwanted in command], unwanted
    assert any(re.search(r"install --no-install-recommends .*\bpostgresql-16\b", c) for c in db.commands)


def test_database_listens_for_the_server_host(split):
    db = split["db"]
    assert "listen_addresses = 'localhost,10.0.0.11'" in db.uploads[f"{PG_CONF}/conf.d/omero.conf"]
    hba = db.uploads[f"{PG_CONF}/pg_hba.conf"].splitlines()
    remote = [line.split() for line in hba if line.startswith("host") and "127.0.0.1" not in line
              and "::1" not in line]
    # Exactly the server host, for the OMERO database and role only, with SCRAM.
    assert remote == [["host", "omero", "omero", f"{SERVER}/32", "scram-sha-256"]]


def test_server_reaches_the_database_host(split):
    server = split["server"]
    assert f"config set -- omero.db.host {DB}\n" in server.uploads["/opt/omero/server/config/00-omero-server.omero"]
    assert server.uploads["/var/lib/omero-server/.pgpass"].startswith(f"{DB}:5432:omero:omero:")
    # No local PostgreSQL server to start or wait for.
    assert "Requires=" not in server.uploads["/etc/systemd/system/omero-server.service"]
    assert not any("postgresql-16" in command or "nginx" in command for command in server.commands)


def test_web_uses_the_server_host(split):
    web = split["web"]
    assert server_list(web) == [[SERVER, 4064, "omero"]]
    assert not any("postgresql" in command or "omero-server" in command for command in web.commands)


def test_allinone_uses_localhost(allinone):
    assert server_list(allinone) == [["localhost", 4064, "omero"]]
    config = allinone.uploads["/opt/omero/server/config/00-omero-server.omero"]
    assert "config set -- omero.db.host localhost\n" in config
    assert "listen_addresses = 'localhost'\n" in allinone.uploads[f"{PG_CONF}/conf.d/omero.conf"]
    hba = allinone.uploads[f"{PG_CONF}/pg_hba.conf"]
    assert not [line for line in hba.splitlines()
                if line.startswith("host") and "127.0.0.1/32" not in line and "::1/128" not in line]


def test_only_the_server_user_shares_the_repository_group(allinone):
    """ManagedRepository is writable by group omero: the internet-facing web user is kept out."""
    useradds = {command.split()[-1]: command for command in allinone.commands if command.startswith("useradd ")}
    assert " -G omero " in useradds["omero-server"]
    assert " -G " not in useradds["omero-web"]


def test_server_user_writes_only_what_omero_rewrites(allinone):
    """`omero load` and `omero admin start` write config.xml (a temporary file and a lock
    beside it) in etc/grid/ and regenerate *.cfg and ice.config in etc/: the unpacked server
    is root's but for those directories and var/, and only they are writable under systemd."""
    [server_dir] = {c.split()[-2] for c in allinone.commands
                    if re.fullmatch(r"ln -s \S+ /opt/omero/server/OMERO\.server", c)}
    # etc/grid/ holds config.xml (passwords): the server user's alone; etc/ the shared group's too.
    for sub, group in (("var", "omero-server"), ("etc", "omero"), ("etc/grid", "omero-server")):
        assert f"chown omero-server:{group} {server_dir}/{sub}" in allinone.commands, sub
    assert f"chown -R root:root {server_dir}.partial" in " ".join(allinone.commands)
    unit = allinone.uploads["/etc/systemd/system/omero-server.service"]
    [writable] = re.findall(r"(?m)^ReadWritePaths=(.*)$", unit)
    assert writable.split() == [f"{server_dir}/var", f"{server_dir}/etc", "/OMERO", "/var/lib/omero-server"]


def test_web_configuration_is_the_web_users_alone(allinone):
    """OMERO.web's config.xml holds every omero_web_config value (mail passwords among them):
    its directories are the web user's only."""
    commands = " ".join(allinone.commands)
    for sub in ("etc", "etc/grid"):
        path = f"/opt/omero/web/OMERO.web/{sub}"
        assert f"chmod 700 {path}" in commands and f"chown omero-web:omero-web {path}" in commands, sub
