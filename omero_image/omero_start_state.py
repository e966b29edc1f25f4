"""The state volume of omero-image: the image's manifest, the paths on the volume, the
state's lock, files and commands as a service's user (shipped beside entrypoint.py)."""

import errno
import fcntl
import json
import os
import pwd
import re
import socket
import subprocess
import sys
import time

with open(os.path.join(os.path.dirname(os.path.realpath(__file__)), "image.json"), encoding="utf-8") as _manifest:
    IMAGE = json.load(_manifest)

STATE = IMAGE["state"]  # omero_container.STATE, or a test's
RUN = f"{STATE}/run"  # made anew at every start
LOCK = f"{STATE}/omero-image.lock"  # held by the container using the state, for its whole life
HOME = f"{STATE}/home"  # the watch's home (the services' are the image's, pointing at the state)
LOG = f"{STATE}/log"
PGDATA = f"{STATE}/postgresql"
WEB = f"{STATE}/web"
CONFIG = f"{STATE}/config"
SECRETS = f"{STATE}/secrets"
SERVER = f"{STATE}/server"  # var/, etc/ (the image's, copied at each start) and the user's home
DATA = f"{STATE}/data"  # omero.data.dir: the binary repository
SERVER_CONFIG = f"{RUN}/server-config"  # loaded before every start: the whole configuration
AS_ROOT = os.geteuid() == 0


class Refused(Exception):
    """A start that cannot go on; the message says why and what to do."""


def say(message: str) -> None:
    print(f"omero-image: {message}", file=sys.stderr, flush=True)


def port(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 0 < int(value) < 65536:
        raise Refused(f"{name}={value!r} is not a TCP port number")
    if int(value) < 1024 and not AS_ROOT:
        raise Refused(f"{name}={value}: a user other than root cannot listen below 1024; use e.g. 8080")
    return int(value)


def ids(user: str) -> tuple[int, int]:
    """Who owns ``user``'s files: that user under root, else whoever runs the image."""
    if not AS_ROOT:
        return os.geteuid(), os.getegid()
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def directory(path: str, user: str, mode: int) -> str:
    """``path`` owned by ``user`` with ``mode``; a tree left by another image's uids is handed over."""
    os.makedirs(path, exist_ok=True)
    uid, gid = ids(user)
    if AS_ROOT and (os.stat(path).st_uid, os.stat(path).st_gid) != (uid, gid):
        subprocess.run(["chown", "-R", f"{uid}:{gid}", path], check=True)
    os.chmod(path, mode)
    return path


def write(path: str, content: str, user: str = "root", mode: int = 0o644) -> str:
    """``content`` into ``path``, made with ``mode`` before anything is written to it."""
    if os.path.lexists(path):
        os.unlink(path)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(content)
    uid, gid = ids(user)
    if AS_ROOT:
        os.chown(path, uid, gid)
    return path


def as_user(user: str, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", user, "--"] if AS_ROOT else []
    return subprocess.run(prefix + command, capture_output=True, text=True, **kwargs)


def checked(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        raise Refused(f"{what} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


# -- the state's lock ---------------------------------------------------------------------
# What a file system without working locks answers (NFS without lockd, Lustre without -o flock).
NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)
LOCK_MODES = ("required", "if-supported")


def hold_state(mode: str) -> int | None:
    """The state's lock, taken before anything on it changes and held until the container
    ends (by this process, then by supervisord, which inherits it). Each container has its
    own process ids, so PostgreSQL's postmaster.pid does not see a second one on the same
    data files: this lock must. None when the file system has no locks and ``mode`` allows it."""
    if mode not in LOCK_MODES:
        raise Refused(f"OMERO_STATE_LOCK={mode!r} is not one of {', '.join(LOCK_MODES)}")
    try:
        descriptor = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise Refused(f"cannot open the state's lock {LOCK}: {error.strerror}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        with open(descriptor, encoding="utf-8", errors="replace") as held:
            holder = held.read().strip() or "unknown"
        raise Refused(f"the state {STATE} is in use by another container ({holder}; it holds {LOCK}). "
                      "Two on one state would run two PostgreSQL servers on the same data files and "
                      "corrupt the database: stop the other one first, or give this one another state") from None
    except OSError as error:
        os.close(descriptor)
        if error.errno not in NO_LOCKS:
            raise Refused(f"cannot lock the state ({LOCK}): {error.strerror}") from None
        unguarded = (f"the file system of {STATE} cannot lock {LOCK} ({error.strerror}), so nothing "
                     "stops a second container (on this node or another) from starting on this state "
                     "and corrupting the database")
        if mode == "required":
            raise Refused(f"{unguarded}. Put the state on a file system with locks (a local disk; NFS "
                          "with lockd; Lustre mounted with -o flock), or set OMERO_STATE_LOCK=if-supported "
                          "and never start a second container on it") from None
        say(f"WARNING: {unguarded} (OMERO_STATE_LOCK=if-supported)")
        return None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{holder_of_lock()}\n".encode())
    return descriptor


def holder_of_lock() -> str:
    """Who holds the lock, for the message of a container refused: the host (podman's
    container id, Apptainer's node), the process and since when."""
    return f"host {socket.gethostname()}, pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"


