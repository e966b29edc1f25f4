"""The standby's facts and operations, table-driven: what the host answers in, the commands
(or the no-op) out; and the names the replication is keyed by."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from deploys import database_operations as db_ops
from deploys import scram, secrets, topology
from deploys.errors import OmeroDeployError
from facts import replication as facts

pytestmark = pytest.mark.unit

RIGHT = scram.scram_verifier("right password", salt=b"0123456789abcdef")
CONNINFO = {"host": "10.0.0.1", "port": 5432, "user": "omero_replication", "application_name": "omero_standby_sb",
            "passfile": "/var/lib/postgresql/omero-replication.pgpass"}
AUTO_CONF = ("primary_conninfo = 'user=omero_replication passfile=''/var/lib/postgresql/omero-replication.pgpass'' "
             "channel_binding=prefer host=10.0.0.1 port=5432 application_name=omero_standby_sb sslmode=prefer'")
PARSED = {"user": "omero_replication", "passfile": "/var/lib/postgresql/omero-replication.pgpass",
          "channel_binding": "prefer", "host": "10.0.0.1", "port": "5432", "application_name": "omero_standby_sb",
          "sslmode": "prefer"}
FOLLOWING = {"standby": True, "slot": "omero_standby_sb",
             "conninfo": {"host": "10.0.0.1", "port": "5432", "user": "omero_replication",
                          "application_name": "omero_standby_sb"}}


# -- facts ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("output", "value"), [
    pytest.param(["standby.signal", AUTO_CONF, "primary_slot_name = 'omero_standby_sb'"],
                 {"standby": True, "slot": "omero_standby_sb", "conninfo": PARSED},
                 id="a standby as pg_basebackup -R leaves it"),
    pytest.param([AUTO_CONF], {"standby": False, "slot": None, "conninfo": PARSED},
                 id="promoted: the conninfo stays, the signal file is gone"),
    pytest.param([], {"standby": False, "slot": None, "conninfo": {}}, id="a primary's or an empty directory"),
    pytest.param(["primary_slot_name = 'a'", "primary_slot_name = ''"],
                 {"standby": False, "slot": None, "conninfo": {}}, id="the last setting counts"),
])
def test_standby_fact(output, value):
    assert facts.PostgresStandby().process(output) == value


def test_standby_fact_command():
    assert facts.PostgresStandby().command(data_dir="/var/lib/my pg") == (
        "if [ -e '/var/lib/my pg'/standby.signal ]; then echo standby.signal; fi; grep -E "
        "'^[[:space:]]*primary_(conninfo|slot_name)[[:space:]]*=' '/var/lib/my pg'/postgresql.auto.conf "
        "2>/dev/null || true")


@pytest.mark.parametrize(("text", "parsed"), [
    ("host=a port=1", {"host": "a", "port": "1"}),
    ("passfile='/a b/c' user = r", {"passfile": "/a b/c", "user": "r"}),
    (r"password='it\'s' host=h", {"password": "it's", "host": "h"}),
    ("", {}),
])
def test_parse_conninfo(text, parsed):
    assert facts.parse_conninfo(text) == parsed


@pytest.mark.parametrize(("fact", "output", "value"), [
    (facts.PostgresReplicationSlots, ["slot:omero_standby_a:true", "slot:omero_standby_b:false", "noise"],
     {"omero_standby_a": True, "omero_standby_b": False}),
    (facts.PostgresReplicationSlots, ["psql: error: connection to server failed"], {}),
    (facts.PostgresRoleReplication, ["replication:true"], True),
    (facts.PostgresRoleReplication, ["replication:false"], False),
    (facts.PostgresRoleReplication, [], False),
    (facts.PostgresSetting, ["setting:omero_standby_a"], "omero_standby_a"),
    (facts.PostgresSetting, ["setting:"], ""),
    (facts.PostgresSetting, ["psql: error"], None),
    (facts.PostgresListening, ["listen:localhost,10.0.0.11|5433"], ("localhost,10.0.0.11", "5433")),
    (facts.PostgresListening, ["listen:*|5432"], ("*", "5432")),
    (facts.PostgresListening, ["psql: error: connection to server failed"], None),
])
def test_psql_facts(fact, output, value):
    assert fact().process(output) == value


def test_postgres_listening_asked_as_postgres():
    assert facts.PostgresListening().command(5433) == (
        "runuser -u postgres -- psql -XAt -p 5433 -c 'SELECT '\"'\"'listen:'\"'\"' || "
        "current_setting('\"'\"'listen_addresses'\"'\"') || '\"'\"'|'\"'\"' || "
        "current_setting('\"'\"'port'\"'\"')' 2>/dev/null || true")


# -- operations -------------------------------------------------------------------------------
CONF_FILES = ["/etc/postgresql/15/main/conf.d/omero.conf", "/etc/postgresql/15/main/pg_hba.conf"]
CONFIGURED = "/var/lib/omero-pyinfra/postgresql-configured.done"


WANTED = ("localhost,10.0.0.11", "5432")
RELOAD, RESTART = "systemctl reload postgresql.service", "systemctl restart postgresql.service"


@pytest.mark.parametrize(("changed", "listening", "command"), [
    pytest.param([], WANTED, None, id="nothing changed since"),
    pytest.param(CONF_FILES[1:], WANTED, RELOAD, id="pg_hba.conf changed: a reload keeps the connections"),
    pytest.param(CONF_FILES, WANTED, RELOAD, id="first deploy, listening where wanted already"),
    pytest.param(CONF_FILES[:1], ("localhost", "5432"), RESTART, id="to listen for a server host: a restart"),
    pytest.param(CONF_FILES[:1], ("localhost,10.0.0.11", "5433"), RESTART, id="another port"),
    pytest.param(CONF_FILES, None, RESTART, id="not answering"),
])
def test_postgres_configured(run_op, changed, listening, command):
    run = run_op(db_ops.postgres_configured, {"ChangedSince": changed, "PostgresListening": listening},
                 CONF_FILES, CONFIGURED, WANTED[0], int(WANTED[1]), RELOAD, RESTART)
    assert run.commands == ([command, f"touch {CONFIGURED}"] if command else [])
    assert len(run.noops) == (0 if command else 1)
def test_standby_following_the_primary_is_left_alone(run_op):
    run = run_op(db_ops.standby_cluster, {"PostgresStandby": FOLLOWING}, "/pg/main", CONNINFO, "omero_standby_sb",
                 "stop", "/bin/pg_basebackup", "/state/copy.pgid")
    assert run.commands == []
    assert run.noops == ["/pg/main is a standby of 10.0.0.1 through omero_standby_sb"]


@pytest.mark.parametrize("found", [
    pytest.param({"standby": False, "slot": None, "conninfo": {}}, id="no standby yet"),
    pytest.param({**FOLLOWING, "standby": False}, id="promoted: a primary now"),
    pytest.param({**FOLLOWING, "slot": "omero_standby_other"}, id="another slot"),
    pytest.param({**FOLLOWING, "conninfo": {**FOLLOWING["conninfo"], "host": "10.0.0.9"}}, id="another primary"),
    pytest.param({**FOLLOWING, "conninfo": {**FOLLOWING["conninfo"], "port": "5433"}}, id="another port"),
])
def test_standby_made_anew_by_a_base_backup(run_op, found):
    run = run_op(db_ops.standby_cluster, {"PostgresStandby": found}, "/pg/main", CONNINFO, "omero_standby_sb",
                 "systemctl stop postgresql.service", "/bin/pg_basebackup", "/state/copy.pgid")
    assert run.commands == [
        "if [ -s /state/copy.pgid ]; then read -r pgid started < /state/copy.pgid; if [ \"$started\" = "
        "\"$(sed 's/.*) //' /proc/\"$pgid\"/stat 2>/dev/null | cut -d' ' -f20) "
        "$(cat /proc/sys/kernel/random/boot_id)\" ]; then kill -s KILL -- \"-$pgid\"; fi; fi; "
        "setsid -w sh -ec 'echo \"$$ $(sed '\"'\"'s/.*) //'\"'\"' /proc/\"$$\"/stat 2>/dev/null | "
        "cut -d'\"'\"' '\"'\"' -f20) $(cat /proc/sys/kernel/random/boot_id)\" > /state/copy.pgid && "
        "rm -rf /pg/main.old && { n=0; until rm -rf /pg/main.partial "
        "&& install -d -o postgres -g postgres -m 700 /pg/main.partial && runuser -u postgres -- /bin/pg_basebackup -D "
        "/pg/main.partial -d '\"'\"'host=10.0.0.1 port=5432 user=omero_replication application_name=omero_standby_sb "
        "passfile=/var/lib/postgresql/omero-replication.pgpass'\"'\"' -w -R -X stream -S omero_standby_sb -c fast; "
        "do n=$((n+1)); [ $n -lt 5 ] || exit 1; sleep 3; done; } && systemctl stop postgresql.service && "
        "if [ -e /pg/main ]; then mv -T /pg/main /pg/main.old; fi && "
        "mv -T /pg/main.partial /pg/main && rm -rf /pg/main.old /state/copy.pgid'"]


# -- the copy's process group, killed by the next run: run in the shells hosts have as sh --------
def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a killed one may linger as a zombie until reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("shell", [pytest.param(shell, marks=pytest.mark.skipif(
    not shutil.which(shell), reason=f"no {shell} here")) for shell in ("dash", "bash")])
@pytest.mark.parametrize(("record", "killed"), [
    pytest.param(lambda line: line, True, id="the group that recorded itself: killed, its child too"),
    pytest.param(lambda line: re.sub(r" \d+ ", " 1 ", line, count=1), False,
                 id="its number now another process's (a restarted container): left alone"),
    pytest.param(lambda line: line.rsplit(" ", 1)[0] + " 00000000-0000-0000-0000-000000000000", False,
                 id="recorded before a reboot: left alone"),
    pytest.param(lambda line: "", False, id="no record: nothing killed"),
])
def test_recorded_copy_group_killed_only_while_it_is_that_copy(tmp_path, shell, record, killed):
    path = tmp_path / "copy.pgid"
    # A copy's group as setsid makes it: a leader that records itself, and a child.
    leader = subprocess.Popen([shell, "-c", f"{db_ops.record_group(str(path))}; sleep 60 & echo $! > child; wait"],
                              cwd=tmp_path, start_new_session=True)
    try:
        for _ in range(500):
            if (tmp_path / "child").is_file() and (tmp_path / "child").read_text().strip():
                break
            time.sleep(0.01)
        child = int((tmp_path / "child").read_text())
        path.write_text(record(path.read_text()))
        done = subprocess.run([shell, "-c", db_ops.kill_recorded_group(str(path))], capture_output=True, text=True)
        assert (done.returncode, done.stderr) == (0, "")
        if killed:
            assert leader.wait(5) == -signal.SIGKILL
            for _ in range(100):
                if not _running(child):
                    break
                time.sleep(0.05)
        assert (_running(leader.pid), _running(child)) == (not killed, not killed)
    finally:
        if leader.poll() is None:
            os.killpg(leader.pid, signal.SIGKILL)
            leader.wait()


def test_base_backup_quotes_odd_values(run_op):
    conninfo = {**CONNINFO, "passfile": "/var/lib/it's here"}
    run = run_op(db_ops.standby_cluster, {"PostgresStandby": {"standby": False, "slot": None, "conninfo": {}}},
                 "/pg/main", conninfo, "s", "stop", "/bin/pg_basebackup", "/state/copy.pgid")
    assert "passfile='\"'\"'\"'\"'\"'\"'\"'\"'/var/lib/it\\'\"'\"'\"'\"'\"'\"'\"'\"'s here" in run.commands[0]


@pytest.mark.parametrize(("slot", "slots", "commands"), [
    pytest.param("s1", {}, ["SELECT pg_create_physical_replication_slot('s1')"], id="made"),
    pytest.param("s1", {"s1": False}, [], id="there"),
    pytest.param("s1", {"s1": True, "s0": False}, ["SELECT pg_drop_replication_slot('s0')"],
                 id="a removed standby's dropped"),
    pytest.param(None, {"s0": False}, ["SELECT pg_drop_replication_slot('s0')"], id="no standby any more"),
    pytest.param(None, {"s0": True}, [], id="one in use is left until its standby has gone"),
])
def test_replication_slot(run_op, slot, slots, commands):
    run = run_op(db_ops.replication_slot, {"PostgresReplicationSlots": slots}, slot, "omero_standby_", port=5433)
    quote = "'\"'\"'"  # a ' inside the shell's '...'
    assert run.commands == [f"psql -p 5433 -Ac '{command.replace(chr(39), quote)}'" for command in commands]
    assert len(run.noops) == (0 if commands else 1)


@pytest.mark.parametrize(("running", "reloads"), [("omero_standby_a", False), ("", True), (None, True)])
def test_postgres_reloaded(run_op, running, reloads):
    run = run_op(db_ops.postgres_reloaded, {"PostgresSetting": running}, "synchronous_standby_names",
                 "omero_standby_a")
    assert run.commands == (["psql -p 5432 -Ac 'SELECT pg_reload_conf()'"] if reloads else [])


@pytest.mark.parametrize(("verifier", "replication", "changes"), [
    (RIGHT, True, False), (RIGHT, False, True), (None, False, True), ("", True, True)])
def test_replication_role(run_op, verifier, replication, changes):
    run = run_op(db_ops.postgres_role, {"PostgresRoleVerifier": verifier, "PostgresRoleReplication": replication},
                 "omero_replication", "right password", replication=True)
    assert bool(run.commands) == changes
    if changes:
        verb = "CREATE" if verifier is None else "ALTER"
        assert run.commands[0].startswith(f"psql -p 5432 -Ac '{verb} ROLE \"omero_replication\" LOGIN REPLICATION ")


@pytest.mark.parametrize(("name", "slot"), [
    ("db2.lab.example.org", "omero_standby_db2_lab_example_org"),
    ("@fake/standby", "omero_standby_fake_standby"),
    ("x" * 60, "omero_standby_" + "x" * 40 + "_" + __import__("hashlib").sha256(b"x" * 60).hexdigest()[:8]),
])
def test_slot_name(name, slot):
    assert topology.slot_name(name) == slot
    assert len(slot) <= 63


def test_password_kept_under_the_standbys_name_too(tmp_path):
    secrets.keep(str(tmp_path), "@fake/standby-db-omero", "the password")
    kept = tmp_path / "fake_standby-db-omero"
    assert kept.read_text() == "the password\n" and kept.stat().st_mode & 0o777 == 0o600
    secrets.keep(str(tmp_path), "@fake/standby-db-omero", "the password")  # again: nothing to do
    with pytest.raises(OmeroDeployError, match="holds another secret"):
        secrets.keep(str(tmp_path), "@fake/standby-db-omero", "another password")
    assert kept.read_text() == "the password\n"
