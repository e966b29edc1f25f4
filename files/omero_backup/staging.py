"""A restore's ground work: the live site's state, the databases, the lock, and the staging
beside the data directory that a killed restore is put back (or finished) from."""

import fcntl
import os
import shutil
import signal
import stat
import subprocess
import time

from .backup import as_postgres, psql
from .restic import APPLICATION, DUMP, STAGING, Failure, journal_path, log, read_journal, run


# -- restore ----------------------------------------------------------------------------
def database_state(config):
    """None when the database does not exist, else how many tables and large objects it holds."""
    db = config["database"]
    exists = run(psql(config, "postgres"), input=f"SELECT 1 FROM pg_database WHERE datname = '{db['name']}'",
                 stdout=subprocess.PIPE, text=True).stdout.strip()
    if not exists:
        return None
    output = run(psql(config), stdout=subprocess.PIPE, text=True, input=(
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%') + (SELECT count(*) FROM pg_largeobject_metadata)")).stdout
    return int(output.strip())


def data_files(directory, excludes=()):
    """Relative paths of the regular files and symlinks below ``directory``."""
    found = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if os.path.join(root, d) not in excludes)
        for name in names:
            found.append(os.path.relpath(os.path.join(root, name), directory))
    return sorted(found)


def holds_files(directory, excludes):
    """Whether ``directory`` holds a file (not only directories), caches aside; stops at the first."""
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in excludes and d != STAGING]
        if names:
            return True
    return False


def restored_dump(repository, snapshot, config, target):
    """Restore the snapshot's dump directory below ``target``; its path there."""
    repository.restic("restore", snapshot["id"], "--target", target, "--include", config["dump_dir"],
                      "--verify", stdout=subprocess.DEVNULL)
    directory = target + config["dump_dir"]
    if not os.path.isfile(os.path.join(directory, DUMP)):
        raise Failure(f"snapshot {snapshot['short_id']} holds no database dump")
    return directory


def pg_restore(config, dump_directory, database, *options):
    db = config["database"]
    with open(os.path.join(dump_directory, DUMP), "rb") as dump:
        run(as_postgres(os.path.join(db["bin_dir"], "pg_restore"), "--exit-on-error", *options,
                        "-p", str(db["port"]), "-d", database), stdin=dump)


def create_database(config, database, owner):
    db = config["database"]
    run(as_postgres(os.path.join(db["bin_dir"], "dropdb"), "--if-exists", "--force", "-p", str(db["port"]),
                    database))
    run(as_postgres(os.path.join(db["bin_dir"], "createdb"), "-p", str(db["port"]), "-E", "UTF8",
                    "-T", "template0", "-O", owner, database))


def services(config, action):
    for argv in config["services"][action]:
        log(" ".join(argv))
        run(argv)


def lock(config):
    """One backup or restore at a time on a host (a scheduled backup never reads a site a
    restore is swapping); the lock is held until the process ends."""
    handle = open(os.path.join(config["state_dir"], "lock"), "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("waiting for the backup or restore that is running to end")
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def interrupted(signum, frame):
    raise Failure(f"interrupted by signal {signal.Signals(signum).name}")

def database_names(config):
    return set(run(psql(config, "postgres"), input="SELECT datname FROM pg_database",
                   stdout=subprocess.PIPE, text=True).stdout.split())


def rename_databases(config, renames):
    """``renames`` [(old, new)] in one transaction, after ending the sessions on them."""
    names = ", ".join(quote_literal(old) for old, _ in renames)
    statements = [f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN ({names}) "
                  "AND pid <> pg_backend_pid();", "BEGIN;"]
    statements += [f"ALTER DATABASE {quote_identifier(old)} RENAME TO {quote_identifier(new)};"
                   for old, new in renames]
    run(psql(config, "postgres"), input="\n".join([*statements, "COMMIT;"]), text=True, stdout=subprocess.DEVNULL)


def quote_literal(text):
    return "'" + text.replace("'", "''") + "'"


def quote_identifier(text):
    return '"' + text.replace('"', '""') + '"'


def end_own_sessions(config):
    """End and wait out the database sessions of this restore's interrupted children: a
    CREATE DATABASE or pg_restore runs on in the server after its client is gone (and
    would make a database after it was dropped)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        left = run(psql(config, "postgres"), stdout=subprocess.PIPE, text=True, input=(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE application_name = {quote_literal(APPLICATION)} AND pid <> pg_backend_pid()")).stdout.strip()
        if left == "0":
            return
        time.sleep(0.5)
    raise Failure("the database sessions of the interrupted restore did not end")


def drop_database(config, database):
    db = config["database"]
    run(as_postgres(os.path.join(db["bin_dir"], "dropdb"), "--if-exists", "--force", "-p", str(db["port"]),
                    database))


DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_data_dir(data_dir):
    """``data_dir`` opened (made if missing) by walking its path from / without following a
    link; every directory above it root's and writable by root only (or sticky, where no one
    else can rename root's entries), so no one but root can put another directory there."""
    fd, walked = os.open("/", DIRECTORY), "/"
    try:
        for name in [part for part in data_dir.split("/") if part]:
            info = os.fstat(fd)
            if info.st_uid != 0 or (info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX):
                raise Failure(f"{walked} (above the data directory {data_dir}) is writable by others than "
                              "root: refusing to restore through it")
            try:
                os.mkdir(name, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            walked = os.path.join(walked, name)
            try:
                child = os.open(name, DIRECTORY, dir_fd=fd)
            except OSError as error:
                raise Failure(f"{walked} is a symbolic link or not a directory: refusing to restore "
                              f"through it ({error.strerror})") from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


class Staging:
    """The data directory and the restore's staging area in it, held open. The data directory
    is the OMERO.server account's: it may rename STAGING away and put a link to /etc in its place
    at any moment, so every step (restic's writes, renames, removal, chown) goes through these
    descriptors and names without slashes, never through a path inside the data directory.
    STAGING itself is root's, 0700: what is below it the account cannot reach."""

    def __init__(self, data_dir):
        self.data_dir, self.path = data_dir, os.path.join(data_dir, STAGING)
        self.fds = [open_data_dir(data_dir)]
        self.data = self.fds[0]
        self.root = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for fd in reversed(self.fds):
            os.close(fd)

    def _open(self, name, dir_fd):
        fd = os.open(name, DIRECTORY, dir_fd=dir_fd)
        self.fds.append(fd)
        return fd

    def _refuse(self, why):
        return Failure(f"{self.path} {why}: not the restore's staging directory, refusing to follow or "
                       "remove it (look at it, then move it away)")

    def open(self, recorded=None):
        """STAGING opened and checked (root's, 0700, and when ``recorded`` [st_dev, st_ino], the very
        directory made by the restore that recorded it); None if there is none."""
        try:
            fd = self._open(STAGING, self.data)
        except FileNotFoundError:
            return None
        except OSError:
            raise self._refuse("is a symbolic link or not a directory") from None
        info = os.fstat(fd)
        if info.st_uid != 0 or stat.S_IMODE(info.st_mode) != 0o700:
            raise self._refuse(f"is owned by uid {info.st_uid} with mode {stat.S_IMODE(info.st_mode):o}")
        if recorded is not None and [info.st_dev, info.st_ino] != list(recorded):
            raise self._refuse("is another directory than the one the restore's journal recorded")
        self.root = fd
        return fd

    def create(self):
        """A new STAGING with new/ and old/ in it (a leftover of root's, which no journal names,
        removed first); returns its [st_dev, st_ino] for the journal."""
        self.remove()
        os.mkdir(STAGING, 0o700, dir_fd=self.data)
        self.open()
        if self.root is None:
            raise self._refuse("vanished as it was made")
        os.mkdir("new", 0o700, dir_fd=self.root)
        os.mkdir("old", 0o700, dir_fd=self.root)
        info = os.fstat(self.root)
        return [info.st_dev, info.st_ino]

    def part(self, name):
        return self._open(name, self.root)

    def tree(self):
        """new/ followed down the data directory's path: where restic put the restored one
        (FileNotFoundError when it did not)."""
        fd = self.part("new")
        for name in [part for part in self.data_dir.split("/") if part]:
            fd = self._open(name, fd)
        return fd

    def target(self):
        """restic's --target: the staging directory through this process's descriptor, which
        the child inherits (pass_fds), so no path the account can swap is ever resolved."""
        return f"/proc/self/fd/{self.root}/new"

    def remove(self, recorded=None):
        """STAGING's content removed through its descriptor, then the (then empty) directory."""
        if self.open(recorded) is None:
            return
        for name in os.listdir(self.root):
            if stat.S_ISDIR(os.lstat(name, dir_fd=self.root).st_mode):
                shutil.rmtree(name, dir_fd=self.root)
            else:
                os.unlink(name, dir_fd=self.root)
        self.open(recorded)  # still the one emptied; rmdir removes nothing else but an empty directory
        os.rmdir(STAGING, dir_fd=self.data)


def exists(dir_fd, name):
    try:
        os.lstat(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return False


def swap_steps(data_fd, tree_fd, old_fd, live_names, new_names):
    """The renames [(from directory, name, to directory)] that put ``tree``'s entries in place of
    ``data``'s (set aside in ``old``)."""
    return ([(data_fd, name, old_fd) for name in live_names]
            + [(tree_fd, name, data_fd) for name in new_names])


def rename(step):
    source, name, destination = step
    if "/" in name:
        raise Failure(f"{name!r} is not a name in a directory")
    os.rename(name, name, src_dir_fd=source, dst_dir_fd=destination)


def unswap(data_fd, tree_fd, old_fd, live_names, new_names):
    """Undo any prefix of ``swap_steps``: what came from ``tree`` goes back there, then what was
    set aside comes back. Decided per name from what exists, so it may itself be interrupted."""
    for name in new_names:
        if exists(data_fd, name) and not exists(tree_fd, name):
            rename((data_fd, name, tree_fd))
    for name in live_names:
        if exists(old_fd, name):
            rename((old_fd, name, data_fd))


def set_owner_and_mode(fd, owner_and_mode):
    uid, gid, mode = owner_and_mode
    os.fchown(fd, uid, gid)
    os.fchmod(fd, mode)


def owner_and_mode(fd):
    info = os.fstat(fd)
    return [info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)]


def roll_back(config, journal):
    """Put the database and the files back as they were before ``journal``'s restore."""
    files = journal.get("files") or {}
    recorded = files.get("staging")
    if files.get("swap"):
        with Staging(config["data_dir"]) as staging:
            if staging.open(recorded) is None:
                raise Failure(f"{staging.path} is gone: the data directory cannot be put back")
            unswap(staging.data, staging.tree(), staging.part("old"), files["swap"]["live"], files["swap"]["new"])
            set_owner_and_mode(staging.data, files["swap"]["root"])
        log(f"{config['data_dir']} put back as it was")
    database = journal.get("database")
    if database:
        live, new, old = database["live"], database["new"], database["old"]
        end_own_sessions(config)
        present = database_names(config)
        if old in present:  # switched: the live database is the restored one
            rename_databases(config, [(live, new), (old, live)] if live in present else [(old, live)])
        elif not database["existed"] and live in present and new not in present:
            rename_databases(config, [(live, new)])
        drop_database(config, new)
        log(f"database {live} put back as it was")
    remove_staging(config, recorded)


def remove_staging(config, recorded):
    """The staging area removed: the one the journal recorded, or a leftover of root's."""
    if os.path.isdir(config["data_dir"]):
        with Staging(config["data_dir"]) as staging:
            staging.remove(recorded)


def clean_up(config, journal):
    """After a committed restore: the previous database and files removed."""
    if journal.get("database"):
        drop_database(config, journal["database"]["old"])
    remove_staging(config, (journal.get("files") or {}).get("staging"))
    os.remove(journal_path(config))


def finish_interrupted(config):
    """A restore killed before it committed is rolled back (services started again); one
    killed after, cleaned up."""
    journal = read_journal(config)
    if journal is None:
        return
    if journal["phase"] == "committed":
        log("finishing the clean-up of a restore that was interrupted after it succeeded")
        clean_up(config, journal)
        return
    log(f"a restore of snapshot {journal['snapshot']} was interrupted ({journal['phase']}): putting the site back")
    roll_back(config, journal)
    os.remove(journal_path(config))
    services(config, "start")
