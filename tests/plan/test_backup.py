"""Backups as planned: restic and omero-backup on the OMERO hosts, an SFTP-only account on the
omero_backup host, timers or a supervisord program, secrets only in root's files, and the
dump taken before an upgrade kept in the repositories."""

import json
import re

import pytest

from deploys.errors import OmeroDeployError
from deploys.secrets import public_ssh_key

from .conftest import ALL_ROLES

pytestmark = pytest.mark.plan

BACKED_UP = ("omero_database", "omero_web")
LOCAL = {"omero_backup_local_dir": "/srv/omero-backup-local"}
TIMER = "/etc/systemd/system/omero-backup.timer"
CHECK_TIMER = "/etc/systemd/system/omero-backup-check.timer"
SYMLINK = "readlink /opt/omero/server/OMERO.server"


@pytest.fixture(scope="module")
def site(deploy, tmp_path_factory):
    secrets = tmp_path_factory.mktemp("backup-secrets")
    data = {"omero_secrets_dir": str(secrets)}
    runs = deploy({"aio": (BACKED_UP, {**data, **LOCAL}),
                   "store": (("omero_backup",), {**data, "omero_address": "10.0.0.9"})})
    return secrets, runs


def kept(secrets, suffix: str) -> str:
    (path,) = secrets.glob(f"*{suffix}")
    return path.read_text()


def test_password_and_key_only_in_root_files(site):
    secrets, runs = site
    password, key = kept(secrets, "-backup-repository").strip(), kept(secrets, "aio-backup-ssh-key")
    key_body = key.splitlines()[1]
    for run in runs.values():
        assert not [c for c in run.commands + run.raw_commands if password in c or key_body in c]
    aio = runs["aio"]
    assert aio.uploads["/etc/omero-backup/repository.password"] == password + "\n"
    assert aio.uploads["/etc/omero-backup/id_ed25519"] == key
    # Staged root-only (secret_file), then moved into place.
    for path in ("/etc/omero-backup/repository.password", "/etc/omero-backup/id_ed25519"):
        moved = next(i for i, c in enumerate(aio.raw_commands) if c.startswith("mv -f ") and c.endswith(f" {path}"))
        assert aio.raw_commands[moved - 1].startswith("chmod 600 ")
    assert password not in aio.uploads["/etc/omero-backup/backup.json"]


def test_backup_host_allows_each_key_sftp_into_its_own_directory_only(site):
    secrets, runs = site
    store = runs["store"]
    public = public_ssh_key(kept(secrets, "aio-backup-ssh-key"), "omero-backup @fake/aio")
    assert (f'restrict,command="/usr/lib/openssh/sftp-server -d /srv/omero-backup/fake_aio" {public}\n'
            in store.uploads["/srv/omero-backup/.ssh/authorized_keys"])
    assert "useradd -d /srv/omero-backup -s /bin/sh -g omero-backup -r -M omero-backup" in store.commands
    # The account cannot replace its keys: everything down to authorized_keys is root's.
    assert "chown root:root /srv/omero-backup" in store.commands
    assert "chown omero-backup:omero-backup /srv/omero-backup" not in store.commands
    assert "chown omero-backup:omero-backup /srv/omero-backup/fake_aio" in store.commands
    assert not [c for c in store.commands if "restic" in c]


def test_client_configuration(site):
    _, runs = site
    aio = runs["aio"]
    assert [c for c in aio.commands if "install --no-install-recommends restic openssh-client" in c]
    config = json.loads(aio.uploads["/etc/omero-backup/backup.json"])
    assert [(r["name"], r["url"]) for r in config["repositories"]] == [
        ("local", "/srv/omero-backup-local"), ("remote", "sftp:omero-backup-host:/srv/omero-backup/fake_aio")]
    assert config["repositories"][1]["sftp_command"] == \
        "ssh -F /etc/omero-backup/ssh_config omero-backup-host -s sftp"
    assert config["database"] == {"name": "omero", "port": 5432, "bin_dir": "/usr/lib/postgresql/16/bin"}
    assert config["excludes"] == ["/OMERO/BioFormatsCache", "/OMERO/Thumbnails"]
    assert config["keep"] == {"daily": 7, "weekly": 5, "monthly": 12}
    assert config["services"] == {"stop": [["systemctl", "stop", "omero-web.service"]],
                                  "start": [["systemctl", "start", "omero-web.service"]]}
    ssh_config = aio.uploads["/etc/omero-backup/ssh_config"]
    assert "HostName 10.0.0.9\n" in ssh_config and "User omero-backup\n" in ssh_config
    assert "/usr/local/sbin/omero-backup init" in aio.commands
    # The backup host is ready before the repository is created on it (pyinfra's order).
    assert aio.ops.index("Create the backup repositories") > 0


@pytest.mark.parametrize("schedule, lines", [
    ("03:15", ["OnCalendar=*-*-* 03:15:00", "Persistent=true"]),
    ("Mon 01:00", ["OnCalendar=Mon *-*-* 01:00:00", "Persistent=true"]),
    ("every 30m", ["OnActiveSec=30min", "OnUnitActiveSec=30min"]),
    ("every 6h", ["OnActiveSec=6h", "OnUnitActiveSec=6h"]),
])
def test_timer_follows_the_schedule(deploy, schedule, lines):
    run = deploy({"aio": (BACKED_UP, {**LOCAL, "omero_backup_schedule": schedule})})["aio"]
    timer = run.uploads[TIMER]
    assert "[Timer]\n" + "".join(line + "\n" for line in lines) in timer
    assert "OnCalendar=Sun *-*-* 04:30:00\n" in run.uploads[CHECK_TIMER]
    assert "ExecStart=/usr/local/sbin/omero-backup run\n" in run.uploads["/etc/systemd/system/omero-backup.service"]
    assert "systemctl enable omero-backup.timer" in run.commands
    assert "systemctl start omero-backup.timer" in run.commands
    assert "systemctl start omero-backup.service" not in run.commands


def test_supervisord_runs_the_schedule(deploy):
    run = deploy({"aio": (BACKED_UP, LOCAL)}, os_name="debian12", pid1="bash")["aio"]
    program = run.uploads["/etc/supervisor/conf.d/omero-backup-schedule.conf"]
    assert "command=/usr/local/sbin/omero-backup schedule\n" in program and "user=root\n" in program
    assert not [path for path in run.uploads if path.startswith("/etc/systemd")]
    config = json.loads(run.uploads["/etc/omero-backup/backup.json"])
    assert config["services"]["stop"] == [["supervisorctl", "-c", "/etc/supervisor/supervisord.conf", "stop",
                                           "omero-web"]]


def test_no_repository_no_backups(deploy):
    run = deploy({"aio": (ALL_ROLES, {})})["aio"]
    assert not [c for c in run.commands if "restic" in c or "omero-backup" in c]


def test_only_database_and_server_hosts_back_up(deploy):
    runs = deploy({"db": (("omero_database",), LOCAL), "web": (("omero_web",), LOCAL)})
    assert "/etc/omero-backup/backup.json" in runs["db"].uploads
    assert not [c for c in runs["web"].commands if "restic" in c]


def test_upgrade_dump_kept_in_the_repositories(deploy):
    run = deploy({"aio": (ALL_ROLES, LOCAL)},
                 responses={SYMLINK: ["/opt/omero/server/OMERO.server-5.6.15-ice36"]})["aio"]
    commands = run.commands
    dump = next(i for i, c in enumerate(commands) if "pg_dump -w -Fc" in c)
    keep = commands.index("/usr/local/sbin/omero-backup add "
                          "/opt/omero/server/backups/omero-5.6.15-before-5.6.16.pgdump")
    unpack = next(i for i, c in enumerate(commands) if "unzip -q" in c)
    assert dump < keep < unpack
    # omero-backup is installed and configured before the upgrade needs it.
    assert run.ops.index("Write /etc/omero-backup/backup.json") < \
        run.ops.index("Before an upgrade: stop OMERO.server and dump the database")


def test_upgrade_without_backups_only_dumps(deploy):
    run = deploy({"aio": (ALL_ROLES, {})},
                 responses={SYMLINK: ["/opt/omero/server/OMERO.server-5.6.15-ice36"]})["aio"]
    assert [c for c in run.commands if "pg_dump -w -Fc" in c]
    assert not [c for c in run.commands if "omero-backup" in c]


def test_two_backup_hosts_refused(deploy):
    with pytest.raises(OmeroDeployError, match="group omero_backup has 2 hosts"):
        deploy({"aio": (BACKED_UP, {}), "b1": (("omero_backup",), {}), "b2": (("omero_backup",), {})},
               execute=False)


def test_backup_host_cannot_back_up_itself(deploy):
    with pytest.raises(OmeroDeployError, match=re.escape("is in omero_backup and in omero_database")):
        deploy({"aio": (("omero_backup", *BACKED_UP), {})}, execute=False)
