"""The PostgreSQL standby (omero_database_standby) on the farm's site (tests/host/farm.py):
streaming from the primary, its lag visible, admitted only from its address with its role's
password, a base backup left hung by a killed run redone by the next run, and the take-over:
the primary lost, the standby promoted, the inventory changed, the deploy run again, nothing
committed lost.

Runs last of the farm's modules: the take-over changes the site (the database moves to the
standby's host). What needs OMERO.server (its omero.db.host after the take-over) is
plan-tested in tests/plan/test_standby.py.
"""

import re
import shlex

import pytest

from ..docs_commands import block
from .audit import assert_clean
from .testhosts import hosts_with_changes, interrupted_deploy, podman, wait_for

REPLICATION = "/usr/local/sbin/omero-database-replication"
DATA_DIR = "/var/lib/postgresql/15/main"
PASSFILE = "/var/lib/postgresql/omero-replication.pgpass"
BASE_BACKUP_OP = "Make PostgreSQL a standby of {}"


@pytest.fixture(scope="module")
def site(farm):
    return farm


def sql(host, query: str, database: str = "omero", check: bool = True):
    """``query`` run by psql as postgres on ``host``; its unaligned output."""
    return host.run(f"runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -d {database} -c {shlex.quote(query)}",
                    check=check)


def status(host, command: str = REPLICATION) -> dict[str, str]:
    """omero-database-replication's fields (psql's expanded output: ``name | value``)."""
    output = host.run(command).stdout
    fields = dict(re.findall(r"^(\w+)\s+\| ?(.*)$", output, re.MULTILINE))
    fields["this host"] = re.search(r"^this host: (\w+)$", output, re.MULTILINE).group(1)
    return fields


def streaming(site) -> bool:
    return status(site.database).get("state") == "streaming" and status(site.standby).get("status") == "streaming"


def wait_streaming(site, timeout: float = 60):
    wait_for(lambda: streaming(site), "the standby to stream", timeout)


def test_standby_streams_from_the_primary(site):
    wait_streaming(site)
    primary, standby = status(site.database), status(site.standby)
    assert primary["this host"] == "primary" and standby["this host"] == "standby"
    assert primary["address"] == site.standby.address
    # Synchronous (the default): a commit returns once the standby has it on disk.
    assert primary["sync_state"] == "sync"
    assert standby["primary"] == site.database.address
    assert standby["slot"] == primary["standby"] == primary["slot"]
    # The standby is read-only and has what the primary commits.
    sql(site.database, "CREATE TABLE IF NOT EXISTS seen (n int); INSERT INTO seen VALUES (42)")
    wait_for(lambda: "42" in sql(site.standby, "SELECT n FROM seen").stdout.split(), "the row on the standby", 30)
    refused = sql(site.standby, "INSERT INTO seen VALUES (1)", check=False)
    assert refused.returncode != 0 and "read-only" in refused.stderr


def test_lag_visible_on_both_hosts(site):
    primary, standby = site.database, site.standby
    wait_streaming(site)
    readme = block("README.md", "sudo omero-database-replication")
    # The standby's replay held (commits still return: they wait for its disk, not its replay),
    # so WAL piles up behind it: both hosts show the lag.
    sql(standby, "SELECT pg_wal_replay_pause()", database="postgres")
    try:
        sql(primary, "CREATE TABLE IF NOT EXISTS lagging AS SELECT generate_series(1, 10000) AS n")
        wait_for(lambda: int(status(primary, readme)["lag_bytes"]) > 0, "the primary to see the lag", 30)
        behind = status(standby, readme)
        assert int(behind["lag_bytes"]) > 0 and float(behind["lag_seconds"]) > 0
    finally:
        sql(standby, "SELECT pg_wal_replay_resume()", database="postgres")
    # Caught up once replay goes on.
    wait_for(lambda: status(standby, readme)["lag_bytes"] == "0" and status(primary, readme)["lag_bytes"] == "0",
             "the standby to catch up", 30)
    assert float(status(standby, readme)["lag_seconds"]) == 0


def test_standby_admitted_only_from_its_address_with_the_role_password(site):
    primary, standby = site.database, site.standby
    passfile = standby.testinfra.file(PASSFILE)
    assert (passfile.user, passfile.group, passfile.mode) == ("postgres", "postgres", 0o600)
    # The password is in the passfile only: not in the standby's settings.
    auto_conf = standby.run(f"cat {DATA_DIR}/postgresql.auto.conf").stdout
    assert "primary_conninfo" in auto_conf and "password=" not in auto_conf
    password = passfile.content_string.strip().rsplit(":", 1)[1]
    identify = "psql -XAt -c IDENTIFY_SYSTEM"

    def replicate(host, conninfo: str):
        return host.run(f"runuser -u postgres -- env PGCONNECT_TIMEOUT=5 {identify} {shlex.quote(conninfo)}",
                        check=False)

    base = f"host={primary.address} port=5432 user=omero_replication replication=true dbname=replication"
    assert replicate(standby, f"{base} passfile={PASSFILE}").returncode == 0
    wrong = replicate(standby, f"{base} password=not-{password}")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    # From any other address (the primary's own, on the network), even with the password: refused.
    elsewhere = replicate(primary, f"{base} password={password}")
    assert elsewhere.returncode != 0 and "no pg_hba.conf entry" in elsewhere.stderr
    # The role streams and nothing more: it reaches no database.
    database = replicate(standby, f"host={primary.address} user=omero_replication dbname=omero "
                                  f"passfile={PASSFILE}")
    assert database.returncode != 0 and "no pg_hba.conf entry" in database.stderr


def test_second_run_changes_nothing(site):
    assert hosts_with_changes(site.inventory) == {}


def test_permission_audit(site):
    for host in (site.database, site.standby):
        assert_clean(host, site.secrets_dir)


def test_hung_base_backup_of_a_killed_run_is_redone_by_the_next_run(site):
    primary, standby = site.database, site.standby
    wait_streaming(site)
    # Enough data that the copy takes a while, then the standby made to need a new copy.
    sql(primary, "DROP TABLE IF EXISTS filler; CREATE TABLE filler AS SELECT g, repeat(md5(g::text), 30) AS pad "
                 "FROM generate_series(1, 200000) g")
    standby.run("systemctl stop postgresql.service")
    standby.run(f"rm {DATA_DIR}/standby.signal")
    # The copy hung once it has begun writing the data directory, then the run killed (as a dropped
    # connection would leave it): the copy outlives the run, holding the slot.
    podman("exec", "-d", standby.container, "sh", "-c",
           "until pid=$(pgrep -x pg_basebackup); do sleep 0.05; done; "
           f"until [ -d {DATA_DIR}.partial/base ]; do sleep 0.01; done; kill -STOP $pid && touch /run/copy-hung")
    output = interrupted_deploy(site.inventory, BASE_BACKUP_OP.format(primary.address), during=3)
    assert "Make PostgreSQL a standby" in output
    # The old directory in place, still no standby; a partial copy beside it, its copy still there.
    assert standby.run("test -e /run/copy-hung", check=False).returncode == 0
    assert standby.run(f"test -d {DATA_DIR}.partial", check=False).returncode == 0
    assert standby.run(f"test -e {DATA_DIR}/standby.signal", check=False).returncode != 0
    assert standby.run("pgrep -x pg_basebackup", check=False).returncode == 0
    site.deploy()
    wait_streaming(site)
    # The hung copy killed by the next run, which made its own.
    assert standby.run("pgrep -x pg_basebackup", check=False).returncode != 0
    assert standby.run(f"ls -d {DATA_DIR}.partial {DATA_DIR}.old", check=False).stdout == ""
    assert sql(standby, "SELECT count(*) FROM filler").stdout.strip() == "200000"
    sql(primary, "DROP TABLE filler")
    assert hosts_with_changes(site.inventory) == {}


def test_take_over(site):
    old, standby = site.database, site.standby
    wait_streaming(site)
    # Committed on the primary (rows and a large object), then the primary lost at once.
    sql(old, "CREATE TABLE takeover (id int, note text, blob oid); "
             "INSERT INTO takeover SELECT g, 'committed before the loss', "
             "lo_from_bytea(0, convert_to(repeat(md5(g::text), 1000), 'UTF8')) FROM generate_series(1, 20) g")
    expected = sql(old, "SELECT count(*), md5(string_agg(md5(lo_get(blob)), ',' ORDER BY id)) FROM takeover").stdout
    podman("kill", "--signal", "KILL", old.container)

    promoted = standby.run(block("README.md", "sudo omero-database-replication promote"))
    assert "promoted" in promoted.stdout
    assert status(standby)["this host"] == "primary"
    # The inventory changed: the standby's host is the database, the old primary gone.
    site.database, site.standby = standby, None
    site.deploy()
    try:
        got = sql(standby, "SELECT count(*), md5(string_agg(md5(lo_get(blob)), ',' ORDER BY id)) FROM takeover")
        assert got.stdout == expected and got.stdout.startswith("20|")
        # The OMERO role's password is the one the servers had: kept under the new host's name too.
        secrets = {path.name: path.read_text() for path in site.secrets_dir.iterdir()}
        assert secrets[f"{standby.name}-db-omero"] == secrets[f"{old.name}-db-omero"]
        login = standby.run("PGPASSWORD=" + shlex.quote(secrets[f"{old.name}-db-omero"].strip())
                            + " psql -XAt -h 127.0.0.1 -U omero -d omero -c 'SELECT current_user'")
        assert login.stdout.strip() == "omero"
        # Nothing left waiting for a standby: commits return.
        assert sql(standby, "SHOW synchronous_standby_names").stdout.strip() == ""
        sql(standby, "INSERT INTO takeover (id, note) VALUES (21, 'after the take-over')")
        assert standby.run(f"test -e {DATA_DIR}/standby.signal", check=False).returncode != 0
        assert hosts_with_changes(site.inventory) == {}
    finally:
        old.destroy()
