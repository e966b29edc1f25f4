"""Directories and files decided from one batched fact (deploys/batched.py) instead of
pyinfra's one File, Directory and Sha1File fact each. Same decisions and the same commands
as files.directory, files.file and files.put with the arguments this deploy gives them;
kit.py plans each path with ``batched.want_path`` before these run."""

import hashlib
import posixpath
from io import IOBase

from pyinfra import host
from pyinfra.api import FileUploadCommand, OperationError, QuoteString, StringCommand, operation

from .batched import changes_only, file_checksum, path_state
from .chained import chaining
from .checks import sha256_of

# Connector arguments that upload as the user pyinfra connects as (no sudo, su, doas or dzdo).
_AS_CONNECTED = {"_sudo": False, "_su_user": None, "_doas": False, "_dzdo": False}


def _mode(mode: str | int | None) -> int | None:
    """A mode as pyinfra's File fact gives it: the octal digits read as a decimal number."""
    return int(str(mode)) if mode is not None else None


def _chmod(path: str, mode: int) -> StringCommand:
    return StringCommand(f"chmod {mode}", QuoteString(path))


def _chown(path: str, user: str | None, group: str | None) -> StringCommand:
    if user:
        return StringCommand("chown", QuoteString(f"{user}:{group}" if group else user), QuoteString(path))
    return StringCommand("chgrp", QuoteString(group), QuoteString(path))


def _refuse_unless(path: str, current: dict | None, kind: str) -> None:
    if current is not None and current["type"] != kind:
        raise OperationError(f"{path} exists and is not a {kind}")


def _owner_and_mode(path: str, current: dict | None, user, group, mode) -> list[StringCommand]:
    """The chmod and chown that make ``current`` (what is at ``path``; None: just made) as wanted."""
    current = current or {"mode": None, "user": None, "group": None}
    commands = []
    if mode is not None and current["mode"] != mode:
        commands.append(_chmod(path, mode))
    if (user and current["user"] != user) or (group and current["group"] != group):
        commands.append(_chown(path, user, group))
    return commands


@operation()
@chaining
def directory(path: str, present: bool = True, user: str | None = None, group: str | None = None,
              mode: str | None = None):
    """``path`` a directory with ``user``, ``group`` and ``mode`` (without ``present``: no
    directory there); anything else at ``path`` is refused, as files.directory does."""
    yield from _kept(path, "directory", present, user, group, mode, remove="-rf",
                     make=lambda: [StringCommand("mkdir", "-p", QuoteString(path))])


@operation()
@chaining
def directories(paths: dict[str, str | None], present: bool = True, user: str | None = None,
                group: str | None = None):
    """``directory`` of each of ``paths`` (``{path: mode}``), in one operation."""
    for path, mode in paths.items():
        yield from directory._inner(path, present=present, user=user, group=group, mode=mode)


@operation()
@chaining
def file(path: str, present: bool = True, user: str | None = None, group: str | None = None,
         mode: str | None = None):
    """``path`` a regular file (made empty when missing) with ``user``, ``group`` and ``mode``;
    without ``present``: no file there. Anything else at ``path`` is refused."""
    yield from _kept(path, "file", present, user, group, mode, remove="-f",
                     make=lambda: [*_parent(path, user, group), StringCommand("touch", QuoteString(path))])


@operation()
def link_absent(path: str):
    """No symbolic link at ``path``; anything else there is refused, as files.link does."""
    yield from _kept(path, "link", False, None, None, None, remove="-f", make=list)


def _kept(path: str, kind: str, present: bool, user, group, mode, remove: str, make):
    """The commands that leave ``path`` as wanted: removed (``rm remove``) when not
    ``present``, else made (``make()``, when missing) with its owner and mode."""
    current = path_state(path)
    _refuse_unless(path, current, kind)
    if not present:
        if current:
            changes_only(path, removed=True)
            yield StringCommand("rm", remove, QuoteString(path))
        else:
            host.noop(f"{kind} {path} does not exist")
        return
    commands = [*(make() if current is None else []), *_owner_and_mode(path, current, user, group, _mode(mode))]
    changes_only(path, made=current is None)
    if not commands:
        host.noop(f"{kind} {path} already exists")
    yield from commands


def _parent(path: str, user: str | None, group: str | None):
    """The directory above ``path``, made (owned by ``user``:``group``) when missing; a
    link there is taken as it is, as files.put does."""
    parent = posixpath.dirname(path)
    if not parent:
        return
    current = path_state(parent)
    if current is None:
        yield StringCommand("mkdir", "-p", QuoteString(parent))
        if user or group:
            yield _chown(parent, user, group)
    elif current["type"] not in ("directory", "link"):
        raise OperationError(f"{parent} exists and is not a directory")


def checksum(src: str | IOBase) -> str:
    """The sha256 of what ``src`` (a local path, or a file-like object) holds."""
    if hasattr(src, "getvalue"):
        content = src.getvalue()
        return hashlib.sha256(content.encode() if isinstance(content, str) else content).hexdigest()
    return sha256_of(src)


@operation()
@chaining
def put(src: str | IOBase, dest: str, user: str | None = None, group: str | None = None,
        mode: str | None = None):
    """``dest`` (a file path) holding what ``src`` holds (a local path or a file-like
    object), with ``user``, ``group`` and ``mode``; its directory made when missing."""
    current = path_state(dest, checksum=True)
    if current is not None and current["type"] == "directory":
        raise OperationError(f"{dest} is a directory: give the file's own path")
    parent = list(_parent(dest, user, group))
    changes_only(dest, made=bool(parent))
    yield from parent
    mode = _mode(mode)
    if current is None or file_checksum(dest) != checksum(src):
        # Uploaded as the connecting user and copied into place in the one command that sets
        # its owner and mode: through sudo, pyinfra's upload sends a copy and a removal of its own.
        temp = host.get_temp_filename(dest)
        yield FileUploadCommand(src, temp, **_AS_CONNECTED)
        yield StringCommand("cp", temp, QuoteString(dest))
        yield StringCommand("rm", "-f", temp)
        if user or group:
            yield _chown(dest, user, group)
        if mode is not None:
            yield _chmod(dest, mode)
        return
    commands = _owner_and_mode(dest, current, user, group, mode)
    if not commands:
        host.noop(f"file {dest} is already uploaded")
    yield from commands
