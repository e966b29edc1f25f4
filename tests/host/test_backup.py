"""Backups on real hosts: an all-in-one host (PostgreSQL + OMERO.web; no OMERO.server, whose
zip cannot be had here) backed up by its timer into a local repository and over SFTP onto
a second host of the omero_backup group; data written, backed up by the timer's service,
wiped, restored and compared byte for byte; a drill while writes continue; a failed run
and a damaged repository reported; the host's key shut in its own repository on the backup
host; a repository of the layout before chroots moved in by a redeploy, also after a move
killed half-way; a second deploy that changes nothing."""

import json
import re
import shlex
import subprocess
import time

import pytest

from ..docs_commands import blocks
from .audit import assert_clean
from .checks import login_page, secret
from .testhosts import ROOT, SUBNET, SystemdHost, deploy, deployed_together, hosts_with_changes, wait_for

LOCAL_REPOSITORY = "/srv/omero-backup-local"
# On the backup host: the aio's account, its chroot and its repository.
BASE, ACCOUNT = "/srv/omero-backup", "omero-backup-backup-aio"
CHROOT = f"{BASE}/backup-aio"
REMOTE = f"{CHROOT}/repository"
DATA_DIR = "/OMERO"
# The test's rows: many, of several types, with large objects beside them.
WRITE_DATA = """
SET ROLE omero;
CREATE TABLE samples (id serial PRIMARY KEY, name text, value double precision, payload bytea,
                      taken timestamptz DEFAULT now());
INSERT INTO samples (name, value, payload)
  SELECT 'sample ' || g || ' ''quoted'' \\ ünïcode', g / 7.0, decode(md5(g::text) || md5((g * 31)::text), 'hex')
  FROM generate_series(1, 200000) g;
CREATE TABLE ledger (id bigserial PRIMARY KEY, amount integer NOT NULL);
SELECT lo_from_bytea(0, decode(repeat(md5(g::text), g * 4000), 'hex')) FROM generate_series(1, 6) g;
"""
# Files of several sizes, a symlink and an empty directory; caches that are left out.
WRITE_FILES = f"""
set -e
mkdir -p {DATA_DIR}/ManagedRepository/user_2/2026-11/25 {DATA_DIR}/Files {DATA_DIR}/Pixels {DATA_DIR}/FullText/empty \
         {DATA_DIR}/BioFormatsCache {DATA_DIR}/Thumbnails
cd {DATA_DIR}
: > Files/empty
printf x > Files/one-byte
head -c 4096 /dev/urandom > Files/4k
head -c 1048577 /dev/urandom > ManagedRepository/user_2/2026-11/25/image.tif
head -c 24000000 /dev/urandom > Pixels/1_pyramid
seq 1 200000 > FullText/index.txt
ln -s ../Files/4k ManagedRepository/user_2/link-to-4k
chown -R nobody:nogroup ManagedRepository
chmod 640 Files/4k
head -c 1000 /dev/urandom > BioFormatsCache/cached
head -c 1000 /dev/urandom > Thumbnails/thumb
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory, secrets_dir):
    aio, store = SystemdHost("backup-aio", f"{SUBNET}.80"), SystemdHost("backup-store", f"{SUBNET}.81")
    # The most secrets of any deploy pass here: printed as pyinfra's most verbose prints.
    with deployed_together("backup", {"omero_database": [aio], "omero_web": [aio], "omero_backup": [store]},
                           tmp_path_factory.mktemp("backup"), secrets_dir,
                           {aio.name: {"omero_backup_local_dir": LOCAL_REPOSITORY, "omero_backup_schedule": "every 1m",
                                       "omero_backup_check_read_data": 100}},
                           verbosity=("-vv", "--debug")) as hosts:
        yield hosts


def sql(host, query: str, database: str = "omero") -> str:
    return host.run(f"runuser -u postgres -- psql -XAt -v ON_ERROR_STOP=1 -d {database} "
                    f"-c {shlex.quote(query)}").stdout


def status(host) -> dict:
    return json.loads(host.run("cat /var/lib/omero-backup/status.json").stdout)


def database_content(host) -> dict:
    """Every row of the test's tables (COPY's text, hashed whole) and every large object."""
    return {
        table: host.run(f"runuser -u postgres -- psql -XAt -d omero -c "
                        f"{shlex.quote(f'COPY (SELECT * FROM {table} ORDER BY id) TO STDOUT')} | sha256sum; "
                        f"runuser -u postgres -- psql -XAt -d omero -c 'SELECT count(*) FROM {table}'").stdout
        for table in ("samples", "ledger")
    } | {
        "large objects": sql(host, "SELECT oid, md5(lo_get(oid)), length(lo_get(oid)) FROM pg_largeobject_metadata "
                                   "ORDER BY oid"),
        "owners": sql(host, "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"),
    }


def files_content(host) -> str:
    """Every path below the data directory with its type, size, mode, owner and content hash."""
    return host.run(f"cd {DATA_DIR} && find . \\( -type f -printf '%p file %s %m %u:%g\\n' \\) "
                    "-o \\( -type d -printf '%p dir %m %u:%g\\n' \\) -o \\( -type l -printf '%p link %l\\n' \\) "
                    "| sort && find . -type f -print0 | sort -z | xargs -0 sha256sum").stdout


def backup_by_its_service(host, check: bool = True):
    return host.run("systemctl start omero-backup.service", check=check)


def test_timer_backs_up_by_itself_then_is_paused(site):
    aio, _ = site
    # The timer fires one minute after the deploy started it.
    wait_for(lambda: status(aio).get("backup", {}).get("state") == "ok", "the timer's first backup", 240,
             interval=5)
    assert aio.run("systemctl show -p LastTriggerUSec --value omero-backup.timer").stdout.strip() not in ("", "n/a")
    assert "Finished omero-backup.service" in aio.run("journalctl -u omero-backup.service").stdout
    # The later tests start the timer's service themselves.
    aio.run("systemctl stop omero-backup.timer")
    wait_for(lambda: aio.run("systemctl is-active omero-backup.service", check=False).stdout.strip() != "activating",
             "a running backup to end", 120)


def test_credentials_are_root_only_and_sftp_only(site, secrets_dir):
    aio, store = site
    password = secret(secrets_dir, "backup-repository")
    assert aio.run("stat -c '%U %a' /etc/omero-backup/repository.password /etc/omero-backup/id_ed25519").stdout \
        .split("\n")[:2] == ["root 600", "root 600"]
    assert aio.run("stat -c '%a' /var/lib/omero-backup/status.json").stdout.strip() == "644"
    leaked = aio.run(f"grep -rlF {shlex.quote(password)} /etc/systemd /var/lib/omero-backup /var/log "
                     "/etc/omero-backup/backup.json; journalctl | grep -cF " + shlex.quote(password), check=False)
    assert leaked.stdout.strip() == "0", leaked.stdout
    log = (ROOT / "artifacts" / "deploy-backup.log").read_text()
    assert "Starting operation: Give restic the repository password" in log
    private_key = secret(secrets_dir, "backup-ssh-key").splitlines()[1]
    for kept in (password, private_key, secret(secrets_dir, "db-omero")):
        assert kept not in log
    # The key opens SFTP in its own repository, inside its own chroot.
    assert "Remote working directory: /repository" in sftp(aio, "pwd").stdout
    assert store.run(f"stat -c '%U' {REMOTE}/config").stdout.strip() == ACCOUNT
    assert store.run(f"stat -c '%U %a' {CHROOT} {REMOTE}").stdout.split("\n")[:2] == ["root 755", f"{ACCOUNT} 700"]


def sftp(host, *commands: str, options: str = "") -> subprocess.CompletedProcess:
    """``commands`` as one sftp batch from ``host`` to the backup host with its backup key
    (``options``: other ssh options); sftp stops at the first that fails."""
    batch = "".join(f"{command}\n" for command in commands)
    return host.run(f"printf %s {shlex.quote(batch)} | sftp -F /etc/omero-backup/ssh_config {options} -b - "
                    "omero-backup-host", check=False)


def neighbour(aio, store) -> str:
    """Another OMERO host's account on the backup host, made as the deploy makes one, with a
    key kept on ``aio`` (for the test's sake) and a file in its repository; its ssh options."""
    aio.run("test -f /root/neighbour_key || ssh-keygen -q -t ed25519 -N '' -f /root/neighbour_key")
    key = aio.run("cat /root/neighbour_key.pub").stdout.strip()
    store.run(f"""set -e
        id omero-backup-neighbour || useradd -r -M -d {BASE}/neighbour -s /usr/sbin/nologin -g omero-backup \
            omero-backup-neighbour
        mkdir -p -m 755 {BASE}/neighbour && mkdir -p -m 700 {BASE}/neighbour/repository
        echo neighbour-secret > {BASE}/neighbour/repository/config
        chown -R omero-backup-neighbour:omero-backup {BASE}/neighbour/repository
        echo {shlex.quote(f"restrict {key}")} > /etc/ssh/omero-backup-keys/omero-backup-neighbour""")
    return "-o User=omero-backup-neighbour -o IdentityFile=/root/neighbour_key"


def test_backup_key_cannot_list_read_or_write_outside_its_repository(site):
    aio, store = site
    store.run("echo not-for-backups > /home/world-readable && chmod 644 /home/world-readable")
    # Its chroot holds its repository alone; '..' from there is the chroot's root.
    listing = sftp(aio, "ls -1a /", "cd ..", "pwd", "ls -1a")
    assert listing.returncode == 0, listing.stderr
    assert "Remote working directory: /\n" in listing.stdout
    assert [line for line in listing.stdout.splitlines() if not line.startswith("sftp>")] == \
        ["/.", "/..", "/repository", "Remote working directory: /", ".", "..", "repository"]
    for outside in ("ls /home", "ls /srv", f"ls {BASE}", "get /etc/passwd /tmp/passwd",
                    "get /home/world-readable /tmp/world-readable", "cd /etc", "get ../../../etc/shadow /tmp/s",
                    "mkdir /planted", "put /etc/hostname /planted"):
        refused = sftp(aio, outside)
        assert refused.returncode != 0, (outside, refused.stdout)
    assert aio.run("test -e /tmp/passwd || test -e /tmp/world-readable || test -e /tmp/s", check=False).returncode != 0
    # A symlink inside it points into the chroot, not at the host's files.
    assert sftp(aio, "symlink /etc/passwd link", "get link /tmp/via-link").returncode != 0
    assert aio.run("test -e /tmp/via-link", check=False).returncode != 0
    sftp(aio, "rm link")
    assert store.run("test -e /planted", check=False).returncode != 0


def test_backup_key_cannot_reach_another_hosts_repository(site):
    aio, store = site
    other = neighbour(aio, store)
    for path in (f"{BASE}/neighbour/repository/config", "/../neighbour/repository/config",
                 "../neighbour/repository/config"):
        assert sftp(aio, f"get {path} /tmp/taken").returncode != 0
    assert aio.run("test -e /tmp/taken", check=False).returncode != 0
    # And the other way round: the neighbour's key sees its own repository, not this host's.
    own = sftp(aio, "get /repository/config /tmp/neighbour-config", options=other)
    assert own.returncode == 0, own.stderr
    assert aio.run("cat /tmp/neighbour-config").stdout == "neighbour-secret\n"
    assert sftp(aio, "ls /", options=other).stdout.split().count("/repository") == 1
    assert sftp(aio, f"get {REMOTE}/config /tmp/taken", options=other).returncode != 0
    # This host's key is not the neighbour's, nor is the neighbour's key this host's.
    assert sftp(aio, "pwd", options="-o User=omero-backup-neighbour -o IdentitiesOnly=yes").returncode != 0


def test_backup_key_gets_no_shell_tty_or_forwarding(site):
    aio, _ = site
    ssh = "timeout 30 ssh -F /etc/omero-backup/ssh_config"
    for command in ("id", "sh -c id", "/bin/sh", "cat /etc/passwd"):
        ran = aio.run(f"{ssh} omero-backup-host {shlex.quote(command)} </dev/null", check=False)
        assert "uid=" not in ran.stdout and "root:" not in ran.stdout, (command, ran.stdout)
    tty = aio.run(f"{ssh} -tt omero-backup-host id </dev/null", check=False)
    assert "uid=" not in tty.stdout and "PTY allocation request failed" in tty.stdout + tty.stderr
    # Forwarding: to a port on the backup host (its sshd), and from it back.
    local = aio.run(f"{ssh} -W 127.0.0.1:22 omero-backup-host </dev/null", check=False)
    assert "SSH-2.0" not in local.stdout and "administratively prohibited" in local.stderr, local.stderr
    remote = aio.run(f"{ssh} -N -o ExitOnForwardFailure=yes -R 127.0.0.1:2222:127.0.0.1:22 omero-backup-host "
                     "</dev/null", check=False)
    assert remote.returncode == 255 and "remote port forwarding failed" in remote.stderr, remote.stderr


def test_backup_wipe_restore_brings_back_every_row_and_file(site):
    aio, store = site
    aio.run(f"runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d omero <<'EOF'\n{WRITE_DATA}\nEOF")
    aio.run(WRITE_FILES)
    rows, files = database_content(aio), files_content(aio)
    assert "200000" in rows["samples"] and len(rows["large objects"].splitlines()) == 6

    started = time.monotonic()
    backup_by_its_service(aio)
    backup_seconds = time.monotonic() - started
    done = status(aio)["backup"]
    assert done["state"] == "ok" and set(done["repositories"]) == {"local", "remote"}
    assert all(result["repository_size_bytes"] > 24_000_000 for result in done["repositories"].values())

    refused = aio.run("omero-restore", check=False)
    assert refused.returncode == 2 and "refusing to restore over a live site" in refused.stdout
    assert database_content(aio) == rows

    sizes = {"database_bytes": int(sql(aio, "SELECT pg_database_size('omero')")),
             "data_dir_bytes": int(aio.run(f"du -sb --exclude=BioFormatsCache --exclude=Thumbnails {DATA_DIR}")
                                   .stdout.split()[0])}
    aio.run(f"runuser -u postgres -- dropdb omero && rm -rf {DATA_DIR}")
    started = time.monotonic()
    restored = aio.run("omero-restore --repository remote", check=False)
    restore_seconds = time.monotonic() - started
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert database_content(aio) == rows
    assert files_content(aio) == without_caches(files)
    assert aio.run("systemctl is-active omero-web.service").stdout.strip() == "active"
    login_page(f"http://{aio.address}")
    # The README's figures.
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / "backup-figures.json").write_text(json.dumps({
        **sizes, "backup_seconds (both repositories)": round(backup_seconds, 1),
        "restore_seconds (from the backup host)": round(restore_seconds, 1),
        "repository_size_bytes": {name: result["repository_size_bytes"]
                                  for name, result in done["repositories"].items()},
        "added_bytes": {name: result["added_bytes"] for name, result in done["repositories"].items()},
    }, indent=2) + "\n")


def without_caches(listing: str) -> str:
    """A listing less the caches' lines: OMERO rebuilds them, so they are not backed up."""
    return "".join(line + "\n" for line in listing.splitlines()
                   if "BioFormatsCache" not in line and "Thumbnails" not in line)


def test_drill_while_writes_continue_restores_a_consistent_state_and_touches_nothing(site):
    aio, _ = site
    # Every statement adds +1 and -1: a consistent state has an even count and a zero sum.
    aio.run("systemd-run --unit=ledger-writer runuser -u postgres -- sh -c 'while :; do "
            "psql -Xq -d omero -c \"INSERT INTO ledger (amount) VALUES (1), (-1)\"; done'")
    try:
        wait_for(lambda: int(sql(aio, "SELECT count(*) FROM ledger")) > 50, "writes", 60)
        backup_by_its_service(aio)
        written_during = int(sql(aio, "SELECT count(*) FROM ledger"))
    finally:
        aio.run("systemctl stop ledger-writer")
    manifest = aio.run("cat /var/lib/omero-backup/dump/manifest.tsv").stdout
    (ledger,) = [line.split("\t") for line in manifest.splitlines() if line.startswith("public.ledger\t")]
    assert int(ledger[1]) % 2 == 0 and 0 < int(ledger[1]) <= written_during

    before = (database_content(aio), files_content(aio), sql(aio, "SELECT datname FROM pg_database ORDER BY 1"))
    drill = aio.run("omero-restore --drill", check=False)
    assert drill.returncode == 0, drill.stdout + drill.stderr
    report = json.loads(drill.stdout[drill.stdout.index("{"):])
    assert report["result"] == "passed" and report["problems"] == []
    assert (report["tables"], report["rows"], report["large_objects"]) == (2, 200000 + int(ledger[1]), 6)
    # Six files and a symlink; every file compared with the live one.
    assert (report["files"], report["files_identical_to_live"]) == (7, 6)
    assert (database_content(aio), files_content(aio), sql(aio, "SELECT datname FROM pg_database ORDER BY 1")) \
        == before
    assert status(aio)["drill"]["state"] == "ok"


# Every kind of path restic holds, then each replaced by another kind on the live site.
KINDS = f"""set -e
mkdir -p {DATA_DIR}/kinds && cd {DATA_DIR}/kinds
echo old > file-then-dir
mkdir dir-then-file && echo inner > dir-then-file/inner
ln -s ../Files/4k relative
ln -s {DATA_DIR}/Files/one-byte absolute
ln -s {DATA_DIR}/nowhere dangling
mkdir target && ln -s target link-then-dir
mkdir dir-then-link && echo x > dir-then-link/x
"""
REPLACED = f"""set -e
cd {DATA_DIR}/kinds
rm file-then-dir && mkdir file-then-dir && echo new > file-then-dir/f
rm -r dir-then-file && echo now-a-file > dir-then-file
rm relative && mkdir relative && echo r > relative/r
rm absolute && echo a > absolute
rm dangling && mkdir dangling
rm link-then-dir && mkdir link-then-dir && echo l > link-then-dir/l
rm -r dir-then-link && ln -s /etc dir-then-link
echo added > {DATA_DIR}/Files/added-since-the-backup
"""


def left_by_restores(host) -> str:
    """What a restore must not leave behind: its staging area, journal and databases."""
    return host.run(f"ls -d {DATA_DIR}/.omero-restore /var/lib/omero-backup/restore-journal.json 2>/dev/null; "
                    "runuser -u postgres -- psql -XAt -c \"SELECT datname FROM pg_database "
                    "WHERE datname LIKE 'omero\\_%'\"", check=False).stdout


def test_restore_replaces_every_kind_of_path_on_a_live_site(site):
    aio, _ = site
    aio.run(KINDS)
    backup_by_its_service(aio)
    snapshot = status(aio)["backup"]["last_success_snapshots"]["local"]
    rows, files = database_content(aio), files_content(aio)
    aio.run(REPLACED)
    sql(aio, "SET ROLE omero; INSERT INTO ledger (amount) VALUES (7)")
    assert files_content(aio) != files and database_content(aio) != rows
    restored = aio.run("omero-restore --force", check=False)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    # Exactly the backup: the kinds as they were, the file added since gone, the caches left out.
    assert files_content(aio) == without_caches(files)
    assert database_content(aio) == rows
    assert aio.run("systemctl is-active omero-web.service").stdout.strip() == "active"
    login_page(f"http://{aio.address}")
    record = status(aio)["restore"]
    assert (record["state"], record["result"], record["repository"]) == ("ok", "restored", "local")
    assert snapshot.startswith(record["snapshot"]) and record["finished"] >= record["started"]
    assert left_by_restores(aio) == ""


def test_restore_that_fails_after_the_swap_puts_the_site_back(site):
    aio, _ = site
    # The backup holds a file that keeps OMERO.web from starting: the restore swaps it in,
    # the start fails, and the site must come back as it was.
    aio.run(f"echo > {DATA_DIR}/Files/refuse-start")
    backup_by_its_service(aio)
    aio.run(f"""rm {DATA_DIR}/Files/refuse-start && mkdir -p /etc/systemd/system/omero-web.service.d
        printf '[Service]\\nExecStartPre=+/bin/sh -c "test ! -e {DATA_DIR}/Files/refuse-start"\\n' \\
            > /etc/systemd/system/omero-web.service.d/test-refuse.conf
        systemctl daemon-reload""")
    try:
        sql(aio, "SET ROLE omero; INSERT INTO ledger (amount) VALUES (11)")
        rows, files = database_content(aio), files_content(aio)
        failed = aio.run("omero-restore --force", check=False)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "the site is back as it was before the restore" in failed.stdout
        assert "switched to the restored one" in failed.stdout and "swapped for the restored one" in failed.stdout
    finally:
        aio.run("rm -r /etc/systemd/system/omero-web.service.d && systemctl daemon-reload")
    assert database_content(aio) == rows and files_content(aio) == files
    assert aio.run("systemctl is-active omero-web.service").stdout.strip() == "active"
    login_page(f"http://{aio.address}")
    record = status(aio)["restore"]
    assert (record["state"], record["result"]) == ("failed", "rolled back") and "omero-web" in record["error"]
    assert left_by_restores(aio) == ""


def start_restore_and_stop_it_while_staging(aio, unit: str, signal: str) -> None:
    """``omero-restore --force`` as a transient unit, held while it stages (the files restored
    beside the live ones, the saved roles being applied) by a transaction holding the omero
    role's row, then sent ``signal`` (to every process of it for KILL, to the program alone
    otherwise); the hold released once it has ended."""
    aio.run("systemd-run --unit=role-held --collect --setenv=PGAPPNAME=role-held runuser -u postgres -- "
            "psql -X -c 'BEGIN; ALTER ROLE omero CONNECTION LIMIT -1; SELECT pg_sleep(600)'")
    try:
        wait_for(lambda: sql(aio, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'role-held' "
                                  "AND query LIKE '%pg_sleep%'", "postgres").strip() == "1", "the hold", 60)
        aio.run(f"systemd-run --unit={unit} --collect omero-restore --force")
        wait_for(lambda: sql(aio, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'omero-restore' "
                                  "AND wait_event_type = 'Lock'", "postgres").strip() == "1",
                 "the restore to wait while staging", 180)
        assert aio.run(f"test -d {DATA_DIR}/.omero-restore/new{DATA_DIR}", check=False).returncode == 0
        who = "all" if signal == "KILL" else "main"
        aio.run(f"systemctl kill --signal={signal} --kill-who={who} {unit}.service")
        wait_for(lambda: aio.run(f"systemctl is-active {unit}.service", check=False).stdout.strip()
                 not in ("active", "activating", "deactivating"), "the restore to end", 120)
    finally:
        aio.run("systemctl stop role-held.service", check=False)
        sql(aio, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'role-held'",
            "postgres")


def test_restore_stopped_or_killed_half_way_never_leaves_the_site_down(site):
    aio, _ = site
    backup_by_its_service(aio)
    snapshot = status(aio)["backup"]["last_success_snapshots"]["local"]
    rows = database_content(aio)
    sql(aio, "SET ROLE omero; INSERT INTO ledger (amount) VALUES (13)")
    changed, files = database_content(aio), files_content(aio)
    # Stopped (SIGTERM): it puts the site back itself.
    start_restore_and_stop_it_while_staging(aio, "restore-stopped", "TERM")
    record = status(aio)["restore"]
    assert (record["state"], record["result"]) == ("failed", "rolled back"), record
    assert "SIGTERM" in record["error"] and left_by_restores(aio) == ""
    assert database_content(aio) == changed and files_content(aio) == files
    login_page(f"http://{aio.address}")
    # Killed outright: the site still serves the data it had, and the next run puts back
    # what the killed one began, then restores.
    start_restore_and_stop_it_while_staging(aio, "restore-killed", "KILL")
    assert database_content(aio) == changed
    assert "".join(line + "\n" for line in files_content(aio).splitlines() if ".omero-restore" not in line) == files
    login_page(f"http://{aio.address}")
    again = aio.run("omero-restore --force", check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "was interrupted (staging): putting the site back" in again.stdout
    assert database_content(aio) == rows and left_by_restores(aio) == ""
    assert snapshot.startswith(status(aio)["restore"]["snapshot"])
    login_page(f"http://{aio.address}")


IMPORTS = f"""set -e
mkdir -p /srv/imports/lab {DATA_DIR}/ManagedRepository/user_2/in-place
head -c 300000 /dev/urandom > /srv/imports/lab/plate.tif
echo well > /srv/imports/lab/well.txt
head -c 1000 /dev/urandom > /srv/imports/single.tif
cd {DATA_DIR}/ManagedRepository/user_2/in-place
ln -s /srv/imports/lab lab
ln -s ../../../../srv/imports/single.tif single.tif
ln -s /srv/imports/gone.tif gone.tif
"""


def test_in_place_imports_link_targets_are_backed_up_or_named(site):
    aio, _ = site
    aio.run(IMPORTS)
    targets = aio.run("cd /srv/imports && find . -type f | sort | xargs sha256sum").stdout
    backup_by_its_service(aio)
    record = status(aio)["backup"]
    assert record["link_targets_backed_up"] == ["/srv/imports/lab", "/srv/imports/single.tif"]
    gone = f"{DATA_DIR}/ManagedRepository/user_2/in-place/gone.tif"
    assert record["link_targets_not_backed_up"] == [{"link": gone, "target": "/srv/imports/gone.tif",
                                                     "why": "target missing"}]
    assert "/srv/imports/gone.tif" in aio.run("omero-backup status").stdout
    assert f"not backed up: /srv/imports/gone.tif, the target of {gone} (target missing)" in \
        aio.run("journalctl -u omero-backup.service").stdout
    listed = aio.run("omero-backup restic local ls latest").stdout
    assert "/srv/imports/lab/plate.tif" in listed and "/srv/imports/single.tif" in listed
    # The share lost a directory; a file still there has changed since and is left alone.
    aio.run("rm -r /srv/imports/lab && echo changed > /srv/imports/single.tif")
    restored = aio.run("omero-restore --force", check=False)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert status(aio)["restore"]["link_targets_restored"] == ["/srv/imports/lab"]
    now = aio.run("cd /srv/imports && find . -type f | sort | xargs sha256sum").stdout
    assert [line for line in now.splitlines() if "lab/" in line] == \
        [line for line in targets.splitlines() if "lab/" in line]
    assert aio.run("cat /srv/imports/single.tif").stdout == "changed\n"
    aio.run(f"rm -r /srv/imports {DATA_DIR}/ManagedRepository/user_2/in-place")


# The commands README's Backups section and docs/backup.md give a sysadmin (their ```sh
# blocks), which this test runs as written: a changed document fails here until the test follows.
DOCUMENTED = [
    "sudo systemctl start omero-backup",
    "sudo omero-backup status",
    "sudo omero-restore --drill",
    "sudo omero-backup restic remote snapshots",
    "sudo systemctl start omero-backup",
    "sudo omero-backup run",
    "sudo omero-backup status",
    "sudo omero-backup snapshots",
    "sudo omero-backup restic remote snapshots --tag pre-upgrade",
    "sudo omero-backup restic local restore latest --tag pre-upgrade --target /root/pre-upgrade",
    "sudo omero-restore --force",
    "sudo omero-restore --repository remote --force",
    "sudo omero-restore --snapshot latest --repository local --force",
    "sudo omero-restore --drill",
]


def documented_commands() -> list[str]:
    return [line for block in blocks() if (block.path, block.section) == ("README.md", "Backups")
            or block.path == "docs/backup.md" for line in block.text.splitlines() if line.strip()]


def test_documented_commands_work_as_written(site):
    aio, _ = site
    assert documented_commands() == DOCUMENTED
    # What the pre-upgrade commands find: a dump the deploy would have kept before an upgrade.
    aio.run("omero-backup add /etc/hostname && rm -rf /root/pre-upgrade")
    for command in DOCUMENTED:
        ran = aio.run(command, check=False)
        assert ran.returncode == 0, (command, ran.stdout, ran.stderr)
    assert "pre-upgrade" in aio.run("omero-backup restic remote snapshots --tag pre-upgrade").stdout
    assert aio.run("cat /root/pre-upgrade/etc/hostname").stdout == aio.run("cat /etc/hostname").stdout
    assert status(aio)["restore"]["repository"] == "local" and status(aio)["drill"]["state"] == "ok"
    login_page(f"http://{aio.address}")


def test_unreachable_backup_host_fails_the_run_visibly(site):
    aio, store = site
    last_success = status(aio)["backup"]["last_success"]
    store.run("systemctl stop ssh.service")
    try:
        failed = backup_by_its_service(aio, check=False)
    finally:
        store.run("systemctl start ssh.service")
    assert failed.returncode != 0
    record = status(aio)["backup"]
    assert record["state"] == "failed" and "remote" in record["error"]
    assert record["last_success"] == last_success
    assert aio.run("systemctl is-failed omero-backup.service", check=False).stdout.strip() == "failed"
    assert "backup FAILED" in aio.run("journalctl -u omero-backup.service").stdout
    backup_by_its_service(aio)
    assert status(aio)["backup"]["state"] == "ok"


def repository_id(store) -> str:
    """The remote repository's identity: restic's config, written once by init (a new
    repository made in its place would have another)."""
    return store.run(f"sha256sum < $(ls -d {REMOTE}/config {CHROOT}/config {BASE}/.backup-aio.moving/config "
                     "2>/dev/null)").stdout


def snapshots(aio) -> list[str]:
    listed = aio.run("omero-backup snapshots --repository remote").stdout
    return re.findall(r"^([0-9a-f]{8}) ", listed, re.MULTILINE)


def test_repository_of_the_old_layout_is_moved_in_by_a_redeploy(site):
    aio, store = site
    identity = repository_id(store)
    # As the deploy left a backup host before chroots: one account for every host, its
    # authorized_keys, the repository at <base>/<host>, the OMERO host's configuration to match.
    key = store.run(f"cat /etc/ssh/omero-backup-keys/{ACCOUNT}").stdout.split(" ", 1)[1].strip()
    store.run(f"""set -e
        useradd -r -M -d {BASE} -s /bin/sh -g omero-backup omero-backup
        mv -T {REMOTE} {BASE}/old && rmdir {CHROOT} && mv -T {BASE}/old {CHROOT}
        chown -R omero-backup:omero-backup {CHROOT} && chmod 700 {CHROOT}
        mkdir -m 755 {BASE}/.ssh
        echo {shlex.quote(f'restrict,command="/usr/lib/openssh/sftp-server -d {CHROOT}" {key}')} \
            > {BASE}/.ssh/authorized_keys
        rm /etc/ssh/sshd_config.d/omero-backup.conf /etc/ssh/omero-backup-keys/{ACCOUNT}
        userdel {ACCOUNT}
        systemctl reload ssh.service""")
    aio.run(f"sed -i 's|sftp:omero-backup-host:/repository|sftp:omero-backup-host:{CHROOT}|' "
            "/etc/omero-backup/backup.json && sed -i 's|User .*|User omero-backup|' /etc/omero-backup/ssh_config")
    # What the old layout let a key do: list the host's other directories.
    assert "/home/world-readable" in sftp(aio, "ls /home").stdout
    backup_by_its_service(aio)

    deploy(aio.inventory, aio, store)
    assert store.run(f"stat -c '%U %a' {CHROOT} {REMOTE}").stdout.split("\n")[:2] == ["root 755", f"{ACCOUNT} 700"]
    assert store.run(f"find {REMOTE} ! -user {ACCOUNT} | wc -l").stdout.strip() == "0"
    assert store.run(f"ls -A {BASE}").stdout.split() == ["backup-aio", "neighbour"]
    backup_by_its_service(aio)
    assert repository_id(store) == identity and status(aio)["backup"]["state"] == "ok" and snapshots(aio)
    # Everything in it is readable at the new URL: a drill from it restores and compares.
    drill = aio.run("omero-restore --drill --repository remote", check=False)
    assert drill.returncode == 0 and json.loads(drill.stdout[drill.stdout.index("{"):])["result"] == "passed", \
        drill.stdout + drill.stderr
    assert sftp(aio, "ls /home").returncode != 0
    # The old account's key line is gone with its authorized_keys.
    old = sftp(aio, "pwd", options="-o User=omero-backup")
    assert old.returncode != 0 and "Permission denied" in old.stderr


def test_move_killed_half_way_is_finished_by_the_next_deploy_and_removed_hosts_lose_their_key(site):
    aio, store = site
    identity = repository_id(store)
    # A host gone from the inventory whose account and key are still there.
    other = neighbour(aio, store)
    assert sftp(aio, "pwd", options=other).returncode == 0
    # Set aside by a run that was killed there: neither the old place nor the chroot holds it.
    store.run(f"mv -T {REMOTE} {BASE}/.backup-aio.moving && chown -R nobody {BASE}/.backup-aio.moving "
              f"&& rmdir {CHROOT}")
    assert backup_by_its_service(aio, check=False).returncode != 0
    deploy(aio.inventory, aio, store)
    backup_by_its_service(aio)
    assert repository_id(store) == identity and status(aio)["backup"]["state"] == "ok" and snapshots(aio)
    assert store.run(f"test -e {BASE}/.backup-aio.moving", check=False).returncode != 0
    gone = sftp(aio, "pwd", options=other)
    assert gone.returncode != 0 and "Permission denied" in gone.stderr


def test_damaged_repository_is_reported_by_the_check(site):
    aio, store = site
    assert aio.run("systemctl start omero-backup-check.service", check=False).returncode == 0
    # Overwrite part of the largest pack file on the backup host, as a failing disk would.
    store.run(f"f=$(find {REMOTE}/data -type f -printf '%s %p\\n' | sort -n | tail -1 | "
              "cut -d' ' -f2) && head -c 4096 /dev/urandom | dd of=\"$f\" bs=4096 seek=10 conv=notrunc status=none")
    assert aio.run("systemctl start omero-backup-check.service", check=False).returncode != 0
    record = status(aio)["check"]
    assert record["state"] == "failed" and "remote" in record["error"]
    assert "check FAILED" in aio.run("journalctl -u omero-backup-check.service").stdout


def test_schedule_loop_for_hosts_without_systemd_runs_backups_when_due(site):
    aio, _ = site
    before = status(aio)["backup"]["last_success"]
    # What supervisord runs where systemd is not PID 1; the test's schedule: every minute.
    loop = aio.run("timeout 80 /usr/local/sbin/omero-backup schedule", check=False)
    assert loop.returncode == 124, loop.stdout + loop.stderr  # still looping when stopped
    assert "next: check at" in loop.stdout and "run exited with 0" in loop.stdout
    assert status(aio)["backup"]["last_success"] > before


def test_second_deploy_changes_nothing(site):
    aio, _ = site
    aio.run("systemctl start omero-backup.timer")  # paused by the first test
    assert hosts_with_changes(aio.inventory) == {}


def test_permission_audit(site, secrets_dir):
    for host in site:
        assert_clean(host, secrets_dir)
