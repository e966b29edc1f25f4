"""Our facts, table-driven: the command each sends (quoting included) and the value it
makes of what the host answers."""

import grp
import os
import pwd
import subprocess
from datetime import datetime, timezone

import pytest

from facts import omero as facts

pytestmark = pytest.mark.unit

SUPERVISORCTL = "supervisorctl -c '/etc/my supervisor/supervisord.conf'"

COMMANDS = [
    pytest.param(facts.Accounts, {"names": ("omero-web", "it's")}, "getent passwd omero-web 'it'\"'\"'s' || true",
                 id="Accounts"),
    pytest.param(facts.Accounts, {"names": ()}, "true", id="Accounts-none (getent would list everyone)"),
    pytest.param(facts.DirectoryOwners, {"paths": ()}, "true", id="DirectoryOwners-none"),
    pytest.param(facts.InitSystem, {}, "cat /proc/1/comm 2>/dev/null || echo unknown", id="InitSystem"),
    pytest.param(facts.UserAccount, {"user": "it's"},
                 "if e=$(getent passwd 'it'\"'\"'s'); then echo \"passwd $e\"; echo \"group $(id -gn 'it'\"'\"'s')\"; "
                 "echo \"groups $(id -Gn 'it'\"'\"'s')\"; fi", id="UserAccount"),
    pytest.param(facts.InContainer, {}, "systemd-detect-virt --container 2>/dev/null || true", id="InContainer"),
    pytest.param(facts.SupervisorPrograms, {"conf": "/etc/my supervisor/supervisord.conf"},
                 f"if {SUPERVISORCTL} pid >/dev/null 2>&1; then {SUPERVISORCTL} status || true; "
                 "else echo __DOWN__; fi", id="SupervisorPrograms"),
    pytest.param(facts.PostgresRoleVerifier, {"role": "omero", "port": 5433},
                 "psql -XAt -p 5433 -c 'SELECT '\"'\"'role:'\"'\"' || coalesce(rolpassword, '\"'\"''\"'\"') "
                 "FROM pg_authid WHERE rolname = '\"'\"'omero'\"'\"'' 2>/dev/null || true",
                 id="PostgresRoleVerifier"),
    pytest.param(facts.PostgresDatabaseOwner, {"database": "omero", "port": 5433},
                 "psql -XAt -p 5433 -c 'SELECT '\"'\"'db:'\"'\"' || pg_get_userbyid(datdba) || "
                 "'\"'\"':'\"'\"' "
                 "|| pg_encoding_to_char(encoding) FROM pg_database WHERE datname = '\"'\"'omero'\"'\"'' "
                 "2>/dev/null || true", id="PostgresDatabaseOwner"),
    pytest.param(facts.OmeroServerVersion, {"symlink": "/opt/omero server/OMERO.server"},
                 "readlink '/opt/omero server/OMERO.server' || true", id="OmeroServerVersion"),
    pytest.param(facts.OmeroSchemaVersion,
                 {"host": "db lab", "port": 5433, "database": "my db", "user": "omero"},
                 "psql -XAtw -h 'db lab' -p 5433 -U omero -d 'my db' -c 'SELECT '\"'\"'schema:'\"'\"' || "
                 "currentversion || '\"'\"'__'\"'\"' || currentpatch FROM dbpatch ORDER BY id DESC LIMIT 1' "
                 "2>&1 || true", id="OmeroSchemaVersion"),
    pytest.param(facts.FirstFile, {"pattern": "/opt/omero/wheels/zeroc_ice-3.6.5-*.whl"},
                 'for f in /opt/omero/wheels/zeroc_ice-3.6.5-*.whl; do [ -f "$f" ] && echo "$f" && break; '
                 'done; true',
                 id="FirstFile"),
    pytest.param(facts.SystemdUnits, {"units": ("omero-web.service", "it's.service")},
                 "systemctl show --all -p Id -p UnitFileState -p SubState -p NeedDaemonReload "
                 "-p FragmentPath -p DropInPaths omero-web.service 'it'\"'\"'s.service'",
                 id="SystemdUnits"),
    pytest.param(facts.ChangedSince,
                 {"paths": ("/opt/omero/web/config/*.omero", "/etc/nginx/conf.d/omero web.conf"),
                  "reference": "/var/lib/omero deploy/stamp"},
                 "if [ -e '/var/lib/omero deploy/stamp' ]; then find /opt/omero/web/config/*.omero "
                 "/etc/nginx/conf.d/'omero web.conf' -maxdepth 0 -newer '/var/lib/omero deploy/stamp' 2>/dev/null; "
                 "else for f in /opt/omero/web/config/*.omero /etc/nginx/conf.d/'omero web.conf'; do "
                 "[ -e \"$f\" ] && echo \"$f\"; done; fi; true", id="ChangedSince"),
    pytest.param(facts.ChangedSince, {"paths": (), "reference": "/stamp"}, "true",
                 id="ChangedSince-none (find would look at the working directory)"),
    pytest.param(facts.HostAddresses, {}, "hostname -I 2>/dev/null || true", id="HostAddresses"),
    pytest.param(facts.TlsCertificate, {"certificate": "/etc/my tls/site.crt", "key": "/etc/my tls/site.key"},
                 "[ -r '/etc/my tls/site.crt' ] && [ -r '/etc/my tls/site.key' ] && command -v openssl >/dev/null "
                 "|| exit 0; openssl x509 -in '/etc/my tls/site.crt' -noout -enddate -ext subjectAltName "
                 "2>/dev/null || exit 0; a=$(openssl x509 -in '/etc/my tls/site.crt' -noout -pubkey 2>/dev/null "
                 "| sha256sum); b=$(openssl pkey -in '/etc/my tls/site.key' -pubout 2>/dev/null | sha256sum); "
                 "if [ \"$a\" = \"$b\" ]; then echo key=match; else echo key=mismatch; fi", id="TlsCertificate"),
    pytest.param(facts.BackupRepositoriesPresent, {"program": "/usr/local/sbin/omero backup"},
                 "if [ -x '/usr/local/sbin/omero backup' ]; then '/usr/local/sbin/omero backup' present; fi",
                 id="BackupRepositoriesPresent"),
]


@pytest.mark.parametrize(("fact", "kwargs", "command"), COMMANDS)
def test_command(fact, kwargs, command):
    assert fact().command(**kwargs) == command


@pytest.mark.parametrize(("fact", "kwargs", "command"), [
    pytest.param(facts.SupervisorPrograms, {"conf": "/etc/supervisord.conf"}, "supervisorctl"),
    pytest.param(facts.PostgresRoleVerifier, {"role": "omero", "port": 5432}, "psql"),
    pytest.param(facts.PostgresDatabaseOwner, {"database": "omero", "port": 5432}, "psql"),
    pytest.param(facts.OmeroSchemaVersion, {"host": "h", "port": 1, "database": "d", "user": "u"}, "psql"),
    pytest.param(facts.SystemdUnits, {"units": ("nginx.service",)}, "systemctl"),
])
def test_requires_command(fact, kwargs, command):
    assert fact().requires_command(**kwargs) == command


@pytest.mark.parametrize("fact", [
    facts.SupervisorPrograms, facts.PostgresRoleVerifier, facts.PostgresDatabaseOwner,
    facts.OmeroServerVersion, facts.OmeroSchemaVersion, facts.FirstFile, facts.UserAccount,
])
def test_absent_by_default(fact):
    # pyinfra uses default(), on an instance, when the command fails or prints nothing.
    assert fact().default() is None


@pytest.mark.parametrize(("fact", "value"), [
    (facts.SystemdUnits, {}), (facts.HostAddresses, []), (facts.Accounts, {}),
    (facts.DirectoryOwners, {"resolved": {}, "above": {}}),
    (facts.PackageManagerActivity, {"running": [], "interrupted": False}),
])
def test_default(fact, value):
    """What pyinfra gives, from an instance, when the command prints nothing or its tool is missing."""
    assert fact().default() == value


PROCESS = [
    (facts.InContainer, ["podman"], True),
    (facts.InContainer, ["none"], False),
    (facts.InContainer, [], False),  # no systemd-detect-virt: not a systemd host, so no unit's sandbox
    # Accounts
    (facts.Accounts, ["admin:x:1000:1000:,,,:/home/admin:/bin/bash",
                      "omero-web:x:997:997::/var/lib/omero-web:/usr/sbin/nologin"],
     {"admin": {"uid": 1000, "home": "/home/admin", "shell": "/bin/bash"},
      "omero-web": {"uid": 997, "home": "/var/lib/omero-web", "shell": "/usr/sbin/nologin"}}),
    (facts.Accounts, ["postgres:x:105:112:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash"],
     {"postgres": {"uid": 105, "home": "/var/lib/postgresql", "shell": "/bin/bash"}}),  # its uid, not its gid
    (facts.Accounts, ["not a passwd line"], {}),
    # DirectoryOwners
    (facts.DirectoryOwners, ["path /OMERO /mnt/big/OMERO", "dir 0 755 /mnt/big", "dir 1000 1777 /mnt", "dir 0 755 /"],
     {"resolved": {"/OMERO": "/mnt/big/OMERO"},
      "above": {"/mnt/big": (0, 0o755), "/mnt": (1000, 0o1777), "/": (0, 0o755)}}),
    # a link to a disk mounted where a name holds spaces
    (facts.DirectoryOwners, ["path /OMERO /mnt/big disk/OMERO", "dir 0 755 /mnt/big disk", "dir 0 755 /mnt"],
     {"resolved": {"/OMERO": "/mnt/big disk/OMERO"}, "above": {"/mnt/big disk": (0, 0o755), "/mnt": (0, 0o755)}}),
    # PackageManagerActivity
    (facts.PackageManagerActivity, ["/proc/812/comm:apt-get", "/proc/815/comm:dpkg", "interrupted"],
     {"running": [(812, "apt-get"), (815, "dpkg")], "interrupted": True}),
    (facts.PackageManagerActivity, [], {"running": [], "interrupted": False}),
    (facts.PackageManagerActivity, ["grep: /proc/9/comm: No such file or directory"],
     {"running": [], "interrupted": False}),
    # InitSystem
    (facts.InitSystem, ["systemd\n"], "systemd"),
    (facts.InitSystem, ["  tini  "], "tini"),
    (facts.InitSystem, [], "unknown"),
    # SupervisorPrograms
    (facts.SupervisorPrograms, ["__DOWN__"], None),
    (facts.SupervisorPrograms, ["  __DOWN__ "], None),
    (facts.SupervisorPrograms, [], {}),
    (facts.SupervisorPrograms, [
        "nginx                            RUNNING   pid 412, uptime 0:03:12",
        "omero-web                        STOPPED   Not started",
        "postgresql",
        "",
        "omero-server                     FATAL     Exited too quickly",
    ], {"nginx": "RUNNING", "omero-web": "STOPPED", "omero-server": "FATAL"}),
    (facts.SupervisorPrograms, ["web:gunicorn EXITED"], {"web:gunicorn": "EXITED"}),
    # PostgresRoleVerifier
    (facts.PostgresRoleVerifier, ["role:SCRAM-SHA-256$4096:c2FsdA==$a:b"], "SCRAM-SHA-256$4096:c2FsdA==$a:b"),
    (facts.PostgresRoleVerifier, ["role:"], ""),
    (facts.PostgresRoleVerifier, ["WARNING:  something", "role:md5abc"], "md5abc"),
    (facts.PostgresRoleVerifier, [], None),
    (facts.PostgresRoleVerifier, ["psql: error: connection to server on socket failed"], None),
    (facts.PostgresRoleVerifier, [" role:x"], None),
    # PostgresDatabaseOwner
    (facts.PostgresDatabaseOwner, ["db:omero:UTF8"], ("omero", "UTF8")),
    (facts.PostgresDatabaseOwner, ["NOTICE: x", "db:lab:admin:SQL_ASCII"], ("lab:admin", "SQL_ASCII")),
    (facts.PostgresDatabaseOwner, [], None),
    (facts.PostgresDatabaseOwner, ["psql: error: could not connect"], None),
    # OmeroServerVersion
    (facts.OmeroServerVersion, ["/opt/omero/server/OMERO.server-5.6.16-ice36"], "5.6.16"),
    (facts.OmeroServerVersion, ["OMERO.server-5.6.10-ice36/"], "5.6.10"),
    (facts.OmeroServerVersion, ["/opt/omero/server/OMERO.server-5.6.16-ice36.partial"], None),
    (facts.OmeroServerVersion, ["/opt/omero/server/OMERO.server-5.6.16-ice37"], None),
    (facts.OmeroServerVersion, ["/opt/omero/server/OMERO.server-5.6-ice36"], None),
    (facts.OmeroServerVersion, ["/opt/omero/server/OMERO_server-5.6.16-ice36"], None),
    (facts.OmeroServerVersion, [""], None),
    (facts.OmeroServerVersion, [], None),
    # OmeroSchemaVersion
    (facts.OmeroSchemaVersion, ["schema:OMERO5.4__0"], "OMERO5.4__0"),
    (facts.OmeroSchemaVersion, ["Password for user omero:", "schema:OMERO5.4__0"], "OMERO5.4__0"),
    (facts.OmeroSchemaVersion, ['ERROR:  relation "dbpatch" does not exist'], None),
    (facts.OmeroSchemaVersion, ["ERROR: schema:OMERO5.4__0"], None),
    (facts.OmeroSchemaVersion, ["schema:OMERO5.4__0 (2 rows)"], None),
    (facts.OmeroSchemaVersion, [], None),
    # FirstFile
    (facts.FirstFile, ["/opt/omero/wheels/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl\n"],
     "/opt/omero/wheels/zeroc_ice-3.6.5-cp311-cp311-linux_x86_64.whl"),
    (facts.FirstFile, [], None),
    # SystemdUnits: one block per unit, in systemctl's order of properties
    (facts.SystemdUnits, [
        "Id=nginx.service", "SubState=running", "FragmentPath=/lib/systemd/system/nginx.service",
        "DropInPaths=/etc/systemd/system/nginx.service.d/a.conf /etc/systemd/system/nginx.service.d/b.conf",
        "UnitFileState=enabled", "NeedDaemonReload=no", "",
        "Id=omero-web.service", "SubState=dead", "FragmentPath=/etc/systemd/system/omero-web.service",
        "DropInPaths=", "UnitFileState=disabled", "NeedDaemonReload=yes",
    ], {"nginx.service": {"enabled": True, "running": True, "needs_reload": False,
                          "loaded": ("/lib/systemd/system/nginx.service", "/etc/systemd/system/nginx.service.d/a.conf",
                                     "/etc/systemd/system/nginx.service.d/b.conf")},
        "omero-web.service": {"enabled": False, "running": False, "needs_reload": True,
                              "loaded": ("/etc/systemd/system/omero-web.service",)}}),
    # a unit systemd does not know (not installed yet): no file loaded
    (facts.SystemdUnits, ["Id=omero-web.service", "SubState=dead", "FragmentPath=", "DropInPaths=",
                          "UnitFileState=", "NeedDaemonReload=no"],
     {"omero-web.service": {"enabled": False, "running": False, "needs_reload": False, "loaded": ()}}),
    # as pyinfra's SystemdEnabled and SystemdStatus: static counts as enabled; a timer waiting and
    # a oneshot that exited count as running
    (facts.SystemdUnits, ["Id=omero-backup.timer", "SubState=waiting", "UnitFileState=static", "",
                          "Id=omero-web-setup.service", "SubState=exited", "UnitFileState=enabled"],
     {"omero-backup.timer": {"enabled": True, "running": True, "needs_reload": False, "loaded": ()},
      "omero-web-setup.service": {"enabled": True, "running": True, "needs_reload": False, "loaded": ()}}),
    (facts.SystemdUnits, ["Id=a.service", "SubState=failed", "UnitFileState=masked", "  ", "",
                          "  Id=b.service  ", "  SubState=running  "],
     {"a.service": {"enabled": False, "running": False, "needs_reload": False, "loaded": ()},
      "b.service": {"enabled": False, "running": True, "needs_reload": False, "loaded": ()}}),
    (facts.SystemdUnits, ["SubState=running", "UnitFileState=enabled"], {}),  # no Id: no unit
    (facts.SystemdUnits, [], {}),
    # ChangedSince
    (facts.ChangedSince, [], []),
    (facts.ChangedSince, ["/etc/nginx/conf.d/omero-web.conf\n", "  ", "/opt/omero/web/config/a b.omero "],
     ["/etc/nginx/conf.d/omero-web.conf", "/opt/omero/web/config/a b.omero"]),
    # HostAddresses: normalised; anything else hostname might print is not an address
    (facts.HostAddresses, ["10.89.64.12 FD00:0:0::5 "], ["10.89.64.12", "fd00::5"]),
    (facts.HostAddresses, ["hostname: invalid option -- 'I'"], []),
    (facts.HostAddresses, ["not-one 10.0.0.1", "fd00::1"], ["10.0.0.1", "fd00::1"]),
    (facts.HostAddresses, [], []),
    # TlsCertificate
    (facts.TlsCertificate, [], None),
    (facts.TlsCertificate, ["key=match"], None),
    (facts.TlsCertificate, ["notAfter=Dec 27 10:00:00 2027 GMT", "X509v3 Subject Alternative Name: ",
                            "    DNS:omero.test, IP Address:10.0.0.5, IP Address:FD00:0:0:0:0:0:0:5, DNS:a.test",
                            "key=match"],
     {"not_after": datetime(2027, 12, 27, 10, 0, tzinfo=timezone.utc),
      "names": ["10.0.0.5", "a.test", "fd00::5", "omero.test"], "key_matches": True}),
    (facts.TlsCertificate, ["notAfter=Jan  2 03:04:05 2027 GMT", "No extensions in certificate", "key=mismatch"],
     {"not_after": datetime(2027, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "names": [], "key_matches": False}),
    # addresses only; the key not compared (openssl could not read it): no match
    (facts.TlsCertificate, ["notAfter=Jan  2 03:04:05 2027 GMT", "    IP Address:10.0.0.5"],
     {"not_after": datetime(2027, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "names": ["10.0.0.5"], "key_matches": False}),
]


@pytest.mark.parametrize(("fact", "output", "value"), [
    pytest.param(fact, output, value, id=f"{fact.__name__}-{index}")
    for index, (fact, output, value) in enumerate(PROCESS)
])
def test_process(fact, output, value):
    assert fact().process(output) == value


@pytest.mark.parametrize(("path", "quoted"), [
    ("/opt/omero/server", "/opt/omero/server"),
    ("/opt/omero web/venv3/lib/python3*/site-packages", "/opt/'omero web'/venv3/lib/python3*/site-packages"),
    ("/etc/nginx/conf.d/*.conf", "/etc/nginx/conf.d/*.conf"),
    ("relative/it's", "relative/'it'\"'\"'s'"),
    ("/trailing/", "/trailing/"),
    ("", ""),
])
def test_shell_path(path, quoted):
    assert facts.shell_path(path) == quoted


def _fake_proc(directory, processes: dict[int, str]) -> None:
    """A /proc in ``directory`` as far as the package manager tests read it: ``{pid: name}``."""
    for pid, name in processes.items():
        (directory / str(pid)).mkdir(parents=True)
        (directory / str(pid) / "comm").write_text(name + "\n")


@pytest.mark.parametrize(("comm", "running"), [
    ("apt-get", True), ("apt", True), ("aptitude", True), ("dpkg", True), ("unattended-upgr", True),
    ("dnf", True), ("yum", True), ("rpm", True), ("packagekitd", True),
    ("bash", False), ("apt.systemd.dai", False), ("aptly", False),
])
def test_package_manager_running_reads_proc(tmp_path, comm, running):
    """The shell test the fact and the wait share, run for real against a /proc of our own."""
    _fake_proc(tmp_path, {1: "systemd", 42: comm})
    test = facts.package_manager_running().replace("/proc/", f"{tmp_path}/")
    assert (subprocess.run(["sh", "-c", test]).returncode == 0) == running
    listed = subprocess.run(["sh", "-c", facts.package_manager_running(listed=True).replace("/proc/", f"{tmp_path}/")],
                            capture_output=True, text=True).stdout.split()
    assert listed == ([f"{tmp_path}/42/comm:{comm}"] if running else [])


@pytest.mark.parametrize("interrupted", [True, False])
def test_package_manager_activity_read_for_real(tmp_path, interrupted):
    """The fact's command run by a real shell against a /proc and a dpkg directory of our own."""
    proc, updates = tmp_path / "proc", tmp_path / "updates"
    _fake_proc(proc, {1: "systemd", 42: "dpkg", 43: "apt-get"})
    updates.mkdir()
    if interrupted:
        (updates / "0001").write_text("")
    fact = facts.PackageManagerActivity()
    command = fact.command().replace("/proc/", f"{proc}/").replace("/var/lib/dpkg/updates", str(updates))
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    # As the host's /proc would name them.
    output = output.replace(f"{proc}/", "/proc/")
    assert fact.process(output.splitlines()) == {"running": [(42, "dpkg"), (43, "apt-get")],
                                                 "interrupted": interrupted}


def _answer_for_real(fact, **arguments):
    """What ``fact`` answers with ``arguments`` here: its command run by a real shell."""
    command = fact.command(**arguments)
    return fact.process(subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                                       check=True).stdout.splitlines())


def test_user_account_read_for_real():
    """The command run by a real shell, for an account there is and one there is not."""
    fact = facts.UserAccount()
    entry = pwd.getpwnam("root")
    primary = grp.getgrgid(entry.pw_gid).gr_name
    secondary = [grp.getgrgid(gid).gr_name for gid in os.getgrouplist("root", entry.pw_gid)]
    assert _answer_for_real(fact, user="root") == {
        "home": entry.pw_dir, "shell": entry.pw_shell, "group": primary,
        "groups": [name for name in secondary if name != primary]}
    nobody = subprocess.run(["sh", "-c", fact.command("no such user")], capture_output=True, text=True, check=True)
    assert nobody.stdout == ""


@pytest.mark.parametrize(("output", "value"), [
    pytest.param(["passwd omero-web:x:997:997::/var/lib/omero-web:/usr/sbin/nologin", "group omero-web",
                  "groups omero-web omero adm"],
                 {"home": "/var/lib/omero-web", "shell": "/usr/sbin/nologin", "group": "omero-web",
                  "groups": ["omero", "adm"]}, id="secondary groups without the primary one"),
    pytest.param(["passwd a:x:1:1:::", "group a", "groups a"], {"home": None, "shell": None, "group": "a",
                                                                "groups": []}, id="no home, no shell"),
    pytest.param(["passwd a:x:1:1::/h:/bin/sh"], None, id="no group answered"),
    pytest.param(["passwd garbage", "group a"], None, id="an entry it cannot read"),
])
def test_user_account_process(output, value):
    assert facts.UserAccount().process(output) == value


@pytest.mark.parametrize("stamp_ns, changed", [
    (None, ["old", "new one", "globbed 1"]),  # never stamped: every one that exists
    (2_000_000_000_000_000_001, ["new one"]),  # a nanosecond after old, before new
    (3_000_000_000_000_000_000, []),
])
def test_changed_since_read_for_real(tmp_path, stamp_ns, changed):
    """The fact's command run here: names with spaces, a glob, a path missing, to the nanosecond."""
    for name, ns in [("old", 2_000_000_000_000_000_000), ("new one", 2_000_000_000_000_000_002),
                     ("globbed 1", 1_000_000_000_000_000_000)]:
        (tmp_path / name).write_text("")
        os.utime(tmp_path / name, ns=(ns, ns))
    if stamp_ns is not None:
        (tmp_path / "stamp").write_text("")
        os.utime(tmp_path / "stamp", ns=(stamp_ns, stamp_ns))
    paths = tuple(f"{tmp_path}/{name}" for name in ("old", "new one", "missing", "glob*"))
    assert (_answer_for_real(facts.ChangedSince(), paths=paths, reference=f"{tmp_path}/stamp")
            == [f"{tmp_path}/{name}" for name in changed])


def test_directory_owners_read_for_real(tmp_path):
    """The fact's command run here: a link followed to where it leads (a name with spaces),
    every directory above each target that exists listed with its owner and mode."""
    (tmp_path / "big disk").mkdir(mode=0o750)
    (tmp_path / "link").symlink_to(tmp_path / "big disk")
    linked, plain = f"{tmp_path}/link/OMERO", f"{tmp_path}/new/data"
    found = _answer_for_real(facts.DirectoryOwners(), paths=(linked, plain))
    assert found["resolved"] == {linked: f"{tmp_path}/big disk/OMERO", plain: plain}
    assert found["above"][str(tmp_path / "big disk")] == (os.getuid(), 0o750)
    assert found["above"][str(tmp_path)][0] == os.getuid() and found["above"]["/"][0] == 0
    assert str(tmp_path / "link") not in found["above"] and str(tmp_path / "new") not in found["above"]
