"""A PostgreSQL standby (omero_database_standby): what the primary and the standby get, what is
refused, and the take-over as the servers see it (their omero.db.host and password), which
the host tests cannot reach without an OMERO.server."""

import re

import pytest

from deploys.errors import OmeroDeployError, OmeroOptionError

from .harness import fake_responses

pytestmark = pytest.mark.plan

DB, STANDBY, SERVER = "10.0.0.21", "10.0.0.22", "10.0.0.23"
SLOT = "omero_standby_fake_standby"
PG = {"ubuntu24.04": ("/etc/postgresql/16/main", "/usr/lib/postgresql/16/bin", "/var/lib/postgresql"),
      "rocky9": ("/var/lib/pgsql/data", "/usr/bin", "/var/lib/pgsql")}


def site(deploy, os_name="ubuntu24.04", standby=True, **data):
    hosts = {"db": (("omero_database",), {"omero_address": DB, **data}),
             "server": (("omero_server",), {"omero_address": SERVER, **data})}
    if standby:
        hosts["standby"] = (("omero_database_standby",), {"omero_address": STANDBY, **data})
    return deploy(hosts, os_name=os_name)


@pytest.fixture(scope="module", params=sorted(PG))
def pair(request, deploy):
    return request.param, site(deploy, request.param)


def test_primary_admits_the_standby_for_replication_only(pair):
    os_name, runs = pair
    conf_dir = PG[os_name][0]
    db = runs["db"]
    assert f"listen_addresses = 'localhost,{DB}'" in db.uploads[f"{conf_dir}/conf.d/omero.conf"]
    hba = [line.split() for line in db.uploads[f"{conf_dir}/pg_hba.conf"].splitlines()
           if line.startswith("host") and "replication" in line]
    assert hba == [["host", "replication", "omero_replication", f"{STANDBY}/32", "scram-sha-256"]]
    [role] = [command for command in db.commands if "ROLE \"omero_replication\"" in command]
    assert "CREATE ROLE \"omero_replication\" LOGIN REPLICATION PASSWORD" in role and "*MASKED*" in role
    assert any(f"pg_create_physical_replication_slot('\"'\"'{SLOT}'\"'\"')" in command for command in db.commands)
    # Synchronous by default: written after the standby's steps, applied by a reload.
    assert db.uploads[f"{conf_dir}/conf.d/omero-standby.conf"].splitlines()[-1] == \
        f"synchronous_standby_names = '{SLOT}'"
    assert db.ops.index("Apply synchronous_standby_names") > db.ops.index("Keep the standby's replication slot")
    assert "/usr/local/sbin/omero-database-replication" in db.uploads


def test_standby_copies_the_primary_and_creates_nothing(pair):
    os_name, runs = pair
    conf_dir, bin_dir, home = PG[os_name]
    standby = runs["standby"]
    passfile = f"{home}/omero-replication.pgpass"
    host, port, database, user, password = standby.uploads[passfile].strip().split(":")
    assert (host, port, database, user) == (DB, "5432", "replication", "omero_replication")
    assert password not in " ".join(standby.commands)
    [copy] = [command for command in standby.raw_commands if "pg_basebackup" in command]
    assert copy.startswith("if [ -s /var/lib/omero-pyinfra/standby-base-backup.pgid ]; then read -r pgid ")
    assert 'then kill -s KILL -- "-$pgid"; fi; fi; setsid ' in copy
    assert " setsid -w sh -ec " in copy
    assert f"{bin_dir}/pg_basebackup -D " in copy
    conninfo = f"host={DB} port=5432 user=omero_replication application_name={SLOT} passfile={passfile}"
    for words in ("-w -R -X stream", f"-S {SLOT}", f"-d '\"'\"'{conninfo}'\"'\"' "):
        assert words in copy, words
    assert password not in copy
    # The standby is written to by the primary alone: no role, no database, no slot of its own.
    for command in standby.commands:
        assert not re.search(r"CREATE (ROLE|DATABASE)|replication_slot|synchronous", command), command
    assert f"{conf_dir}/conf.d/omero.conf" in standby.uploads
    assert "replication" not in standby.uploads[f"{conf_dir}/pg_hba.conf"]
    # It runs PostgreSQL: the server's package among the host's, installed before the copy.
    assert any(re.search(r"install .*\bpostgresql-(16|server)\b", command) for command in standby.commands)
    assert standby.ops.index("Install the packages") < standby.ops.index(f"Make PostgreSQL a standby of {DB}")
    # Its configuration is written after the copy (on RHEL the copy replaces the data directory holding it).
    assert standby.ops.index(f"Write {conf_dir}/conf.d/omero.conf") > standby.ops.index(
        f"Make PostgreSQL a standby of {DB}")


def test_asynchronous_standby(deploy):
    db = site(deploy, omero_db_standby_synchronous=False)["db"]
    assert "/etc/postgresql/16/main/conf.d/omero-standby.conf" not in db.uploads
    assert "Remove /etc/postgresql/16/main/conf.d/omero-standby.conf" in db.ops


def test_without_a_standby_nothing_of_it(deploy):
    db = site(deploy, standby=False)["db"]
    assert "replication" not in db.uploads["/etc/postgresql/16/main/pg_hba.conf"]
    assert "listen_addresses = 'localhost,10.0.0.21'" in db.uploads["/etc/postgresql/16/main/conf.d/omero.conf"]
    assert not [command for command in db.commands if "omero_replication" in command
                or "pg_create_physical_replication_slot" in command]
    assert "/usr/local/sbin/omero-database-replication" not in db.uploads
    # A standby taken out of the inventory: commits wait for none; a promoted one keeps no passfile.
    assert "Remove /etc/postgresql/16/main/conf.d/omero-standby.conf" in db.ops
    assert "Remove /var/lib/postgresql/omero-replication.pgpass" in db.ops


def test_take_over_moves_every_server_to_the_new_primary(deploy):
    before = site(deploy)
    # The standby's host in omero_database, the old primary gone.
    after = deploy({"standby": (("omero_database",), {"omero_address": STANDBY}),
                    "server": (("omero_server",), {"omero_address": SERVER})})
    config = after["server"].uploads["/opt/omero/server/config/00-omero-server.omero"]
    assert f"config set -- omero.db.host {STANDBY}\n" in config
    old, new = (run.uploads["/var/lib/omero-server/.pgpass"] for run in (before["server"], after["server"]))
    assert old.startswith(f"{DB}:5432:omero:omero:") and new.startswith(f"{STANDBY}:5432:omero:omero:")
    # The same OMERO database password: the standby kept it under its own name too.
    assert old.rsplit(":", 1)[1] == new.rsplit(":", 1)[1]
    hba = after["standby"].uploads["/etc/postgresql/16/main/pg_hba.conf"]
    assert f"host    omero  omero  {SERVER}/32  scram-sha-256" in hba and "replication" not in hba


@pytest.mark.parametrize(("groups", "message"), [
    pytest.param({"db": ("omero_database",), "a": ("omero_database_standby",), "b": ("omero_database_standby",)},
                 "group omero_database_standby has 2 hosts; give it at most one", id="two standbys"),
    pytest.param({"a": ("omero_database_standby",)}, "the inventory has no omero_database host", id="no primary"),
    pytest.param({"db": ("omero_database", "omero_database_standby")},
                 "is in omero_database and omero_database_standby", id="its own standby"),
])
def test_refused_topologies(deploy, groups, message):
    with pytest.raises(OmeroDeployError, match=message):
        deploy({name: (host_groups, {}) for name, host_groups in groups.items()}, execute=False)


def test_standby_of_another_postgresql_major_refused(deploy):
    # The standby on Ubuntu 22.04 (PostgreSQL 14), its primary on 24.04 (16).
    older = {"fake_responses": fake_responses("ubuntu22.04", "systemd")}
    with pytest.raises(OmeroDeployError, match=r"would run PostgreSQL 14, and its primary @fake/db "
                                               r"\(Ubuntu 24.04\) runs 16: a standby needs the primary's"):
        deploy({"db": (("omero_database",), {}), "standby": (("omero_database_standby",), older)}, execute=False)


def test_replication_role_is_not_the_omero_role(deploy):
    with pytest.raises(OmeroOptionError, match="omero_db_replication_user.*is also omero_db_user"):
        deploy({"db": (("omero_database",), {"omero_db_replication_user": "omero"})}, execute=False)
