"""Our operations, table-driven as pyinfra's own operation tests are: the facts a host
answers go in, the commands it would be sent (or the no-op it reports) come out."""

import re
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from pyinfra.api import OperationError

from deploys import certificate_operations as tls_ops
from deploys import database_operations as db_ops
from deploys import operations as ops
from deploys import scram

pytestmark = pytest.mark.unit

SALT = b"0123456789abcdef"
RIGHT = scram.scram_verifier("right password", salt=SALT)
WRONG = scram.scram_verifier("another password", salt=SALT)

DB = {"host": "db.lab", "port": 5433, "user": "omero", "name": "omero"}
CONNECTION = "-h db.lab -p 5433 -U omero -d omero"
PSQL = f"psql -XAw -v ON_ERROR_STOP=1 {CONNECTION}"

# supervisorctl's wait for a program to be RUNNING, then the stamp (see supervised).
CTL = "supervisorctl -c /etc/supervisor/supervisord.conf"


def _wait_running(ctl: str, name: str) -> str:
    return (f"for i in $(seq 60); do {ctl} status {name} | grep -q RUNNING && break; sleep 1; done; "
            f"{ctl} status {name} | grep -q RUNNING || {{ {ctl} status {name}; exit 1; }}")


# -- not_in_group ---------------------------------------------------------------------------
@pytest.mark.parametrize(("users", "commands"), [
    pytest.param({"omero-web": {"group": "omero-web", "groups": ["omero", "adm"]}},
                 ["gpasswd -d omero-web omero"], id="a secondary member"),
    pytest.param({"omero-web": {"group": "omero-web", "groups": ["adm"]}}, [], id="not a member"),
    pytest.param({"omero-web": {"group": "omero", "groups": []}}, [], id="its primary group: not ours to drop"),
    pytest.param({}, [], id="no such user"),
])
def test_not_in_group(run_op, users, commands):
    run = run_op(ops.not_in_group, {"UserAccount": lambda user: users.get(user)}, "omero-web", "omero")
    assert run.commands == commands
    assert len(run.noops) == (0 if commands else 1)


def test_not_in_group_quotes_names(run_op):
    run = run_op(ops.not_in_group, {"UserAccount": {"group": "x", "groups": ["c;d"]}}, "a b", "c;d")
    assert run.commands == ["gpasswd -d 'a b' 'c;d'"]


# -- postgres_role --------------------------------------------------------------------------
ROLE_VERB = re.compile(
    r"^psql -p (\d+) -Ac '(CREATE|ALTER) ROLE \"(\S+)\" LOGIN PASSWORD "
    r"'\"'\"'(SCRAM-SHA-256\$[^']+)'\"'\"''$")


@pytest.mark.parametrize(("current", "verb"), [
    pytest.param(None, "CREATE", id="role absent"),
    pytest.param(WRONG, "ALTER", id="role exists with the wrong password"),
    pytest.param("", "ALTER", id="role exists without a password"),
    pytest.param("md5" + "0" * 32, "ALTER", id="role exists with an md5 password"),
    pytest.param(RIGHT.replace("$4096:", "$4097:"), "ALTER", id="verifier of other iterations"),
])
def test_postgres_role_sets_a_verifier_of_the_password(run_op, current, verb):
    run = run_op(db_ops.postgres_role, {"PostgresRoleVerifier": current}, "omero", "right password", port=5433)
    assert run.fact_calls == [("PostgresRoleVerifier", {"role": "omero", "port": 5433})]
    assert run.noops == []
    [command] = run.commands
    match = ROLE_VERB.match(command)
    assert match, command
    assert match.group(1, 2, 3) == ("5433", verb, "omero")
    verifier = match.group(4)
    assert scram.scram_matches("right password", verifier)
    assert verifier not in (RIGHT, current)  # a fresh salt each time
    # Only the masked form is ever printed.
    assert verifier not in run.printed[0]
    assert "*MASKED*" in run.printed[0]


def test_postgres_role_default_port(run_op):
    run = run_op(db_ops.postgres_role, {"PostgresRoleVerifier": None}, "omero", "pw")
    assert run.fact_calls == [("PostgresRoleVerifier", {"role": "omero", "port": 5432})]
    assert run.commands[0].startswith("psql -p 5432 -Ac 'CREATE ROLE \"omero\" LOGIN PASSWORD ")


def test_postgres_role_with_the_wanted_password_is_a_noop(run_op):
    run = run_op(db_ops.postgres_role, {"PostgresRoleVerifier": RIGHT}, "omero", "right password")
    assert run.commands == []
    assert run.noops == ["role omero exists with the wanted password"]


# -- postgres_database ----------------------------------------------------------------------
@pytest.mark.parametrize(("current", "commands", "noops"), [
    pytest.param(None, [
        "psql -p 5433 -Ac 'CREATE DATABASE \"omero\" OWNER \"omero\" "
        "ENCODING '\"'\"'UTF8'\"'\"' TEMPLATE template0'",
    ], [], id="database absent"),
    pytest.param(("postgres", "UTF8"), [
        "psql -p 5433 -Ac 'ALTER DATABASE \"omero\" OWNER TO \"omero\"'",
    ], [], id="database owned by someone else"),
    pytest.param(("omero", "UTF8"), [], ["database omero exists, UTF8, owned by omero"], id="as wanted"),
])
def test_postgres_database(run_op, current, commands, noops):
    run = run_op(db_ops.postgres_database, {"PostgresDatabaseOwner": current}, "omero", "omero", port=5433)
    assert run.fact_calls == [("PostgresDatabaseOwner", {"database": "omero", "port": 5433})]
    assert run.commands == commands
    assert run.noops == noops


def test_postgres_database_default_port(run_op):
    run = run_op(db_ops.postgres_database, {"PostgresDatabaseOwner": None}, "omero", "omero")
    assert run.fact_calls == [("PostgresDatabaseOwner", {"database": "omero", "port": 5432})]
    assert run.commands[0].startswith("psql -p 5432 -Ac ")


@pytest.mark.parametrize("current", [
    pytest.param(("omero", "SQL_ASCII"), id="right owner"),
    pytest.param(("postgres", "LATIN1"), id="wrong owner too"),
])
def test_postgres_database_of_another_encoding_is_refused(run_op, current):
    with pytest.raises(OperationError) as error:
        run_op(db_ops.postgres_database, {"PostgresDatabaseOwner": current}, "omero", "omero")
    assert str(error.value) == f"database omero exists with encoding {current[1]}, not UTF8"


# -- icepy_wheel ----------------------------------------------------------------------------
@pytest.mark.parametrize(("found", "commands", "noops"), [
    pytest.param("/opt/my wheels/zeroc_ice-3.6.5-cp312-cp312-linux_x86_64.whl", [],
                 ["an IcePy 3.6.5 wheel is already in the wheel cache"], id="wheel cached"),
    pytest.param(None, ["sh /opt/omero/build-icepy-wheel.sh python3.12 '/opt/my wheels'"], [], id="no wheel"),
])
def test_icepy_wheel(run_op, found, commands, noops):
    run = run_op(ops.icepy_wheel, {"FirstFile": found}, "python3.12", "/opt/my wheels",
                 "/opt/omero/build-icepy-wheel.sh")
    assert run.fact_calls == [("FirstFile", {"pattern": "/opt/my wheels/zeroc_ice-3.6.5-*.whl"})]
    assert run.commands == commands
    assert run.noops == noops


# -- changed --------------------------------------------------------------------------------
def _op(complete: bool, did: bool, will: bool):
    return SimpleNamespace(is_complete=lambda: complete, did_change=lambda: did, will_change=will)


@pytest.mark.parametrize(("given", "expected"), [
    pytest.param([], False, id="nothing"),
    pytest.param([None], False, id="an operation not planned on this host"),
    pytest.param([_op(True, True, False)], True, id="executed and changed"),
    pytest.param([_op(True, False, True)], False, id="executed, unchanged (planned change not made)"),
    pytest.param([_op(False, False, True)], True, id="planned to change"),
    pytest.param([_op(False, True, False)], False, id="planned unchanged"),
    pytest.param([None, _op(True, False, False), _op(True, True, False)], True, id="any of several"),
    pytest.param([_op(True, False, False), _op(False, False, False)], False, id="none of several"),
])
def test_changed(given, expected):
    assert ops.changed(*given)() is expected


# -- refreshed ------------------------------------------------------------------------------
@pytest.mark.parametrize(("changed", "touch", "commands", "noops"), [
    pytest.param([], True, [], ["nothing changed since /var/lib/omero deploy/nginx-checked"], id="unchanged"),
    pytest.param(["/etc/nginx/conf.d/omero-web.conf"], True,
                 ["nginx -t -q", "systemctl reload nginx", "touch '/var/lib/omero deploy/nginx-checked'"], [],
                 id="a source changed"),
    pytest.param(["/etc/nginx/nginx.conf"], False, ["nginx -t -q", "systemctl reload nginx"], [],
                 id="a source changed, no stamp"),
])
def test_refreshed(run_op, changed, touch, commands, noops):
    run = run_op(ops.refreshed, {"ChangedSince": changed}, ["nginx -t -q", "systemctl reload nginx"],
                 ["/etc/nginx/conf.d/*.conf", "/etc/nginx/nginx.conf"], "/var/lib/omero deploy/nginx-checked",
                 touch=touch)
    assert run.fact_calls == [("ChangedSince", {
        "paths": ("/etc/nginx/conf.d/*.conf", "/etc/nginx/nginx.conf"),
        "reference": "/var/lib/omero deploy/nginx-checked"})]
    assert run.commands == commands
    assert run.noops == noops


def test_refreshed_as_a_user(run_op):
    # The commands run as the service user; the stamp stays root's (touched by root).
    run = run_op(ops.refreshed, {"ChangedSince": ["/opt/omero/web/config/web.omero"]},
                 ["omero load --glob '/opt/omero/web/config/*.omero'", "omero web syncmedia >/dev/null"],
                 ["/opt/omero/web/config/web.omero"], "/var/lib/omero-deploy/loaded", user="omero-web")
    assert run.commands == [
        "runuser -u omero-web -- sh -c 'omero load --glob '\"'\"'/opt/omero/web/config/*.omero'\"'\"''",
        "runuser -u omero-web -- sh -c 'omero web syncmedia >/dev/null'",
        "touch /var/lib/omero-deploy/loaded",
    ]


def test_as_user_command_quotes():
    command = ops.as_user_command("omero server", "echo $HOME")
    assert command.get_raw_value() == "runuser -u 'omero server' -- sh -c 'echo $HOME'"


def test_refreshed_touches_by_default(run_op):
    run = run_op(ops.refreshed, {"ChangedSince": ["/a"]}, ["ldconfig"], ["/a"], "/stamp")
    assert run.commands == ["ldconfig", "touch /stamp"]


# -- supervised -----------------------------------------------------------------------------
STARTED = [
    "supervisord -c /etc/supervisor/supervisord.conf",
    f"for i in $(seq 100); do {CTL} pid >/dev/null 2>&1 && break; sleep 0.1; done; {CTL} pid >/dev/null",
]
WAIT_WEB = [_wait_running(CTL, "omero-web"), "touch /var/lib/omero-deploy/omero-web-started"]


@pytest.mark.parametrize(("programs", "changed", "commands", "noops"), [
    pytest.param(None, [], STARTED + WAIT_WEB, [], id="supervisord not running"),
    pytest.param({"nginx": "RUNNING"}, [], [f"{CTL} update", *WAIT_WEB], [], id="program not loaded yet"),
    pytest.param({"omero-web": "RUNNING"}, ["/opt/omero/web/config/web.omero"],
                 [f"{CTL} update && {CTL} restart omero-web", *WAIT_WEB], [],
                 id="running, configuration changed since started"),
    pytest.param({"omero-web": "STOPPED"}, ["/etc/supervisor/conf.d/omero-web.conf"],
                 [f"{CTL} update && {CTL} restart omero-web", *WAIT_WEB], [],
                 id="stopped, configuration changed since started"),
    pytest.param({"omero-web": "STOPPED"}, [], [f"{CTL} start omero-web", *WAIT_WEB], [],
                 id="program stopped"),
    pytest.param({"omero-web": "FATAL", "nginx": "RUNNING"}, [], [f"{CTL} start omero-web", *WAIT_WEB], [],
                 id="program failed"),
    # supervisord refuses `start` of a program it is starting already: only wait.
    pytest.param({"omero-web": "STARTING"}, [], WAIT_WEB, [], id="program starting"),
    pytest.param({"omero-web": "BACKOFF"}, [], WAIT_WEB, [], id="program retrying"),
    pytest.param({"omero-web": "RUNNING", "nginx": "STOPPED"}, [], [],
                 ["omero-web is running under supervisord"], id="running, unchanged"),
])
def test_supervised(run_op, programs, changed, commands, noops):
    run = run_op(ops.supervised, {"SupervisorPrograms": programs, "ChangedSince": changed},
                 "omero-web", "/etc/supervisor/supervisord.conf",
                 ["/etc/supervisor/conf.d/omero-web.conf", "/opt/omero/web/config/*.omero"],
                 "/var/lib/omero-deploy/omero-web-started")
    assert run.commands == commands
    assert run.noops == noops
    assert run.fact_calls[0] == ("SupervisorPrograms", {"conf": "/etc/supervisor/supervisord.conf"})
    if programs and "omero-web" in programs:
        assert run.fact_calls[1:] == [("ChangedSince", {
            "paths": ("/etc/supervisor/conf.d/omero-web.conf", "/opt/omero/web/config/*.omero"),
            "reference": "/var/lib/omero-deploy/omero-web-started"})]


def test_supervised_quotes_what_reaches_the_shell(run_op):
    ctl = "supervisorctl -c '/etc/my supervisor.conf'"
    run = run_op(ops.supervised, {"SupervisorPrograms": {"web app": "EXITED"}, "ChangedSince": []},
                 "web app", "/etc/my supervisor.conf", [], "/stamp")
    assert run.commands == [f"{ctl} start 'web app'", _wait_running(ctl, "'web app'"), "touch /stamp"]
    run = run_op(ops.supervised, {"SupervisorPrograms": None, "ChangedSince": []}, "web app",
                 "/etc/my supervisor.conf", [], "/s")
    assert run.commands[:2] == [
        "supervisord -c '/etc/my supervisor.conf'",
        f"for i in $(seq 100); do {ctl} pid >/dev/null 2>&1 && break; sleep 0.1; done; {ctl} pid >/dev/null"]


# -- systemd_running ------------------------------------------------------------------------
WEB = "omero-web.service"


def _units(**states) -> dict:
    """SystemdUnits' answer: each unit's {"enabled", "running", ...} (a missing key: False)."""
    return {f"{name.replace('_', '-')}.service": state for name, state in states.items()}


@pytest.mark.parametrize(("units", "changed", "commands"), [
    pytest.param({}, [], ["systemctl enable omero-web.service", "systemctl start omero-web.service"],
                 id="unit not known yet"),
    pytest.param(_units(omero_web={"enabled": False, "running": False}), [],
                 ["systemctl enable omero-web.service", "systemctl start omero-web.service"],
                 id="disabled, stopped"),
    pytest.param(_units(omero_web={"enabled": True, "running": False}), ["/etc/x"],
                 ["systemctl start omero-web.service"], id="enabled, stopped"),
    pytest.param(_units(omero_web={"enabled": True, "running": True}), ["/opt/omero/web/config/web.omero"],
                 ["systemctl restart omero-web.service"], id="configuration changed on disk since started"),
    pytest.param(_units(omero_web={"enabled": False, "running": True}), ["/etc/x"],
                 ["systemctl enable omero-web.service", "systemctl restart omero-web.service"],
                 id="disabled, running, changed"),
    pytest.param(_units(nginx={"enabled": True, "running": False}, omero_web={"running": True}), [],
                 ["systemctl enable omero-web.service"], id="disabled, running, unchanged"),
])
def test_systemd_running_changes(run_op, units, changed, commands):
    run = run_op(ops.systemd_running, {"SystemdUnits": units, "ChangedSince": changed},
                 "omero-web", ["/etc/systemd/system/omero-web.service", "/opt/omero/web/config/*.omero"],
                 "/var/lib/omero-deploy/omero-web-started")
    stamped = commands[-1] != "systemctl enable omero-web.service"
    assert run.commands == commands + (["touch /var/lib/omero-deploy/omero-web-started"] if stamped else [])
    assert run.noops == []
    assert run.fact_calls == [("SystemdUnits", {"units": (WEB,)}), ("ChangedSince", {
        "paths": ("/etc/systemd/system/omero-web.service", "/opt/omero/web/config/*.omero"),
        "reference": "/var/lib/omero-deploy/omero-web-started"})]


def test_systemd_running_enabled_active_unchanged_does_nothing(run_op):
    run = run_op(ops.systemd_running, {"SystemdUnits": _units(omero_web={"enabled": True, "running": True}),
                                       "ChangedSince": []}, "omero-web", [], "/stamp")
    assert run.commands == []
    assert run.noops == ["omero-web.service is enabled and running what is on disk"]


UNITS = {"units": ("omero-web.service", "nginx.service"),
         "unit_files": ("/etc/systemd/system/omero-web.service", "/etc/systemd/system/nginx.service.d/omero-web.conf")}
LOADED = {"omero-web.service": {"loaded": ("/etc/systemd/system/omero-web.service",)},
          "nginx.service": {"loaded": ("/lib/systemd/system/nginx.service",
                                       "/etc/systemd/system/nginx.service.d/omero-web.conf")}}


@pytest.mark.parametrize(("units", "commands", "noops"), [
    pytest.param({WEB: {"enabled": True, "running": True, "needs_reload": True, **LOADED[WEB]},
                  "nginx.service": LOADED["nginx.service"]},
                 ["systemctl daemon-reload"], [], id="running, its unit changed on disk"),
    pytest.param({WEB: {"enabled": True, "running": True, **LOADED[WEB]},
                  "nginx.service": {"loaded": ("/lib/systemd/system/nginx.service",)}},
                 ["systemctl daemon-reload"], [], id="running, another unit's new drop-in not loaded"),
    pytest.param({}, ["systemctl daemon-reload", "systemctl enable omero-web.service",
                      "systemctl start omero-web.service", "touch /stamp"], [], id="new: loaded first"),
    pytest.param({WEB: {"enabled": True, "running": True, **LOADED[WEB]}, "nginx.service": LOADED["nginx.service"]},
                 [], ["omero-web.service is enabled and running what is on disk"], id="loaded, running"),
])
def test_systemd_running_loads_the_units_written_first(run_op, units, commands, noops):
    run = run_op(ops.systemd_running, {"SystemdUnits": units, "ChangedSince": []}, "omero-web", [], "/stamp",
                 **UNITS)
    assert run.commands == commands and run.noops == noops
    # One question for the unit and those written: what systemd knows of all of them.
    assert run.fact_calls[0] == ("SystemdUnits", {"units": UNITS["units"]})
    assert [name for name, _ in run.fact_calls].count("SystemdUnits") == 1


def test_systemd_running_a_timer(run_op):
    run = run_op(ops.systemd_running, {"SystemdUnits": {}, "ChangedSince": []}, "omero-backup",
                 ["/etc/systemd/system/omero-backup.timer"], "/stamp", kind="timer")
    assert run.commands == ["systemctl enable omero-backup.timer", "systemctl start omero-backup.timer",
                            "touch /stamp"]
    assert run.fact_calls[0] == ("SystemdUnits", {"units": ("omero-backup.timer",)})


# -- systemd_reloaded -----------------------------------------------------------------------
@pytest.mark.parametrize(("units", "commands", "noops"), [
    pytest.param({WEB: {"needs_reload": True, **LOADED[WEB]}, "nginx.service": LOADED["nginx.service"]},
                 ["systemctl daemon-reload"], [], id="a unit changed on disk"),
    pytest.param({WEB: LOADED[WEB]}, ["systemctl daemon-reload"], [], id="a drop-in's unit not known"),
    pytest.param({WEB: {"loaded": ()}, "nginx.service": LOADED["nginx.service"]}, ["systemctl daemon-reload"], [],
                 id="a unit not loaded yet"),
    pytest.param(LOADED, [], ["systemd has loaded the current omero-web.service, nginx.service"], id="loaded"),
])
def test_systemd_reloaded(run_op, units, commands, noops):
    run = run_op(ops.systemd_reloaded, {"SystemdUnits": units}, ["omero-web.service", "nginx.service"],
                 ["/etc/systemd/system/omero-web.service", "/etc/systemd/system/nginx.service.d/omero-web.conf"])
    assert run.fact_calls == [("SystemdUnits", {"units": ("omero-web.service", "nginx.service")})]
    assert run.commands == commands
    assert run.noops == noops


@pytest.mark.parametrize(("states", "files", "unloaded"), [
    pytest.param([{"loaded": ("/etc/systemd/system/a.service",)}], ["/etc/systemd/system/a.service"], False,
                 id="loaded as on disk"),
    pytest.param([{"needs_reload": True, "loaded": ("/etc/systemd/system/a.service",)}],
                 ["/etc/systemd/system/a.service"], True, id="changed on disk since loaded"),
    pytest.param([{"needs_reload": True, "loaded": ("/lib/systemd/system/b.service",)}], [], True,
                 id="changed on disk, not written by this deploy"),
    pytest.param([{"loaded": ()}], ["/etc/systemd/system/a.service"], True, id="a unit not loaded yet"),
    pytest.param([{}], ["/etc/systemd/system/a.service"], True, id="a unit systemd does not know"),
    pytest.param([{"loaded": ("/lib/systemd/system/nginx.service", "/etc/systemd/system/nginx.service.d/limits.conf")}],
                 ["/etc/systemd/system/nginx.service.d/omero.conf", "/etc/systemd/system/nginx.service.d/limits.conf"],
                 True, id="a new drop-in systemd has not seen"),
    pytest.param([{"loaded": ("/etc/systemd/system/a.service",)},
                  {"loaded": ("/usr/lib/systemd/system/b.service", "/etc/systemd/system/b.service.d/x.conf")}],
                 ["/etc/systemd/system/a.service", "/etc/systemd/system/b.service.d/x.conf"], False,
                 id="two units, each loaded as on disk"),
    pytest.param([{"loaded": ("/etc/systemd/system/a.service",)},
                  {"needs_reload": True, "loaded": ("/etc/systemd/system/b.service",)}],
                 ["/etc/systemd/system/a.service", "/etc/systemd/system/b.service"], True,
                 id="the second unit changed on disk"),
])
def test_unloaded(states, files, unloaded):
    assert ops._unloaded(states, files) is unloaded


# -- wait_until -----------------------------------------------------------------------------
@pytest.mark.parametrize(("when", "kwargs", "commands", "noops"), [
    pytest.param(False, {}, [], ["OMERO.web was not (re)started"], id="not started"),
    pytest.param(True, {}, [
        "i=0; until curl -fs http://localhost:4080/; do i=$((i+1)); if [ $i -gt 600 ]; then "
        "echo 'timed out after 120s waiting for OMERO.web' >&2; exit 1; fi; sleep 0.2; done"], [],
        id="started, default timeout"),
    pytest.param(True, {"timeout": 7}, [
        "i=0; until curl -fs http://localhost:4080/; do i=$((i+1)); if [ $i -gt 35 ]; then "
        "echo 'timed out after 7s waiting for OMERO.web' >&2; exit 1; fi; sleep 0.2; done"], [],
        id="started, timeout given"),
])
def test_wait_until(run_op, when, kwargs, commands, noops):
    run = run_op(ops.wait_until, {}, "curl -fs http://localhost:4080/", "OMERO.web", lambda: when, **kwargs)
    assert run.commands == commands
    assert run.noops == noops


# -- omero_schema ---------------------------------------------------------------------------
SCHEMA_FACT = ("OmeroSchemaVersion", {"host": "db.lab", "port": 5433, "database": "omero", "user": "omero"})


def test_omero_schema_once(run_op):
    run = run_op(db_ops.omero_schema, {"OmeroSchemaVersion": "OMERO5.4__0"}, "/opt/omero/server/venv3/bin/omero",
                 "/opt/omero/server/OMERO.server", DB, "/opt/omero/server/tmp", "root secret")
    assert run.fact_calls == [SCHEMA_FACT]
    assert run.commands == []
    assert run.noops == ["the database already holds OMERO schema OMERO5.4__0"]


def test_omero_schema_created(run_op):
    run = run_op(db_ops.omero_schema, {"OmeroSchemaVersion": None}, "/opt/omero/server/venv3/bin/omero",
                 "/opt/omero/server/OMERO.server", DB, "/opt/omero/server/tmp", "root secret")
    assert run.fact_calls == [SCHEMA_FACT]
    script = "/opt/omero/server/tmp/omero-schema.sql"
    create = ("umask 077 && OMERODIR=/opt/omero/server/OMERO.server "
              "/opt/omero/server/venv3/bin/omero db script "
              f"--file {script} --password")
    assert run.commands == [f"{create} 'root secret'", f"{PSQL} -f {script} && rm -f {script}"]
    assert run.printed[0] == f"{create} '*MASKED*'"
    assert run.noops == []


# -- stop_and_dump_before_upgrade -----------------------------------------------------------
@pytest.mark.parametrize(("installed", "commands", "noops"), [
    pytest.param(None, [], ["OMERO.server 5.6.16 is not an upgrade here"], id="first install"),
    pytest.param("5.6.16", [], ["OMERO.server 5.6.16 is not an upgrade here"], id="same version"),
    pytest.param("5.6.15", [
        "systemctl stop omero-server.service",
        f"runuser -u omero-server -- pg_dump -w -Fc {CONNECTION} "
        "-f '/var/backups/omero dumps/omero-5.6.15-before-5.6.16.pgdump'"], [], id="upgrade"),
])
def test_stop_and_dump_before_upgrade(run_op, installed, commands, noops):
    run = run_op(db_ops.stop_and_dump_before_upgrade, {"OmeroServerVersion": installed},
                 "/opt/omero/server/OMERO.server", "5.6.16", "systemctl stop omero-server.service",
                 "omero-server", "/var/backups/omero dumps", DB)
    assert run.fact_calls == [("OmeroServerVersion", {"symlink": "/opt/omero/server/OMERO.server"})]
    assert run.commands == commands
    assert run.noops == noops


def test_connection_quotes():
    db = {"host": "db lab", "port": 5432, "user": "o'mero", "name": "my db"}
    assert db_ops._connection(db) == "-h 'db lab' -p 5432 -U 'o'\"'\"'mero' -d 'my db'"


# -- omero_schema_upgrade -------------------------------------------------------------------
LS = "ls /opt/omero/server/OMERO.server/sql/psql/*/OMERO5.3__1.sql 2>/dev/null || true"
UPGRADE = "/opt/omero/server/OMERO.server/sql/psql/OMERO5.4__0/OMERO5.3__1.sql"


@pytest.mark.parametrize(("schema", "scripts", "commands", "noops"), [
    pytest.param(None, None, [], ["no schema yet: it will be created, not upgraded"], id="no schema"),
    pytest.param("OMERO5.3__1", "", [], ["schema OMERO5.3__1 needs no upgrade"], id="no script applies"),
    pytest.param("OMERO5.3__1", None, [], ["schema OMERO5.3__1 needs no upgrade"], id="no output"),
    pytest.param("OMERO5.3__1", UPGRADE, [f"{PSQL} -f {UPGRADE}"], [],
                 id="an upgrade with a script to apply"),
    pytest.param("OMERO5.3__1", f"{UPGRADE}\n{UPGRADE}.2",
                 [f"{PSQL} -f {UPGRADE}", f"{PSQL} -f {UPGRADE}.2"], [],
                 id="an upgrade with scripts to apply"),
])
def test_omero_schema_upgrade(run_op, schema, scripts, commands, noops):
    run = run_op(db_ops.omero_schema_upgrade, {"OmeroSchemaVersion": schema, "Command": scripts},
                 "/opt/omero/server/OMERO.server", DB)
    assert run.fact_calls[0] == SCHEMA_FACT
    assert run.fact_calls[1:] == ([("Command", {"command": LS})] if schema else [])
    assert run.commands == commands
    assert run.noops == noops


# -- secret_file ----------------------------------------------------------------------------
PGPASS = "/home/omero-server/.pgpass"
PGPASS_CONTENT = "host:5432:omero:omero:pw\n"
PGPASS_SHA256 = "e5990f6af764828984e4c77814b2a998562993c045dfd80ff01ecc203d86d1b1"
UPLOAD = "/tmp/pyinfra-temp-for-upload-_home_omero-server_.pgpass"
STAGED = "/tmp/pyinfra-temp-for-secret-_home_omero-server_.pgpass"


def written(uploader: str = "root") -> list:
    # Every file the secret passes through is 0600 before the content lands in it.
    return [
        f"install -m 600 -o {uploader} /dev/null {UPLOAD}",
        f"install -m 600 /dev/null {STAGED}",
        ("upload", PGPASS_CONTENT, STAGED, UPLOAD),
        f"rm -f {UPLOAD}",
        f"chown omero-server:omero-server {STAGED}",
        f"chmod 600 {STAGED}",
        f"mv -f {STAGED} {PGPASS}",
    ]


AS_WANTED = {"type": "file", "user": "omero-server", "group": "omero-server", "mode": 600, "sha256": PGPASS_SHA256}
ASKED = ("PathStates", {"paths": (PGPASS,), "hashed": (PGPASS,)})


@pytest.mark.parametrize(("found", "commands", "noops"), [
    pytest.param(None, written(), [], id="absent"),
    pytest.param({**AS_WANTED, "type": "directory", "sha256": None}, written(), [], id="not a file"),
    pytest.param({**AS_WANTED, "type": "link", "sha256": None}, written(), [], id="a link"),
    pytest.param(AS_WANTED, [], [f"{PGPASS} is as wanted"], id="as wanted"),
    pytest.param({**AS_WANTED, "sha256": "0" * 64}, written(), [], id="other content"),
    pytest.param({**AS_WANTED, "mode": 644}, written(), [], id="readable by others"),
    pytest.param({**AS_WANTED, "user": "root"}, written(), [], id="other owner"),
    pytest.param({**AS_WANTED, "group": "omero"}, written(), [], id="other group"),
])
def test_secret_file(run_op, found, commands, noops):
    run = run_op(ops.written_secret, {"PathStates": {PGPASS: found}}, PGPASS, PGPASS_CONTENT,
                 "omero-server", "omero-server", "600")
    assert run.commands == commands
    assert run.noops == noops
    assert run.fact_calls == [ASKED]


def test_secret_file_mode_compared_as_a_number(run_op):
    run = run_op(ops.written_secret, {"PathStates": {PGPASS: AS_WANTED}}, PGPASS, PGPASS_CONTENT,
                 "omero-server", "omero-server", "0600")
    assert run.commands == []


def test_secret_file_uploaded_by_the_ssh_user(run_op):
    """Through SSH + sudo the SSH user writes the upload: the file it writes into is its own, 0600."""
    ssh = object.__new__(ops.SSHConnector)
    run = run_op(ops.written_secret, {"PathStates": {}}, PGPASS, PGPASS_CONTENT, "omero-server", "omero-server",
                 "600", connector=ssh, data={"ssh_user": "admin"})
    assert run.commands == written("admin")


def test_secret_file_quotes(run_op):
    run = run_op(ops.written_secret, {"PathStates": {}}, "/etc/my app/secret", "s", "web user", "web group", "640")
    staged = "/tmp/pyinfra-temp-for-secret-_etc_my-app_secret"
    assert run.commands[4:] == [f"chown 'web user:web group' {staged}", f"chmod 640 {staged}",
                                f"mv -f {staged} '/etc/my app/secret'"]


# -- run_once -------------------------------------------------------------------------------
CERT = "/OMERO/certs/server.pem"


@pytest.mark.parametrize(("state", "commands", "noops"), [
    pytest.param(None, ["omero certificates"], [], id="absent"),
    pytest.param({"type": "link"}, ["omero certificates"], [], id="neither a file nor a directory"),
    pytest.param({"type": "file"}, [], [f"{CERT} exists"], id="a file"),
    pytest.param({"type": "directory"}, [], [f"{CERT} exists"], id="a directory"),
])
def test_run_once(run_op, state, commands, noops):
    run = run_op(ops.run_once, {"PathStates": {CERT: state}}, "omero certificates", CERT)
    assert run.commands == commands
    assert run.noops == noops
    assert [(name, kwargs["paths"]) for name, kwargs in run.fact_calls] == [("PathStates", (CERT,))]


# -- complete_directory ---------------------------------------------------------------------
# A space and a '$' in the words: each reaches the shell quoted.
TOOLS, TOOLS_SCRATCH = "/opt/my tools", "/opt/my tools.partial"
Q_TOOLS, Q_SCRATCH = "'/opt/my tools'", "'/opt/my tools.partial'"
FILLED = f"rm -rf {Q_SCRATCH} && mkdir -p {Q_SCRATCH} && unzip -q '/srv/tools $v.zip' -d {Q_SCRATCH}"
A_DIRECTORY = {"type": "directory", "user": "root", "group": "root", "mode": 755}
A_FILE = {**A_DIRECTORY, "type": "file"}


def _unzip(scratch: str) -> list[str]:
    return ["unzip", "-q", "/srv/tools $v.zip", "-d", scratch]


@pytest.mark.parametrize(("target", "scratch", "kwargs", "commands", "noops"), [
    pytest.param(None, None, {}, [f"{FILLED} && mv -T {Q_SCRATCH} {Q_TOOLS}"], [], id="absent"),
    pytest.param(None, None, {"owner": "root:root"},
                 [f"{FILLED} && chown -R root:root {Q_SCRATCH} && mv -T {Q_SCRATCH} {Q_TOOLS}"], [],
                 id="absent, given an owner"),
    pytest.param(None, None, {"inside": "tools-1.0"},
                 [f"{FILLED} && mv -T '/opt/my tools.partial/tools-1.0' {Q_TOOLS} && rm -rf {Q_SCRATCH}"], [],
                 id="absent, an archive's top directory"),
    pytest.param(None, None, {"inside": "tools 1.0", "owner": "root:root"},
                 [f"{FILLED} && chown -R root:root {Q_SCRATCH} && "
                  f"mv -T '/opt/my tools.partial/tools 1.0' {Q_TOOLS} && rm -rf {Q_SCRATCH}"], [],
                 id="absent, top directory and owner"),
    pytest.param(A_DIRECTORY, None, {}, [], [f"{TOOLS} exists"], id="complete"),
    pytest.param(A_DIRECTORY, None, {"owner": "root:root"}, [], [f"{TOOLS} exists"],
                 id="complete, its owner not checked again"),
    pytest.param(A_DIRECTORY, None, {"inside": "tools-1.0"}, [], [f"{TOOLS} exists"],
                 id="complete, no scratch left"),
    pytest.param(A_DIRECTORY, A_DIRECTORY, {"inside": "tools-1.0"}, [f"rm -rf {Q_SCRATCH}"], [],
                 id="complete, scratch left by a run killed after the rename"),
    pytest.param(A_DIRECTORY, A_FILE, {"inside": "tools-1.0"}, [f"rm -rf {Q_SCRATCH}"], [],
                 id="complete, a file where the scratch goes"),
])
def test_complete_directory(run_op, target, scratch, kwargs, commands, noops):
    # A scratch directory from a killed run is removed by the same command that makes it anew.
    states = {TOOLS: target, TOOLS_SCRATCH: scratch}
    run = run_op(ops.complete_directory, {"PathStates": states}, TOOLS, _unzip, **kwargs)
    assert run.commands == commands
    assert run.noops == noops
    checks_scratch = target and "inside" in kwargs
    assert [(name, kwargs["paths"]) for name, kwargs in run.fact_calls] == [
        ("PathStates", (TOOLS,)), *([("PathStates", (TOOLS, TOOLS_SCRATCH))] if checks_scratch else [])]


def test_complete_directory_refuses_what_is_not_a_directory(run_op):
    # A file or a symlink at the target: neither counted as done nor renamed over.
    with pytest.raises(OperationError, match="^/opt/my tools exists and is not a directory$"):
        run_op(ops.complete_directory, {"PathStates": {TOOLS: {**A_DIRECTORY, "type": "link"}}}, TOOLS, _unzip)


# -- dnf_repo_enabled -----------------------------------------------------------------------
@pytest.mark.parametrize(("listed", "commands", "noops"), [
    pytest.param("crb    Rocky Linux 9 - CRB", [], ["dnf repository crb is enabled"], id="enabled"),
    pytest.param("", ["dnf config-manager --set-enabled crb"], [], id="disabled"),
    pytest.param(None, ["dnf config-manager --set-enabled crb"], [], id="no output"),
    pytest.param("appstream  Rocky Linux 9 - AppStream", ["dnf config-manager --set-enabled crb"], [],
                 id="another repository"),
])
def test_dnf_repo_enabled(run_op, listed, commands, noops):
    run = run_op(ops.dnf_repo_enabled, {"Command": listed}, "crb")
    assert run.fact_calls == [("Command", {"command": "dnf repolist --enabled -q crb 2>/dev/null || true"})]
    assert run.commands == commands
    assert run.noops == noops


# -- nft_table_loaded ------------------------------------------------------------------------
@pytest.mark.parametrize(("listed", "commands", "noops"), [
    pytest.param("loaded", [], ["nftables table inet omero_redis is loaded"], id="loaded"),
    pytest.param("", ["systemctl reload-or-restart omero-redis-filter.service"], [], id="gone"),
    pytest.param(None, ["systemctl reload-or-restart omero-redis-filter.service"], [], id="no output"),
])
def test_nft_table_loaded(run_op, listed, commands, noops):
    run = run_op(ops.nft_table_loaded, {"Command": listed}, "inet omero_redis",
                 "systemctl reload-or-restart omero-redis-filter.service")
    assert run.fact_calls == [("Command", {"command": "nft list table inet omero_redis >/dev/null 2>&1 "
                                                      "&& echo loaded || true"})]
    assert run.commands == commands
    assert run.noops == noops


# -- self_signed_certificate ------------------------------------------------------------------
NOW = datetime.now(timezone.utc)
NAMES = ["omero.test", "10.0.0.5"]


def _certificate(days_left: int, names=("10.0.0.5", "omero.test"), key_matches=True) -> dict:
    return {"not_after": NOW + timedelta(days=days_left), "names": sorted(names), "key_matches": key_matches}


@pytest.mark.parametrize(("current", "elsewhere", "reason"), [
    pytest.param(None, False, "there is none", id="none"),
    pytest.param(None, True, "there is none", id="none, ACME"),
    pytest.param(_certificate(300, key_matches=False), False, "its key does not match", id="mismatched pair"),
    pytest.param(_certificate(300, key_matches=False), True, "its key does not match", id="mismatched, ACME"),
    pytest.param(_certificate(29), False, "it expires on", id="within the renewal window"),
    pytest.param(_certificate(29), True, None, id="expiring, ACME renews it"),
    pytest.param(_certificate(31), False, None, id="outside the window"),
    pytest.param(_certificate(300, names=("omero.test",)), False, "it is for omero.test", id="an address fewer"),
    pytest.param(_certificate(300, names=("omero.test", "10.0.0.5", "x.test")), False, "it is for",
                 id="a name more"),
    pytest.param(_certificate(300, names=()), False, "it is for no name", id="no names"),
    pytest.param(_certificate(300, names=()), True, None, id="any names, ACME"),
])
def test_certificate_due(current, elsewhere, reason):
    due = tls_ops.certificate_due(current, NAMES, 30, NOW, renewed_elsewhere=elsewhere)
    assert (due is None) == (reason is None) and (reason is None or due.startswith(reason)), due


def test_self_signed_certificate_made_beside_then_renamed(run_op):
    run = run_op(tls_ops.self_signed_certificate, {"TlsCertificate": None}, "/etc/tls/site.crt", "/etc/tls/site.key",
                 ["omero.test", "10.0.0.5", "fd00::5"], 30, 397)
    made, *owned, key, certificate = run.commands
    assert made.startswith("(umask 077 && openssl req -x509 -newkey ec ")
    assert "-days 397 -subj /CN=omero.test -addext subjectAltName=DNS:omero.test,IP:10.0.0.5,IP:fd00::5 " in made
    assert "-keyout /etc/tls/site.key.new -out /etc/tls/site.crt.new" in made
    assert owned == ["chown root:root /etc/tls/site.key.new", "chmod 600 /etc/tls/site.key.new",
                     "chown root:root /etc/tls/site.crt.new", "chmod 644 /etc/tls/site.crt.new"]
    assert (key, certificate) == ("mv -f /etc/tls/site.key.new /etc/tls/site.key",
                                  "mv -f /etc/tls/site.crt.new /etc/tls/site.crt")


def test_self_signed_certificate_kept_while_valid(run_op):
    run = run_op(tls_ops.self_signed_certificate, {"TlsCertificate": _certificate(100)}, "/etc/tls/site.crt",
                 "/etc/tls/site.key", NAMES, 30, 397)
    assert run.commands == [] and run.noops[0].startswith("/etc/tls/site.crt is valid until")


# -- backup_repositories --------------------------------------------------------------------
@pytest.mark.parametrize(("present", "commands", "noops"), [
    pytest.param(None, ["'/usr/local/sbin/omero backup' init"], [], id="program not installed yet"),
    pytest.param(["local"], ["'/usr/local/sbin/omero backup' init"], [], id="remote missing"),
    pytest.param(["remote", "local"], [], ["backup repositories local, remote exist"], id="both exist"),
])
def test_backup_repositories(run_op, present, commands, noops):
    run = run_op(ops.backup_repositories, {"BackupRepositoriesPresent": present}, "/usr/local/sbin/omero backup",
                 ["local", "remote"])
    assert run.fact_calls == [("BackupRepositoriesPresent", {"program": "/usr/local/sbin/omero backup"})]
    assert (run.commands, run.noops) == (commands, noops)


@pytest.mark.parametrize(("backup_program", "kept"), [
    pytest.param(None, [], id="no backups"),
    pytest.param("/usr/local/sbin/omero-backup",
                 ["/usr/local/sbin/omero-backup add /srv/dumps/omero-5.6.15-before-5.6.16.pgdump"], id="backups"),
])
def test_dump_before_upgrade_kept_in_the_backups(run_op, backup_program, kept):
    run = run_op(db_ops.stop_and_dump_before_upgrade, {"OmeroServerVersion": "5.6.15"},
                 "/opt/omero/server/OMERO.server", "5.6.16", "systemctl stop omero-server.service", "omero-server",
                 "/srv/dumps",
                 {"host": "localhost", "port": 5432, "name": "omero", "user": "omero"}, backup_program=backup_program)
    assert run.commands[0] == "systemctl stop omero-server.service"
    assert "pg_dump -w -Fc" in run.commands[1]
    assert run.commands[2:] == kept


# -- package_manager_idle -------------------------------------------------------------------
UNFINISHED_DPKG = "if [ -n \"$(ls -A /var/lib/dpkg/updates 2>/dev/null)\" ]; then dpkg --configure -a; fi"


@pytest.mark.parametrize(("activity", "waits", "commands"), [
    pytest.param({"running": [], "interrupted": False}, None, 0, id="idle"),
    pytest.param({"running": [], "interrupted": True}, None, 1, id="dpkg cut off"),
    pytest.param({"running": [(812, "apt-get"), (815, "dpkg")], "interrupted": False},
                 "waiting for apt-get (pid 812), dpkg (pid 815), left running by an earlier run", 2,
                 id="an install left running"),
])
def test_package_manager_idle(run_op, activity, waits, commands):
    run = run_op(ops.package_manager_idle, {"PackageManagerActivity": activity}, timeout=30)
    assert len(run.commands) == commands and len(run.noops) == (0 if commands else 1)
    if commands:
        assert run.commands[-1] == UNFINISHED_DPKG
    if waits:
        wait = run.commands[0]
        assert wait.startswith(f"echo '{waits}' >&2; ")
        assert "while grep -qxE 'apt|apt-get|aptitude|dpkg|" in wait and "/proc/[0-9]*/comm" in wait
        assert ("if [ $i -gt 30 ]; then echo 'apt-get (pid 812), dpkg (pid 815) still running after 30s' >&2; "
                "exit 1") in wait


# -- owned_by -------------------------------------------------------------------------------
@pytest.mark.parametrize(("stray", "commands"), [
    pytest.param("/opt/omero/analysis/proxy-5.1.0/node_modules/bintrees/lib/rbtree.js",
                 ["chown -R root:root '/opt/omero/analysis/proxy 5.1.0'"], id="a file npm left a packager's"),
    pytest.param("", [], id="all root's"),
    pytest.param(None, [], id="not there yet"),
])
def test_owned_by(run_op, stray, commands):
    run = run_op(ops.owned_by, {"Command": stray}, "/opt/omero/analysis/proxy 5.1.0", "root", "root")
    assert run.commands == commands and len(run.noops) == (0 if commands else 1)


# -- only_entries ---------------------------------------------------------------------------
@pytest.mark.parametrize(("listed", "commands"), [
    pytest.param("web1.conf\nweb2.conf\nold.conf\n", ["rm -rf /etc/nginx/nodes/old.conf"], id="one gone"),
    pytest.param("web1.conf\n", [], id="only what is kept"),
    pytest.param("", [], id="empty or missing"),
])
def test_only_entries(run_op, listed, commands):
    run = run_op(ops.only_entries, {"Command": listed}, "/etc/nginx/nodes", ["web1.conf", "web2.conf"])
    assert run.commands == commands
    assert len(run.noops) == (0 if commands else 1)
