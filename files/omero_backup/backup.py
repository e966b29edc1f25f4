"""The database dump and its manifest, what the data directory's links reach, and the
``run``, ``check`` and ``add`` commands."""

import json
import os
import subprocess
import time

from .restic import (
    DUMP,
    GLOBALS,
    MANIFEST,
    MANIFEST_SQL,
    OWNER,
    PRE_UPGRADE_TAG,
    STAGING,
    TAG,
    Failure,
    log,
    read_journal,
    repositories,
    run,
)


# -- the database dump ------------------------------------------------------------------
def as_postgres(*argv):
    return ["runuser", "-u", "postgres", "--", *argv]


def psql(config, database=None, stop_on_error=True):
    db = config["database"]
    return as_postgres(os.path.join(db["bin_dir"], "psql"), "-XAtq", "-v", f"ON_ERROR_STOP={int(stop_on_error)}",
                       "-p", str(db["port"]), "-d", database or db["name"])


def dump_database(config):
    """pg_dump (custom format) and, in the same snapshot of the database, the manifest of
    every table's rows and checksum; then the role definitions (pg_dumpall -g)."""
    db, directory = config["database"], config["dump_dir"]
    for name in (DUMP, MANIFEST, GLOBALS, OWNER, "snapshot"):
        if os.path.exists(os.path.join(directory, name)):
            os.remove(os.path.join(directory, name))
    snapshot_file = os.path.join(directory, "snapshot")
    session = subprocess.Popen(psql(config), stdin=subprocess.PIPE, text=True)
    try:
        # An exported snapshot: pg_dump and the manifest see the same committed state.
        session.stdin.write("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
                            f"SELECT pg_export_snapshot() \\g {snapshot_file}\n")
        session.stdin.flush()
        deadline = time.monotonic() + 120
        while not (os.path.exists(snapshot_file) and os.path.getsize(snapshot_file)):
            if session.poll() is not None or time.monotonic() > deadline:
                raise Failure("could not open a snapshot of the database")
            time.sleep(0.1)
        with open(snapshot_file) as handle:
            snapshot = handle.read().strip()
        # Uncompressed (-Z0): restic compresses it and, unlike a compressed dump, finds
        # the unchanged tables of yesterday's dump, so a nightly dump adds only what changed.
        run(as_postgres(os.path.join(db["bin_dir"], "pg_dump"), "-Fc", "-Z0", "-p", str(db["port"]),
                        f"--snapshot={snapshot}", "-f", os.path.join(directory, DUMP), db["name"]))
        session.stdin.write(f"\\o {os.path.join(directory, MANIFEST)}\n\\pset fieldsep '\\t'\n"
                            f"{MANIFEST_SQL}\\o\n"
                            "SELECT pg_get_userbyid(datdba) FROM pg_database "
                            f"WHERE datname = current_database() \\g {os.path.join(directory, OWNER)}\n"
                            "COMMIT;\n")
        session.stdin.close()
        if session.wait() != 0:
            raise Failure("the manifest of the database could not be made")
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    os.remove(snapshot_file)
    run(as_postgres(os.path.join(db["bin_dir"], "pg_dumpall"), "-g", "-p", str(db["port"]),
                    "-f", os.path.join(directory, GLOBALS)))


def manifest_of(config, database):
    """{table: (rows, checksum)} of ``database`` as the dump's manifest has them."""
    output = run(psql(config, database), input="\\pset fieldsep '\\t'\n" + MANIFEST_SQL,
                 stdout=subprocess.PIPE, text=True).stdout
    return parse_manifest(output)


def parse_manifest(text):
    rows = {}
    for line in text.splitlines():
        if line.strip():
            table, count, checksum = line.split("\t")
            rows[table] = (int(count), checksum)
    return rows


# -- backup and check -------------------------------------------------------------------
def inside(path, tree):
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def outside_links(data_dir, excludes=()):
    """(link, resolved target) of every symlink below ``data_dir`` that resolves outside it
    (OMERO's in-place imports), caches aside."""
    real_root, found = os.path.realpath(data_dir), []
    for root, dirs, names in os.walk(data_dir):
        dirs[:] = sorted(d for d in dirs if os.path.join(root, d) not in excludes and d != STAGING)
        # os.walk lists a link to a directory among dirs, without following it.
        for name in sorted(dirs + names):
            path = os.path.join(root, name)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if not inside(target, real_root):
                    found.append((path, target))
    return found


def link_targets(links, enabled, data_dir, readable=lambda path: os.access(path, os.R_OK)):
    """The targets to back up (none inside another) and [(link, target, why)] of those not."""
    chosen, missed = set(), []
    for link, target in links:
        if not os.path.lexists(target):
            missed.append((link, target, "target missing"))
        elif inside(os.path.realpath(data_dir), target):  # a link to / would otherwise back up the system
            missed.append((link, target, "holds the data directory"))
        elif not enabled:
            missed.append((link, target, "omero_backup_link_targets is off"))
        elif not readable(target):
            missed.append((link, target, "not readable"))
        else:
            chosen.add(target)
    return sorted(t for t in chosen if not any(o != t and inside(t, o) for o in chosen)), missed


def backup_paths(config):
    """The paths to back up, the link targets among them, and those not backed up."""
    paths, targets, missed = [], [], []
    if config.get("database"):
        paths.append(config["dump_dir"])
    data_dir = config["data_dir"]
    if os.path.isdir(data_dir):
        paths.append(data_dir)
        targets, missed = link_targets(outside_links(data_dir, config["excludes"]),
                                       config.get("link_targets", True), data_dir)
        targets = [target for target in targets if not any(inside(target, path) for path in paths)]
    elif config["data_dir_required"]:
        raise Failure(f"{data_dir} is missing (not mounted?): nothing of the binary repository to back up")
    if not paths:
        raise Failure("nothing to back up on this host")
    return paths + targets, targets, missed


def backup_into(repository, config, paths, tags):
    argv = ["backup", "--json", "--host", config["host"], *[f"--tag={tag}" for tag in tags]]
    for exclude in [*config["excludes"], os.path.join(config["data_dir"], STAGING)]:
        argv += ["--exclude", exclude]
    output = repository.restic(*argv, *paths, capture=True).stdout
    summary = next((json.loads(line) for line in output.splitlines()
                    if line.startswith("{") and '"summary"' in line), {})
    return {"snapshot": summary.get("snapshot_id"), "added_bytes": summary.get("data_added"),
            "files": summary.get("total_files_processed"),
            "bytes_processed": summary.get("total_bytes_processed")}


def repository_size(repository):
    stats = json.loads(repository.restic("stats", "--json", "--mode", "raw-data", capture=True).stdout)
    return stats.get("total_size")


def do_backup(config):
    if read_journal(config):
        raise Failure("a restore was interrupted: run omero-restore again to put the site back or finish it")
    if config.get("database"):
        log("dumping the database")
        dump_database(config)
    paths, targets, missed = backup_paths(config)
    for link, target, why in missed[:20]:
        log(f"not backed up: {target}, the target of {link} ({why})")
    if len(missed) > 20:
        log(f"not backed up: {len(missed) - 20} more link targets (omero-backup status lists them)")
    results, errors = {}, []
    for repository in repositories(config):
        try:
            log(f"backing up {', '.join(paths)} into {repository.name}")
            repository.restic("unlock", stdout=subprocess.DEVNULL)  # stale locks of killed runs
            result = backup_into(repository, config, paths, [TAG])
            keep = config["keep"]
            repository.restic("forget", "--prune", "--tag", TAG, "--host", config["host"],
                              "--keep-daily", str(keep["daily"]), "--keep-weekly", str(keep["weekly"]),
                              "--keep-monthly", str(keep["monthly"]), stdout=subprocess.DEVNULL)
            result["repository_size_bytes"] = repository_size(repository)
            results[repository.name] = result
        except Failure as failure:
            errors.append(str(failure))
            results[repository.name] = {"error": str(failure)}
    if config.get("database"):
        os.remove(os.path.join(config["dump_dir"], DUMP))  # the repositories hold it now
    if errors:
        raise Failure("; ".join(errors))
    return {"repositories": results, "link_targets_backed_up": targets,
            "link_targets_not_backed_up": [{"link": link, "target": target, "why": why}
                                           for link, target, why in missed],
            "last_success_snapshots": {name: r["snapshot"] for name, r in results.items()},
            "last_success_repository_size_bytes": {name: r["repository_size_bytes"]
                                                   for name, r in results.items()}}


def do_check(config):
    percent = config["check_read_data"]
    read = [] if percent == 0 else ["--read-data"] if percent == 100 else [f"--read-data-subset={percent}%"]
    results, errors = {}, []
    for repository in repositories(config):
        log(f"checking repository {repository.name}")
        result = repository.restic("check", *read, check=False)
        results[repository.name] = "ok" if result.returncode == 0 else "failed"
        if result.returncode != 0:
            errors.append(f"restic check found repository {repository.name} damaged or unreadable "
                          f"(exit {result.returncode})")
    if errors:
        raise Failure("; ".join(errors))
    return {"repositories": results, "read_data_percent": percent}


def do_add(config, files):
    results = {}
    for repository in repositories(config):
        results[repository.name] = backup_into(repository, config, files, [PRE_UPGRADE_TAG])
        log(f"{', '.join(files)} kept in {repository.name} as snapshot {results[repository.name]['snapshot']}")
    return {"repositories": results}
