"""omero-backup's shared ground: the configuration's constants, running commands, restic's
repositories, the status file monitoring reads and a restore's journal."""

import datetime
import json
import os
import subprocess
import time

CONFIG = "/etc/omero-backup/backup.json"
TAG, PRE_UPGRADE_TAG = "omero-backup", "pre-upgrade"
MANIFEST, GLOBALS, DUMP, OWNER = "manifest.tsv", "globals.sql", "omero.pgdump", "owner"
# A restore's staging area: inside the data directory, so on its file system even when it is a
# mount point (its entries are swapped in by rename). Never backed up.
STAGING = ".omero-restore"
# The name a restore's database sessions carry (PGAPPNAME), so that a rollback finds them.
APPLICATION = "omero-restore"
# Per table: rows and an order-independent checksum (the sum of the first 64 bits of each
# row's md5); large objects likewise, by OID and content. The same query runs on the
# dumped snapshot and on a restored copy, so they compare exactly.
_ROW_HASH = "('x' || substr(md5({}), 1, 16))::bit(64)::bigint::numeric"
MANIFEST_SQL = """SELECT format('SELECT %L, count(*), coalesce(sum({row_hash}), 0) FROM %I.%I r',
       schemaname || '.' || tablename, schemaname, tablename)
  FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
  ORDER BY schemaname, tablename \\gexec
SELECT 'large objects', count(*), coalesce(sum({lo_hash}), 0) FROM pg_largeobject_metadata;
""".format(row_hash=_ROW_HASH.format("ROW(r.*)::text").replace("%", "%%").replace("'", "''"),
           lo_hash=_ROW_HASH.format("oid::text || ':' || md5(lo_get(oid))"))


class Failure(Exception):
    """A step failed; its message goes to the log and the status file."""


def log(message):
    print(f"omero-backup: {message}", flush=True)


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def run(argv, **kwargs):
    """Run ``argv``; a non-zero exit is a Failure naming the command (never its secrets:
    none are ever on a command line here)."""
    result = subprocess.run(argv, **kwargs)
    if result.returncode != 0:
        raise Failure(f"{' '.join(argv[:4])}... exited with {result.returncode}")
    return result


class Repository:
    def __init__(self, config, spec):
        self.config, self.name, self.url = config, spec["name"], spec["url"]
        self.sftp_command = spec.get("sftp_command")

    def restic(self, *args, capture=False, check=True, **kwargs):
        env = dict(os.environ, RESTIC_REPOSITORY=self.url,
                   RESTIC_PASSWORD_FILE=self.config["password_file"],
                   RESTIC_CACHE_DIR=self.config["cache_dir"])
        options = ["-o", f"sftp.command={self.sftp_command}"] if self.sftp_command else []
        argv = ["restic", *options, *args]
        if capture:
            kwargs.update(stdout=subprocess.PIPE, text=True)
        if not check:
            return subprocess.run(argv, env=env, **kwargs)
        result = subprocess.run(argv, env=env, **kwargs)
        if result.returncode != 0:
            raise Failure(f"restic {args[0]} on repository {self.name} exited with {result.returncode}")
        return result

    def exists(self):
        # Without a lock: a running prune holds an exclusive one, and the repository exists all the same.
        return self.restic("--no-lock", "cat", "config", capture=True, check=False,
                           stderr=subprocess.DEVNULL).returncode == 0

    def snapshots(self, tag=TAG):
        listed = json.loads(self.restic("snapshots", "--json", "--tag", tag, capture=True).stdout or "[]")
        return sorted(listed, key=lambda snapshot: snapshot["time"])

    def snapshot(self, wanted):
        """The snapshot ``wanted`` (an ID, or 'latest': the newest scheduled backup)."""
        if wanted == "latest":
            found = self.snapshots()
            if not found:
                raise Failure(f"repository {self.name} holds no backup yet")
            return found[-1]
        listed = json.loads(self.restic("snapshots", "--json", wanted, capture=True).stdout or "[]")
        if not listed:
            raise Failure(f"no snapshot {wanted} in repository {self.name}")
        return listed[0]


def repositories(config, name=None):
    found = [Repository(config, spec) for spec in config["repositories"]]
    if name is None:
        return found
    chosen = [repository for repository in found if repository.name == name]
    if not chosen:
        raise Failure(f"no repository {name!r}; this host has {', '.join(r.name for r in found)}")
    return chosen


# -- status, for monitoring -------------------------------------------------------------
def status_path(config):
    return os.path.join(config["state_dir"], "status.json")


def read_status(config):
    try:
        with open(status_path(config)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def write_status(config, job, record):
    """Record ``job``'s outcome; the last success is kept across failures."""
    status = read_status(config)
    previous = status.get(job, {})
    if record["state"] != "ok" and "last_success" in previous:
        record["last_success"] = previous["last_success"]
        for key in ("last_success_snapshots", "last_success_repository_size_bytes"):
            if key in previous:
                record[key] = previous[key]
    status[job] = record
    partial = status_path(config) + ".partial"
    with open(partial, "w") as handle:
        json.dump(status, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(partial, 0o644)
    os.replace(partial, status_path(config))


def recorded(config, job, work, context=None):
    """Run ``work()`` (returns details for the status), timing it and recording the outcome
    with ``context`` (a dict ``work`` may add to); the exit status is 1 on failure, so
    systemd or supervisord's log shows it."""
    context = {} if context is None else context
    started = now()
    write_status(config, job, {"state": "running", "started": started.isoformat(), **context})
    clock = time.monotonic()
    try:
        details = work() or {}
        state, error = "ok", None
    except Failure as failure:
        details, state, error = {}, "failed", str(failure)
    record = {"state": state, "started": started.isoformat(), "finished": now().isoformat(),
              "duration_seconds": round(time.monotonic() - clock, 1), **context, **details}
    if error:
        record["error"] = error
        log(f"{job} FAILED: {error}")
    else:
        record["last_success"] = record["finished"]
        log(f"{job} done in {record['duration_seconds']} s")
    write_status(config, job, record)
    return 0 if state == "ok" else 1




# A restore's journal: what it has begun, so that a run killed at any point is put back
# (or, once committed, finished) by the next omero-restore, decided from what is on disk.
def journal_path(config):
    return os.path.join(config["state_dir"], "restore-journal.json")


def read_journal(config):
    try:
        with open(journal_path(config)) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def write_journal(config, journal):
    partial = journal_path(config) + ".partial"
    with open(partial, "w") as handle:
        json.dump(journal, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, journal_path(config))
