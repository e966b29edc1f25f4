"""Backups as planned: restic and omero-backup on the OMERO hosts, a chrooted SFTP-only account per
OMERO host on the omero_backup host, timers or a supervisord program, secrets only in root's files, and the
dump taken before an upgrade kept in the repositories."""

import json
import re

import pytest

from deploys.errors import OmeroDeployError, OmeroOptionError
from deploys.secrets import public_ssh_key

from .conftest import ALL_ROLES

pytestmark = pytest.mark.plan

BACKED_UP = ("omero_database", "omero_web")
LOCAL = {"omero_backup_local_dir": "/srv/omero-backup-local"}
TIMER = "/etc/systemd/system/omero-backup.timer"
CHECK_TIMER = "/etc/systemd/system/omero-backup-check.timer"
SYMLINK = "readlink /opt/omero/server/OMERO.server"
DROP_IN = "/etc/ssh/sshd_config.d/omero-backup.conf"
# The drop-in is newer than sshd's last reload.
SSHD_STALE = {re.compile(r"sshd-reloaded\.done"): [DROP_IN]}


@pytest.fixture(scope="module")
def site(deploy, tmp_path_factory):
    secrets = tmp_path_factory.mktemp("backup-secrets")
    data = {"omero_secrets_dir": str(secrets)}
    runs = deploy({"aio": (BACKED_UP, {**data, **LOCAL}),
                   "store": (("omero_backup",), {**data, "omero_address": "10.0.0.9"})}, responses=SSHD_STALE)
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


def test_backup_host_chroots_each_host_into_its_own_directory(site):
    secrets, runs = site
    store = runs["store"]
    public = public_ssh_key(kept(secrets, "aio-backup-ssh-key"), "omero-backup @fake/aio")
    # One account per OMERO host, in the group that sshd confines; its key outside its reach.
    assert store.uploads["/etc/ssh/omero-backup-keys/omero-backup-fake_aio"] == f"restrict {public}\n"
    assert ("useradd -d /srv/omero-backup/fake_aio -s /usr/sbin/nologin -g omero-backup -r -M "
            "omero-backup-fake_aio") in store.commands
    assert "groupadd -r omero-backup" in store.commands
    # The chroot and everything above it root's and 755; only the repository is the account's.
    for path in ("/srv/omero-backup", "/srv/omero-backup/fake_aio", "/etc/ssh/omero-backup-keys"):
        assert f"chown root:root {path}" in store.commands and f"chmod 755 {path}" in store.commands
    assert "chown omero-backup-fake_aio:omero-backup /srv/omero-backup/fake_aio/repository" in store.commands
    assert "chmod 700 /srv/omero-backup/fake_aio/repository" in store.commands
    assert not [c for c in store.commands if "restic" in c]


def test_sshd_drop_in_confines_the_group_and_is_checked_before_sshd_reloads(site):
    _, runs = site
    store = runs["store"]
    drop_in = store.uploads[DROP_IN]
    lines = [line.strip() for line in drop_in.splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "Match Group omero-backup"
    assert set(lines[1:]) == {
        "AuthenticationMethods publickey", "AuthorizedKeysFile /etc/ssh/omero-backup-keys/%u",
        "ChrootDirectory %h", "ForceCommand internal-sftp -d /repository", "AllowTcpForwarding no",
        "AllowStreamLocalForwarding no", "AllowAgentForwarding no", "GatewayPorts no", "PermitTunnel no",
        "PermitTTY no", "PermitUserRC no", "X11Forwarding no"}
    commands = store.commands
    check = next(i for i, c in enumerate(commands) if c.startswith("/usr/sbin/sshd -t ||"))
    assert "rm -f /etc/ssh/sshd_config.d/omero-backup.conf" in commands[check]
    assert "/usr/sbin/sshd -T -C user=omero-backup-fake_aio,host=localhost,addr=127.0.0.1 | grep -qx " \
           "'forcecommand internal-sftp -d /repository'" in commands[check + 1]
    assert commands[check + 2] == "systemctl try-reload-or-restart ssh.service"
    assert commands.index("chmod 644 /etc/ssh/sshd_config.d/omero-backup.conf") < check
    # The old layout's shared keys go.
    assert store.ops.index("Remove /srv/omero-backup/.ssh/authorized_keys") < \
        store.ops.index("Check the SSH server's configuration, then reload it")


@pytest.mark.parametrize("os_name, reload", [
    ("rocky9", "systemctl try-reload-or-restart sshd.service"),
    ("debian12", 'if [ -s /run/sshd.pid ]; then kill -HUP "$(cat /run/sshd.pid)"; fi'),
])
def test_sshd_reload_per_platform(deploy, os_name, reload):
    pid1 = "systemd" if os_name == "rocky9" else "bash"
    runs = deploy({"aio": (BACKED_UP, {}), "store": (("omero_backup",), {})}, os_name=os_name, pid1=pid1,
                  responses=SSHD_STALE)
    assert reload in runs["store"].commands


LAYOUT = re.compile(r"if \[ -f /srv/omero-backup/fake_aio/config \]")


@pytest.mark.parametrize("found, commands", [
    # A repository of the old layout: set aside, handed to the account, moved into the chroot.
    (["old"], ["mv -T /srv/omero-backup/fake_aio /srv/omero-backup/.fake_aio.moving",
               "chown -R omero-backup-fake_aio:omero-backup /srv/omero-backup/.fake_aio.moving",
               "mkdir -p -m 755 /srv/omero-backup/fake_aio",
               "mv -T /srv/omero-backup/.fake_aio.moving /srv/omero-backup/fake_aio/repository"]),
    # A run killed after setting it aside: the next one finishes the move.
    (["moving"], ["chown -R omero-backup-fake_aio:omero-backup /srv/omero-backup/.fake_aio.moving",
                  "mkdir -p -m 755 /srv/omero-backup/fake_aio",
                  "mv -T /srv/omero-backup/.fake_aio.moving /srv/omero-backup/fake_aio/repository"]),
    ([], []),
])
def test_repository_of_the_old_layout_moves_into_the_chroot(deploy, found, commands):
    runs = deploy({"aio": (BACKED_UP, {}), "store": (("omero_backup",), {})}, responses={LAYOUT: found})
    moves = [c for c in runs["store"].commands if c.startswith(("mv -T", "chown -R", "mkdir -p -m"))]
    assert moves == commands
    if commands:
        # Before the chroot's own directory operations, after the account exists.
        ops = runs["store"].ops
        assert ops.index("Create the user omero-backup-fake_aio") < \
            ops.index("Move the repository of fake_aio into its chroot") < ops.index("Create the chroot of fake_aio")


def test_keys_of_hosts_gone_from_the_inventory_are_removed(deploy):
    listing = re.compile(r"^ls -A1 /etc/ssh/omero-backup-keys")
    runs = deploy({"aio": (BACKED_UP, {}), "store": (("omero_backup",), {})},
                  responses={listing: ["omero-backup-fake_aio", "omero-backup-old-host"]})
    assert [c for c in runs["store"].commands if c.startswith("rm -rf")] == \
        ["rm -rf -- /etc/ssh/omero-backup-keys/omero-backup-old-host"]


def test_client_configuration(site):
    _, runs = site
    aio = runs["aio"]
    assert [c for c in aio.commands if re.search(r"install --no-install-recommends .*\brestic openssh-client\b", c)]
    config = json.loads(aio.uploads["/etc/omero-backup/backup.json"])
    assert [(r["name"], r["url"]) for r in config["repositories"]] == [
        ("local", "/srv/omero-backup-local"), ("remote", "sftp:omero-backup-host:/repository")]
    assert config["repositories"][1]["sftp_command"] == \
        "ssh -F /etc/omero-backup/ssh_config omero-backup-host -s sftp"
    assert config["database"] == {"name": "omero", "port": 5432, "bin_dir": "/usr/lib/postgresql/16/bin"}
    assert config["excludes"] == ["/OMERO/BioFormatsCache", "/OMERO/Thumbnails"]
    assert config["link_targets"] is True
    assert config["keep"] == {"daily": 7, "weekly": 5, "monthly": 12}
    assert config["services"] == {"stop": [["systemctl", "stop", "omero-web.service"]],
                                  "start": [["systemctl", "start", "omero-web.service"]]}
    ssh_config = aio.uploads["/etc/omero-backup/ssh_config"]
    assert "HostName 10.0.0.9\n" in ssh_config and "User omero-backup-fake_aio\n" in ssh_config
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


def test_backup_user_too_long_to_name_accounts_refused(deploy):
    with pytest.raises(OmeroOptionError, match=re.escape(
            "option omero_backup_user (host @fake/store): is longer than 16 characters")):
        deploy({"aio": (BACKED_UP, {}), "store": (("omero_backup",), {"omero_backup_user": "omero-backup-acct"})},
               execute=False)


def test_hosts_sharing_an_account_refused(deploy):
    with pytest.raises(OmeroDeployError, match=re.escape(
            "hosts @fake/db-1 and @fake/db.1 would share the account omero-backup-fake_db-1")):
        deploy({"db-1": (("omero_database",), {}), "db.1": (("omero_server",), {}),
                "store": (("omero_backup",), {})}, execute=False)


def test_unchanged_drop_in_reloads_nothing(deploy):
    runs = deploy({"aio": (BACKED_UP, {}), "store": (("omero_backup",), {})})
    assert not [c for c in runs["store"].commands if "sshd -t" in c or "try-reload-or-restart" in c]
