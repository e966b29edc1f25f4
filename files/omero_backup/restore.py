"""omero-restore: stage a snapshot beside the live site, check it, swap it in, and put
everything back on any failure."""

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile

from .backup import inside, manifest_of, parse_manifest, psql
from .restic import (
    APPLICATION,
    GLOBALS,
    MANIFEST,
    OWNER,
    STAGING,
    Failure,
    journal_path,
    log,
    recorded,
    repositories,
    run,
    write_journal,
)
from .staging import (
    Staging,
    clean_up,
    create_database,
    database_names,
    database_state,
    finish_interrupted,
    holds_files,
    interrupted,
    lock,
    owner_and_mode,
    pg_restore,
    rename,
    rename_databases,
    restored_dump,
    roll_back,
    services,
    set_owner_and_mode,
    swap_steps,
)


def stage_files(config, repository, snapshot, journal):
    """The snapshot's data directory restored beside the live one, checked against the snapshot."""
    data_dir = config["data_dir"]
    with Staging(data_dir) as staging:
        prepare_staging(config, staging, journal)
        log(f"restoring {data_dir} beside the live one ({staging.path})")
        repository.restic("restore", snapshot["id"], "--target", staging.target(), "--include", data_dir,
                          "--verify", stdout=subprocess.DEVNULL, pass_fds=(staging.root,))
        try:
            tree = staging.tree()
        except FileNotFoundError:
            raise Failure(f"snapshot {snapshot['short_id']} holds no directory {data_dir}") from None
        listing = repository.restic("ls", "--json", snapshot["id"], capture=True).stdout
        differences = listing_differences(snapshot_listing(listing, data_dir), tree_listing(".", dir_fd=tree))
    if differences:
        raise Failure(f"the restored {data_dir} differs from the snapshot: {'; '.join(differences[:5])}")


def prepare_staging(config, staging, journal):
    """A new staging area, recorded in the journal (by device and inode) before anything is put in it."""
    journal["files"] = {"staging": staging.create()}
    write_journal(config, journal)


def snapshot_listing(output, directory):
    """{relative path: type} below ``directory`` from ``restic ls --json``."""
    listing = {}
    for line in output.splitlines():
        node = json.loads(line) if line.startswith("{") else {}
        path = node.get("path", "")
        if node.get("struct_type", "node") == "node" and inside(path, directory) and path != directory:
            listing[os.path.relpath(path, directory)] = node["type"] if node["type"] in ("dir", "file", "symlink") \
                else "other"
    return listing


def tree_listing(directory, dir_fd=None):
    """{relative path: type} below ``directory`` (relative to ``dir_fd``), as restic names the
    types; walked through descriptors, following no link."""
    listing = {}
    for root, dirs, names, root_fd in os.fwalk(directory, dir_fd=dir_fd):
        for name in dirs + names:
            mode = os.lstat(name, dir_fd=root_fd).st_mode
            kind = ("symlink" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode)
                    else "file" if stat.S_ISREG(mode) else "other")
            listing[os.path.relpath(os.path.join(root, name), directory)] = kind
    return listing


def listing_differences(expected, found):
    return [f"{path}: {expected.get(path, 'absent')} in the snapshot, {found.get(path, 'absent')} restored"
            for path in sorted(set(expected) | set(found)) if expected.get(path) != found.get(path)]


def stage_database(config, repository, snapshot, journal):
    """The dump restored into a new database beside the live one, checked against its manifest."""
    name = config["database"]["name"]
    database = {"live": name, "new": f"{name}_restoring", "old": f"{name}_before_restore",
                "existed": name in database_names(config)}
    if database["old"] in database_names(config):
        raise Failure(f"database {database['old']} exists (left by an earlier restore?): "
                      "drop or rename it first")
    journal["database"] = database
    write_journal(config, journal)
    scratch = tempfile.mkdtemp(prefix="restore-", dir=config["state_dir"])
    try:
        dump_directory = restored_dump(repository, snapshot, config, scratch)
        with open(os.path.join(dump_directory, OWNER)) as handle:
            owner = handle.read().strip()
        # The roles as they were; those that exist stay (psql's errors about them are dropped).
        with open(os.path.join(dump_directory, GLOBALS), "rb") as roles:
            run(psql(config, "postgres", stop_on_error=False), stdin=roles, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
        create_database(config, database["new"], owner)
        log(f"restoring the database into {database['new']} beside the live one")
        pg_restore(config, dump_directory, database["new"])
        with open(os.path.join(dump_directory, MANIFEST)) as handle:
            expected = parse_manifest(handle.read())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    restored = manifest_of(config, database["new"])
    differing = [table for table in set(expected) | set(restored) if expected.get(table) != restored.get(table)]
    if differing:
        raise Failure(f"the restored database differs from the backup in {', '.join(sorted(differing)[:5])}")


def swap_in(config, journal):
    """Stop the services, switch the databases, swap the files, start the services."""
    journal["phase"] = "swapping"
    write_journal(config, journal)
    services(config, "stop")
    database = journal.get("database")
    if database:
        renames = [(database["live"], database["old"])] if database["existed"] else []
        rename_databases(config, [*renames, (database["new"], database["live"])])
        log(f"database {database['live']} switched to the restored one")
    files = journal.get("files")
    if files:
        swap_files(config, journal)
        log(f"{config['data_dir']} swapped for the restored one")
    services(config, "start")


def swap_files(config, journal):
    """The restored tree's entries renamed into the data directory, the live ones into old/."""
    files = journal["files"]
    with Staging(config["data_dir"]) as staging:
        if staging.open(files["staging"]) is None:
            raise Failure(f"{staging.path} is gone: nothing to swap in")
        tree, old = staging.tree(), staging.part("old")
        files["swap"] = {"live": sorted(set(os.listdir(staging.data)) - {STAGING}),
                         "new": sorted(os.listdir(tree)), "root": owner_and_mode(staging.data)}
        write_journal(config, journal)
        for step in swap_steps(staging.data, tree, old, files["swap"]["live"], files["swap"]["new"]):
            rename(step)
        set_owner_and_mode(staging.data, owner_and_mode(tree))


def restore_link_targets(config, repository, snapshot):
    """Link targets outside the data directory that are gone from this host, put back; those
    that exist are the site's and left alone."""
    missing = [path for path in snapshot["paths"]
               if path not in (config["data_dir"], config["dump_dir"]) and not os.path.lexists(path)]
    if not missing:
        return []
    scratch = tempfile.mkdtemp(prefix="targets-", dir=config["state_dir"])
    try:
        repository.restic("restore", snapshot["id"], "--target", scratch, "--verify",
                          *[argument for path in missing for argument in ("--include", path)],
                          stdout=subprocess.DEVNULL)
        for path in missing:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            run(["cp", "-a", "--no-target-directory", scratch + path, path])
            log(f"link target {path} restored")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return missing


def do_restore(config, args):
    os.environ["PGAPPNAME"] = APPLICATION
    repository = repositories(config, args.repository)[0]
    held = lock(config)
    finish_interrupted(config)
    snapshot = repository.snapshot(args.snapshot)
    has_dump = bool(config.get("database")) and config["dump_dir"] in snapshot["paths"]
    has_data = config["data_dir"] in snapshot["paths"]
    if not (has_dump or has_data):
        raise Failure(f"snapshot {snapshot['short_id']} holds nothing this host restores")
    # Refuse before anything is changed: a live site is only replaced when told.
    live = []
    if has_dump and database_state(config):
        live.append(f"database {config['database']['name']} holds tables")
    if has_data and holds_files(config["data_dir"], config["excludes"]):
        live.append(f"{config['data_dir']} holds files")
    if live and not args.force:
        log(f"refusing to restore over a live site: {'; '.join(live)}. Give --force to replace the "
            "database and the data directory with the snapshot's (the site is put back as it was if "
            "the restore fails).")
        return 2
    context = {"snapshot": snapshot["short_id"], "snapshot_time": snapshot["time"], "repository": repository.name}
    code = recorded(config, "restore", lambda: restore(config, repository, snapshot, has_dump, has_data, context),
                    context)
    held.close()
    return code


def restore(config, repository, snapshot, has_dump, has_data, context):
    """Staged beside the live site (which serves on meanwhile), checked, swapped in; on any
    failure the site is put back as it was and its services started."""
    log(f"restoring snapshot {snapshot['short_id']} of {snapshot['time']} from {repository.name}")
    journal = {"phase": "staging", "snapshot": snapshot["short_id"]}
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, interrupted)
    try:
        write_journal(config, journal)
        if has_data:
            stage_files(config, repository, snapshot, journal)
        if has_dump:
            stage_database(config, repository, snapshot, journal)
        swap_in(config, journal)
        journal["phase"] = "committed"
        write_journal(config, journal)
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)  # committed: the next run finishes a killed clean-up
    except Exception as error:  # whatever went wrong (a rename, a signal), the site is put back
        failure = error if isinstance(error, Failure) else f"{type(error).__name__}: {error}"
        context["result"] = "rolled back"
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)  # putting back is not to be interrupted
        try:
            for argv in config["services"]["stop"] if journal["phase"] == "swapping" else ():
                subprocess.run(argv)
            roll_back(config, journal)
            os.remove(journal_path(config))
            services(config, "start")
        except (Failure, OSError) as again:
            context["result"] = "rollback failed"
            raise Failure(f"{failure}; putting the site back failed too: {again} (run omero-restore "
                          "again to retry; the journal is kept)") from None
        raise Failure(f"{failure}; the site is back as it was before the restore and its services started") \
            from None
    clean_up(config, journal)
    context["result"] = "restored"
    targets = restore_link_targets(config, repository, snapshot)
    log("restore complete")
    return {"link_targets_restored": targets}
